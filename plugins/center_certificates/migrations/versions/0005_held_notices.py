"""Notices held back by a bulk action: a marker that says "not sent", and for which action.

An import or "Generar certificados" that the person chose not to announce writes the markers of
the notices it causes with ``held_for`` (the action's key), so that the periodic run never sends
them; sending them later deletes those markers, once.

Revision ID: 0005_held_notices
Revises: 0003_next_document
Create Date: 2026-12-04 20:30:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = "0005_held_notices"
down_revision = "0003_next_document"
branch_labels = None
depends_on = None

INDEX = "ix_center_certificates_notices_held"


def upgrade():
    with op.batch_alter_table("center_certificates_notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_for", sa.String(length=64), nullable=True))
        # Only the held markers are in it: a small index, read when an action's notices are counted.
        batch_op.create_index(
            INDEX,
            ["tenant_id", "held_for"],
            sqlite_where=sa.text("held_for IS NOT NULL"),
            postgresql_where=sa.text("held_for IS NOT NULL"),
        )


def downgrade():
    with op.batch_alter_table("center_certificates_notices", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_column("held_for")
