"""Sample plugin: its own table on its own migration branch.

Revision ID: 0001_sample
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from core.api import enable_row_level_security

revision = "0001_sample"
down_revision = None
branch_labels = ("sample",)
depends_on = "0001_core"


def upgrade():
    op.create_table(
        "sample_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sample_notes_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_notes")),
    )
    op.create_index(op.f("ix_sample_notes_tenant_id"), "sample_notes", ["tenant_id"], unique=False)
    enable_row_level_security(op, "sample_notes")


def downgrade():
    op.drop_index(op.f("ix_sample_notes_tenant_id"), table_name="sample_notes")
    op.drop_table("sample_notes")
