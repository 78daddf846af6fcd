"""Placeholder revision reserved for issue 10; its owner fills it in.

Revision ID: 0011_mail_at_volume
Revises: 0010_all_tenants_key
Create Date: 2026-12-04 20:20:00
"""

revision = "0011_mail_at_volume"
down_revision = "0010_all_tenants_key"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
