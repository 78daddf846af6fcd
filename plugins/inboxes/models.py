"""Mailboxes, contracts, flows, requests and their messages, attachments and quarantine.

- ``Mailbox``: an *Entrada* (IMAP/POP3, read by the ``sync`` job) or a *Salida* (SMTP, carries the
  messages core's outbox delivers through our ``mail_transport`` hook). Its password is encrypted at
  rest and never shown again; its fetch state and health live beside it (not audited).
- ``Contract``: a contract of the tenant with a client; its *Bandeja de Salida* (``outbound_mailbox``),
  its inbound mailboxes (``ContractInbox``: each inbound mailbox feeds one contract) and its flow.
- ``Flow`` / ``FlowStep``: a minimal workflow whose "Envío de Mensaje - E-mail" steps run when a request
  of a contract with that flow enters the step's status (``StepRun`` makes each pass run once).
- ``Request`` (solicitud) and ``RequestMessage``: the thread of messages in and out.
- ``Attachment`` (core files for images and PDFs; ``AttachmentData`` for the rest: see ``attachments``),
  ``Quarantined`` (messages that could not be processed, kept raw).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.api import Audited, EncryptedText, TenantScoped, db, utcnow

# --- mailboxes ----------------------------------------------------------------------------------

INBOUND = "inbound"
OUTBOUND = "outbound"
DIRECTIONS = (INBOUND, OUTBOUND)
DIRECTION_LABELS = {INBOUND: lazy_pgettext("mailbox", "Inbound"), OUTBOUND: lazy_pgettext("mailbox", "Outbound")}

DEFAULT_POLL_MINUTES = 5
DEFAULT_MAX_MB = 10


class Mailbox(TenantScoped, Audited, db.Model):
    __tablename__ = "inboxes_mailboxes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # At most one default outbound mailbox per tenant.
        Index(
            "uq_inboxes_mailboxes_default",
            "tenant_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        Index("ix_inboxes_mailboxes_due", "direction", "active", "next_sync_at"),
    )
    __audit_type__ = "inboxes_mailbox"
    __audit_title__ = _l("E-mail mailbox")
    # The fetch state and health change at every run: they are not changes anyone made.
    __audit_exclude__ = frozenset(
        {
            "created_at",
            "updated_at",
            "fetch_state",
            "next_sync_at",
            "last_sync_at",
            "last_ok_at",
            "last_error",
            "last_error_detail",
            "failures",
            "alerted_at",
            "queued_at",
            "lease_until",
            "lease_token",
        }
    )
    __audit_fields__ = {
        "name": _l("Name"),
        "direction": _l("Type"),
        "active": _l("Active"),
        "host": _l("Server"),
        "port": _l("Port"),
        "security": _l("Security"),
        "verify_tls": _l("Verify the server's certificate"),
        "ca_certificate": _l("Trusted CA certificate"),
        "username": _l("User"),
        "password": _l("Password"),
        "email_address": _l("E-mail address"),
        "provider": _l("Provider"),
        "protocol": _l("Protocol"),
        "folder": _l("Folder"),
        "after_fetch": _l("After reading a message"),
        "processed_folder": _l("Folder for processed messages"),
        "quarantine_folder": _l("Folder for quarantined messages"),
        "poll_minutes": _l("Read every (minutes)"),
        "max_message_mb": _l("Maximum message size (MB)"),
        "sender_address": _l("Sender address"),
        "sender_name": _l("Sender name"),
        "use_auth": _l("The server requires authentication"),
        "is_default": _l("Default outbound mailbox"),
    }
    __audit_values__ = {"direction": DIRECTION_LABELS}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    direction: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    host: Mapped[str] = mapped_column(String(253), default="")
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10), default="ssl")
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    ca_certificate: Mapped[str] = mapped_column(Text, default="")
    username: Mapped[str] = mapped_column(String(254), default="")
    password: Mapped[str | None] = mapped_column(EncryptedText)
    # Entrada
    email_address: Mapped[str] = mapped_column(String(254), default="")
    provider: Mapped[str] = mapped_column(String(32), default="")
    protocol: Mapped[str] = mapped_column(String(8), default="imap")
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    after_fetch: Mapped[str] = mapped_column(String(16), default="move")
    processed_folder: Mapped[str] = mapped_column(String(200), default="")
    quarantine_folder: Mapped[str] = mapped_column(String(200), default="")
    poll_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_POLL_MINUTES)
    max_message_mb: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_MB)
    # Salida
    sender_address: Mapped[str] = mapped_column(String(254), default="")
    sender_name: Mapped[str] = mapped_column(String(120), default="")
    use_auth: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Fetch state (``connectors`` ImapState/Pop3State as JSON) and health.
    fetch_state: Mapped[dict] = mapped_column(JSON, default=dict)
    next_sync_at: Mapped[datetime | None] = mapped_column()
    last_sync_at: Mapped[datetime | None] = mapped_column()
    last_ok_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(32))
    last_error_detail: Mapped[str] = mapped_column(String(300), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    alerted_at: Mapped[datetime | None] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()
    # One worker at a time reads a mailbox: it holds this lease (``sync.Lease``).
    lease_until: Mapped[datetime | None] = mapped_column()
    lease_token: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contract_link = relationship("ContractInbox", uselist=False, viewonly=True)

    def audit_label(self) -> str:
        return self.name

    @property
    def inbound(self) -> bool:
        return self.direction == INBOUND

    @property
    def has_password(self) -> bool:
        return self.password is not None

    @property
    def address(self) -> str:
        """The address people write to (Entrada) or that our messages come from (Salida)."""
        return self.email_address if self.inbound else self.sender_address


# --- contracts -----------------------------------------------------------------------------------


class Contract(TenantScoped, Audited, db.Model):
    __tablename__ = "inboxes_contracts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        Index("ix_inboxes_contracts_client", "tenant_id", "client_id"),
    )
    __audit_type__ = "inboxes_contract"
    __audit_title__ = _l("Contract")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "client_id"})
    __audit_fields__ = {
        "name": _l("Name"),
        "reference": _l("Reference"),
        "outbound_mailbox_id": _l("Outbound e-mail mailbox"),
        "flow_id": _l("Flow"),
        "active": _l("Active"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(60), default="")
    # "Bandeja de Salida de Correo Electrónico": the mailbox of "Específica" flow steps.
    outbound_mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_mailboxes.id", ondelete="SET NULL"))
    flow_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_flows.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client = relationship("Client")
    outbound_mailbox = relationship("Mailbox", foreign_keys=[outbound_mailbox_id])
    flow = relationship("Flow")
    inbox_links = relationship("ContractInbox", back_populates="contract", cascade="all, delete-orphan")

    def audit_label(self) -> str:
        return self.name

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)

    @property
    def inbound_mailboxes(self) -> list[Mailbox]:
        return sorted((link.mailbox for link in self.inbox_links), key=lambda m: m.name)


class ContractInbox(TenantScoped, db.Model):
    """An inbound mailbox feeding a contract: its mail becomes the contract's requests."""

    __tablename__ = "inboxes_contract_inboxes"
    __table_args__ = (UniqueConstraint("mailbox_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("inboxes_contracts.id", ondelete="CASCADE"), index=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes_mailboxes.id", ondelete="CASCADE"))

    contract = relationship("Contract", back_populates="inbox_links")
    mailbox = relationship("Mailbox")


