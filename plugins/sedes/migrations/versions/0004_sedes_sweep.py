"""Sedes: The sweep at scale: sweeps, mailbox leases, per-sede concurrency

Revision ID: 0004_sedes_sweep
Revises: 0003_sedes_webhooks
Create Date: 2026-12-04 17:00:00
"""

from alembic import op
import sqlalchemy as sa

from core.api import UTCDateTime, enable_row_level_security

revision = '0004_sedes_sweep'
down_revision = '0003_sedes_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sedes_sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_run_id', sa.Integer(), nullable=True),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('run_ids', sa.JSON(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('new', sa.Integer(), nullable=False),
    sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sedes_sweeps_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sedes_sweeps'))
    )
    with op.batch_alter_table('sedes_sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sedes_sweeps_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_sedes_sweeps_tenant_id_finished_at', ['tenant_id', 'finished_at'], unique=False)

    with op.batch_alter_table('sedes_mailboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('leased_until', UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_sedes_mailboxes_tenant_id_sweep_id', ['tenant_id', 'sweep_id'], unique=False)

    with op.batch_alter_table('sedes_sedes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_concurrency', sa.Integer(), nullable=False, server_default='16'))

    enable_row_level_security(op, 'sedes_sweeps')


def downgrade():
    with op.batch_alter_table('sedes_sedes', schema=None) as batch_op:
        batch_op.drop_column('max_concurrency')

    with op.batch_alter_table('sedes_mailboxes', schema=None) as batch_op:
        batch_op.drop_index('ix_sedes_mailboxes_tenant_id_sweep_id')
        batch_op.drop_column('leased_until')
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('sweep_id')

    with op.batch_alter_table('sedes_sweeps', schema=None) as batch_op:
        batch_op.drop_index('ix_sedes_sweeps_tenant_id_finished_at')
        batch_op.drop_index(batch_op.f('ix_sedes_sweeps_tenant_id'))

    op.drop_table('sedes_sweeps')
