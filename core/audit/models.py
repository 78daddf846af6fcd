"""The audit trail: one row per change made through the application, never edited or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db, utcnow
from tenants.isolation import TenantScoped

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