# --- flows ---------------------------------------------------------------------------------------

# Which outbound mailbox a message of a flow leaves through.
SPECIFIC = "specific"  # "Específica": the contract's Bandeja de Salida
DEFAULT = "default"  # the system's default outbound mailbox
MAILBOX_MODES = (SPECIFIC, DEFAULT)
MAILBOX_MODE_LABELS = {
    SPECIFIC: _l("Specific: the contract's outbound mailbox"),
    DEFAULT: _l("Default: the system's default outbound mailbox"),
}

EMAIL_STEP = "email"
STEP_KINDS = {EMAIL_STEP: _l("Send message - E-mail")}


class Flow(TenantScoped, Audited, db.Model):
    __tablename__ = "inboxes_flows"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    __audit_type__ = "inboxes_flow"
    __audit_title__ = _l("Flow")
    __audit_fields__ = {
        "name": _l("Name"),
        "description": _l("Description"),
        "reply_mode": _l("Staff replies leave through"),
        "active": _l("Active"),
    }
    __audit_values__ = {"reply_mode": MAILBOX_MODE_LABELS}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    reply_mode: Mapped[str] = mapped_column(String(10), default=SPECIFIC)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    steps = relationship(
        "FlowStep", back_populates="flow", order_by="FlowStep.position, FlowStep.id", cascade="all, delete-orphan"
    )

    def audit_label(self) -> str:
        return self.name


