"""``python worker.py`` as it runs in production: a long-running process, not a burst worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from core.config import PROJECT_ROOT

# redis-py's default socket timeout: a socket left waiting longer than this used to fail.
REDIS_SOCKET_TIMEOUT = 5


def _worker_environment(app, database, redis_url) -> dict:
    """The settings of the suite's app, as a deployment gives them to ``worker.py``."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database["app_url"],
            "DATABASE_MIGRATION_URL": database["owner_url"],
            "DATABASE_APP_ROLE": database["app_role"] or "",
            "REDIS_URL": redis_url,
            "VENTANILLA_QUEUE_PREFIX": app.config["QUEUE_PREFIX"],
            "VENTANILLA_INSTANCE": app.config["INSTANCE_PATH"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "VENTANILLA_EXTRA_PLUGINS": "tests.sample_plugin",
            "VENTANILLA_PUBLIC_URL": app.config["PUBLIC_URL"],
            "VENTANILLA_ALLOW_TEST_EMAIL": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"waited {seconds} s for {what}")


def _run_state(app, tenant_id: int, run_id: int) -> tuple[str, object]:
    from core.extensions import db
    from core.jobs.models import JobRun
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        row = db.session.execute(select(JobRun.status, JobRun.started_at).where(JobRun.id == run_id)).one()
        db.session.rollback()
        return row.status, row.started_at


def test_an_idle_worker_process_picks_up_a_new_job_at_once_and_logs_no_error(
    app, factory, database, redis_url, tmp_path
):
    from core.extensions import db
    from core.jobs.services import enqueue
    from tenants.models import Tenant

    acme = factory.tenant("acme")
    log_path = Path(tmp_path) / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "worker.py")],
            cwd=str(PROJECT_ROOT),
            env=_worker_environment(app, database, redis_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            _wait_for(lambda: "Listening on" in log_path.read_text(), 60, "the worker to listen")
        except AssertionError as error:
            raise AssertionError(f"{error}; its log:\n{log_path.read_text()[-3000:]}") from None

        def run_one() -> float:
            """Enqueue a job; seconds until the worker started it."""
            with app.app_context():
                run_id = enqueue(db.session.get(Tenant, acme.id), "sample.count_notes").id
            enqueued = time.monotonic()
            _wait_for(lambda: _run_state(app, acme.id, run_id)[0] == "finished", 30, "the job to finish")
            return time.monotonic() - enqueued

        run_one()  # the worker has used its connections for a job, as after any real job
        time.sleep(REDIS_SOCKET_TIMEOUT + 3)  # idle, blocked in RQ's dequeue, past the socket timeout
        waited = run_one()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    log = log_path.read_text()
    problems = [line for line in log.splitlines() if " ERROR " in line or "Timeout reading" in line]
    assert problems == [], "\n".join(problems)
    assert waited < 1.0, f"the idle worker took {waited:.2f} s to run a new job"
