"""A row can never point at a row of another tenant: composite (tenant_id, column) keys.

Beside each foreign key from a core tenant table to another, a foreign key (tenant_id, column)
→ (tenant_id, id), checked at the commit; the referred tables get UNIQUE (tenant_id, id). They
live in the database only (tenants.isolation, layer 3).

Revision ID: 0009_same_tenant_keys
Revises: 0009_outbound_transport
Create Date: 2026-12-04 12:00:00
"""

from alembic import op

from tenants.isolation import drop_same_tenant_references, drop_tenant_key, same_tenant_references, tenant_key

revision = '0009_same_tenant_keys'
down_revision = '0009_outbound_transport'
branch_labels = None
depends_on = None

# Core tables other rows refer to (plugins' rows too): each gets UNIQUE (tenant_id, id).
KEYED = (
    'core_users',
    'core_clients',
    'core_client_addresses',
    'core_groups',
    'core_roles',
    'core_outbound_messages',
    'core_job_runs',
    'core_stored_files',
)
REFERENCES = {
    'core_clients': {'created_by_id': 'core_users'},
    'core_client_addresses': {'client_id': 'core_clients'},
    'core_group_clients': {'group_id': 'core_groups', 'client_id': 'core_clients'},
    'core_outbound_attachments': {'message_id': 'core_outbound_messages'},
    'core_role_permissions': {'role_id': 'core_roles'},
    'core_users': {'client_id': 'core_clients', 'invited_by_id': 'core_users'},
    'core_auth_tokens': {'user_id': 'core_users'},
    'core_group_users': {'user_id': 'core_users', 'group_id': 'core_groups'},
    'core_job_runs': {'started_by_id': 'core_users'},
    'core_push_subscriptions': {'user_id': 'core_users'},
    'core_stored_files': {'created_by_id': 'core_users'},
    'core_user_roles': {'user_id': 'core_users', 'role_id': 'core_roles'},
    'core_client_imports': {'job_run_id': 'core_job_runs', 'created_by_id': 'core_users', 'group_id': 'core_groups'},
}


def upgrade():
    tenant_key(op, *KEYED)
    for table, references in REFERENCES.items():
        same_tenant_references(op, table, references)


def downgrade():
    for table, references in REFERENCES.items():
        drop_same_tenant_references(op, table, references)
    drop_tenant_key(op, *KEYED)
