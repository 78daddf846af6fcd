"""``python worker.py`` as it runs in production: a long-running process, not a burst worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import select

from tests.workers import IDLE_SECONDS, running_worker, wait_for, worker_environment


def _idle_until_the_cron_is_quiet(worker, seconds: float) -> None:
    """Idle, with ``seconds`` before the next minute: at each minute the worker's cron enqueues its
    sweeps, and a worker busy with them is not the idle one this test is about."""
    now = datetime.now(UTC)
    to_next_minute = 60 - now.second - now.microsecond / 1_000_000
    if to_next_minute < seconds:
        time.sleep(to_next_minute + 0.5)
    worker.wait_until_idle()


def _run_state(app, tenant_id: int, run_id: int) -> tuple[str, object]:
    from core.extensions import db
    from core.jobs.models import JobRun
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        row = db.session.execute(select(JobRun.status, JobRun.started_at).where(JobRun.id == run_id)).one()
        db.session.rollback()
        return row.status, row.started_at


def test_an_idle_worker_process_picks_up_a_new_job_at_once_and_logs_no_error(app, factory, tmp_path):
    from rq.job import Job

    from core.extensions import db
    from core.jobs.services import enqueue
    from core.redis_connection import get_redis
    from tenants.models import Tenant

    acme = factory.tenant("acme")
    with running_worker(worker_environment(app), tmp_path / "worker.log") as worker:

        def run_one() -> float:
            """Enqueue a job; seconds until the worker took it from its queue (as RQ records it)."""
            before = datetime.now(UTC)
            with app.app_context():
                run = enqueue(db.session.get(Tenant, acme.id), "sample.count_notes")
                run_id, rq_job_id = run.id, run.rq_job_id
            wait_for(lambda: _run_state(app, acme.id, run_id)[0] == "finished", 30, "the job to finish")
            with app.app_context():
                taken = Job.fetch(rq_job_id, connection=get_redis()).started_at
            taken = taken if taken.tzinfo else taken.replace(tzinfo=UTC)
            return (taken - before).total_seconds()

        run_one()  # the worker has used its connections for a job, as after any real job
        _idle_until_the_cron_is_quiet(worker, IDLE_SECONDS + 5)
        time.sleep(IDLE_SECONDS)  # idle, blocked in RQ's dequeue, past the socket timeout
        waited = run_one()
    problems = [line for line in worker.lines() if " ERROR " in line or "Timeout reading" in line]
    assert problems == [], "\n".join(problems)
    assert waited < 1.0, f"the idle worker took {waited:.2f} s to take a new job"
