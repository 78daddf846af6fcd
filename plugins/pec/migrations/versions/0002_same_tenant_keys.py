"""A row of the pec plugin can never point at a row of another tenant.

Composite (tenant_id, column) -> (tenant_id, id) keys beside the plugin's foreign keys, as core's
0009_same_tenant_keys does for core's.

Revision ID: pec_same_tenant_keys
Revises: 0001_pec
Create Date: 2026-12-04 13:00:00
"""

from alembic import op

from core.api import drop_same_tenant_references, drop_tenant_key, same_tenant_references, tenant_key

revision = "pec_same_tenant_keys"
down_revision = "0001_pec"
branch_labels = None
depends_on = "0009_same_tenant_keys"

KEYED = (
    "pec_agents",
    "pec_assistants",
    "pec_boxes",
    "pec_domains",
    "pec_holder_activities",
    "pec_holder_addresses",
    "pec_packages",
)
REFERENCES = {
    "pec_agent_domains": {"agent_id": "pec_agents", "domain_id": "pec_domains"},
    "pec_assistants": {"domain_id": "pec_domains", "user_id": "core_users"},
    "pec_box_documents": {"box_id": "pec_boxes", "file_id": "core_stored_files", "uploaded_by_id": "core_users"},
    "pec_box_reminders": {"box_id": "pec_boxes", "message_id": "core_outbound_messages"},
    "pec_boxes": {
        "activity_id": "pec_holder_activities",
        "agent_id": "pec_agents",
        "created_by_id": "core_users",
        "domain_id": "pec_domains",
        "holder_address_id": "pec_holder_addresses",
        "holder_id": "core_clients",
        "package_id": "pec_packages",
    },
    "pec_callback_events": {"box_id": "pec_boxes"},
    "pec_holder_activities": {"address_id": "pec_holder_addresses", "client_id": "core_clients"},
    "pec_holder_addresses": {"client_id": "core_clients"},
    "pec_holder_profiles": {"client_id": "core_clients"},
    "pec_imports": {"created_by_id": "core_users", "run_id": "core_job_runs"},
    "pec_packages": {"agent_id": "pec_agents", "assistant_id": "pec_assistants"},
    "pec_panel_accounts": {"user_id": "core_users"},
}


def upgrade():
    tenant_key(op, *KEYED)
    for table, references in REFERENCES.items():
        same_tenant_references(op, table, references)


def downgrade():
    for table, references in REFERENCES.items():
        drop_same_tenant_references(op, table, references)
    drop_tenant_key(op, *KEYED)
