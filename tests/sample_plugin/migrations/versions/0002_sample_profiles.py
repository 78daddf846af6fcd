"""Sample plugin: the client fields it keeps (one row per client).

Revision ID: 0002_sample_profiles
Revises: 0001_sample
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from core.api import enable_row_level_security

revision = "0002_sample_profiles"
down_revision = "0001_sample"
branch_labels = None
depends_on = "0004_clients_audit"


def upgrade():
    op.create_table(
        "sample_client_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("vip", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["core_clients.id"],
            name=op.f("fk_sample_client_profiles_client_id_core_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sample_client_profiles_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_client_profiles")),
        sa.UniqueConstraint("tenant_id", "client_id", name=op.f("uq_sample_client_profiles_tenant_id_client_id")),
    )
    op.create_index(op.f("ix_sample_client_profiles_tenant_id"), "sample_client_profiles", ["tenant_id"])
    op.create_index(op.f("ix_sample_client_profiles_client_id"), "sample_client_profiles", ["client_id"])
    enable_row_level_security(op, "sample_client_profiles")


def downgrade():
    op.drop_table("sample_client_profiles")
