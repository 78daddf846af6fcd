"""Sedes: Outgoing webhooks: hooks and their deliveries

Revision ID: 0003_sedes_webhooks
Revises: 0002_sedes_escalation
Create Date: 2026-12-04 17:00:00
"""

from alembic import op
import sqlalchemy as sa

from core.api import (
    EncryptedText,
    UTCDateTime,
    drop_same_tenant_references,
    drop_tenant_key,
    enable_row_level_security,
    same_tenant_references,
    tenant_key,
)

revision = '0003_sedes_webhooks'
down_revision = '0002_sedes_escalation'
branch_labels = None
depends_on = None


TENANT_TABLES = ("sedes_webhooks", "sedes_webhook_deliveries", "sedes_webhook_attempts")
KEYED = ("sedes_webhooks", "sedes_webhook_deliveries")
REFERENCES = {
    "sedes_webhooks": {"created_by_id": "core_users"},
    "sedes_webhook_deliveries": {"hook_id": "sedes_webhooks", "notification_id": "sedes_notifications"},
    "sedes_webhook_attempts": {"delivery_id": "sedes_webhook_deliveries"},
}


def upgrade():
    op.create_table('sedes_webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret', EncryptedText(), nullable=False),
    sa.Column('secret_rotated_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['core_users.id'], name=op.f('fk_sedes_webhooks_created_by_id_core_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sedes_webhooks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sedes_webhooks'))
    )
    with op.batch_alter_table('sedes_webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sedes_webhooks_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('sedes_webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('hook_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('occasion', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('occurred_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=16), nullable=True),
    sa.Column('delivered_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['hook_id'], ['sedes_webhooks.id'], name=op.f('fk_sedes_webhook_deliveries_hook_id_sedes_webhooks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['sedes_notifications.id'], name=op.f('fk_sedes_webhook_deliveries_notification_id_sedes_notifications'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sedes_webhook_deliveries_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sedes_webhook_deliveries')),
    sa.UniqueConstraint('uuid', name=op.f('uq_sedes_webhook_deliveries_uuid')),
    sa.UniqueConstraint('tenant_id', 'hook_id', 'event', 'notification_id', 'occasion', name='uq_sedes_webhook_deliveries_once')
    )
    with op.batch_alter_table('sedes_webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sedes_webhook_deliveries_notification_id'), ['notification_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sedes_webhook_deliveries_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_sedes_webhook_deliveries_due', ['tenant_id', 'status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_sedes_webhook_deliveries_hook', ['tenant_id', 'hook_id', 'id'], unique=False)

    op.create_table('sedes_webhook_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_excerpt', sa.Text(), nullable=False),
    sa.Column('error', sa.String(length=16), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['sedes_webhook_deliveries.id'], name=op.f('fk_sedes_webhook_attempts_delivery_id_sedes_webhook_deliveries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sedes_webhook_attempts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sedes_webhook_attempts'))
    )
    with op.batch_alter_table('sedes_webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sedes_webhook_attempts_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sedes_webhook_attempts_tenant_id'), ['tenant_id'], unique=False)

    for table in TENANT_TABLES:
        enable_row_level_security(op, table)
    tenant_key(op, *KEYED)
    for table, references in REFERENCES.items():
        same_tenant_references(op, table, references)


def downgrade():
    for table, references in REFERENCES.items():
        drop_same_tenant_references(op, table, references)
    drop_tenant_key(op, *KEYED)
    with op.batch_alter_table('sedes_webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sedes_webhook_attempts_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_sedes_webhook_attempts_delivery_id'))

    op.drop_table('sedes_webhook_attempts')
    with op.batch_alter_table('sedes_webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_sedes_webhook_deliveries_hook')
        batch_op.drop_index('ix_sedes_webhook_deliveries_due')
        batch_op.drop_index(batch_op.f('ix_sedes_webhook_deliveries_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_sedes_webhook_deliveries_notification_id'))

    op.drop_table('sedes_webhook_deliveries')
    with op.batch_alter_table('sedes_webhooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sedes_webhooks_tenant_id'))

    op.drop_table('sedes_webhooks')
