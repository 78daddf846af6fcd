"""Writes the audit trail as the ORM flushes, so every change made through services is recorded.

Models opt in with the ``Audited`` mixin. Each flush turns the new, changed and deleted audited
objects into ``AuditEvent`` rows in the same transaction (a change and its record commit or roll
back together). Set-based statements bypass the flush: they go through
``core.audit.bulk.audited_write``, which records the same events in SQL. Secrets are masked:
encrypted columns and fields listed in ``__audit_mask__`` show only that they changed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal

from flask import g, has_app_context, has_request_context, request
from sqlalchemy import String, cast, event, func, insert, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from core.audit.models import ACTOR_OPERATOR, ACTOR_SYSTEM, ACTOR_USER, CREATE, DELETE, MASK, UPDATE, AuditEvent
from core.crypto import EncryptedBytes, EncryptedText
from core.extensions import utcnow
from tenants.isolation import apply_setting, cross_tenants_for_statement


class AuditTrailIsReadOnly(RuntimeError):
    """Audit rows cannot be edited or deleted through the application."""


class Audited:
    """Mixin: changes to this model are written to the audit trail."""

    __audit_type__: str = ""
    # What people call it, translatable: shown in history lists instead of the type code.
    __audit_title__: object = ""
    __audit_exclude__: frozenset[str] = frozenset({"created_at", "updated_at"})
    __audit_mask__: frozenset[str] = frozenset()
    # Collections recorded by the labels of their members (a user's roles, a group's clients).
    __audit_relations__: tuple[str, ...] = ()
    # How history lists name the fields ({field: translatable label}); others are shown humanised.
    __audit_fields__: dict = {}
    # Stored codes shown in words ({field: {value: translatable label}}), e.g. a status.
    __audit_values__: dict = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        _audited_types.clear()

    def audit_label(self) -> str:
        return str(getattr(self, "name", "") or getattr(self, "id", ""))

    def audit_parent(self) -> tuple[str, int] | None:
        return None

    # The same two in SQL, for set-based writes (``audited_write``): expressions over the columns
    # ``c`` of one row (a table's ``.c``, or a CTE's with the same column names). A model that
    # overrides ``audit_label`` or ``audit_parent`` overrides these too (``audited_write`` checks).

    @classmethod
    def audit_label_sql(cls, c):
        """``audit_label()`` as a SQL expression over the row's columns ``c``."""
        if "name" in c:
            return func.coalesce(func.nullif(c.name, ""), cast(c.id, String))
        return cast(c.id, String)

    @classmethod
    def audit_parent_sql(cls, c):
        """``audit_parent()`` in SQL: ``(parent type, expression of its id)``, or None."""
        return None

    def audit_tenant_id(self) -> int | None:
        return getattr(self, "tenant_id", None)


_actor: ContextVar[tuple[str, int | None, str] | None] = ContextVar("ventanilla_audit_actor", default=None)


@contextmanager
def acting_as(kind: str, actor_id: int | None, name: str) -> Iterator[None]:
    """Attribute the changes made inside the block (a job started by someone, a CLI command)."""
    token = _actor.set((kind, actor_id, name))
    try:
        yield
    finally:
        _actor.reset(token)


# Worked out once and again only when a model is declared: history pages ask for each row's fields.
_audited_types: dict[str, type] = {}


def audited_types() -> dict[str, type]:
    """Every audited model by type code (plugins' models included)."""
    if _audited_types:
        return _audited_types
    types = {}
    pending = list(Audited.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__audit_type__:
            types[cls.__audit_type__] = cls
    _audited_types.update(types)
    return _audited_types


def audit_titles() -> dict[str, object]:
    """Every audited type's translatable title, by type code."""
    return {code: cls.__audit_title__ or code for code, cls in audited_types().items()}


def field_label(object_type: str, field: str):
    cls = audited_types().get(object_type)
    label = cls.__audit_fields__.get(field) if cls is not None else None
    return label or field.replace("_", " ").capitalize()


def value_label(object_type: str, field: str, value):
    """A recorded value as a person reads it: codes in words, yes/no, a dash for nothing."""
    from flask_babel import gettext

    if value in (None, "", []):
        return "—"
    cls = audited_types().get(object_type)
    words = cls.__audit_values__.get(field, {}) if cls is not None else {}
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list):
        return ", ".join(str(words.get(v, v) if isinstance(v, str | int) else v) for v in value)
    return str(words.get(value, value) if isinstance(value, str | int) else value)


