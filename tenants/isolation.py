"""Tenant isolation in two layers, both failing closed.

Layer 1 (every engine): a ``do_orm_execute`` listener adds ``tenant_id = <current>`` to every
ORM query of a ``TenantScoped`` model, ``before_flush`` stamps and checks new, changed and
deleted rows, and the ``tenant_id`` column default refuses to insert without a context.

Layer 2 (PostgreSQL): row-level security on every tenant table, keyed on the
transaction-local setting ``app.tenant_id`` that ``after_begin`` writes. It covers what the
ORM layer cannot see: raw SQL, Core statements and identity-map hits. Crossing tenants
(``all_tenants()``) is not a setting the application's role can write itself: it calls
``ventanilla_cross_tenants(key)``, a function owned by the migrations' role that checks a key
derived from ``SECRET_KEY`` (kept where the application's role cannot read it) and then writes a
value valid for this transaction of this connection only, which the policies check. SQL alone
(an injection) cannot cross tenants.

Layer 3 (both engines): a row can never point at a row of another tenant. Beside each foreign key
from a tenant table to another, a composite key ``(tenant_id, <column>)`` →
``(tenant_id, id)`` (deferred to the commit, so the actions of the plain key run first) is
created by the migrations (``same_tenant_references``). It lives in the database only: in the
models it would confuse the ORM's join inference.

What the criteria cannot reach is refused on every engine (``UnscopedStatement``): the ORM's
bulk UPDATE by primary key (a list of rows, no WHERE for the criteria to join), UPDATE and
DELETE of a tenant ``Table`` (not its mapped class), and textual SQL naming a tenant table.
They go through helpers that put the tenant in the statement: ``update_by_id`` and
``tenant_sql``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from flask import has_app_context
from sqlalchemy import ForeignKey, Table, bindparam, event, text, update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, declared_attr, mapped_column, with_loader_criteria
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TableClause

from tenants.context import TenantContextMissing, TenantMismatch, crossing_tenants, current_tenant_id, on_change

TENANT_TABLE = "tenants"

# ``(SELECT ...)``: the crossing check and the reading of the tenant setting run once per statement
# (InitPlans), not once per row: on a count over tens of thousands of rows the per-row reading
# cost a third of the scan (migration 0012_scale_reads).
RLS_EXPRESSION = (
    "(SELECT ventanilla_crossing()) OR tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::integer)"
)


def _tenant_for_insert() -> int:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise TenantContextMissing("insert into a tenant table without a tenant context")
    return tenant_id


class TenantScoped:
    """Mixin for every tenant-owned model: a non-null ``tenant_id`` enforced by both layers.

    Association rows are tenant-owned too: map them as classes (not bare ``Table`` objects) and
    query them through their class, so the criteria reach them.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(
            ForeignKey(f"{TENANT_TABLE}.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
            default=_tenant_for_insert,
        )


def is_tenant_table(table) -> bool:
    return "tenant_id" in table.c and table.name != TENANT_TABLE


def _check_insert_parameters(state: ORMExecuteState, tenant_id: int) -> None:
    params = state.parameters
    rows = params if isinstance(params, list) else [params] if params else []
    for row in rows:
        given = row.get("tenant_id") if isinstance(row, dict) else None
        if given is not None and given != tenant_id:
            raise TenantMismatch(f"bulk insert of tenant {given} rows while acting for tenant {tenant_id}")


def _scoped_classes(base=TenantScoped) -> dict[str, type]:
    classes = {}
    for cls in base.__subclasses__():
        table = getattr(cls, "__table__", None)
        if table is not None:
            classes[table.name] = cls
        classes.update(_scoped_classes(cls))
    return classes


def _scoped_froms(statement) -> tuple[type, ...]:
    classes = _scoped_classes()
    return tuple(
        classes[clause.name]
        for clause in statement.get_final_froms()
        if isinstance(clause, TableClause) and clause.name in classes
    )


# The scoped FROMs of each statement shape. Working them out builds the ORM's compile state
# (milliseconds, for every query of every page); the shape's cache key, which the execution
# computes anyway, costs microseconds, and equal keys mean equal FROM clauses.
_SCOPED_FROMS: dict[tuple, tuple[type, ...]] = {}
_SCOPED_FROMS_MAX = 5000


def _name_implicit_froms(statement):
    """``select(func.count().filter(Model.x == 1))`` takes its FROM from a column, which the criteria
    do not see; naming the entity in ``select_from`` (the same FROM, so no new join) lets them apply."""
    if not hasattr(statement, "get_final_froms"):
        return statement
    cache_key = statement._generate_cache_key()
    if cache_key is None:  # a statement SQLAlchemy will not cache: work it out each time
        froms = _scoped_froms(statement)
    else:
        froms = _SCOPED_FROMS.get(cache_key.key)
        if froms is None:
            if len(_SCOPED_FROMS) >= _SCOPED_FROMS_MAX:
                _SCOPED_FROMS.clear()
            froms = _SCOPED_FROMS[cache_key.key] = _scoped_froms(statement)
    for cls in froms:
        statement = statement.select_from(cls)
    return statement


def _touches_tenant_rows(state: ORMExecuteState) -> bool:
    if any(issubclass(m.class_, TenantScoped) for m in state.all_mappers):
        return True
    # ``select(func.count()).select_from(Model)`` and subqueries name no mapper: look at the tables.
    return any(
        isinstance(element, TableClause) and is_tenant_table(element) for element in visitors.iterate(state.statement)
    )


class UnscopedStatement(RuntimeError):
    """A statement on tenant tables that the tenant criteria cannot reach; use ``update_by_id`` or
    ``tenant_sql``, which put the tenant into it."""


# Set by the helpers on the statements they build: the tenant is in their WHERE already.
TENANT_IN_STATEMENT = "ventanilla_tenant_in_statement"

_TENANT_NAMES: dict[frozenset, re.Pattern] = {}


def _names_tenant_table(sql: str) -> bool:
    names = frozenset(_scoped_classes())
    pattern = _TENANT_NAMES.get(names)
    if pattern is None:
        _TENANT_NAMES.clear()
        alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
        pattern = _TENANT_NAMES[names] = re.compile(r"(?<!\w)(?:" + alternatives + r")(?!\w)", re.IGNORECASE)
    return bool(names) and pattern.search(sql) is not None


def _refuse_unscoped(state: ORMExecuteState) -> None:
    if state.execution_options.get(TENANT_IN_STATEMENT) or crossing_tenants():
        # Crossing tenants is explicit (``all_tenants()``): no criteria are wanted there.
        return
    statement = state.statement
    if isinstance(statement, TextClause):
        if _names_tenant_table(statement.text):
            raise UnscopedStatement("textual SQL on a tenant table: build it with tenants.isolation.tenant_sql()")
        return
    if not (state.is_update or state.is_delete):
        return
    mapped = any(issubclass(m.class_, TenantScoped) for m in state.all_mappers)
    if mapped and isinstance(state.parameters, list):
        raise UnscopedStatement(
            "bulk UPDATE by primary key of a tenant model ignores the tenant: use tenants.isolation.update_by_id()"
        )
    table = getattr(statement, "table", None)
    if not mapped and isinstance(table, Table) and is_tenant_table(table):
        raise UnscopedStatement(f"UPDATE or DELETE of the tenant table {table.name} outside the ORM: use its model")


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    _refuse_unscoped(state)
    if not _touches_tenant_rows(state):
        return
    if crossing_tenants():
        return
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise TenantContextMissing("query of a tenant table without a tenant context")
    if state.is_insert:
        _check_insert_parameters(state, tenant_id)
        return
    statement = _name_implicit_froms(state.statement) if state.is_select else state.statement
    state.statement = statement.options(
        with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)
    )


