"""The audit trail: one row per change made through the application, never edited or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db, utcnow
from tenants.isolation import TenantScoped, _tenant_for_insert

ACTOR_USER = "user"
ACTOR_OPERATOR = "operator"
ACTOR_SYSTEM = "system"

CREATE = "create"
UPDATE = "update"
DELETE = "delete"

MASK = "••••••"


class AuditEvent(TenantScoped, db.Model):
    __tablename__ = "core_audit_events"
    __table_args__ = (
        Index("ix_core_audit_events_tenant_id_id", "tenant_id", "id"),
        Index("ix_core_audit_events_object", "tenant_id", "object_type", "object_id"),
        Index("ix_core_audit_events_parent", "tenant_id", "parent_type", "parent_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[int | None] = mapped_column(Integer)
    object_label: Mapped[str] = mapped_column(String(255), default="")
    # The object whose history also shows this event (a client for its addresses).
    parent_type: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    address: Mapped[str | None] = mapped_column(String(64))


ACTOR_CHOICE = "actor"
OBJECT_TYPE_CHOICE = "object_type"


class AuditChoice(TenantScoped, db.Model):
    """What the audit trail's filters offer (who acted, on which kinds of object), one row per
    distinct value of each tenant's trail. A trigger on ``core_audit_events`` (migration
    0012_scale_reads) adds what every inserted event brings, whichever way it was written, so the
    filters read a few rows instead of a ``DISTINCT`` over the whole trail."""

    __tablename__ = "core_audit_choices"

    # No id of its own: the trigger writes it with ON CONFLICT DO NOTHING against this key.
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, default=_tenant_for_insert
    )
    field: Mapped[str] = mapped_column(String(16), primary_key=True)
    # An actor's ``<kind>:<id>`` (the actor filter's value) or an object type.
    value: Mapped[str] = mapped_column(String(80), primary_key=True)
    # The name shown for an actor (the name recorded with its events; empty for object types).
    label: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
