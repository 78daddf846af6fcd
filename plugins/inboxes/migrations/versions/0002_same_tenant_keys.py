"""A mailbox, contract, flow, request or message can never point at a row of another tenant.

Composite (tenant_id, column) → (tenant_id, id) keys beside the plugin's foreign keys, as core's
0009_same_tenant_keys does for core's.

Revision ID: 0002_inboxes_same_tenant_keys
Revises: 0001_inboxes
Create Date: 2026-12-04 12:40:00
"""

from alembic import op

from core.api import drop_same_tenant_references, drop_tenant_key, same_tenant_references, tenant_key

revision = "0002_inboxes_same_tenant_keys"
down_revision = "0001_inboxes"
branch_labels = None
depends_on = "0009_same_tenant_keys"

KEYED = (
    "inboxes_attachment_data",
    "inboxes_contracts",
    "inboxes_flow_steps",
    "inboxes_flows",
    "inboxes_mailboxes",
    "inboxes_messages",
    "inboxes_requests",
)
REFERENCES = {
    "inboxes_attachments": {
        "data_id": "inboxes_attachment_data",
        "file_id": "core_stored_files",
        "message_id": "inboxes_messages",
    },
    "inboxes_contract_inboxes": {"contract_id": "inboxes_contracts", "mailbox_id": "inboxes_mailboxes"},
    "inboxes_contracts": {
        "client_id": "core_clients",
        "flow_id": "inboxes_flows",
        "outbound_mailbox_id": "inboxes_mailboxes",
    },
    "inboxes_flow_steps": {"flow_id": "inboxes_flows"},
    "inboxes_messages": {
        "author_id": "core_users",
        "mailbox_id": "inboxes_mailboxes",
        "outbound_id": "core_outbound_messages",
        "request_id": "inboxes_requests",
    },
    "inboxes_quarantine": {
        "mailbox_id": "inboxes_mailboxes",
        "request_id": "inboxes_requests",
        "resolved_by_id": "core_users",
    },
    "inboxes_requests": {"contract_id": "inboxes_contracts", "mailbox_id": "inboxes_mailboxes"},
    "inboxes_step_runs": {
        "message_id": "inboxes_messages",
        "request_id": "inboxes_requests",
        "step_id": "inboxes_flow_steps",
    },
}


def upgrade():
    tenant_key(op, *KEYED)
    for table, references in REFERENCES.items():
        same_tenant_references(op, table, references)


def downgrade():
    for table, references in REFERENCES.items():
        drop_same_tenant_references(op, table, references)
    drop_tenant_key(op, *KEYED)
