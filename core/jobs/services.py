"""Starting jobs and reading their state; what views and other services call."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from rq import Queue, Retry
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from core.errors import DomainError
from core.extensions import db, utcnow
from core.jobs.models import (
    ERROR_ABANDONED,
    ERROR_NOT_ENQUEUED,
    FAILED,
    FINISHED,
    OPEN_STATUSES,
    JobRun,
    error_value,
)
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


def enqueue(
    tenant, name: str, arguments: dict | None = None, *, started_by=None, scheduled=False, urgent=False
) -> JobRun:
    """Record a run of job ``name`` for ``tenant`` and put it on its queue.

    Refuses a job of a plugin the tenant does not have. ``arguments`` must be JSON values.
    ``urgent``: a person waits for it (a button pressed, not a schedule): it goes to the front of
    its queue, ahead of whatever backlog is there.
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
                at_front=urgent,
                job_timeout=spec.timeout,
                description=f"{name} (tenant {tenant.slug}, run {run.id})",
            )
        except Exception as exc:
            run.status = FAILED
            run.error = error_value(ERROR_NOT_ENQUEUED, f"{type(exc).__name__}: {exc}")
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


# A run younger than this is never judged: it may sit between its commit and its RQ enqueue.
SETTLE_GRACE = timedelta(seconds=120)
# RQ kills a work-horse at the job's timeout; a job still "started" this long after it is orphaned.
SETTLE_TIMEOUT_MARGIN = timedelta(seconds=300)
SETTLE_BATCH = 500
# RQ is done with the job, so nothing will ever close our run.
_RQ_ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def _why_abandoned(row, job: Job | None, now: datetime) -> str | None:
    """The technical reason an open run will never be finished by a worker, or None if it may still be."""
    if job is None:
        return "RQ job not found"
    status = job.get_status(refresh=False)
    if status in _RQ_ENDED:
        # Our runner settles the run before RQ records the end, so an open run here was cut short.
        return f"RQ job {status.value} while the run was {row.status}"
    if status == JobStatus.STARTED:
        spec = registry().get(row.name)
        timeout = spec.timeout if spec is not None else JobSpec.timeout
        since = job.started_at or row.started_at or row.created_at
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        if now - since > timedelta(seconds=timeout) + SETTLE_TIMEOUT_MARGIN:
            return f"RQ job started at {since.isoformat(timespec='seconds')}, past its timeout of {timeout} s"
    # Queued, scheduled (a retry), deferred: a worker will still take it, however long the queue.
    return None


def settle_abandoned(name: str | None = None, now: datetime | None = None) -> int:
    """Mark failed the open runs that no worker will ever finish; returns how many.

    Looks at the current tenant's runs (every tenant's inside ``all_tenants()``), of job
    ``name`` or of every job, created more than ``SETTLE_GRACE`` ago. A run is abandoned when
    its RQ job is gone from Redis, has ended (failed, stopped, canceled: its work-horse was
    killed) while the run is open, or is still "started" long past the job's timeout (its
    machine died). A run whose RQ job waits in a queue or for a retry is left alone.
    """
    now = now or utcnow()
    stmt = select(JobRun.id, JobRun.name, JobRun.status, JobRun.rq_job_id, JobRun.created_at, JobRun.started_at).where(
        JobRun.status.in_(OPEN_STATUSES), JobRun.created_at < now - SETTLE_GRACE
    )
    if name is not None:
        stmt = stmt.where(JobRun.name == name)
    settled = 0
    after = 0
    while True:
        rows = db.session.execute(stmt.where(JobRun.id > after).order_by(JobRun.id).limit(SETTLE_BATCH)).all()
        if not rows:
            break
        settled += _settle_batch(rows, now)
        if len(rows) < SETTLE_BATCH:
            break
        after = rows[-1].id
    return settled


def _settle_batch(rows, now: datetime) -> int:
    job_ids = [row.rq_job_id for row in rows if row.rq_job_id]
    jobs = dict(zip(job_ids, Job.fetch_many(job_ids, connection=get_redis()), strict=True))
    by_reason: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        reason = _why_abandoned(row, jobs.get(row.rq_job_id), now)
        if reason is not None:
            by_reason[reason].append(row.id)
    settled = 0
    for reason, ids in by_reason.items():
        # Only while still open: a worker that ended the run meanwhile has the last word.
        settled += db.session.execute(
            update(JobRun)
            .where(JobRun.id.in_(ids), JobRun.status.in_(OPEN_STATUSES))
            .values(status=FAILED, error=error_value(ERROR_ABANDONED, reason), finished_at=now)
        ).rowcount
    db.session.commit()
    return settled


def settle_abandoned_runs(tenant_ids: list[int]) -> dict:
    """The ``core.jobs_settle`` sweep: settle abandoned runs of every job, on-demand ones too.

    Runs of every tenant, not only ``tenant_ids``: a run of a suspended organisation that no
    worker will finish must not stay open either.
    """
    return {"settled": settle_abandoned()}


def set_run_progress(run_id: int, done: int, total: int, message: str = "") -> None:
    """Write the progress of a run of the current tenant from any process, not only its worker's:
    work shared by several runs shows on one of them (the caller commits). The run's own worker
    must not publish progress in ``job.meta`` too, which ``live_progress`` would read first."""
    percent = max(0, min(100, int(100 * done / total) if total else 100))
    db.session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status.in_(OPEN_STATUSES))
        .values(progress=percent, progress_message=message[:255])
        .execution_options(synchronize_session=False)
    )


def finish_run(run_id: int, result: dict | None = None) -> bool:
    """Close an open run of the current tenant as finished, from outside its worker (its work was
    finished by others after its worker died); returns whether it was still open. The caller commits."""
    closed = db.session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status.in_(OPEN_STATUSES))
        .values(status=FINISHED, progress=100, result=result, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(closed)


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
