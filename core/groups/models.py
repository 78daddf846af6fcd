"""Groups of users (and, with the client model, of clients).

A user manages the clients that share a group with them; seed 004's centres are groups too.
Client membership is a second association table beside ``core_group_users``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db, utcnow
from tenants.isolation import TenantScoped, tenant_column

group_users = Table(
    "core_group_users",
    db.metadata,
    Column("group_id", Integer, ForeignKey("core_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("core_users.id", ondelete="CASCADE"), primary_key=True, index=True),
    tenant_column(),
)


class Group(TenantScoped, db.Model):
    __tablename__ = "core_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    users = relationship("User", secondary=group_users, back_populates="groups", order_by="User.name")
