"""Sedes: Deadline escalation to supervisors, and the calendar feed's secret links

A notification's ``handled_at`` (when someone last read, moved or opened it) starts empty for the
rows there are: escalation also asks for the workflow state to be "pending reading", which every
handled row has left already, so no backfill is needed.

Revision ID: 0002_sedes_escalation
Revises: 0001_sedes
Create Date: 2026-12-04 17:00:00
"""

from alembic import op
import sqlalchemy as sa

from core.api import (
    UTCDateTime,
    drop_same_tenant_references,
    enable_row_level_security,
    same_tenant_references,
)

revision = '0002_sedes_escalation'
down_revision = '0001_sedes'
branch_labels = None
depends_on = None

REFERENCES = {
    "sedes_deadline_escalations": {"notification_id": "sedes_notifications", "user_id": "core_users"},
    "sedes_calendar_feeds": {"user_id": "core_users"},
}


def upgrade():
    with op.batch_alter_table('sedes_notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handled_at', UTCDateTime(timezone=True), nullable=True))

    op.create_table('sedes_deadline_escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('sent_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['sedes_notifications.id'], name=op.f('fk_sedes_deadline_escalations_notification_id_sedes_notifications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sedes_deadline_escalations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['core_users.id'], name=op.f('fk_sedes_deadline_escalations_user_id_core_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sedes_deadline_escalations')),
    sa.UniqueConstraint('tenant_id', 'notification_id', 'user_id', 'threshold', name='uq_sedes_deadline_escalations_once')
    )
    with op.batch_alter_table('sedes_deadline_escalations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sedes_deadline_escalations_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sedes_deadline_escalations_user_id'), ['user_id'], unique=False)

    op.create_table('sedes_calendar_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sedes_calendar_feeds_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['core_users.id'], name=op.f('fk_sedes_calendar_feeds_user_id_core_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sedes_calendar_feeds')),
    sa.UniqueConstraint('tenant_id', 'secret_hash', name=op.f('uq_sedes_calendar_feeds_tenant_id_secret_hash')),
    sa.UniqueConstraint('tenant_id', 'user_id', name=op.f('uq_sedes_calendar_feeds_tenant_id_user_id'))
    )
    with op.batch_alter_table('sedes_calendar_feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sedes_calendar_feeds_tenant_id'), ['tenant_id'], unique=False)

    for table in REFERENCES:
        enable_row_level_security(op, table)
    for table, references in REFERENCES.items():
        same_tenant_references(op, table, references)


def downgrade():
    for table, references in REFERENCES.items():
        drop_same_tenant_references(op, table, references)
    with op.batch_alter_table('sedes_calendar_feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sedes_calendar_feeds_tenant_id'))

    op.drop_table('sedes_calendar_feeds')
    with op.batch_alter_table('sedes_deadline_escalations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sedes_deadline_escalations_user_id'))
        batch_op.drop_index(batch_op.f('ix_sedes_deadline_escalations_tenant_id'))

    op.drop_table('sedes_deadline_escalations')
    with op.batch_alter_table('sedes_notifications', schema=None) as batch_op:
        batch_op.drop_column('handled_at')
