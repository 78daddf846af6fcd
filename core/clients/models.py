"""Clients: the people and companies a tenant works for. Plugins keep their own data about them."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit.recorder import Audited
from core.extensions import db, utcnow
from tenants.isolation import TenantScoped

PERSON = "person"
COMPANY = "company"

# Kinds of tax identifier, by country.
ES_NIF = "es_nif"  # DNI of a Spanish citizen
ES_NIE = "es_nie"  # NIE of a foreign resident
ES_CIF = "es_cif"  # CIF of a legal entity
IT_CF = "it_cf"  # codice fiscale of a person
IT_PIVA = "it_piva"  # partita IVA (also a company's codice fiscale)
OTHER = "other"
TAX_ID_TYPES = (ES_NIF, ES_NIE, ES_CIF, IT_CF, IT_PIVA, OTHER)


class GroupClient(TenantScoped, db.Model):
    """A client belongs to a group; users of the group see and manage the client."""

    __tablename__ = "core_group_clients"

    group_id: Mapped[int] = mapped_column(ForeignKey("core_groups.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("core_clients.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Client(TenantScoped, Audited, db.Model):
    __tablename__ = "core_clients"
    __table_args__ = (
        UniqueConstraint("tenant_id", "tax_id"),
        Index("ix_core_clients_tenant_name", "tenant_id", "name", "id"),
        Index("ix_core_clients_tenant_active_name", "tenant_id", "active", "name", "id"),
        # The search's "contains" on PostgreSQL (pg_trgm, migration 0008); SQLite scans.
        Index(
            "ix_core_clients_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
            postgresql_with={"gin_pending_list_limit": 256},
        ).ddl_if(dialect="postgresql"),
    )
    __audit_type__ = "client"
    __audit_title__ = _l("Client")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "search_text", "created_by_id"})
    __audit_relations__ = ("groups",)
    __audit_fields__ = {
        "kind": _l("Type"),
        "tax_id": _l("Tax id"),
        "tax_id_type": _l("Kind of tax id"),
        "country": _l("Country"),
        "first_name": _l("First name"),
        "last_name": _l("Last names"),
        "company_name": _l("Company name"),
        "name": _l("Name"),
        "email": _l("E-mail"),
        "phone": _l("Phone"),
        "notes": _l("Notes"),
        "locale": _l("Language"),
        "active": _l("Active"),
        "groups": _l("Groups"),
    }
    __audit_values__ = {"kind": {PERSON: _l("Person"), COMPANY: _l("Company")}}

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=PERSON)
    tax_id: Mapped[str] = mapped_column(String(32))
    tax_id_type: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    first_name: Mapped[str] = mapped_column(String(120), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    company_name: Mapped[str] = mapped_column(String(250), default="")
    # Display name, and the sort key of the list (keyset pagination on (name, id)).
    name: Mapped[str] = mapped_column(String(320))
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    # The language mail and the portal use with this client; empty: the organisation's.
    locale: Mapped[str] = mapped_column(String(5), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Lower-case, accent-free name, tax id and e-mail: the same search on SQLite and PostgreSQL.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # use_alter: users point at clients too (portal accounts), and the cycle needs one side deferred.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL", use_alter=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    addresses = relationship(
        "ClientAddress", back_populates="client", cascade="all, delete-orphan", order_by="ClientAddress.id"
    )
    groups = relationship("Group", secondary="core_group_clients", back_populates="clients", order_by="Group.name")

    def audit_label(self) -> str:
        return f"{self.name} ({self.tax_id})"

    @classmethod
    def audit_label_sql(cls, c):
        return c.name + " (" + c.tax_id + ")"


class ClientAddress(TenantScoped, Audited, db.Model):
    __tablename__ = "core_client_addresses"
    __audit_type__ = "client_address"
    __audit_title__ = _l("Client address")
    __audit_exclude__ = frozenset({"created_at", "updated_at", "client_id"})
    __audit_fields__ = {
        "label": _l("Label"),
        "street": _l("Street and number"),
        "postal_code": _l("Postal code"),
        "city": _l("City"),
        "province": _l("Province"),
        "country": _l("Country"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(80), default="")
    street: Mapped[str] = mapped_column(String(250))
    postal_code: Mapped[str] = mapped_column(String(16), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    province: Mapped[str] = mapped_column(String(120), default="")
    country: Mapped[str] = mapped_column(String(2), default="ES")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client = relationship("Client", back_populates="addresses")

    def audit_label(self) -> str:
        return ", ".join(part for part in (self.street, self.postal_code, self.city) if part)

    def audit_parent(self) -> tuple[str, int] | None:
        return ("client", self.client_id)

    @classmethod
    def audit_label_sql(cls, c):
        # ", " before each non-empty part, then the first one taken off.
        parts = [
            case((func.coalesce(part, "") != "", ", " + part), else_="") for part in (c.street, c.postal_code, c.city)
        ]
        return func.substr(parts[0] + parts[1] + parts[2], 3)

    @classmethod
    def audit_parent_sql(cls, c):
        return ("client", c.client_id)

    @property
    def one_line(self) -> str:
        parts = [self.street, " ".join(p for p in (self.postal_code, self.city) if p), self.province, self.country]
        return ", ".join(p for p in parts if p)


class ClientImport(TenantScoped, db.Model):
    """One CSV import: the uploaded file, and the per-row report once the job has run."""

    __tablename__ = "core_client_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("core_groups.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(5), default="es")
    job_run_id: Mapped[int | None] = mapped_column(ForeignKey("core_job_runs.id", ondelete="SET NULL"))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    # [[row number, field, message], ...] in the language of the person who imported.
    problems: Mapped[list] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    job_run = relationship("JobRun")
    created_by = relationship("User")

    @property
    def rejected(self) -> int:
        return len({row for row, _field, _message in self.problems})
