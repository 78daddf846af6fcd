"""Placeholder revision reserved for issue 10; its owner fills it in.

Revision ID: 0012_scale_reads
Revises: 0011_mail_at_volume
Create Date: 2026-12-04 20:20:00
"""

revision = "0012_scale_reads"
down_revision = "0011_mail_at_volume"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
