"""Sample plugin: a client profile can never point at another tenant's client.

Revision ID: 0003_sample_same_tenant_keys
Revises: 0002_sample_profiles
Create Date: 2026-12-04
"""

from alembic import op

from core.api import drop_same_tenant_references, same_tenant_references

revision = "0003_sample_same_tenant_keys"
down_revision = "0002_sample_profiles"
branch_labels = None
depends_on = "0009_same_tenant_keys"

REFERENCES = {"client_id": "core_clients"}


def upgrade():
    same_tenant_references(op, "sample_client_profiles", REFERENCES)


def downgrade():
    drop_same_tenant_references(op, "sample_client_profiles", REFERENCES)
