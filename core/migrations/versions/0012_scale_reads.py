"""Reads at scale: the audit filters' choices in a small table, and policies that read the tenant once.

The audit page offered its actor and object-type filters from two SELECT DISTINCT over the
tenant's whole trail (51 + 36 ms at 62,000 events, on every view). core_audit_choices holds
each tenant's distinct actors and object types; a trigger on core_audit_events adds what each
inserted event brings, whichever way it was written (the ORM's recorder, the set-based audited
writes, an operator's change), and this migration fills it from the trail there is.

The row-level-security policies compared tenant_id with current_setting(...) on every row;
reading the setting in a subquery makes it an InitPlan evaluated once per statement (as the
crossing check already was): a third of a scan's time on counts over tens of thousands of rows.

ventanilla_analyse(table) lets the application's role, which owns no table, refresh the
statistics of one of the application's tables after a bulk write (core.maintenance.analyse):
it runs as the migrations' role, on tables of the public schema only.

Revision ID: 0012_scale_reads
Revises: 0011_mail_at_volume
Create Date: 2026-12-04 20:20:00
"""

import sqlalchemy as sa
from alembic import op

from tenants.isolation import RLS_EXPRESSION, enable_row_level_security

revision = "0012_scale_reads"
down_revision = "0011_mail_at_volume"
branch_labels = None
depends_on = None

# 0010's expression, which the downgrade puts back.
PREVIOUS_EXPRESSION = (
    "(SELECT ventanilla_crossing()) OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer"
)

_ACTOR = "{p}actor_kind || ':' || coalesce(CAST({p}actor_id AS TEXT), '')"
_ACTOR_LABEL = "coalesce(nullif({p}actor_name, ''), {p}actor_kind)"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION core_audit_choices_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_audit_choices (tenant_id, field, value, label)
    SELECT DISTINCT tenant_id, 'actor', {_ACTOR.format(p="")}, {_ACTOR_LABEL.format(p="")} FROM new_events
    UNION
    SELECT DISTINCT tenant_id, 'object_type', object_type, '' FROM new_events
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER core_audit_choices_keep AFTER INSERT ON core_audit_events "
    "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION core_audit_choices_keep()"
)
_SQLITE_TRIGGER = f"""
CREATE TRIGGER core_audit_choices_keep AFTER INSERT ON core_audit_events FOR EACH ROW BEGIN
    INSERT OR IGNORE INTO core_audit_choices (tenant_id, field, value, label)
    VALUES (NEW.tenant_id, 'actor', {_ACTOR.format(p="NEW.")}, {_ACTOR_LABEL.format(p="NEW.")});
    INSERT OR IGNORE INTO core_audit_choices (tenant_id, field, value, label)
    VALUES (NEW.tenant_id, 'object_type', NEW.object_type, '');
END
"""
_PG_ANALYSE = """
CREATE OR REPLACE FUNCTION ventanilla_analyse(name text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = name) THEN
        RAISE EXCEPTION 'ventanilla: % is not a table of the application', name;
    END IF;
    EXECUTE format('ANALYZE public.%I', name);
END $$
"""
_BACKFILL = f"""
INSERT INTO core_audit_choices (tenant_id, field, value, label)
SELECT DISTINCT tenant_id, 'actor', {_ACTOR.format(p="")}, {_ACTOR_LABEL.format(p="")} FROM core_audit_events
UNION
SELECT DISTINCT tenant_id, 'object_type', object_type, '' FROM core_audit_events
"""


def _policies(expression: str) -> None:
    tables = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT tablename FROM pg_policies WHERE schemaname = 'public' AND policyname = 'tenant_isolation'"
        )
        .scalars()
        .all()
    )
    for table in tables:
        op.execute(f'ALTER POLICY tenant_isolation ON "{table}" USING ({expression}) WITH CHECK ({expression})')


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "core_audit_choices",
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("field", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(80), primary_key=True),
        sa.Column("label", sa.String(200), primary_key=True),
    )
    if postgres:
        _policies(RLS_EXPRESSION)
        # The owner is subject to the trail's forced row-level security too: lifted for the fill only,
        # inside this transaction.
        op.execute("ALTER TABLE core_audit_events NO FORCE ROW LEVEL SECURITY")
        op.execute(_BACKFILL)
        op.execute("ALTER TABLE core_audit_events FORCE ROW LEVEL SECURITY")
        enable_row_level_security(op, "core_audit_choices")
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
        op.execute(_PG_ANALYSE)
    else:
        op.execute(_BACKFILL)
        op.execute(_SQLITE_TRIGGER)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER IF EXISTS core_audit_choices_keep" + (" ON core_audit_events" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS core_audit_choices_keep()")
        op.execute("DROP FUNCTION IF EXISTS ventanilla_analyse(text)")
        _policies(PREVIOUS_EXPRESSION)
    op.drop_table("core_audit_choices")
