"""The history of background jobs: one ``JobRun`` per run, tenant by tenant."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db, utcnow
from tenants.isolation import TenantScoped

QUEUED = "queued"
RUNNING = "running"
RETRYING = "retrying"
FINISHED = "finished"
FAILED = "failed"
SKIPPED = "skipped"
OPEN_STATUSES = (QUEUED, RUNNING, RETRYING)
STATUSES = (QUEUED, RUNNING, RETRYING, FINISHED, FAILED, SKIPPED)
STATUS_LABELS = {
    QUEUED: _l("Queued"),
    RUNNING: _l("Running"),
    RETRYING: _l("Waiting to retry"),
    FINISHED: _l("Finished"),
    FAILED: _l("Failed"),
    SKIPPED: _l("Skipped"),
}
STATUS_STYLES = {
    QUEUED: "secondary",
    RUNNING: "primary",
    RETRYING: "warning",
    FINISHED: "success",
    FAILED: "danger",
    SKIPPED: "light",
}


class JobRun(TenantScoped, db.Model):
    __tablename__ = "core_job_runs"
    __table_args__ = (
        Index("ix_core_job_runs_tenant_id_id", "tenant_id", "id"),
        Index("ix_core_job_runs_tenant_name_status", "tenant_id", "name", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    progress_message: Mapped[str] = mapped_column(String(255), default="")
    arguments: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    scheduled: Mapped[bool] = mapped_column(default=False)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    rq_job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    started_by = relationship("User")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or utcnow()) - self.started_at