@event.listens_for(Session, "before_flush")
def _stamp_and_check_rows(session: Session, flush_context, instances) -> None:
    crossing = crossing_tenants()
    tenant_id = current_tenant_id()
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                raise TenantContextMissing(f"new {type(obj).__name__} without a tenant context")
            obj.tenant_id = tenant_id
        elif not crossing and obj.tenant_id != tenant_id:
            raise TenantMismatch(f"new {type(obj).__name__} of tenant {obj.tenant_id} in tenant {tenant_id}")
    if crossing:
        return
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, TenantScoped) and obj.tenant_id != tenant_id:
            if tenant_id is None:
                raise TenantContextMissing(f"change to {type(obj).__name__} without a tenant context")
            raise TenantMismatch(f"change to {type(obj).__name__} of another tenant")


def update_by_id(session: Session, model: type, rows: Sequence[dict]) -> None:
    """Set-based UPDATE of many rows of a tenant model, each by its primary key, in the current
    tenant only: what ``session.execute(update(model), rows)`` does, with ``tenant_id = <current>``
    added to its WHERE (a row of another tenant is left alone, as the criteria would). Every row
    has the same keys: the primary key and the columns to set."""
    if not rows:
        return
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise TenantContextMissing("update_by_id() without a tenant context")
    table = model.__table__
    (key,) = table.primary_key.columns
    columns = [name for name in rows[0] if name != key.key]
    statement = (
        update(table)
        .where(key == bindparam("_by_id_key"), table.c.tenant_id == tenant_id)
        .values({table.c[name]: bindparam(f"_by_id_{name}") for name in columns})
        .execution_options(**{TENANT_IN_STATEMENT: True})
    )
    session.execute(
        statement, [{"_by_id_key": row[key.key], **{f"_by_id_{name}": row[name] for name in columns}} for row in rows]
    )


