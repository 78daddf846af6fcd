"""The pec plugin's tables: the reseller's panel accounts, holders' data, domains, boxes, their
documents and reminders, agents, packages, assistants, the gestore connection and imports.

Holders are core clients (``core_clients``); the plugin keeps what it adds about them (birth
data, partita IVA, addresses with phones, activities) in its own tables, keyed by ``client_id``.
Every table is tenant-scoped; a few unique indexes are global on purpose (a panel code and a
domain name name one thing on the whole platform).
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.api import Audited, EncryptedText, TenantScoped, db, utcnow
from plugins.pec.catalogue import RenewalMode
from plugins.pec.lifecycle import STATE_LABELS, BoxState

RESELLER = "reseller"
ASSISTANT = "assistant"

# A box holds its name on its domain until it is deleted or refused (the partial unique index).
LIVE_CONDITION = "state NOT IN ('deleted', 'refused')"

DOCUMENT_KINDS = ("activation", "credentials", "subentro", "closure", "other")
DOCUMENT_LABELS = {
    "activation": _l("Activation contract"),
    "credentials": _l("New credentials request"),
    "subentro": _l("Holder change (subentro)"),
    "closure": _l("Closure request"),
    "other": _l("Other document"),
}

PACKAGE_ACTIVE = "active"
PACKAGE_SUSPENDED = "suspended"
PACKAGE_STATES = {PACKAGE_ACTIVE: _l("Active"), PACKAGE_SUSPENDED: _l("Suspended")}

CONSUMO = "consumo"  # an assistant registers boxes without numeric limits
PACCHETTO = "pacchetto"  # an assistant registers within their active packages
PACKAGE_MODES = {CONSUMO: _l("Boxes on demand"), PACCHETTO: _l("Boxes by package")}

MANUAL_PROVIDER = "manual"


class PanelAccount(TenantScoped, db.Model):
    """A 10-digit panel code: the reseller's own (one per tenant) or an assistant's. The code is
    unique on the whole platform: it names one account wherever it is typed."""

    __tablename__ = "pec_panel_accounts"
    __table_args__ = (
        UniqueConstraint("code"),
        UniqueConstraint("tenant_id", "user_id"),
        Index(
            "uq_pec_panel_accounts_reseller",
            "tenant_id",
            unique=True,
            sqlite_where=text("kind = 'reseller'"),
            postgresql_where=text("kind = 'reseller'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(16), default=RESELLER)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    credentials_sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user = relationship("User")


class HolderProfile(TenantScoped, Audited, db.Model):
    """What a PEC holder has beyond a core client: the client fields of the plugin."""

    __tablename__ = "pec_holder_profiles"
    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id"),
        Index("ix_pec_holder_profiles_partita_iva", "tenant_id", "partita_iva"),
    )
    __audit_type__ = "pec_holder"
    __audit_title__ = _l("PEC holder data")
    __audit_exclude__ = frozenset({"client_id"})
    __audit_fields__ = {
        "partita_iva": _l("Partita IVA"),
        "birth_date": _l("Date of birth"),
        "sex": _l("Sex"),
        "birth_comune": _l("Comune of birth"),
        "birth_provincia": _l("Provincia of birth"),
        "birth_country": _l("Country of birth"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    partita_iva: Mapped[str] = mapped_column(String(11), default="")
    birth_date: Mapped[str] = mapped_column(String(10), default="")  # ISO 8601, as the client field edits it
    sex: Mapped[str] = mapped_column(String(1), default="")
    birth_comune: Mapped[str] = mapped_column(String(120), default="")
    birth_provincia: Mapped[str] = mapped_column(String(2), default="")
    birth_country: Mapped[str] = mapped_column(String(80), default="")

    def audit_label(self) -> str:
        return self.partita_iva or str(self.client_id)

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)


class HolderAddress(TenantScoped, Audited, db.Model):
    """INDIRIZZI DEL TITOLARE: an address with the numbers that go with it."""

    __tablename__ = "pec_holder_addresses"
    __audit_type__ = "pec_holder_address"
    __audit_title__ = _l("Holder address")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "client_id", "codice_istat"})
    __audit_fields__ = {
        "street": _l("Address"),
        "cap": _l("CAP"),
        "comune": _l("Comune"),
        "provincia": _l("Provincia"),
        "nazione": _l("Country"),
        "phone": _l("Telephone"),
        "mobile": _l("Mobile"),
        "fax": _l("Fax"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    street: Mapped[str] = mapped_column(String(200))
    cap: Mapped[str] = mapped_column(String(10))
    comune: Mapped[str] = mapped_column(String(120))
    provincia: Mapped[str] = mapped_column(String(2))
    nazione: Mapped[str] = mapped_column(String(2), default="IT")
    codice_istat: Mapped[str | None] = mapped_column(String(6))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    mobile: Mapped[str] = mapped_column(String(20), default="")
    fax: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def one_line(self) -> str:
        if self.nazione == "IT":
            return f"{self.street}, {self.cap} {self.comune} ({self.provincia})"
        return f"{self.street}, {self.cap} {self.comune}, {self.nazione}"

    def audit_label(self) -> str:
        return self.one_line

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)


class HolderActivity(TenantScoped, Audited, db.Model):
    """ATTIVITA' DEL TITOLARE: a business of the holder (its ragione sociale), at one of their addresses."""

    __tablename__ = "pec_holder_activities"
    __table_args__ = (UniqueConstraint("tenant_id", "client_id", "company_key"),)
    __audit_type__ = "pec_holder_activity"
    __audit_title__ = _l("Holder activity")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "client_id", "company_key"})
    __audit_fields__ = {
        "company_name": _l("Ragione sociale"),
        "partita_iva": _l("Partita IVA"),
        "description": _l("Activity"),
        "address_id": _l("Address"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("pec_holder_addresses.id", ondelete="SET NULL"))
    company_name: Mapped[str] = mapped_column(String(200))
    company_key: Mapped[str] = mapped_column(String(200))
    partita_iva: Mapped[str] = mapped_column(String(11), default="")
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    address = relationship("HolderAddress")

    def audit_label(self) -> str:
        return self.company_name

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)


