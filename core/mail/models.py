"""The outbox: every outbound message is a row first, then a ``mail``-queue delivery.

A message is ``queued`` until a worker claims it (``sending``, with a lease in
``claimed_until``), then ``sent``, or ``queued`` again with ``next_attempt_at`` after a failed
attempt, or ``failed`` for good. Per-tenant SMTP settings live beside it.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit.recorder import Audited
from core.crypto import EncryptedText
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
STATUSES = (QUEUED, SENDING, SENT, FAILED)
# The messages still to send: the predicate of the partial index on them, which a claim repeats.
PENDING_SQL = "status IN ('queued', 'sending')"
STATUS_LABELS = {
    QUEUED: _l("Queued"),
    SENDING: _l("Sending"),
    SENT: lazy_pgettext("message", "Sent"),
    FAILED: lazy_pgettext("message", "Failed"),
}
STATUS_STYLES = {QUEUED: "secondary", SENDING: "primary", SENT: "success", FAILED: "danger"}

# Which way a message left: the tenant's SMTP server, the platform's, or an .eml file.
SOURCE_TENANT = "tenant"
SOURCE_SYSTEM = "system"
SOURCE_FILE = "file"

SECURITY_NONE = "none"
SECURITY_STARTTLS = "starttls"
SECURITY_SSL = "ssl"
SECURITY_CHOICES = (SECURITY_NONE, SECURITY_STARTTLS, SECURITY_SSL)

# Lower goes first. Urgent: someone is waiting for it (a password reset, an invitation, a login
# link). Bulk: caused by batch work (notices after an import or a generation), it waits for the rest.
URGENT = 0
NORMAL = 1
BULK = 2
PRIORITIES = {"urgent": URGENT, "normal": NORMAL, "bulk": BULK}


class OutboundMessage(TenantScoped, db.Model):
    __tablename__ = "core_outbound_messages"
    __table_args__ = (
        Index("ix_core_outbound_messages_tenant_id_id", "tenant_id", "id"),
        Index("ix_core_outbound_messages_due", "status", "next_attempt_at"),
        # A delivery job's claim: one tenant's due messages, urgent first, read in the index's
        # order; only the messages still to send, so it stays small however many were sent.
        Index(
            "ix_core_outbound_messages_pending",
            "tenant_id",
            "priority",
            "id",
            postgresql_where=text(PENDING_SQL),
            sqlite_where=text(PENDING_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_addresses: Mapped[list] = mapped_column(JSON, default=list)
    cc_addresses: Mapped[list] = mapped_column(JSON, default=list)
    bcc_addresses: Mapped[list] = mapped_column(JSON, default=list)
    # Set by the caller, or at delivery to the sender of the transport that carried it.
    from_address: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    priority: Mapped[int] = mapped_column(SmallInteger, default=NORMAL, server_default=str(NORMAL))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    smtp_source: Mapped[str | None] = mapped_column(String(16))
    # "<plugin>:<key>": the plugin gives the SMTP server (``mail_transport``), such as a contract's
    # mailbox; None: the tenant's server, else the platform's.
    transport: Mapped[str | None] = mapped_column(String(100))
    # Further headers (In-Reply-To, References, Auto-Submitted...), set by the sender.
    headers: Mapped[dict] = mapped_column(JSON, default=dict)

    attachments: Mapped[list[OutboundAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="OutboundAttachment.id"
    )

    @property
    def recipients(self) -> list[str]:
        return [*self.to_addresses, *self.cc_addresses, *self.bcc_addresses]


class OutboundAttachment(TenantScoped, db.Model):
    __tablename__ = "core_outbound_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("core_outbound_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    message: Mapped[OutboundMessage] = relationship(back_populates="attachments")


class TenantMailSettings(TenantScoped, Audited, db.Model):
    """The tenant's own SMTP server. With no host, the platform's server (or the outbox) is used."""

    __tablename__ = "core_tenant_mail_settings"
    __audit_type__ = "mail_settings"
    __audit_title__ = _l("E-mail settings")

    def audit_label(self) -> str:
        return self.host or ""

    @classmethod
    def audit_label_sql(cls, c):
        return func.coalesce(c.host, "")

    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str | None] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer, default=587)
    security: Mapped[str] = mapped_column(String(16), default=SECURITY_STARTTLS)
    username: Mapped[str | None] = mapped_column(String(254))
    password: Mapped[str | None] = mapped_column(EncryptedText)
    from_address: Mapped[str | None] = mapped_column(String(254))
    # Messages a minute to its servers; None: the operator's default (``MAIL_RATE_PER_MINUTE``).
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def configured(self) -> bool:
        return bool(self.host)
