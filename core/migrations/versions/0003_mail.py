"""Outbound mail: the outbox (messages and their attachments) and per-tenant SMTP settings.

Revision ID: 0003_mail
Revises: 0001_core
Create Date: 2026-11-24 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

import core.extensions
from tenants.isolation import enable_row_level_security

revision = '0003_mail'
down_revision = '0001_core'
branch_labels = None
depends_on = None

TENANT_TABLES = ("core_outbound_messages", "core_outbound_attachments", "core_tenant_mail_settings")


def upgrade():
    op.create_table('core_outbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('to_addresses', sa.JSON(), nullable=False),
    sa.Column('cc_addresses', sa.JSON(), nullable=False),
    sa.Column('bcc_addresses', sa.JSON(), nullable=False),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('reply_to', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', core.extensions.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_until', core.extensions.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.extensions.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', core.extensions.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('smtp_source', sa.String(length=16), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_core_outbound_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_outbound_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_core_outbound_messages_message_id'))
    )
    with op.batch_alter_table('core_outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_outbound_messages_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_core_outbound_messages_tenant_id_id', ['tenant_id', 'id'], unique=False)
        batch_op.create_index('ix_core_outbound_messages_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('core_outbound_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=127), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['core_outbound_messages.id'], name=op.f('fk_core_outbound_attachments_message_id_core_outbound_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_core_outbound_attachments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_outbound_attachments'))
    )
    with op.batch_alter_table('core_outbound_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_outbound_attachments_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_outbound_attachments_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('core_tenant_mail_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=253), nullable=True),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=16), nullable=False),
    sa.Column('username', sa.String(length=254), nullable=True),
    # A Fernet token (core.crypto.EncryptedText), never the password itself.
    sa.Column('password', sa.Text(), nullable=True),
    sa.Column('from_address', sa.String(length=254), nullable=True),
    sa.Column('updated_at', core.extensions.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_core_tenant_mail_settings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_tenant_mail_settings')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_core_tenant_mail_settings_tenant_id'))
    )
    with op.batch_alter_table('core_tenant_mail_settings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_tenant_mail_settings_tenant_id'), ['tenant_id'], unique=False)

    for table in TENANT_TABLES:
        enable_row_level_security(op, table)


def downgrade():
    with op.batch_alter_table('core_tenant_mail_settings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_tenant_mail_settings_tenant_id'))
    op.drop_table('core_tenant_mail_settings')

    with op.batch_alter_table('core_outbound_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_outbound_attachments_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_core_outbound_attachments_message_id'))
    op.drop_table('core_outbound_attachments')

    with op.batch_alter_table('core_outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_core_outbound_messages_due')
        batch_op.drop_index('ix_core_outbound_messages_tenant_id_id')
        batch_op.drop_index(batch_op.f('ix_core_outbound_messages_tenant_id'))
    op.drop_table('core_outbound_messages')
