"""Tenant isolation in two layers, both failing closed.

Layer 1 (every engine): a ``do_orm_execute`` listener adds ``tenant_id = <current>`` to every
ORM query of a ``TenantScoped`` model, ``before_flush`` stamps and checks new, changed and
deleted rows, and the ``tenant_id`` column default refuses to insert without a context.

Layer 2 (PostgreSQL): row-level security on every tenant table, keyed on the
transaction-local setting ``app.tenant_id`` that ``after_begin`` writes. It covers what the
ORM layer cannot see: raw SQL, Core statements and identity-map hits.
"""

from __future__ import annotations

from flask import has_app_context
from sqlalchemy import ForeignKey, event, text
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, declared_attr, mapped_column, with_loader_criteria
from sqlalchemy.sql import visitors
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


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
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
