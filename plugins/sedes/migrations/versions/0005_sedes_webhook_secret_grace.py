"""Sedes: after a webhook's secret is rotated, the previous one signs too for a day

Both columns start empty: hooks rotated before this have no previous secret to keep.

Revision ID: 0005_sedes_webhook_secret_grace
Revises: 0004_sedes_sweep
Create Date: 2026-12-04 20:30:00
"""

from alembic import op
import sqlalchemy as sa

from core.api import EncryptedText, UTCDateTime

revision = "0005_sedes_webhook_secret_grace"
down_revision = "0004_sedes_sweep"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sedes_webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", EncryptedText(), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_until", UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("sedes_webhooks", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_secret")
