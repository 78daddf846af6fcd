"""Crossing tenants needs the application's key, not a setting any SQL can write.

The policies used to let a transaction see every tenant when `app.all_tenants` was 'on', which
the application's role (and so an injected statement) could set itself. They now call
ventanilla_crossing(), which accepts only the value that ventanilla_cross_tenants(key) writes
after checking a key derived from SECRET_KEY; env.py stores that key at every upgrade in
ventanilla_private.settings, which the application's role cannot read. PostgreSQL only.

Revision ID: 0010_all_tenants_key
Revises: 0009_same_tenant_keys
Create Date: 2026-12-04 12:10:00
"""

from alembic import op

from tenants.isolation import RLS_EXPRESSION, ensure_tenant_crossing

revision = '0010_all_tenants_key'
down_revision = '0009_same_tenant_keys'
branch_labels = None
depends_on = None

OLD_EXPRESSION = (
    "current_setting('app.all_tenants', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer"
)


def _policies(expression: str) -> None:
    bind = op.get_bind()
    tables = bind.exec_driver_sql(
        "SELECT tablename FROM pg_policies WHERE schemaname = 'public' AND policyname = 'tenant_isolation'"
    ).scalars().all()
    for table in tables:
        op.execute(f'ALTER POLICY tenant_isolation ON "{table}" USING ({expression}) WITH CHECK ({expression})')


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    ensure_tenant_crossing(op)
    _policies(RLS_EXPRESSION)


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    _policies(OLD_EXPRESSION)
    op.execute('DROP FUNCTION IF EXISTS ventanilla_crossing()')
    op.execute('DROP FUNCTION IF EXISTS ventanilla_cross_tenants(text)')
    op.execute('DROP SCHEMA IF EXISTS ventanilla_private CASCADE')
