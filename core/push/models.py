"""Web push: the installation's VAPID key pair and each browser's subscription."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import EncryptedText
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped


class VapidKey(db.Model):
    """The key pair this installation signs pushes with (one for every tenant; no tenant owns it)."""

    __tablename__ = "core_vapid_keys"
    ventanilla_global = True

    id: Mapped[int] = mapped_column(primary_key=True)
    private_pem: Mapped[str] = mapped_column(EncryptedText)
    # The uncompressed P-256 point, base64url: what the browser's PushManager.subscribe() takes.
    public_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PushSubscription(TenantScoped, db.Model):
    """A browser that agreed to receive a user's notifications."""

    __tablename__ = "core_push_subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id", "endpoint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(Text)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sent_at: Mapped[datetime | None] = mapped_column()
