"""People who log in: tenant users (staff, and later portal clients) and platform operators."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit.recorder import Audited
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped


def new_session_nonce() -> str:
    return secrets.token_hex(8)


class User(TenantScoped, Audited, UserMixin, db.Model):
    """A person of one tenant. ``password_hash`` stays empty until the invitation is accepted."""

    __audit_type__ = "user"
    __audit_title__ = _l("User")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "session_nonce", "last_login_at", "invited_by_id"})
    __audit_mask__ = frozenset({"password_hash"})
    __audit_relations__ = ("roles", "groups")
    __audit_fields__ = {
        "email": _l("E-mail"),
        "name": _l("Name"),
        "password_hash": _l("Password"),
        "locale": _l("Language"),
        "active": _l("Active"),
        "client_id": _l("Client"),
        "roles": _l("Roles"),
        "groups": _l("Groups"),
    }

    __tablename__ = "core_users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Rotated on password change and deactivation: every older session stops working.
    session_nonce: Mapped[str] = mapped_column(String(32), default=new_session_nonce)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    # Set for a portal account: the client this person is. Portal accounts reach only portal pages.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client = relationship("Client", foreign_keys=[client_id])
    roles = relationship("Role", secondary="core_user_roles", back_populates="users", order_by="Role.name")
    groups = relationship("Group", secondary="core_group_users", back_populates="users", order_by="Group.name")

    def get_id(self) -> str:
        return f"t:{self.tenant_id}:{self.id}:{self.session_nonce}"

    @property
    def is_active(self) -> bool:
        return self.active and self.password_hash is not None

    @property
    def is_invited(self) -> bool:
        return self.active and self.password_hash is None

    @property
    def is_operator(self) -> bool:
        return False

    @property
    def is_portal(self) -> bool:
        return self.client_id is not None

    def language_in(self, tenant) -> str:
        """The language to write to this person in: their own choice, else the tenant's."""
        return self.locale or tenant.language or "es"

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Operator(UserMixin, db.Model):
    """Platform staff of the hosting organisation. Belongs to no tenant."""

    __tablename__ = "core_operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_nonce: Mapped[str] = mapped_column(String(32), default=new_session_nonce)
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def get_id(self) -> str:
        return f"op:{self.id}:{self.session_nonce}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_operator(self) -> bool:
        return True


TOKEN_RESET = "reset"
TOKEN_INVITE = "invite"


class AuthToken(TenantScoped, db.Model):
    """A one-time link (password reset, invitation). Only the token's hash is stored."""

    __tablename__ = "core_auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user = relationship("User")
