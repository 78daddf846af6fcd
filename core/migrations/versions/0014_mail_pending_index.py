"""Mail claims read the messages still to send in order.

A delivery job claims the first due messages of one tenant, urgent first. The index of 0011
(tenant, status, priority, id) could not give them in that order, since a due message is
``queued`` or ``sending``: PostgreSQL read and sorted every due message of the tenant for each
claim of 20, some 30 ms a claim behind a backlog of 5,000. This one holds only the messages still
to send (``queued`` or ``sending``), in claim order, so a claim reads about as many entries as it
takes, and sent mail leaves it.

Revision ID: 0014_mail_pending_index
Revises: 0013_offered_defaults
Create Date: 2026-12-05 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_mail_pending_index"
down_revision = "0013_offered_defaults"
branch_labels = None
depends_on = None

PENDING = sa.text("status IN ('queued', 'sending')")


def upgrade():
    with op.batch_alter_table("core_outbound_messages") as batch_op:
        batch_op.drop_index("ix_core_outbound_messages_claim")
        batch_op.create_index(
            "ix_core_outbound_messages_pending",
            ["tenant_id", "priority", "id"],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )


def downgrade():
    with op.batch_alter_table("core_outbound_messages") as batch_op:
        batch_op.drop_index("ix_core_outbound_messages_pending")
        batch_op.create_index(
            "ix_core_outbound_messages_claim", ["tenant_id", "status", "priority", "id"], unique=False
        )
