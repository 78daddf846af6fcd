"""Starting jobs and reading their state; what views and other services call."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import select

from core.errors import DomainError
from core.extensions import db, utcnow
from core.jobs.models import FAILED, OPEN_STATUSES, JobRun
from core.jobs.registry import QUEUES, JobRegistry, JobSpec
from core.redis_connection import get_redis
from tenants.context import tenant_context
from tenants.licensing import is_enabled


def registry() -> JobRegistry:
    return current_app.extensions["ventanilla_jobs"]


def queue_name(name: str) -> str:
    return f"{current_app.config['QUEUE_PREFIX']}{name}"


def get_queue(name: str) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(queue_name(name), connection=get_redis())


def all_queues() -> list[Queue]:
    return [get_queue(name) for name in QUEUES]


def _retry() -> Retry:
    intervals = list(current_app.config["JOB_RETRY_INTERVALS"])
    return Retry(max=len(intervals), interval=intervals)


def enqueue(tenant, name: str, arguments: dict | None = None, *, started_by=None, scheduled=False) -> JobRun:
    """Record a run of job ``name`` for ``tenant`` and put it on its queue.

    Refuses a job of a plugin the tenant does not have. ``arguments`` must be JSON values.
    """
    spec: JobSpec | None = registry().get(name)
    if spec is None:
        raise ValueError(f"unknown job {name!r}")
    if not is_enabled(tenant, spec.plugin):
        raise DomainError(_l("This feature is not enabled for your organisation."))
    with tenant_context(tenant):
        run = JobRun(
            name=name,
            queue=spec.queue,
            arguments=dict(arguments or {}),
            started_by_id=getattr(started_by, "id", None),
            scheduled=scheduled,
        )
        db.session.add(run)
        db.session.flush()
        # Deterministic: the worker can find the run even before this transaction's id is read back.
        run.rq_job_id = f"ventanilla-run-{tenant.id}-{run.id}"
        db.session.commit()
        try:
            get_queue(spec.queue).enqueue(
                "core.jobs.runner.run_job",
                run.id,
                tenant.id,
                job_id=run.rq_job_id,
                retry=_retry(),
                job_timeout=spec.timeout,
                description=f"{name} (tenant {tenant.slug}, run {run.id})",
            )
        except Exception as exc:
            run.status = FAILED
            run.error = f"could not enqueue: {type(exc).__name__}: {exc}"
            run.finished_at = utcnow()
            db.session.commit()
            raise
        return run


def has_open_run(name: str) -> bool:
    """Whether a run of ``name`` is queued or running for the current tenant."""
    return (
        db.session.scalar(select(JobRun.id).where(JobRun.name == name, JobRun.status.in_(OPEN_STATUSES)).limit(1))
        is not None
    )


def live_progress(run: JobRun) -> tuple[int, str]:
    """Progress of a run: what the worker published in Redis while running, else the stored value."""
    if run.is_open and run.rq_job_id:
        try:
            job = Job.fetch(run.rq_job_id, connection=get_redis())
        except Exception:
            return run.progress, run.progress_message
        meta = job.get_meta(refresh=True) if hasattr(job, "get_meta") else job.meta
        if "progress" in meta:
            return int(meta["progress"]), str(meta.get("progress_message", ""))
    return run.progress, run.progress_message
