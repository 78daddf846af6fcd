"""Which permissions' default grants each tenant has been offered.

The table starts empty: for the tenants there are, which defaults they were given and which an
administrator took away is not known, so the first ``core.offer_default_grants`` sweep marks every
permission of that day offered to them without granting anything. From then on a permission a
release adds reaches their default roles once.

Revision ID: 0013_offered_defaults
Revises: 0012_scale_reads
Create Date: 2026-12-04 20:40:00
"""

import sqlalchemy as sa
from alembic import op

from core.extensions import UTCDateTime
from tenants.isolation import enable_row_level_security

revision = "0013_offered_defaults"
down_revision = "0012_scale_reads"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_offered_defaults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("offered_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_core_offered_defaults_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_offered_defaults")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_core_offered_defaults_tenant_id_code")),
    )
    with op.batch_alter_table("core_offered_defaults") as batch_op:
        batch_op.create_index(batch_op.f("ix_core_offered_defaults_tenant_id"), ["tenant_id"], unique=False)
    enable_row_level_security(op, "core_offered_defaults")


def downgrade():
    op.drop_table("core_offered_defaults")
