"""Mail at volume: a priority on every outbound message, and the tenant's sending rate.

A delivery job claims a batch of one tenant's due messages, urgent ones first: the index
follows that claim (tenant, status, priority, id). ``rate_per_minute`` is the tenant's ceiling for
its servers (empty: the operator's default).

Revision ID: 0011_mail_at_volume
Revises: 0010_all_tenants_key
Create Date: 2026-12-04 20:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_mail_at_volume"
down_revision = "0010_all_tenants_key"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("core_outbound_messages") as batch_op:
        batch_op.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="1"))
        batch_op.create_index(
            "ix_core_outbound_messages_claim", ["tenant_id", "status", "priority", "id"], unique=False
        )
    with op.batch_alter_table("core_tenant_mail_settings") as batch_op:
        batch_op.add_column(sa.Column("rate_per_minute", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("core_tenant_mail_settings") as batch_op:
        batch_op.drop_column("rate_per_minute")
    with op.batch_alter_table("core_outbound_messages") as batch_op:
        batch_op.drop_index("ix_core_outbound_messages_claim")
        batch_op.drop_column("priority")
