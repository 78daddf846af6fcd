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

# What the platform itself writes into ``JobRun.error``: a stable code, optionally followed by a
# newline and a technical detail. The text is translated when shown, in the reader's language.
ERROR_PLUGIN_GONE = "core.jobs:plugin_gone"
ERROR_NOT_ENQUEUED = "core.jobs:not_enqueued"
ERROR_ABANDONED = "core.jobs:abandoned"
ERROR_TEXTS = {
    ERROR_PLUGIN_GONE: _l("The organisation no longer has this feature, or the job no longer exists."),
    ERROR_NOT_ENQUEUED: _l("The job could not be put on its queue. Start it again later."),
    ERROR_ABANDONED: _l(
        "The worker running this job stopped before it finished. Start it again if it is still needed."
    ),
}


def error_value(code: str, detail: str = "") -> str:
    """What to store in ``JobRun.error`` for one of the ``ERROR_*`` codes."""
    return f"{code}\n{detail}"[:4000] if detail else code


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
    def error_text(self) -> str:
        """The error to show: the translated text of a platform code (and its detail), else the raw error."""
        if not self.error:
            return ""
        code, _newline, detail = self.error.partition("\n")
        text = ERROR_TEXTS.get(code)
        if text is None:
            return self.error
        return f"{text}\n{detail}" if detail else str(text)

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or utcnow()) - self.started_at
