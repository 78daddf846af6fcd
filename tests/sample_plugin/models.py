from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.api import Audited, TenantScoped, db


class SampleNote(TenantScoped, db.Model):
    __tablename__ = "sample_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")


class SampleProfile(TenantScoped, Audited, db.Model):
    """What the sample plugin keeps about a client: its client fields (one row per client)."""

    __tablename__ = "sample_client_profiles"
    __table_args__ = (UniqueConstraint("tenant_id", "client_id"),)
    __audit_type__ = "sample_profile"
    __audit_title__ = "Sample profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("core_clients.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(20), default="")
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    tier: Mapped[str] = mapped_column(String(10), default="")

    def audit_label(self) -> str:
        return self.reference or str(self.client_id)

    def audit_parent(self) -> tuple[str, int]:
        return ("client", self.client_id)