class Domain(TenantScoped, Audited, db.Model):
    """A certified domain of the reseller. Only the gestore (the operator) changes it; a domain
    name belongs to one reseller on the whole platform."""

    __tablename__ = "pec_domains"
    __table_args__ = (UniqueConstraint("name"),)
    __audit_type__ = "pec_domain"
    __audit_title__ = _l("PEC domain")
    __audit_exclude__ = frozenset({"created_at", "updated_at"})
    __audit_fields__ = {
        "name": _l("Domain"),
        "certified_on": _l("Certified on"),
        "expires_on": _l("Registration expires on"),
        "mx_host": _l("Mail server (MX)"),
        "provider": _l("Activation"),
        "default_box_type": _l("Default type of box"),
        "active": _l("In use"),
        "notes": _l("Notes"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253))
    certified_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    mx_host: Mapped[str] = mapped_column(String(253), default="")
    provider: Mapped[str] = mapped_column(String(32), default=MANUAL_PROVIDER)
    default_box_type: Mapped[str] = mapped_column(String(32), default="standard")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProviderConfig(TenantScoped, Audited, db.Model):
    """How the gestore's activation provider is reached for this reseller: the provider's settings
    (an API address, a token, a callback secret), encrypted at rest as one JSON text."""

    __tablename__ = "pec_provider_configs"
    __table_args__ = (UniqueConstraint("tenant_id", "provider"),)
    __audit_type__ = "pec_provider_config"
    __audit_title__ = _l("Activation provider")
    __audit_exclude__ = frozenset({"created_at", "updated_at"})
    __audit_fields__ = {"provider": _l("Activation"), "settings": _l("Settings")}

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    settings: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def audit_label(self) -> str:
        return self.provider