def current_actor() -> tuple[str, int | None, str]:
    explicit = _actor.get()
    if explicit is not None:
        return explicit
    # Only an already loaded user: loading one here would query in the middle of a flush.
    user = g.get("_login_user") if has_app_context() else None
    if user is not None and getattr(user, "is_authenticated", False):
        return (ACTOR_OPERATOR if user.is_operator else ACTOR_USER, user.id, user.name)
    return (ACTOR_SYSTEM, None, "")


def _address() -> str | None:
    return request.remote_addr if has_request_context() else None


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _masked(obj: Audited, key: str, column) -> bool:
    return key in obj.__audit_mask__ or isinstance(column.type, EncryptedText | EncryptedBytes)


def _label(member) -> str:
    if isinstance(member, Audited):
        return member.audit_label()
    return str(getattr(member, "name", None) or getattr(member, "code", None) or member)


def _column_changes(obj: Audited, action: str) -> dict:
    state = inspect(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in obj.__audit_exclude__ or key in ("id", "tenant_id"):
            continue
        column = attr.columns[0]
        history = state.attrs[key].history
        if action == CREATE:
            before, after = None, getattr(obj, key)
            if after is None or after == "":
                continue
        elif action == DELETE:
            before, after = (history.deleted or history.unchanged or [getattr(obj, key)])[0], None
        else:
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before == after:
                continue
        if _masked(obj, key, column):
            before = MASK if before is not None else None
            after = MASK if after is not None else None
        changes[key] = [_plain(before), _plain(after)]
    for key in obj.__audit_relations__:
        history = state.attrs[key].history
        if action == UPDATE and not history.has_changes():
            continue
        before = sorted(_label(m) for m in [*(history.unchanged or ()), *(history.deleted or ())])
        after = sorted(_label(m) for m in [*(history.unchanged or ()), *(history.added or ())])
        if action == CREATE:
            before = []
        if action == DELETE:
            after = []
        if before != after:
            changes[key] = [before, after]
    return changes


def make_row(
    tenant_id: int,
    action: str,
    object_type: str,
    object_id: int | None,
    label: str,
    changes: dict,
    parent: tuple[str, int] | None = None,
) -> dict:
    """One audit row, attributed to whoever is acting now."""
    kind, actor_id, actor_name = current_actor()
    return {
        "tenant_id": tenant_id,
        "at": utcnow(),
        "actor_kind": kind,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_label": label[:255],
        "parent_type": parent[0] if parent else None,
        "parent_id": parent[1] if parent else None,
        "changes": changes,
        "address": _address(),
    }


def event_row(obj: Audited, action: str, changes: dict) -> dict:
    return make_row(
        obj.audit_tenant_id(),
        action,
        obj.__audit_type__,
        getattr(obj, "id", None),
        obj.audit_label(),
        changes,
        obj.audit_parent(),
    )


def record_many(session: Session, rows: list[dict]) -> None:
    """Write prepared audit rows with one statement (for set-based service operations).

    The rows carry their own tenant (an operator's change is recorded in the tenant it
    touched), so the row-level-security check is lifted for this one trusted statement.
    """
    if not rows:
        return
    connection = session.connection()
    cross_tenants_for_statement(connection)
    connection.execute(insert(AuditEvent.__table__), rows)
    apply_setting(connection)


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, flush_context) -> None:
    rows = []
    for action, objects in ((CREATE, session.new), (UPDATE, session.dirty), (DELETE, session.deleted)):
        for obj in objects:
            if not isinstance(obj, Audited) or obj.audit_tenant_id() is None:
                continue
            if action == UPDATE and not session.is_modified(obj):
                continue
            changes = _column_changes(obj, action)
            if action == UPDATE and not changes:
                continue
            rows.append(event_row(obj, action, changes))
    record_many(session, rows)


@event.listens_for(Session, "before_flush")
def _refuse_edits(session: Session, flush_context, instances) -> None:
    if any(isinstance(obj, AuditEvent) for obj in list(session.dirty) + list(session.deleted)):
        raise AuditTrailIsReadOnly("audit events cannot be changed or deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_edits(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(m.class_ is AuditEvent for m in state.all_mappers):
        raise AuditTrailIsReadOnly("audit events cannot be changed or deleted")
