"""Reading the audit trail: an object's history, the tenant-wide page, CSV export."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, or_, select

from core.audit.models import ACTOR_CHOICE, OBJECT_TYPE_CHOICE, AuditChoice, AuditEvent
from core.cache import remember
from core.extensions import db


def history_statement(object_type: str, object_id: int) -> Select:
    """Events of one object and of the objects that belong to it (a client's addresses)."""
    return select(AuditEvent).where(
        or_(
            and_(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id),
            and_(AuditEvent.parent_type == object_type, AuditEvent.parent_id == object_id),
        )
    )


def history(object_type: str, object_id: int, limit: int = 200) -> list[AuditEvent]:
    """The audit events of an object (and of what belongs to it), newest first: a history screen's rows."""
    return list(
        db.session.scalars(history_statement(object_type, object_id).order_by(AuditEvent.id.desc()).limit(limit))
    )


def _day_start(day: date, zone: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone))


def filtered(
    stmt: Select,
    *,
    actor: str | None = None,
    object_type: str | None = None,
    action: str | None = None,
    since: date | None = None,
    until: date | None = None,
    zone: str = "UTC",
    tenant_id: int | None = None,
) -> Select:
    """Filters of the audit pages. Dates are whole days in the tenant's time zone."""
    if actor:
        kind, _, actor_id = actor.partition(":")
        stmt = stmt.where(AuditEvent.actor_kind == kind)
        if actor_id.isdigit():
            stmt = stmt.where(AuditEvent.actor_id == int(actor_id))
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.at >= _day_start(since, zone))
    if until:
        stmt = stmt.where(AuditEvent.at < _day_start(until + timedelta(days=1), zone))
    if tenant_id:
        stmt = stmt.where(AuditEvent.tenant_id == tenant_id)
    return stmt


def actors(tenant_id: int | None = None) -> list[tuple[str, str]]:
    """Who appears in the trail (of one tenant, for an operator), for the actor filter: read from
    the filters' own small table, which a trigger keeps as events are written."""
    stmt = select(AuditChoice.value, AuditChoice.label).where(AuditChoice.field == ACTOR_CHOICE).distinct()
    if tenant_id:
        stmt = stmt.where(AuditChoice.tenant_id == tenant_id)
    return sorted(((value, label) for value, label in db.session.execute(stmt)), key=lambda a: a[1])


def object_types() -> list[str]:
    stmt = select(AuditChoice.value).where(AuditChoice.field == OBJECT_TYPE_CHOICE).distinct()
    return sorted(db.session.scalars(stmt))


def filter_choices() -> tuple[list[tuple[str, str]], list[str]]:
    """The tenant's actors and object types for the trail's filters, kept until its data next
    changes (every change writes to the trail, so that is when they may have grown)."""
    kept = remember("audit filter choices", lambda: [actors(), object_types()])
    return [tuple(actor) for actor in kept[0]], kept[1]


EXPORT_COLUMNS = (
    "id",
    "at",
    "tenant",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "changes",
    "address",
)


def export_rows(
    stmt: Select, tenant_slugs: dict[int, str], batch: int = 2000, changes: Callable[[AuditEvent], dict] | None = None
) -> Iterator[list]:
    """Rows for the CSV export, newest first, read in keyset batches; ``changes`` gives what the
    reader may see of an event's changes (all of them by default)."""
    changes = changes or (lambda event: event.changes)
    yield list(EXPORT_COLUMNS)
    before = None
    while True:
        page = stmt if before is None else stmt.where(AuditEvent.id < before)
        events = db.session.scalars(page.order_by(AuditEvent.id.desc()).limit(batch)).all()
        if not events:
            return
        for event in events:
            yield [
                event.id,
                event.at.isoformat(),
                tenant_slugs.get(event.tenant_id, event.tenant_id),
                event.actor_kind,
                event.actor_id or "",
                event.actor_name,
                event.action,
                event.object_type,
                event.object_id or "",
                event.object_label,
                json.dumps(changes(event), ensure_ascii=False),
                event.address or "",
            ]
            db.session.expunge(event)
        before = events[-1].id
