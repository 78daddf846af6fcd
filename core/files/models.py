"""The record of an accepted upload. The bytes live in the tenant's ``FileStore``, keyed by sha256."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db, utcnow
from tenants.isolation import TenantScoped

IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})


class StoredFile(TenantScoped, db.Model):
    """One accepted upload. Several rows may share one ``key`` (the same bytes uploaded twice).

    ``content_type`` and ``extension`` were decided from the stored bytes; ``original_name`` is a
    sanitised display name (never used as a path); ``kind`` is the upload kind it was accepted as.
    """

    __tablename__ = "core_stored_files"
    __table_args__ = (Index("ix_core_stored_files_tenant_id_key", "tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    extension: Mapped[str] = mapped_column(String(10))
    original_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column()
    height: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"), index=True)

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES

    def __repr__(self) -> str:
        return f"<StoredFile {self.id} {self.content_type} {self.key[:12]}>"
