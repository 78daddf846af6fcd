"""Groups of users and clients.

A user manages the clients that share a group with them; seed 004's centres are groups too.
Client membership (``GroupClient``) lives with the client model.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit.recorder import Audited
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped


class GroupUser(TenantScoped, db.Model):
    """A user belongs to a group. Mapped so that queries on it get the tenant criteria."""

    __tablename__ = "core_group_users"

    group_id: Mapped[int] = mapped_column(ForeignKey("core_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Group(TenantScoped, Audited, db.Model):
    __audit_type__ = "group"
    __audit_title__ = _l("Group")
    __audit_fields__ = {
        "name": _l("Name"),
        "description": _l("Description"),
        "users": _l("Member users"),
        "clients": _l("Member clients"),
    }
    __audit_relations__ = ("users", "clients")

    __tablename__ = "core_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    users = relationship("User", secondary="core_group_users", back_populates="groups", order_by="User.name")
    clients = relationship("Client", secondary="core_group_clients", back_populates="groups", order_by="Client.name")
