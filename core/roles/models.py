"""Roles grant permission codes; users hold roles."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit.recorder import Audited
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped


class UserRole(TenantScoped, db.Model):
    """A user holds a role. Mapped (not a bare table) so that queries on it get the tenant criteria."""

    __tablename__ = "core_user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("core_roles.id", ondelete="CASCADE"), primary_key=True, index=True)


# Keys of the roles every tenant starts with. Their names are written in the tenant's language.
ROLE_ADMIN = "admin"
ROLE_MANAGER = "manager"
ROLE_OPERATOR = "operator"
ROLE_ASSISTANT = "assistant"
ROLE_CLIENT = "client"
DEFAULT_ROLE_KEYS = (ROLE_ADMIN, ROLE_MANAGER, ROLE_OPERATOR, ROLE_ASSISTANT, ROLE_CLIENT)


class Role(TenantScoped, Audited, db.Model):
    __audit_type__ = "role"
    __audit_title__ = _l("Role")
    __audit_fields__ = {
        "name": _l("Name"),
        "description": _l("Description"),
        "grants": _l("Permissions"),
        "all_permissions": _l("Every permission"),
        "key": _l("Default role"),
    }
    __audit_relations__ = ("grants",)

    __tablename__ = "core_roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"), UniqueConstraint("tenant_id", "key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # The administrator role holds every permission, including those of plugins enabled later.
    all_permissions: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    grants = relationship("RolePermission", cascade="all, delete-orphan", order_by="RolePermission.code")
    users = relationship("User", secondary="core_user_roles", back_populates="roles")

    @property
    def codes(self) -> set[str]:
        return {grant.code for grant in self.grants}


class RolePermission(TenantScoped, db.Model):
    __tablename__ = "core_role_permissions"
    __table_args__ = (UniqueConstraint("role_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("core_roles.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(100))


class OfferedDefault(TenantScoped, db.Model):
    """A permission whose default grants the tenant's default roles have been given once.

    Grants are offered once per permission: a permission a later release adds reaches the
    default roles of existing tenants, and one an administrator took away is not given back.
    """

    __tablename__ = "core_offered_defaults"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100))
    offered_at: Mapped[datetime] = mapped_column(default=utcnow)
