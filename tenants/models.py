"""Tenants and their plugin licences."""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.audit.recorder import Audited
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# First path segments that belong to the platform, never to a tenant.
RESERVED_SLUGS = frozenset(
    {
        "operator",
        "static",
        "bootstrap",
        "api",
        "healthz",
        "login",
        "logout",
        "language",
        "assets",
        "sw.js",
        "favicon.ico",
    }
)

TENANT_ACTIVE = "active"
TENANT_SUSPENDED = "suspended"


class Tenant(Audited, db.Model):
    """A customer organisation. Owns every tenant-scoped row through ``tenant_id``."""

    __audit_type__ = "tenant"
    __audit_title__ = _l("Organisation")

    def audit_tenant_id(self) -> int | None:
        return self.id

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5), default="es")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Madrid")
    status: Mapped[str] = mapped_column(String(16), default=TENANT_ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def is_active(self) -> bool:
        return self.status == TENANT_ACTIVE

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"


class TenantPlugin(TenantScoped, Audited, db.Model):
    """One plugin for one tenant: licensed by the operator, enabled by the tenant administrator.

    Installed (the plugin is on the machine), licensed and enabled are three separate states;
    a plugin works for a tenant only when all three hold.
    """

    __tablename__ = "tenant_plugins"
    __audit_type__ = "licence"
    __audit_title__ = _l("Licence")
    __table_args__ = (UniqueConstraint("tenant_id", "plugin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64))
    licensed: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    limits: Mapped[dict] = mapped_column(JSON, default=dict)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    licensed_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_operators.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def active(self) -> bool:
        return self.licensed and self.enabled

    def audit_label(self) -> str:
        return self.plugin

    @classmethod
    def audit_label_sql(cls, c):
        return c.plugin
