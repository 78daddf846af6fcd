"""A client's language (of their e-mails and portal); empty means the organisation's.

Revision ID: 0007_client_language
Revises: 0006_portal_push
Create Date: 2026-11-23 19:10:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0007_client_language'
down_revision = '0006_portal_push'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('core_clients') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=5), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('core_clients') as batch_op:
        batch_op.drop_column('locale')