def tenant_sql(sql: str) -> TextClause:
    """Textual SQL on tenant tables, for the current tenant: the text restricts every tenant table
    it reads or writes with ``tenant_id = :tenant_id``, which this binds (other parameters are
    given to ``execute`` as usual)."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise TenantContextMissing("tenant_sql() without a tenant context")
    if not re.search(r":tenant_id\b", sql):
        raise ValueError("tenant_sql() needs the text to restrict its tenant tables with :tenant_id")
    return text(sql).bindparams(tenant_id=tenant_id).execution_options(**{TENANT_IN_STATEMENT: True})


def all_tenants_key(secret_key: str) -> str:
    """The key ``ventanilla_cross_tenants`` checks: derived from the application's ``SECRET_KEY``,
    stored by the migrations where only their role can read it."""
    return hmac.new(str(secret_key).encode(), b"ventanilla:all-tenants", hashlib.sha256).hexdigest()


def _application_key() -> str:
    from flask import current_app

    return all_tenants_key(current_app.config["SECRET_KEY"])


_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.all_tenants', '', true)")
_SET_CROSSING = text("SELECT set_config('app.tenant_id', :tenant, true), ventanilla_cross_tenants(:key)")


def apply_setting(connection) -> None:
    """Write the current tenant (or the crossing of tenants) into a PostgreSQL connection's
    transaction (no-op elsewhere)."""
    if connection.dialect.name != "postgresql":
        return
    tenant_id = current_tenant_id()
    tenant = "" if tenant_id is None else str(tenant_id)
    if crossing_tenants():
        connection.execute(_SET_CROSSING, {"tenant": tenant, "key": _application_key()})
    else:
        connection.execute(_SET_TENANT, {"tenant": tenant})


def cross_tenants_for_statement(connection) -> None:
    """Let the next statements of this transaction cross tenants, whatever the context (a trusted
    statement that carries its own tenant, as the audit rows do); ``apply_setting`` ends it."""
    if connection.dialect.name == "postgresql":
        connection.execute(_SET_CROSSING, {"tenant": "", "key": _application_key()})


# In ``session.info`` while the session's transaction holds a connection, which has the setting.
_CONNECTED = "ventanilla_tenant_connected"


@event.listens_for(Session, "after_transaction_end")
def _forget_connection(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTED, None)


@event.listens_for(Session, "after_begin")
def _set_transaction_tenant(session: Session, transaction, connection) -> None:
    session.info[_CONNECTED] = True
    if current_tenant_id() is None and not crossing_tenants():
        # Nothing to write: both settings are transaction-local, so a new transaction starts with
        # them empty and the policies show no tenant's rows. (Every request's first transaction,
        # which looks the tenant up, saved a statement.)
        return
    apply_setting(connection)


def sync_session_setting() -> None:
    """The context changed while a transaction may be open: tell PostgreSQL at once."""
    if not has_app_context():
        return
    from core.extensions import db

    session = db.session()
    # A transaction that has no connection yet (begun by an identity-map merge, say) gets the
    # setting when its connection comes, from ``_set_transaction_tenant``: telling it now would
    # fetch the connection, which writes the setting, and then write it a second time.
    if session.in_transaction() and session.info.get(_CONNECTED):
        # One engine serves the whole application, so the default bind is the only connection.
        apply_setting(session.connection())


on_change(sync_session_setting)
# --- migration helpers ------------------------------------------------------------------------

# The value of ``app.all_tenants`` that crossing writes and the policies expect: the stored key,
# this connection and this transaction's start, hashed (so a value read once is worth nothing later).
_CROSSING_VALUE = "md5(key || ':' || pg_backend_pid() || ':' || (extract(epoch FROM now()) * 1000000)::bigint)"
_CROSSING_DDL = (
    "CREATE SCHEMA IF NOT EXISTS ventanilla_private",
    "REVOKE ALL ON SCHEMA ventanilla_private FROM PUBLIC",
    "CREATE TABLE IF NOT EXISTS ventanilla_private.settings (name text PRIMARY KEY, value text NOT NULL)",
    f"""CREATE OR REPLACE FUNCTION ventanilla_cross_tenants(given text) RETURNS void
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE key text;
        BEGIN
            SELECT value INTO key FROM ventanilla_private.settings WHERE name = 'all_tenants_key';
            IF key IS NULL OR given IS DISTINCT FROM key THEN
                RAISE EXCEPTION 'ventanilla: the all-tenants key does not match; run "flask db upgrade heads" '
                    'with this SECRET_KEY' USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('app.all_tenants', {_CROSSING_VALUE}, true);
        END $$""",
    f"""CREATE OR REPLACE FUNCTION ventanilla_crossing() RETURNS boolean
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE key text;
        BEGIN
            SELECT value INTO key FROM ventanilla_private.settings WHERE name = 'all_tenants_key';
            RETURN key IS NOT NULL AND coalesce(current_setting('app.all_tenants', true) = {_CROSSING_VALUE}, false);
        END $$""",
)


def ensure_tenant_crossing(op) -> None:
    """Migration helper: the functions the policies use to let the application cross tenants, and
    the private table of their key (PostgreSQL only; idempotent). The key is written by
    ``store_all_tenants_key`` at every upgrade."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _CROSSING_DDL:
        op.execute(statement)