class Agent(TenantScoped, Audited, db.Model):
    """An agente commerciale the reseller assigns boxes to."""

    __tablename__ = "pec_agents"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)
    __audit_type__ = "pec_agent"
    __audit_title__ = _l("Sales agent")
    __audit_exclude__ = frozenset({"created_at", "updated_at"})
    __audit_fields__ = {
        "company_name": _l("Ragione sociale"),
        "first_name": _l("First name"),
        "last_name": _l("Surname"),
        "email": _l("E-mail"),
        "phone": _l("Telephone"),
        "partita_iva": _l("Partita IVA"),
        "active": _l("Active"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200), default="")
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(20), default="")
    partita_iva: Mapped[str] = mapped_column(String(11), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    domains = relationship("Domain", secondary="pec_agent_domains", order_by="Domain.name")

    @property
    def name(self) -> str:
        person = f"{self.last_name} {self.first_name}".strip()
        if self.company_name and person:
            return f"{self.company_name} ({person})"
        return self.company_name or person or self.email

    def audit_label(self) -> str:
        return self.name


class AgentDomain(TenantScoped, db.Model):
    """A domain an agent is responsible for ("domini associati")."""

    __tablename__ = "pec_agent_domains"

    agent_id: Mapped[int] = mapped_column(ForeignKey("pec_agents.id", ondelete="CASCADE"), primary_key=True)
    domain_id: Mapped[int] = mapped_column(
        ForeignKey("pec_domains.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Assistant(TenantScoped, Audited, db.Model):
    """A reseller's collaborator (assistente): their data, the domain they register boxes on, the
    PEC addresses they are written to, and whether they work on demand or within packages."""

    __tablename__ = "pec_assistants"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)
    __audit_type__ = "pec_assistant"
    __audit_title__ = _l("Assistant")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "user_id"})
    __audit_fields__ = {
        "first_name": _l("First name"),
        "last_name": _l("Surname"),
        "codice_fiscale": _l("Codice fiscale"),
        "email": _l("E-mail"),
        "phone": _l("Telephone"),
        "company_name": _l("Ragione sociale"),
        "partita_iva": _l("Partita IVA"),
        "street": _l("Address"),
        "cap": _l("CAP"),
        "comune": _l("Comune"),
        "provincia": _l("Provincia"),
        "domain_id": _l("Domain"),
        "pec_addresses": _l("PEC addresses for communications"),
        "package_mode": _l("Boxes"),
        "active": _l("Active"),
    }
    __audit_values__ = {"package_mode": PACKAGE_MODES}

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    codice_fiscale: Mapped[str] = mapped_column(String(16), default="")
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(20), default="")
    company_name: Mapped[str] = mapped_column(String(200), default="")
    partita_iva: Mapped[str] = mapped_column(String(11), default="")
    street: Mapped[str] = mapped_column(String(200), default="")
    cap: Mapped[str] = mapped_column(String(10), default="")
    comune: Mapped[str] = mapped_column(String(120), default="")
    provincia: Mapped[str] = mapped_column(String(2), default="")
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("pec_domains.id", ondelete="SET NULL"))
    pec_addresses: Mapped[list] = mapped_column(JSON, default=list)
    package_mode: Mapped[str] = mapped_column(String(16), default=CONSUMO)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user = relationship("User")
    domain = relationship("Domain")

    @property
    def name(self) -> str:
        return f"{self.last_name} {self.first_name}"

    def audit_label(self) -> str:
        return self.name


