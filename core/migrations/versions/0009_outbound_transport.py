"""Outbound messages a plugin carries: the transport key and further headers.

Revision ID: 0009_outbound_transport
Revises: 0008_client_search_indexes
Create Date: 2026-12-04 10:30:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0009_outbound_transport'
down_revision = '0008_client_search_indexes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('core_outbound_messages') as batch_op:
        batch_op.add_column(sa.Column('transport', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('headers', sa.JSON(), nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('core_outbound_messages') as batch_op:
        batch_op.drop_column('headers')
        batch_op.drop_column('transport')