def store_all_tenants_key(connection, secret_key: str) -> None:
    """Write the application's all-tenants key where only the migrations' role can read it."""
    if connection.dialect.name != "postgresql":
        return
    if connection.execute(text("SELECT to_regclass('ventanilla_private.settings')")).scalar() is None:
        return
    connection.execute(
        text(
            "INSERT INTO ventanilla_private.settings (name, value) VALUES ('all_tenants_key', :key) "
            "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
        ),
        {"key": all_tenants_key(secret_key)},
    )


def enable_row_level_security(op, table: str) -> None:
    """Migration helper: force row-level security on a tenant table (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    ensure_tenant_crossing(op)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({RLS_EXPRESSION}) WITH CHECK ({RLS_EXPRESSION})")


def tenant_key_name(table: str) -> str:
    return f"uq_{table}_tenant_id_id"


def same_tenant_reference_name(table: str, column: str) -> str:
    name = f"fk_{table}_{column}_tenant"
    if len(name) > 63:  # PostgreSQL's limit on names
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: 63 - 16]}_{digest}_tenant"
    return name


def is_same_tenant_constraint(name: str | None) -> bool:
    """Whether a constraint is one of layer 3's, which live in the database and not in the models."""
    return bool(name) and (
        (name.startswith("fk_") and name.endswith("_tenant"))
        or (name.startswith("uq_") and name.endswith("_tenant_id_id"))
    )


def tenant_key(op, *tables: str) -> None:
    """Migration helper: ``UNIQUE (tenant_id, id)`` on each table, which composite foreign keys
    from other tenant tables refer to."""
    for table in tables:
        with op.batch_alter_table(table) as batch:
            batch.create_unique_constraint(tenant_key_name(table), ["tenant_id", "id"])


def same_tenant_references(op, table: str, references: dict[str, str]) -> None:
    """Migration helper: for each ``column: referred table`` of ``table``, the foreign key
    ``(tenant_id, column)`` → ``referred (tenant_id, id)``, checked at the commit (the referred table
    needs its ``tenant_key``). A row then points at rows of its own tenant or at nothing."""
    with op.batch_alter_table(table) as batch:
        for column, referred in references.items():
            batch.create_foreign_key(
                same_tenant_reference_name(table, column),
                referred,
                ["tenant_id", column],
                ["tenant_id", "id"],
                deferrable=True,
                initially="DEFERRED",
            )


def drop_same_tenant_references(op, table: str, columns) -> None:
    """Migration helper (a downgrade): drop what ``same_tenant_references`` made for ``columns``."""
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.drop_constraint(same_tenant_reference_name(table, column), type_="foreignkey")


def drop_tenant_key(op, *tables: str) -> None:
    """Migration helper (a downgrade): drop what ``tenant_key`` made."""
    for table in tables:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(tenant_key_name(table), type_="unique")


def made_on(dialect_name: str):
    """Alembic's ``include_object`` for ``dialect_name``: leaves out what the models create only on
    other engines (``Index(...).ddl_if(dialect="postgresql")``), which autogenerate, unlike
    ``create_all``, does not know to skip, and the same-tenant keys that the migrations create
    and the models leave out (``tenants.isolation``, layer 3)."""

    def include(obj, name, _type, _reflected, _compare_to) -> bool:
        if _type in ("foreign_key_constraint", "unique_constraint") and is_same_tenant_constraint(name):
            return False
        condition = getattr(obj, "_ddl_if", None)
        if condition is None or condition.dialect is None:
            return True
        if isinstance(condition.dialect, str):
            return condition.dialect == dialect_name
        return dialect_name in condition.dialect

    return include
