"""PostgreSQL: a trigram index for the client search, and statistics on group membership.

Without them a search that matches one client in 100,000 read the whole list (95 ms), and a
staff search for a common word took the members of the user's groups one by one (160 ms): the
planner thought a group of one organisation held half the clients it does, taking the group
and the organisation for independent columns. With them every query of bench/clients_list.py
but the last page of a common search runs in under 5 ms. SQLite has neither.

pg_trgm is a trusted extension (PostgreSQL 13 on): the owner of the database may create it.
Where it cannot be created the search works as before, only slower, and the migration says so.

Revision ID: 0008_client_search_indexes
Revises: 0007_client_language
Create Date: 2026-12-01 06:00:00
"""

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = '0008_client_search_indexes'
down_revision = '0007_client_language'
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    except DBAPIError as error:
        log.warning('pg_trgm could not be created (%s): the client search works without its index, slower', error)
    else:
        op.execute(
            'CREATE INDEX ix_core_clients_search_trgm ON core_clients USING gin (search_text gin_trgm_ops) '
            # A short list of pending entries: a search reads it whole until it is merged.
            'WITH (gin_pending_list_limit = 256)'
        )
    # A group belongs to one organisation, and so do its members: tenant_id adds nothing to
    # group_id, which the planner learns only from these.
    op.execute('CREATE STATISTICS st_core_group_clients_group_tenant (dependencies) ON group_id, tenant_id FROM core_group_clients')
    op.execute(
        'CREATE STATISTICS st_core_group_users_group_user_tenant (dependencies) '
        'ON group_id, user_id, tenant_id FROM core_group_users'
    )
    op.execute('ANALYZE core_group_clients')
    op.execute('ANALYZE core_group_users')
    op.execute('ANALYZE core_clients')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('DROP STATISTICS IF EXISTS st_core_group_users_group_user_tenant')
    op.execute('DROP STATISTICS IF EXISTS st_core_group_clients_group_tenant')
    op.execute('DROP INDEX IF EXISTS ix_core_clients_search_trgm')
