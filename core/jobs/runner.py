"""What the worker executes: every run enters its tenant's context and keeps its ``JobRun`` true."""

from __future__ import annotations

import logging
import os

from flask import Flask, current_app, has_app_context
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.extensions import db, utcnow
from core.jobs import TransientJobError
from core.jobs.models import ERROR_PLUGIN_GONE, FAILED, FINISHED, RETRYING, RUNNING, SKIPPED, JobRun
from core.plugins import host
from tenants.context import all_tenants, tenant_context
from tenants.models import TENANT_ACTIVE, Tenant, TenantPlugin

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (
    TransientJobError,
    ConnectionError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
)

_engine_pid: int | None = None
_worker_app: Flask | None = None


def use_app(app: Flask) -> None:
    """The application jobs run in, outside an application context: ``worker.py`` hands it over
    (and its forked work-horses inherit it)."""
    global _worker_app
    _worker_app = app


def job_application() -> Flask:
    if has_app_context():
        return current_app._get_current_object()
    if _worker_app is None:
        raise RuntimeError("no application for jobs: the worker must call core.jobs.runner.use_app(app)")
    return _worker_app


def _fresh_connections_after_fork() -> None:
    # A forked work-horse must not reuse the pooled connections of its parent.
    global _engine_pid
    if _engine_pid != os.getpid():
        if _engine_pid is not None:
            db.engine.dispose(close=False)
        _engine_pid = os.getpid()


class JobContext:
    """What a job function receives as its first argument."""

    def __init__(self, run: JobRun, tenant: Tenant) -> None:
        self.run = run
        self.tenant = tenant
        self._rq_job = get_current_job()

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """``done`` of ``total`` steps, or a percentage when ``total`` is None."""
        percent = int(done if total is None else (100 * done / total if total else 100))
        percent = max(0, min(100, percent))
        self.run.progress = percent
        self.run.progress_message = message[:255]
        if self._rq_job is not None:
            self._rq_job.meta["progress"] = percent
            self._rq_job.meta["progress_message"] = message[:255]
            self._rq_job.save_meta()


def _licence_holds(tenant: Tenant | None, plugin: str) -> bool:
    if tenant is None or tenant.status != TENANT_ACTIVE:
        return False
    if plugin == "core":
        return True
    row = db.session.scalar(select(TenantPlugin).where(TenantPlugin.plugin == plugin))
    return plugin in host().installed and row is not None and row.licensed and row.enabled


def run_job(run_id: int, tenant_id: int):
    """Execute one ``JobRun``. Transient errors are re-raised for RQ to retry with back-off."""
    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        with tenant_context(tenant_id):
            return _execute(app, run_id, tenant_id)


def _execute(app: Flask, run_id: int, tenant_id: int):
    run = db.session.get(JobRun, run_id)
    if run is None or run.status in (FINISHED, SKIPPED, FAILED):
        # Delivered twice, or already settled: doing it again could duplicate its effects.
        return None
    spec = app.extensions["ventanilla_jobs"].get(run.name)
    tenant = db.session.get(Tenant, tenant_id)
    if spec is None or not _licence_holds(tenant, spec.plugin):
        run.status = SKIPPED
        run.error = ERROR_PLUGIN_GONE
        run.finished_at = utcnow()
        db.session.commit()
        return None
    run.status = RUNNING
    run.attempts += 1
    run.started_at = run.started_at or utcnow()
    run.error = None
    db.session.commit()
    context = JobContext(run, tenant)
    try:
        result = spec.func(context, **(run.arguments or {}))
    except Exception as exc:
        _record_failure(run_id, exc)
        raise
    run = db.session.get(JobRun, run_id)
    run.status = FINISHED
    run.progress = 100
    run.result = result if isinstance(result, dict) else ({"value": result} if result is not None else None)
    run.finished_at = utcnow()
    db.session.commit()
    return result


def _record_failure(run_id: int, exc: Exception) -> None:
    db.session.rollback()
    rq_job = get_current_job()
    transient = isinstance(exc, TRANSIENT_ERRORS)
    retrying = bool(transient and rq_job is not None and rq_job.retries_left)
    if not transient and rq_job is not None:
        # A mistake in the data or the code will not heal by waiting: fail at once.
        rq_job.retries_left = 0
    run = db.session.get(JobRun, run_id)
    run.status = RETRYING if retrying else FAILED
    run.error = f"{type(exc).__name__}: {exc}"[:4000]
    if not retrying:
        run.finished_at = utcnow()
    db.session.commit()
    log.warning("job run %s %s: %s", run_id, run.status, run.error)


def _tenants_with(plugin: str) -> list[Tenant]:
    """Active tenants that have ``plugin`` licensed and enabled (every active tenant for core)."""
    with all_tenants():
        tenants = db.session.scalars(select(Tenant).where(Tenant.status == TENANT_ACTIVE).order_by(Tenant.id)).all()
        if plugin == "core":
            return list(tenants)
        licensed = set(
            db.session.scalars(
                select(TenantPlugin.tenant_id).where(
                    TenantPlugin.plugin == plugin,
                    TenantPlugin.licensed.is_(True),
                    TenantPlugin.enabled.is_(True),
                )
            )
        )
    return [t for t in tenants if t.id in licensed]


def sweep(name: str):
    """Cron entry point of a sweep: one run across the tenants that have its plugin."""
    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        spec = app.extensions["ventanilla_jobs"].get(name)
        if spec is None or spec.per_tenant:
            return None
        tenant_ids = [t.id for t in _tenants_with(spec.plugin)]
        with all_tenants():
            return spec.func(tenant_ids)


def fan_out(name: str) -> int:
    """Cron entry point: start job ``name`` for every active tenant that has its plugin.

    A tenant whose previous run of the same job is still open is left alone, so a slow run
    is never doubled by the next tick. Runs of the job that nothing will ever finish (their
    worker died, or their RQ job was lost) are settled first, so they do not block it forever.
    """
    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        from core.jobs.services import enqueue, has_open_run, settle_abandoned

        spec = app.extensions["ventanilla_jobs"].get(name)
        if spec is None:
            return 0
        with all_tenants():
            # One query over every tenant's open runs of this job, not one per tenant.
            settle_abandoned(name)
        started = 0
        for tenant in _tenants_with(spec.plugin):
            with tenant_context(tenant):
                if has_open_run(name):
                    continue
            enqueue(tenant, name, scheduled=True)
            started += 1
        return started
