"""A certificate, template or notice can never point at a row of another tenant.

Composite (tenant_id, column) → (tenant_id, id) keys beside the plugin's foreign keys, as core's
0009_same_tenant_keys does for core's (tenants.isolation, layer 3).

Revision ID: 0003_same_tenant_keys
Revises: 0002_certificate_rejections
Create Date: 2026-12-04 12:05:00
"""

from alembic import op

from core.api import drop_same_tenant_references, drop_tenant_key, same_tenant_references, tenant_key

revision = "0003_same_tenant_keys"
down_revision = "0002_certificate_rejections"
branch_labels = None
depends_on = "0009_same_tenant_keys"

KEYED = ("center_certificates_templates", "center_certificates_certificates")
REFERENCES = {
    "center_certificates_templates": {"created_by_id": "core_users"},
    "center_certificates_certificates": {
        "template_id": "center_certificates_templates",
        "client_id": "core_clients",
        "file_id": "core_stored_files",
        "renewal_of_id": "center_certificates_certificates",
        "issued_by_id": "core_users",
        "approved_by_id": "core_users",
        "uploaded_by_id": "core_users",
        "deleted_by_id": "core_users",
    },
    "center_certificates_notices": {
        "certificate_id": "center_certificates_certificates",
        "message_id": "core_outbound_messages",
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
