"""Certificate templates, the certificates a centre asks its clients for, and the notices sent."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, and_, text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.api import Audited, TenantScoped, db, utcnow

MISSING = "missing_info"
PENDING = "pending_approval"
APPROVED = "approved"
EXPIRING = "expiring"
EXPIRED = "expired"
STATUSES = (MISSING, PENDING, APPROVED, EXPIRING, EXPIRED)
STATUS_LABELS = {
    MISSING: _l("Missing client information"),
    PENDING: _l("Pending approval"),
    APPROVED: _l("Approved"),
    EXPIRING: _l("Expiring soon"),
    EXPIRED: _l("Expired"),
}
STATUS_STYLES = {MISSING: "secondary", PENDING: "warning", APPROVED: "success", EXPIRING: "info", EXPIRED: "danger"}
# Approved certificates keep their validity; these three are decided by the date.
APPROVED_STATUSES = (APPROVED, EXPIRING, EXPIRED)

NOTE_MAX = 400
DEFAULT_LEAD_DAYS = 15

# Events the client is told about, each once per certificate.
CREATED = "created"
APPROVED_EVENT = "approved"
EXPIRING_EVENT = "expiring"
EXPIRED_EVENT = "expired"
# Told once per rejection (a certificate can be sent back several times): see Certificate.rejections.
REJECTED_EVENT = "rejected"
EVENTS = (CREATED, APPROVED_EVENT, EXPIRING_EVENT, EXPIRED_EVENT, REJECTED_EVENT)


class CertificateTemplate(TenantScoped, Audited, db.Model):
    """What a centre asks for (a medical certificate, an insurance policy…) and how it is renewed."""

    __tablename__ = "center_certificates_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    __audit_type__ = "certificate_template"
    __audit_title__ = _l("Certificate template")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "created_by_id"})
    __audit_fields__ = {
        "name": _l("Name"),
        "description": _l("Description"),
        "lead_days": _l("Days of notice"),
        "auto_for_new_clients": _l("For every new client"),
        "renew_on_expiry": _l("Again when it expires"),
        "active": _l("In use"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # "Caduca pronto" starts this many days before the validity date.
    lead_days: Mapped[int] = mapped_column(Integer, default=DEFAULT_LEAD_DAYS)
    auto_for_new_clients: Mapped[bool] = mapped_column(Boolean, default=False)
    renew_on_expiry: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# A certificate is "open" until it expires, is archived or goes to the bin. A client has at most
# one open certificate of a template in the running, but one that expires soon leaves room for the
# next document (handed in while it is still valid, a new certificate linked by renewal_of_id):
# the partial unique index makes both facts.
SLOT_CONDITION = "deleted_at IS NULL AND archived_at IS NULL AND status NOT IN ('expiring', 'expired')"


class Certificate(TenantScoped, Audited, db.Model):
    __tablename__ = "center_certificates_certificates"
    __table_args__ = (
        Index("ix_center_certificates_certificates_client", "tenant_id", "client_id", "id"),
        Index("ix_center_certificates_certificates_due", "tenant_id", "status", "expiring_from"),
        Index(
            "uq_center_certificates_certificates_open",
            "tenant_id",
            "template_id",
            "client_id",
            unique=True,
            sqlite_where=text(SLOT_CONDITION),
            postgresql_where=text(SLOT_CONDITION),
        ),
        UniqueConstraint("renewal_of_id"),
    )
    __audit_type__ = "certificate"
    __audit_title__ = _l("Certificate")
    # Who did it is the event's actor; the ids of people and templates would only be noise.
    __audit_exclude__ = frozenset(
        {
            "created_at",
            "updated_at",
            "expiring_from",
            "template_id",
            "client_id",
            "uploaded_by_id",
            "approved_by_id",
            "deleted_by_id",
            "issued_by_id",
            "renewal_of_id",
            "rejections",
        }
    )
    __audit_fields__ = {
        "name": _l("Certificate"),
        "status": _l("Status"),
        "validity_date": _l("Valid until"),
        "notes": _l("Notes"),
        "file_id": _l("File"),
        "lead_days": _l("Days of notice"),
        "uploaded_at": _l("Uploaded"),
        "uploaded_by_client": _l("Uploaded by the client"),
        "approved_at": _l("Approved"),
        "rejection_reason": _l("Rejected because"),
        "rejected_at": lazy_pgettext("certificate", "Rejected"),
        "expired_at": _l("Expired"),
        "archived_at": _l("Archived"),
        "deleted_at": _l("Deleted"),
    }
    __audit_values__ = {"status": STATUS_LABELS}

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("center_certificates_templates.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"))
    # Copied from the template when issued: editing a template does not change what was asked.
    name: Mapped[str] = mapped_column(String(200))
    lead_days: Mapped[int] = mapped_column(Integer, default=DEFAULT_LEAD_DAYS)
    status: Mapped[str] = mapped_column(String(20), default=MISSING)
    validity_date: Mapped[date | None] = mapped_column(Date)
    # validity_date - lead_days, kept so that the periodic sweep is one indexed comparison.
    expiring_from: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(String(NOTE_MAX), default="")
    file_id: Mapped[int | None] = mapped_column(ForeignKey("core_stored_files.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime | None] = mapped_column()
    uploaded_by_client: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column()
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    rejection_reason: Mapped[str] = mapped_column(String(NOTE_MAX), default="")
    rejected_at: Mapped[datetime | None] = mapped_column()
    # How many times it has been sent back: the rejection notice's marker is one per rejection.
    rejections: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    expired_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column()
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    renewal_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("center_certificates_certificates.id", ondelete="SET NULL")
    )
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    template = relationship("CertificateTemplate")
    client = relationship("Client")
    file = relationship("StoredFile")
    # The certificate this one follows (renewed on expiry, or handed in while it expired soon), and
    # the one that follows it.
    previous = relationship("Certificate", remote_side=[id], back_populates="renewal")
    renewal = relationship("Certificate", back_populates="previous", uselist=False)

    def audit_label(self) -> str:
        return self.name

    def audit_parent(self) -> tuple[str, int] | None:
        return ("client", self.client_id)

    @classmethod
    def audit_label_sql(cls, c):
        return c.name

    @classmethod
    def audit_parent_sql(cls, c):
        return ("client", c.client_id)

    @hybrid_property
    def is_open(self) -> bool:
        return self.deleted_at is None and self.archived_at is None and self.status != EXPIRED

    @is_open.inplace.expression
    @classmethod
    def _is_open_expression(cls):
        return and_(cls.deleted_at.is_(None), cls.archived_at.is_(None), cls.status != EXPIRED)

    @property
    def in_history(self) -> bool:
        return self.deleted_at is None and (self.archived_at is not None or self.status == EXPIRED)

    @property
    def editable(self) -> bool:
        """Approved certificates are no longer editable by anyone."""
        return self.deleted_at is None and self.archived_at is None and self.status in (MISSING, PENDING)

    # The state rules, stated once: the services enforce them and the templates offer what they allow.

    @property
    def can_be_decided(self) -> bool:
        """Whether it can be approved or rejected: a document waits for the centre's decision."""
        return self.deleted_at is None and self.status == PENDING

    @property
    def can_be_archived(self) -> bool:
        """Only an approved certificate (also one expiring soon) leaves the running by hand."""
        return self.deleted_at is None and self.archived_at is None and self.status in (APPROVED, EXPIRING)

    @property
    def accepts_upload(self) -> bool:
        """Whether its document can be handed in (or corrected) now, by the client or the centre:
        while information is missing and while it waits for approval; approval freezes it."""
        return self.deleted_at is None and self.archived_at is None and self.status in (MISSING, PENDING)

    @property
    def next_document(self) -> Certificate | None:
        """The certificate that follows this one, unless it went to the bin."""
        renewal = self.renewal
        return renewal if renewal is not None and renewal.deleted_at is None else None

    @property
    def accepts_next(self) -> bool:
        """Whether the next document can be handed in now, without archiving this one: while it
        expires soon (it stays valid until its date) and nothing follows it yet."""
        return (
            self.deleted_at is None
            and self.archived_at is None
            and self.status == EXPIRING
            and self.next_document is None
        )

    @property
    def sent_back(self) -> bool:
        """Rejected and not handed in again since: the client reads the reason."""
        return bool(self.rejection_reason) and self.status == MISSING


class CertificateNotice(TenantScoped, db.Model):
    """The marker of one event told to the client: each event is sent once per certificate (a
    rejection once per rejection: ``occurrence`` is the certificate's rejection count, 0 otherwise).

    ``held_for`` marks a notice that was not sent because the person who started the bulk action
    that caused it (an import, "Generar certificados") chose not to tell the clients: the key of
    that action ("core.clients_import:17", "generation:42"). The marker keeps the periodic run
    from sending it; sending the action's notices later deletes the held markers, once.
    """

    __tablename__ = "center_certificates_notices"
    __table_args__ = (
        UniqueConstraint("certificate_id", "event", "occurrence"),
        Index(
            "ix_center_certificates_notices_held",
            "tenant_id",
            "held_for",
            sqlite_where=text("held_for IS NOT NULL"),
            postgresql_where=text("held_for IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("center_certificates_certificates.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))
    occurrence: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("core_outbound_messages.id", ondelete="SET NULL"))
    pushed: Mapped[bool] = mapped_column(Boolean, default=False)
    held_for: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