class Package(TenantScoped, Audited, db.Model):
    """A package (pacchetto) of boxes for a number of years: an agent's (boxes join it) or an
    assistant's (an allowance of boxes to register, within the reseller's pacchetto postmaster)."""

    __tablename__ = "pec_packages"
    __table_args__ = (
        CheckConstraint("(agent_id IS NULL) <> (assistant_id IS NULL)", name="one_owner"),
        CheckConstraint("size > 0", name="positive_size"),
    )
    __audit_type__ = "pec_package"
    __audit_title__ = _l("Package")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "agent_id", "assistant_id"})
    __audit_fields__ = {
        "name": _l("Name"),
        "size": _l("Number of boxes"),
        "years": _l("Duration (years)"),
        "state": _l("State"),
        "suspended_at": _l("Suspended"),
    }
    __audit_values__ = {"state": PACKAGE_STATES}

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("pec_agents.id", ondelete="CASCADE"), index=True)
    assistant_id: Mapped[int | None] = mapped_column(ForeignKey("pec_assistants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    years: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=PACKAGE_ACTIVE)
    suspended_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    agent = relationship("Agent")
    assistant = relationship("Assistant")

    def audit_label(self) -> str:
        return self.name

    def audit_parent(self) -> tuple[str, int] | None:
        if self.agent_id:
            return ("pec_agent", self.agent_id)
        if self.assistant_id:
            return ("pec_assistant", self.assistant_id)
        return None


class Box(TenantScoped, Audited, db.Model):
    """A certified box (casella PEC): ``local_part@domain``."""

    __tablename__ = "pec_boxes"
    __table_args__ = (
        Index(
            "uq_pec_boxes_live_name",
            "tenant_id",
            "domain_id",
            "local_part",
            unique=True,
            sqlite_where=text(LIVE_CONDITION),
            postgresql_where=text(LIVE_CONDITION),
        ),
        Index("ix_pec_boxes_name", "tenant_id", "domain_id", "local_part"),
        Index("ix_pec_boxes_state_expiry", "tenant_id", "state", "expires_on"),
        Index("ix_pec_boxes_holder", "tenant_id", "holder_id"),
        Index("ix_pec_boxes_creator", "tenant_id", "created_by_id", "id"),
        UniqueConstraint("request_id"),
    )
    __audit_type__ = "pec_box"
    __audit_title__ = _l("PEC box")
    __audit_exclude__ = frozenset(
        {"created_at", "updated_at", "request_id", "address", "created_by_id", "submitted_at", "provider_error"}
    )
    __audit_fields__ = {
        "local_part": _l("Box"),
        "domain_id": _l("Domain"),
        "holder_id": _l("Holder"),
        "holder_address_id": _l("Address"),
        "activity_id": _l("Activity"),
        "state": _l("State"),
        "box_type": _l("Type of box"),
        "mailbox_mb": _l("Space (MB)"),
        "years": _l("Duration (years)"),
        "renewal": _l("Renewal"),
        "activated_at": _l("Activated"),
        "expires_on": _l("Expires on"),
        "agent_id": _l("Agent"),
        "agent_requested": _l("Agent assignment requested"),
        "package_id": _l("Package"),
        "provider": _l("Activation"),
        "provider_reference": _l("Gestore's reference"),
        "refusal_reason": _l("Refused because"),
        "deleted_on": _l("Deleted on"),
    }
    __audit_values__ = {
        "state": STATE_LABELS,
        "renewal": {mode.value: mode.label for mode in RenewalMode},
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("pec_domains.id", ondelete="RESTRICT"))
    local_part: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(254))
    holder_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="RESTRICT"))
    holder_address_id: Mapped[int | None] = mapped_column(ForeignKey("pec_holder_addresses.id", ondelete="SET NULL"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("pec_holder_activities.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default=BoxState.PENDING.value)
    box_type: Mapped[str] = mapped_column(String(32), default="standard")
    mailbox_mb: Mapped[int] = mapped_column(Integer, default=1024)
    years: Mapped[int] = mapped_column(Integer, default=1)
    renewal: Mapped[str] = mapped_column(String(10), default=RenewalMode.MANUAL.value)
    request_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32), default=MANUAL_PROVIDER)
    provider_reference: Mapped[str] = mapped_column(String(100), default="")
    provider_error: Mapped[str] = mapped_column(String(400), default="")
    submitted_at: Mapped[datetime | None] = mapped_column()
    refusal_reason: Mapped[str] = mapped_column(String(400), default="")
    activated_at: Mapped[datetime | None] = mapped_column()
    expires_on: Mapped[date | None] = mapped_column(Date)
    deleted_on: Mapped[date | None] = mapped_column(Date)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("pec_agents.id", ondelete="SET NULL"), index=True)
    agent_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("pec_packages.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    domain = relationship("Domain")
    holder = relationship("Client")
    holder_address = relationship("HolderAddress")
    activity = relationship("HolderActivity")
    agent = relationship("Agent")
    package = relationship("Package")

    @property
    def box_state(self) -> BoxState:
        return BoxState(self.state)

    @property
    def renewal_mode(self) -> RenewalMode:
        return RenewalMode(self.renewal)

    def audit_label(self) -> str:
        return self.address


class BoxDocument(TenantScoped, Audited, db.Model):
    """A signed PDF about a box: the activation contract, a request for new credentials, a
    subentro, a closure, another document."""

    __tablename__ = "pec_box_documents"
    __audit_type__ = "pec_box_document"
    __audit_title__ = _l("Box document")
    __audit_exclude__ = frozenset({"created_at", "box_id", "uploaded_by_id", "file_id"})
    __audit_fields__ = {"kind": _l("Document"), "filename": _l("File"), "notes": _l("Notes")}
    __audit_values__ = {"kind": DOCUMENT_LABELS}

    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("pec_boxes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[int | None] = mapped_column(ForeignKey("core_stored_files.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    notes: Mapped[str] = mapped_column(String(400), default="")
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    file = relationship("StoredFile")
    box = relationship("Box")

    def audit_label(self) -> str:
        return self.filename

    def audit_parent(self) -> tuple[str, int]:
        return ("pec_box", self.box_id)


class BoxReminder(TenantScoped, db.Model):
    """The marker of one expiry reminder: each (box, expiry, days) is sent once."""

    __tablename__ = "pec_box_reminders"
    __table_args__ = (UniqueConstraint("box_id", "expires_on", "days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("pec_boxes.id", ondelete="CASCADE"), index=True)
    expires_on: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("core_outbound_messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallbackEvent(TenantScoped, db.Model):
    """A provider's callback already applied: a repeated delivery (same event id) changes nothing."""

    __tablename__ = "pec_callback_events"
    __table_args__ = (UniqueConstraint("tenant_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    box_id: Mapped[int | None] = mapped_column(ForeignKey("pec_boxes.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRun(TenantScoped, db.Model):
    """A bulk CSV import of holders or boxes: the file, and its per-row report once the job ran."""

    __tablename__ = "pec_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list] = mapped_column(JSON, default=list)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("core_job_runs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
