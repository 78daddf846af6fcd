"""The sedes plugin's tables: the operator's catalogue of sedes, what the plugin adds to a client
(Seguridad Social codes, the two "Habilitado…" checkboxes), digital certificates, mailboxes,
notifications and their documents.

The catalogue (``sedes_sedes``) is the operator's, the same for every tenant; everything else is
tenant-owned. A mailbox is one client at one sede read with one certificate; a notification is
stored once per ``(tenant, sede, external_id)`` whatever mailbox brought it.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.api import Audited, EncryptedBytes, EncryptedText, TenantScoped, db, utcnow

# --- codes and their words ----------------------------------------------------------------------

CCC = "ccc"  # Código de Cuenta de Cotización: the employer's account at the Seguridad Social
NAF = "naf"  # Número de Afiliación: the person's
SSID_KINDS = {CCC: _l("CCC"), NAF: _l("NAF")}

NEVER = "never"
OK = "ok"
ERROR = "error"
RUNNING = "running"
SYNC_RESULTS = {NEVER: _l("Never synced"), OK: _l("Synced"), ERROR: _l("Error"), RUNNING: _l("Syncing")}

UNREAD = "unread"
READ = "read"
IN_PROGRESS = "in_progress"
CLOSED = "closed"
WORKFLOW_STATES = {
    UNREAD: _l("Pending reading"),
    READ: _l("Read"),
    IN_PROGRESS: _l("In progress"),
    CLOSED: _l("Closed"),
}

CERTIFICATE_KINDS = {
    "persona_fisica": _l("Natural person"),
    "representante": _l("Legal representative"),
    "sello": _l("Electronic seal"),
}


DEFAULT_MAX_CONCURRENCY = 16  # mailboxes read at once at one sede, by the whole platform


class Sede(db.Model):
    """A sede electrónica of the operator's catalogue: its portal links for people, and, when a
    connector reads it, the connector's code and the service's base URL. ``deadline_days``: the
    natural days a notification stays available (10; 3 for LexNET; None: no legal deadline)."""

    __tablename__ = "sedes_sedes"
    ventanilla_global = True

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    portal_url: Mapped[str] = mapped_column(String(500), default="")
    register_url: Mapped[str] = mapped_column(String(500), default="")
    signature_test_url: Mapped[str] = mapped_column(String(500), default="")
    connector: Mapped[str | None] = mapped_column(String(32))
    base_url: Mapped[str | None] = mapped_column(String(500))
    # Further CAs (PEM) to trust for the service's TLS, beside the system's: a test or demo service.
    ca_certificates: Mapped[str] = mapped_column(Text, default="")
    needs_ssid: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_days: Mapped[int | None] = mapped_column(Integer)
    # At most this many mailboxes read here at the same time, by all workers of all tenants (sweep.py).
    max_concurrency: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_CONCURRENCY)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def syncable(self) -> bool:
        """Whether mailboxes can be read here (a connector), not only a portal to visit."""
        return bool(self.connector) and self.active


class SedesClientData(TenantScoped, Audited, db.Model):
    """The client fields of the plugin: "Habilitado para recibir notificaciones electrónicas" and
    "Habilitado para consultar notificaciones en tablón" (the TEU of the BOE)."""

    __tablename__ = "sedes_client_data"
    __table_args__ = (UniqueConstraint("tenant_id", "client_id"),)
    __audit_type__ = "sedes_client_data"
    __audit_title__ = _l("Electronic notifications data")
    __audit_exclude__ = frozenset({"client_id", "created_at", "updated_at"})
    __audit_fields__ = {
        "receives_electronic": _l("Enabled to receive electronic notifications"),
        "checks_board": _l("Enabled to check notifications on the board (TEU)"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    receives_electronic: Mapped[bool] = mapped_column(Boolean, default=False)
    checks_board: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def audit_label(self) -> str:
        return str(self.client_id)

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)


class SsidCode(TenantScoped, Audited, db.Model):
    """A Seguridad Social code of a client: a CCC (a company may have several) or its NAF."""

    __tablename__ = "sedes_ssid_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id", "kind", "code"),
        CheckConstraint("kind IN ('ccc', 'naf')", name="kind"),
    )
    __audit_type__ = "sedes_ssid_code"
    __audit_title__ = _l("Seguridad Social code")
    __audit_exclude__ = frozenset({"client_id", "created_at"})
    __audit_fields__ = {"kind": _l("Kind"), "code": _l("Code")}

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(3))
    code: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def audit_label(self) -> str:
        return f"{self.kind.upper()} {self.code}"

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)


class SedeCertificate(TenantScoped, Audited, db.Model):
    """A digital certificate (PKCS#12 with its key), encrypted at rest with its password. Without a
    client it is the office's own, used to read clients' mailboxes under apoderamiento."""

    __tablename__ = "sedes_certificates"
    __table_args__ = (
        UniqueConstraint("tenant_id", "fingerprint"),
        Index("ix_sedes_certificates_tenant_id_not_after", "tenant_id", "not_after"),
    )
    __audit_type__ = "sedes_certificate"
    __audit_title__ = _l("Digital certificate")
    __audit_exclude__ = frozenset({"pkcs12", "password", "credential_pem", "created_at", "warned_days", "fingerprint"})
    __audit_fields__ = {
        "client_id": _l("Client"),
        "kind": _l("Kind"),
        "holder_name": _l("Holder"),
        "holder_nif": _l("Holder's NIF"),
        "entity_nif": _l("Entity's NIF"),
        "issuer": _l("Issuer"),
        "serial": _l("Serial number"),
        "not_before": _l("Valid from"),
        "not_after": _l("Valid until"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_nif: Mapped[str | None] = mapped_column(String(16))
    entity_nif: Mapped[str | None] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(300))
    serial: Mapped[str] = mapped_column(String(80))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the certificate, hex
    not_before: Mapped[datetime] = mapped_column()
    not_after: Mapped[datetime] = mapped_column()
    pkcs12: Mapped[bytes] = mapped_column(EncryptedBytes)
    # The certificate, its key and chain as PEM, encrypted: what a sync reads (sync.credential_of)
    # instead of opening the PKCS#12 each time, which costs ~85 ms of CPU (its RSA key check).
    credential_pem: Mapped[bytes | None] = mapped_column(EncryptedBytes)
    password: Mapped[str] = mapped_column(EncryptedText)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    warned_days: Mapped[int | None] = mapped_column(Integer)  # the last expiry threshold warned (30, 15, 7)

    client = relationship("Client")
    uploaded_by = relationship("User")

    @property
    def titular_nif(self) -> str:
        return self.entity_nif or self.holder_nif or ""

    def audit_label(self) -> str:
        return f"{self.holder_name} ({self.titular_nif})"

    def audit_parent(self) -> tuple[str, int] | None:
        return ("client", self.client_id) if self.client_id is not None else None


class SedeMailbox(TenantScoped, Audited, db.Model):
    """A client's mailbox at one sede, read with one certificate (the client's, or the office's
    under apoderamiento: ``as_proxy``); synced every ``period_days`` from ``next_sync_at``."""

    __tablename__ = "sedes_mailboxes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id", "sede_code"),
        Index("ix_sedes_mailboxes_tenant_id_next_sync_at", "tenant_id", "next_sync_at"),
        Index("ix_sedes_mailboxes_tenant_id_sede_code", "tenant_id", "sede_code"),
        Index("ix_sedes_mailboxes_tenant_id_sweep_id", "tenant_id", "sweep_id"),
        CheckConstraint("period_days >= 1", name="period_days"),
    )
    __audit_type__ = "sedes_mailbox"
    __audit_title__ = _l("Electronic mailbox")
    # The sync's bookkeeping changes at every run: it is shown on the mailbox, not in the trail.
    __audit_exclude__ = frozenset(
        {
            "created_at",
            "last_sync_at",
            "last_result",
            "last_error",
            "last_new_count",
            "failures",
            "retry_at",
            "synced_until",
            "next_sync_at",
            "queued_at",
            "sweep_id",
            "lease_owner",
            "leased_until",
        }
    )
    __audit_fields__ = {
        "client_id": _l("Client"),
        "sede_code": _l("Sede"),
        "certificate_id": _l("Digital certificate"),
        "as_proxy": _l("Mailbox under apoderamiento"),
        "period_days": _l("Every (days)"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    sede_code: Mapped[str] = mapped_column(ForeignKey("sedes_sedes.code", ondelete="CASCADE"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("sedes_certificates.id", ondelete="CASCADE"), index=True)
    as_proxy: Mapped[bool] = mapped_column(Boolean, default=False)
    next_sync_at: Mapped[datetime | None] = mapped_column()
    period_days: Mapped[int] = mapped_column(Integer, default=1)
    last_sync_at: Mapped[datetime | None] = mapped_column()
    last_result: Mapped[str] = mapped_column(String(16), default=NEVER)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_new_count: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()  # a sync run for it is queued or running (sync.py)
    synced_until: Mapped[datetime | None] = mapped_column()
    # A sweep that has yet to read it (sweep.py), and which part holds it until when (its lease).
    sweep_id: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    client = relationship("Client")
    sede = relationship("Sede")
    certificate = relationship("SedeCertificate")

    def audit_label(self) -> str:
        return self.sede_code

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)


class SedeNotification(TenantScoped, Audited, db.Model):
    """A notification or comunicación found in a mailbox, stored once per ``(sede, external_id)``.
    ``sede_state`` is the sede's; ``workflow_state`` the office's own handling of it."""

    __tablename__ = "sedes_notifications"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sede_code", "external_id"),
        Index("ix_sedes_notifications_tenant_id_client_id_made", "tenant_id", "client_id", "made_available_at"),
        Index("ix_sedes_notifications_tenant_id_deadline_on", "tenant_id", "deadline_on"),
        Index("ix_sedes_notifications_tenant_id_workflow_state", "tenant_id", "workflow_state"),
        Index("ix_sedes_notifications_tenant_id_assignee_id", "tenant_id", "assignee_id"),
    )
    __audit_type__ = "sedes_notification"
    __audit_title__ = _l("Electronic notification")
    __audit_exclude__ = frozenset({"first_seen_at", "alerts_sent", "raw", "updated_at", "handled_at"})
    __audit_fields__ = {
        "workflow_state": _l("State"),
        "sede_state": _l("State at the sede"),
        "assignee_id": _l("Assigned to"),
        "opened_at": _l("Opened at"),
        "opened_by_id": _l("Opened by"),
        "deadline_on": _l("Deadline"),
    }
    __audit_values__ = {"workflow_state": WORKFLOW_STATES}

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("sedes_mailboxes.id", ondelete="SET NULL"), index=True)
    sede_code: Mapped[str] = mapped_column(ForeignKey("sedes_sedes.code", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # contract.Kind
    sede_state: Mapped[str] = mapped_column(String(16))  # contract.SedeState
    workflow_state: Mapped[str] = mapped_column(String(16), default=UNREAD)
    issuer_code: Mapped[str | None] = mapped_column(String(32))
    issuer_name: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    procedure: Mapped[str | None] = mapped_column(String(300))
    titular_nif: Mapped[str] = mapped_column(String(16), default="")
    titular_name: Mapped[str | None] = mapped_column(String(300))
    link: Mapped[str | None] = mapped_column(String(16))  # contract.Link
    made_available_at: Mapped[datetime] = mapped_column()
    sede_expires_at: Mapped[datetime | None] = mapped_column()
    deadline_on: Mapped[date | None] = mapped_column(Date)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime | None] = mapped_column()
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_at: Mapped[datetime | None] = mapped_column()
    alerts_sent: Mapped[list] = mapped_column(JSON, default=list)  # which of 5/2/1 days went
    # The last time someone in the office read, moved or opened it (notifications.py): until then a
    # deadline near is escalated to the supervisors. The change itself is in the audit trail.
    handled_at: Mapped[datetime | None] = mapped_column()
    raw: Mapped[dict] = mapped_column(JSON, default=dict)  # the connector's extra fields (DocumentRefs…)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client = relationship("Client")
    mailbox = relationship("SedeMailbox")
    sede = relationship("Sede")
    assignee = relationship("User", foreign_keys=[assignee_id])
    opened_by = relationship("User", foreign_keys=[opened_by_id])
    documents = relationship(
        "SedeNotificationDocument", back_populates="notification", order_by="SedeNotificationDocument.id"
    )

    def audit_label(self) -> str:
        return self.subject[:120] or self.external_id

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)

    @classmethod
    def audit_label_sql(cls, c):
        return func.coalesce(func.nullif(func.substr(c.subject, 1, 120), ""), c.external_id)

    @classmethod
    def audit_parent_sql(cls, c):
        return ("client", c.client_id)


class SedeNotificationDocument(TenantScoped, db.Model):
    """A document of a notification (or its acuse de recibo), kept as a core stored file."""

    __tablename__ = "sedes_notification_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("sedes_notifications.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("core_stored_files.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    is_acuse: Mapped[bool] = mapped_column(Boolean, default=False)
    reference: Mapped[str | None] = mapped_column(String(300))
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    notification = relationship("SedeNotification", back_populates="documents")
    file = relationship("StoredFile")


class SedeSweep(TenantScoped, db.Model):
    """One sweep of a tenant's due mailboxes, shared by several part jobs (sweep.py): how many it
    stamped, how many are written, and the ``JobRun`` whose bar shows it."""

    __tablename__ = "sedes_sweeps"
    __table_args__ = (Index("ix_sedes_sweeps_tenant_id_finished_at", "tenant_id", "finished_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_run_id: Mapped[int | None] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    run_ids: Mapped[list] = mapped_column(JSON, default=list)  # the JobRuns of its parts, the sweep's first
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


# The plugin's modules say the short names; the classes carry the prefix because the declarative
# registry is shared with other plugins (center_certificates has a ``Certificate``, inboxes a ``Mailbox``).
Certificate = SedeCertificate
Mailbox = SedeMailbox
Notification = SedeNotification
NotificationDocument = SedeNotificationDocument