class FlowStep(TenantScoped, Audited, db.Model):
    """A step of a flow. The only kind so far: "Envío de Mensaje - E-mail", run when a request of the
    flow enters ``trigger`` (a request status; ``new`` when it is created)."""

    __tablename__ = "inboxes_flow_steps"
    __audit_type__ = "inboxes_flow_step"
    __audit_title__ = _l("Flow step")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "flow_id"})
    __audit_fields__ = {
        "name": _l("Name"),
        "trigger": _l("Runs when the request becomes"),
        "mailbox_mode": _l("Outbound e-mail mailbox configuration"),
        "to_requester": _l("To whoever wrote the request"),
        "to_client": _l("To the contract's client"),
        "extra_recipients": _l("Other recipients"),
        "subject": _l("Subject"),
        "body": _l("Message"),
        "position": _l("Position"),
    }
    __audit_values__ = {"mailbox_mode": MAILBOX_MODE_LABELS}

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("inboxes_flows.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16), default=EMAIL_STEP)
    name: Mapped[str] = mapped_column(String(120))
    trigger: Mapped[str] = mapped_column(String(16))
    mailbox_mode: Mapped[str] = mapped_column(String(10), default=SPECIFIC)
    to_requester: Mapped[bool] = mapped_column(Boolean, default=True)
    to_client: Mapped[bool] = mapped_column(Boolean, default=False)
    extra_recipients: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    flow = relationship("Flow", back_populates="steps")

    def audit_label(self) -> str:
        return self.name

    def audit_parent(self) -> tuple[str, int]:
        return ("inboxes_flow", self.flow_id)


# --- requests ------------------------------------------------------------------------------------

NEW = "new"
IN_PROGRESS = "in_progress"
WAITING = "waiting"
RESOLVED = "resolved"
CLOSED = "closed"
STATUSES = (NEW, IN_PROGRESS, WAITING, RESOLVED, CLOSED)
STATUS_LABELS = {
    NEW: lazy_pgettext("request", "New"),
    IN_PROGRESS: lazy_pgettext("request", "In progress"),
    WAITING: lazy_pgettext("request", "Waiting for the client"),
    RESOLVED: lazy_pgettext("request", "Resolved"),
    CLOSED: lazy_pgettext("request", "Closed"),
}
STATUS_STYLES = {NEW: "primary", IN_PROGRESS: "info", WAITING: "warning", RESOLVED: "success", CLOSED: "secondary"}


class Request(TenantScoped, Audited, db.Model):
    """A service request (solicitud) of a contract: made by an e-mail, continued by replies."""

    __tablename__ = "inboxes_requests"
    __table_args__ = (
        Index("ix_inboxes_requests_contract", "tenant_id", "contract_id", "id"),
        Index("ix_inboxes_requests_status", "tenant_id", "status", "id"),
    )
    __audit_type__ = "inboxes_request"
    __audit_title__ = _l("Request")
    __audit_exclude__ = frozenset(
        {"created_at", "updated_at", "last_message_at", "transitions", "contract_id", "mailbox_id", "search_text"}
    )
    __audit_fields__ = {"subject": _l("Subject"), "status": _l("Status")}
    __audit_values__ = {"status": STATUS_LABELS}

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("inboxes_contracts.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_mailboxes.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=NEW)
    requester_name: Mapped[str] = mapped_column(String(200), default="")
    requester_email: Mapped[str] = mapped_column(String(320), default="")
    # The automation kind of the message that opened it (auto-reply, bulk...), None when a person wrote.
    automatic: Mapped[str | None] = mapped_column(String(20))
    # Status changes so far: a flow step runs once per pass into its status (StepRun.occurrence).
    transitions: Mapped[int] = mapped_column(Integer, default=0)
    search_text: Mapped[str] = mapped_column(String(1200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)

    contract = relationship("Contract")
    mailbox = relationship("Mailbox")
    messages = relationship("RequestMessage", back_populates="request", order_by="RequestMessage.id")

    def audit_label(self) -> str:
        return f"#{self.id} {self.subject}"[:200]

    def audit_parent(self) -> tuple[str, int]:
        return ("inboxes_contract", self.contract_id)


IN = "in"
OUT = "out"
# What made a message: mail that arrived, a reply of the staff, a flow step, a delivery report.
ORIGIN_MAIL = "mail"
ORIGIN_REPLY = "reply"
ORIGIN_FLOW = "flow"
ORIGIN_REPORT = "report"


class RequestMessage(TenantScoped, db.Model):
    """One message of a request's thread, in (``mailbox_id``: where it was read) or out."""

    __tablename__ = "inboxes_messages"
    __table_args__ = (
        # Read twice (a re-run, a renumbered folder), a message is stored once per mailbox.
        UniqueConstraint("mailbox_id", "message_key"),
        Index("ix_inboxes_messages_message_id", "tenant_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("inboxes_requests.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    origin: Mapped[str] = mapped_column(String(8), default=ORIGIN_MAIL)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_mailboxes.id", ondelete="SET NULL"))
    message_key: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(255))  # normalised: no brackets
    in_reply_to: Mapped[list] = mapped_column(JSON, default=list)
    references: Mapped[list] = mapped_column(JSON, default=list)
    from_name: Mapped[str] = mapped_column(String(200), default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    to_addresses: Mapped[list] = mapped_column(JSON, default=list)
    cc_addresses: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(998), default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str | None] = mapped_column(Text)  # sanitised (nh3) before it was stored
    sent_at: Mapped[datetime | None] = mapped_column()  # its Date header
    automation: Mapped[str | None] = mapped_column(String(20))
    automation_reasons: Mapped[list] = mapped_column(JSON, default=list)
    notes: Mapped[list] = mapped_column(JSON, default=list)  # charset guesses, attachments not kept
    # Ours: the outbox row that carries it; a delivery report sets ``bounced``.
    outbound_id: Mapped[int | None] = mapped_column(ForeignKey("core_outbound_messages.id", ondelete="SET NULL"))
    bounced: Mapped[str | None] = mapped_column(String(500))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request = relationship("Request", back_populates="messages")
    mailbox = relationship("Mailbox")
    outbound = relationship("OutboundMessage")
    author = relationship("User")
    attachments = relationship("Attachment", back_populates="message", order_by="Attachment.id")


class Attachment(TenantScoped, db.Model):
    """A file of a message: bytes in core's files (``file_id``) or, for what core does not take, in
    ``AttachmentData`` (``data_id``) — see ``plugins.inboxes.attachments``."""

    __tablename__ = "inboxes_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("inboxes_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))  # as declared by the sender
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("core_stored_files.id", ondelete="SET NULL"))
    data_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_attachment_data.id", ondelete="SET NULL"))

    message = relationship("RequestMessage", back_populates="attachments")
    file = relationship("StoredFile")
    data = relationship("AttachmentData")


class AttachmentData(TenantScoped, db.Model):
    """The bytes of attachments core's files do not accept (see ``plugins.inboxes.attachments``)."""

    __tablename__ = "inboxes_attachment_data"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StepRun(TenantScoped, db.Model):
    """A flow step ran for a request's pass into its status (once: the unique key)."""

    __tablename__ = "inboxes_step_runs"
    __table_args__ = (UniqueConstraint("request_id", "step_id", "occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("inboxes_requests.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(ForeignKey("inboxes_flow_steps.id", ondelete="CASCADE"), index=True)
    occurrence: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_messages.id", ondelete="SET NULL"))
    # Why nothing was sent (no recipient left: an automatic message is never answered).
    skipped: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- quarantine ----------------------------------------------------------------------------------

PENDING = "pending"
IMPORTED = "imported"
DISCARDED = "discarded"
QUARANTINE_STATES = (PENDING, IMPORTED, DISCARDED)


class Quarantined(TenantScoped, db.Model):
    """A message that could not be processed: kept raw with the reason, moved aside on the server."""

    __tablename__ = "inboxes_quarantine"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "message_key"),
        Index("ix_inboxes_quarantine_state", "tenant_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes_mailboxes.id", ondelete="CASCADE"))
    message_key: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(10), default=PENDING)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes_requests.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    mailbox = relationship("Mailbox")
