"""Tenant isolation in two layers, both failing closed.

Layer 1 (every engine): a ``do_orm_execute`` listener adds ``tenant_id = <current>`` to every
ORM query of a ``TenantScoped`` model, ``before_flush`` stamps and checks new, changed and
deleted rows, and the ``tenant_id`` column default refuses to insert without a context.

Layer 2 (PostgreSQL): row-level security on every tenant table, keyed on the
transaction-local setting ``app.tenant_id`` that ``after_begin`` writes. It covers what the
ORM layer cannot see: raw SQL, Core statements and identity-map hits.

What the criteria cannot reach is refused on every engine (``UnscopedStatement``): the ORM's
bulk UPDATE by primary key (a list of rows, no WHERE for the criteria to join), UPDATE and
DELETE of a tenant ``Table`` (not its mapped class), and textual SQL naming a tenant table.
They go through helpers that put the tenant in the statement: ``update_by_id`` and
``tenant_sql``.
"""

from __future__ import annotations

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

RLS_EXPRESSION = (
    "current_setting('app.all_tenants', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer"
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
    if state.execution_options.get(TENANT_IN_STATEMENT):
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


def _database_setting_values() -> dict[str, str]:
    tenant_id = current_tenant_id()
    return {
        "tenant": "" if tenant_id is None else str(tenant_id),
        "all": "on" if crossing_tenants() else "off",
    }


_SET_SETTING = text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.all_tenants', :all, true)")


def apply_setting(connection) -> None:
    """Write the current tenant into a PostgreSQL connection's transaction (no-op elsewhere)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_SET_SETTING, _database_setting_values())


@event.listens_for(Session, "after_begin")
def _set_transaction_tenant(session: Session, transaction, connection) -> None:
    apply_setting(connection)


def sync_session_setting() -> None:
    """The context changed while a transaction may be open: tell PostgreSQL at once."""
    if not has_app_context():
        return
    from core.extensions import db

    session = db.session()
    if session.in_transaction():
        # One engine serves the whole application, so the default bind is the only connection.
        apply_setting(session.connection())


on_change(sync_session_setting)


def enable_row_level_security(op, table: str) -> None:
    """Migration helper: force row-level security on a tenant table (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({RLS_EXPRESSION}) WITH CHECK ({RLS_EXPRESSION})")
