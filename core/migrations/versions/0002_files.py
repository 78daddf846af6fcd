"""Files: the record of every accepted upload (bytes live in the tenant's file store).

Revision ID: 0002_files
Revises: 0001_core
Create Date: 2026-11-24 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

import core.extensions
from tenants.isolation import enable_row_level_security

revision = '0002_files'
down_revision = '0001_core'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('core_stored_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('extension', sa.String(length=10), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('created_at', core.extensions.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['core_users.id'], name=op.f('fk_core_stored_files_created_by_id_core_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_core_stored_files_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_stored_files'))
    )
    with op.batch_alter_table('core_stored_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_stored_files_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_stored_files_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_core_stored_files_tenant_id_key', ['tenant_id', 'key'], unique=False)

    enable_row_level_security(op, 'core_stored_files')


def downgrade():
    with op.batch_alter_table('core_stored_files', schema=None) as batch_op:
        batch_op.drop_index('ix_core_stored_files_tenant_id_key')
        batch_op.drop_index(batch_op.f('ix_core_stored_files_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_core_stored_files_created_by_id'))

    op.drop_table('core_stored_files')
