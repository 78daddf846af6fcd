"""Background jobs on a real Redis with a real RQ worker: history, progress, retries, licences, cron."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import login


def _tenant(app, ref):
    from core.extensions import db
    from tenants.models import Tenant

    return db.session.get(Tenant, ref.id)


def _run(app, tenant, run_id):
    from core.extensions import db
    from core.jobs.models import JobRun
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        run = db.session.get(JobRun, run_id)
        return {c: getattr(run, c) for c in ("status", "progress", "result", "attempts", "error", "finished_at")}


def _enqueue(app, tenant, name="sample.count_notes", **arguments):
    from core.jobs.services import enqueue

    with app.app_context():
        return enqueue(_tenant(app, tenant), name, arguments).id


def test_a_job_runs_in_its_tenant_and_records_its_result(app, factory, run_jobs):
    acme = factory.tenant("acme")
    other = factory.tenant("other")
    factory.note(acme, "a")
    factory.note(other, "b")
    factory.note(other, "c")
    run_id = _enqueue(app, acme)
    assert _run(app, acme, run_id)["status"] == "queued"
    run_jobs()
    run = _run(app, acme, run_id)
    assert run["status"] == "finished" and run["progress"] == 100 and run["attempts"] == 1
    assert run["result"] == {"notes": 2, "tenant": "acme"}, "only the tenant's own two notes are counted"


def test_a_transient_failure_is_retried_and_the_work_is_done_once(app, factory, run_jobs):
    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme, fail_times=2)
    run_jobs()
    run = _run(app, acme, run_id)
    assert run["status"] == "finished" and run["attempts"] == 3
    assert run["error"] is None


def test_a_job_that_keeps_failing_transiently_ends_failed_after_its_retries(app, factory, run_jobs):
    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme, fail_times=99)
    run_jobs()
    run = _run(app, acme, run_id)
    retries = len(app.config["JOB_RETRY_INTERVALS"])
    assert run["status"] == "failed" and run["attempts"] == retries + 1
    assert "flaky on attempt" in run["error"] and run["finished_at"] is not None


def test_a_permanent_error_fails_at_once_without_retrying(app, factory, run_jobs):
    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme, unknown_argument=1)
    run_jobs()
    run = _run(app, acme, run_id)
    assert run["status"] == "failed" and run["attempts"] == 1
    assert "TypeError" in run["error"]


def test_retries_wait_with_back_off(app, factory):
    from rq import Queue

    from core.jobs.services import queue_name
    from core.redis_connection import get_redis

    acme = factory.tenant("acme")
    original = app.config["JOB_RETRY_INTERVALS"]
    app.config["JOB_RETRY_INTERVALS"] = [10, 60, 300]
    try:
        run_id = _enqueue(app, acme)
    finally:
        app.config["JOB_RETRY_INTERVALS"] = original
    with app.app_context():
        job = Queue(queue_name("default"), connection=get_redis()).fetch_job(f"ventanilla-run-{acme.id}-{run_id}")
    assert job.retries_left == 3 and job.retry_intervals == [10, 60, 300]


def test_a_job_whose_licence_was_revoked_while_queued_is_skipped(app, factory, run_jobs):
    from core.jobs.models import ERROR_PLUGIN_GONE
    from tenants import licensing

    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme)
    with app.app_context():
        licensing.set_licence(_tenant(app, acme), "sample", False)
    run_jobs()
    run = _run(app, acme, run_id)
    assert run["status"] == "skipped" and run["result"] is None
    assert run["error"] == ERROR_PLUGIN_GONE, "a code, translated when shown"


def test_a_job_of_a_plugin_the_tenant_lacks_is_refused(app, factory):
    from core.errors import DomainError

    bare = factory.tenant("bare", plugins=())
    with pytest.raises(DomainError):
        _enqueue(app, bare)


def test_a_run_delivered_twice_does_its_work_once(app, factory, run_jobs):
    from core.jobs.runner import run_job

    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme)
    run_jobs()
    with app.app_context():
        assert run_job(run_id, acme.id) is None
    assert _run(app, acme, run_id)["attempts"] == 1


def test_cron_fan_out_starts_a_run_per_licensed_active_tenant_and_never_doubles(app, factory, run_jobs):
    from core.extensions import db
    from core.jobs.models import JobRun
    from core.jobs.runner import fan_out
    from core.provisioning import set_status
    from tenants.context import all_tenants

    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    factory.tenant("bare", plugins=())
    sleepy = factory.tenant("sleepy")
    with app.app_context():
        set_status(_tenant(app, sleepy), suspended=True)
        assert fan_out("sample.count_notes") == 2
        assert fan_out("sample.count_notes") == 0, "runs still queued are not doubled"
    run_jobs()
    with app.app_context():
        assert fan_out("sample.count_notes") == 2
        with all_tenants():
            runs = db.session.scalars(select(JobRun).where(JobRun.name == "sample.count_notes")).all()
    assert sorted({r.tenant_id for r in runs}) == sorted([acme.id, beta.id])
    assert all(r.scheduled for r in runs)


def test_only_one_worker_leads_the_cron_schedule(app):
    from core.jobs.cron import CronLeader
    from core.redis_connection import get_redis

    with app.app_context():
        first = CronLeader(app, get_redis())
        second = CronLeader(app, get_redis())
        enqueued = first.tick()
        assert {job.name for job in enqueued} == set(), "cron jobs wait for their first time"
        assert first._hold_lease() and not second._hold_lease()
        assert second.tick() == []


def test_an_interval_job_is_enqueued_by_the_leader(app):
    from rq import Queue

    from core.jobs.cron import CronLeader
    from core.jobs.services import queue_name
    from core.redis_connection import get_redis

    with app.app_context():
        leader = CronLeader(app, get_redis())
        leader.scheduler.register(lambda: None, queue_name=queue_name("default"), interval=60, name="probe")
        enqueued = leader.tick()
        assert [job.name for job in enqueued] == ["probe"]
        assert Queue(queue_name("default"), connection=get_redis()).count == 1


def test_progress_is_visible_while_running_and_kept_afterwards(app, factory, run_jobs, client):
    from rq.job import Job

    from core.redis_connection import get_redis

    acme = factory.tenant("acme")
    for n in range(4):
        factory.note(acme, f"n{n}")
    factory.user(acme, "admin@acme.test", role_key="admin")
    run_id = _enqueue(app, acme)
    login(client, "acme", "admin@acme.test")
    with app.app_context():
        job = Job.fetch(f"ventanilla-run-{acme.id}-{run_id}", connection=get_redis())
        job.meta.update(progress=40, progress_message="2/5")
        job.save_meta()
    live = client.get(f"/acme/jobs/{run_id}/progress").get_json()
    assert live["progress"] == 40 and live["message"] == "2/5" and live["open"] is True
    row = client.get("/acme/jobs/").get_data(as_text=True).split(f'data-job-run="{run_id}"')[1].split("</tr>")[0]
    assert f'data-progress-url="/acme/jobs/{run_id}/progress" data-open="true"' in row and 'data-width="40"' in row
    run_jobs()
    done = client.get(f"/acme/jobs/{run_id}/progress").get_json()
    assert done["status"] == "finished" and done["progress"] == 100 and done["open"] is False
    assert done["result"] == {"notes": 5, "tenant": "acme"}
    page = client.get(f"/acme/jobs/{run_id}").get_data(as_text=True)
    assert 'data-progress-url="/acme/jobs/' in page and "5/5" in page


def test_the_job_list_pages_through_history_newest_first(app, factory, client):
    acme = factory.tenant("acme", language="en")
    factory.user(acme, "admin@acme.test", role_key="admin")
    ids = [_enqueue(app, acme) for _ in range(55)]
    login(client, "acme", "admin@acme.test")
    first = client.get("/acme/jobs/").get_data(as_text=True)
    assert f'href="/acme/jobs/{ids[-1]}"' in first and f'href="/acme/jobs/{ids[4]}"' not in first
    next_link = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(next_link).get_data(as_text=True)
    assert f'href="/acme/jobs/{ids[0]}"' in second and f'href="/acme/jobs/{ids[-1]}"' not in second
    assert "Count the sample notes" in first


def test_the_purge_job_removes_spent_links_and_old_history(app, factory, run_jobs):
    from datetime import timedelta

    import time_machine

    from core.extensions import utcnow

    acme = factory.tenant("acme")
    old = _enqueue(app, acme)
    run_jobs()
    with time_machine.travel(utcnow() + timedelta(days=91), tick=False):
        purge = _enqueue(app, acme, name="core.purge_expired")
        run_jobs()
        result = _run(app, acme, purge)["result"]
    assert result["runs_removed"] == 1
    with app.app_context():
        from core.extensions import db
        from core.jobs.models import JobRun
        from tenants.context import tenant_context

        with tenant_context(acme.id):
            assert db.session.get(JobRun, old) is None


def test_the_purge_job_removes_client_import_files_after_90_days(app, factory, run_jobs):
    from datetime import timedelta

    from core.clients.models import ClientImport
    from core.extensions import db, utcnow
    from tenants.context import tenant_context

    acme = factory.tenant("acme")
    other = factory.tenant("other")
    with app.app_context():
        for tenant, age in ((acme, 91), (acme, 89), (other, 91)):
            with tenant_context(tenant.id):
                db.session.add(
                    ClientImport(filename=f"{age}.csv", data=b"tax_id\n", created_at=utcnow() - timedelta(days=age))
                )
                db.session.commit()
    purge = _enqueue(app, acme, name="core.purge_expired")
    run_jobs()
    assert _run(app, acme, purge)["result"]["imports_removed"] == 1
    with app.app_context():
        with tenant_context(acme.id):
            assert [i.filename for i in db.session.query(ClientImport)] == ["89.csv"]
        with tenant_context(other.id):
            assert [i.filename for i in db.session.query(ClientImport)] == ["91.csv"]


def test_a_sweep_runs_once_for_the_tenants_that_have_it_and_keeps_no_run_history(app, factory):
    from core.extensions import db
    from core.jobs.cron import build_scheduler
    from core.jobs.models import JobRun
    from core.jobs.registry import JobSpec
    from core.jobs.runner import sweep
    from core.redis_connection import get_redis
    from tenants.context import all_tenants

    acme = factory.tenant("acme")
    factory.tenant("bare", plugins=())
    seen = []
    registry = app.extensions["ventanilla_jobs"]
    registry._specs["sample.sweep_probe"] = JobSpec(
        "sample.sweep_probe",
        lambda tenant_ids: seen.append(tenant_ids) or {"tenants": len(tenant_ids)},
        "sample",
        cron="* * * * *",
        timeout=1800,
        per_tenant=False,
    )
    try:
        with app.app_context():
            assert sweep("sample.sweep_probe") == {"tenants": 1}
            scheduler = build_scheduler(app, get_redis())
            with all_tenants():
                assert db.session.query(JobRun).count() == 0
        assert seen == [[acme.id]]
        probe = next(job for job in scheduler.get_jobs() if job.name == "ventanilla:sample.sweep_probe")
        assert probe.func is sweep
        assert probe.job_options["job_timeout"] == 1800  # not RQ's default of 180 s
    finally:
        del registry._specs["sample.sweep_probe"]


# --- runs that nothing will finish -----------------------------------------------------------


def _later(seconds: int):
    from datetime import timedelta

    from core.extensions import utcnow

    return utcnow() + timedelta(seconds=seconds)


def _settle(app, tenant, now=None):
    from core.jobs.services import settle_abandoned
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return settle_abandoned(now=now)


def _lose_rq_job(app, tenant, run_id):
    """What a Redis that lost its data (or a process killed before it enqueued) leaves behind."""
    from rq.job import Job

    from core.redis_connection import get_redis

    with app.app_context():
        Job.fetch(f"ventanilla-run-{tenant.id}-{run_id}", connection=get_redis()).delete()


def test_a_run_whose_rq_job_was_lost_is_settled_and_the_schedule_starts_it_again(app, factory, run_jobs):
    import time_machine

    from core.jobs.models import ERROR_ABANDONED
    from core.jobs.runner import fan_out

    acme = factory.tenant("acme", language="en")
    with app.app_context():
        assert fan_out("sample.count_notes") == 1
    lost = _run_ids(app, acme)[0]
    _lose_rq_job(app, acme, lost)
    with app.app_context():
        assert fan_out("sample.count_notes") == 0, "too young to judge: it may be between its commit and its enqueue"
    with time_machine.travel(_later(180), tick=False):
        with app.app_context():
            assert fan_out("sample.count_notes") == 1
        run_jobs()
    old = _run(app, acme, lost)
    assert old["status"] == "failed" and old["finished_at"] is not None
    assert old["error"].startswith(ERROR_ABANDONED)
    fresh = [run_id for run_id in _run_ids(app, acme) if run_id != lost]
    assert len(fresh) == 1 and _run(app, acme, fresh[0])["status"] == "finished"


def _run_ids(app, tenant):
    from core.extensions import db
    from core.jobs.models import JobRun
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return list(db.session.scalars(select(JobRun.id).order_by(JobRun.id)))


def test_a_lost_run_within_the_grace_period_is_left_open(app, factory):
    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme)
    _lose_rq_job(app, acme, run_id)
    assert _settle(app, acme, now=_later(60)) == 0
    assert _run(app, acme, run_id)["status"] == "queued"


def test_a_run_still_waiting_in_its_queue_is_left_open_however_long_it_waits(app, factory):
    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme)
    assert _settle(app, acme, now=_later(2 * 24 * 3600)) == 0
    assert _run(app, acme, run_id)["status"] == "queued"


def test_a_run_waiting_for_a_later_retry_is_left_open(app, factory, run_jobs):
    acme = factory.tenant("acme")
    original = app.config["JOB_RETRY_INTERVALS"]
    app.config["JOB_RETRY_INTERVALS"] = [600]
    try:
        run_id = _enqueue(app, acme, fail_times=1)
    finally:
        app.config["JOB_RETRY_INTERVALS"] = original
    run_jobs()
    assert _run(app, acme, run_id)["status"] == "retrying"
    assert _settle(app, acme, now=_later(3600)) == 0
    assert _run(app, acme, run_id)["status"] == "retrying"


def test_a_running_run_whose_machine_died_is_settled_once_past_its_timeout(app, factory):
    from rq import Queue
    from rq.job import Job
    from sqlalchemy import update

    from core.extensions import db, utcnow
    from core.jobs.models import RUNNING, JobRun
    from core.jobs.services import SETTLE_TIMEOUT_MARGIN, queue_name
    from core.redis_connection import get_redis
    from tenants.context import tenant_context

    acme = factory.tenant("acme")
    run_id = _enqueue(app, acme)
    timeout = app.extensions["ventanilla_jobs"].get("sample.count_notes").timeout
    with app.app_context():
        # A worker took the job and started it, as RQ records it, then its machine went away.
        redis = get_redis()
        job = Job.fetch(f"ventanilla-run-{acme.id}-{run_id}", connection=redis)
        Queue(queue_name("default"), connection=redis).remove(job.id)
        with redis.pipeline() as pipeline:
            job.prepare_for_execution("worker-on-a-dead-machine", pipeline)
            pipeline.execute()
        with tenant_context(acme.id):
            db.session.execute(update(JobRun).where(JobRun.id == run_id).values(status=RUNNING, started_at=utcnow()))
            db.session.commit()
    margin = int(SETTLE_TIMEOUT_MARGIN.total_seconds())
    assert _settle(app, acme, now=_later(timeout + margin - 60)) == 0, "RQ may still be killing it at its timeout"
    assert _run(app, acme, run_id)["status"] == "running"
    assert _settle(app, acme, now=_later(timeout + margin + 60)) == 1
    run = _run(app, acme, run_id)
    assert run["status"] == "failed" and "timeout" in run["error"]


def test_an_on_demand_run_whose_work_horse_was_killed_is_closed_by_the_sweep(app, factory, client):
    import os
    import signal

    import time_machine
    from rq import Worker
    from rq.job import Job

    from core.extensions import db
    from core.jobs.registry import JobSpec
    from core.jobs.runner import sweep
    from core.jobs.services import all_queues
    from core.redis_connection import get_redis

    acme = factory.tenant("acme", language="en")
    beta = factory.tenant("beta", language="en")
    factory.user(acme, "admin@acme.test", role_key="admin")
    registry = app.extensions["ventanilla_jobs"]
    registry._specs["sample.oom"] = JobSpec("sample.oom", lambda ctx: os.kill(os.getpid(), signal.SIGKILL), "sample")
    try:
        killed = _enqueue(app, acme, name="sample.oom")
        with app.app_context():
            db.engine.dispose()  # the forked work-horse opens its own connections
            # A forking worker, as in production; the kernel kills the work-horse (OOM) on every attempt.
            Worker(all_queues(), connection=get_redis()).work(burst=True, with_scheduler=False)
    finally:
        del registry._specs["sample.oom"]
    run = _run(app, acme, killed)
    assert run["status"] == "running" and run["attempts"] == 1 + len(app.config["JOB_RETRY_INTERVALS"])
    with app.app_context():
        rq_job = Job.fetch(f"ventanilla-run-{acme.id}-{killed}", connection=get_redis())
        assert rq_job.get_status() == "failed", "RQ saw the work-horse die; our run did not"
    waiting = _enqueue(app, beta)
    with time_machine.travel(_later(180), tick=False), app.app_context():
        assert sweep("core.jobs_settle") == {"settled": 1}
    assert _run(app, acme, killed)["status"] == "failed"
    assert _run(app, beta, waiting)["status"] == "queued", "a run still in its queue is not touched"
    login(client, "acme", "admin@acme.test")
    text = "The worker running this job stopped before it finished. Start it again if it is still needed."
    assert text in client.get(f"/acme/jobs/{killed}").get_data(as_text=True)
    assert client.get(f"/acme/jobs/{killed}/progress").get_json()["error"].startswith(text)


def test_work_shared_by_several_runs_shows_and_closes_on_one_run_from_any_process(app, factory, client):
    from core.extensions import db
    from core.jobs.services import finish_run, set_run_progress
    from tenants.context import tenant_context

    acme = factory.tenant("acme")
    factory.user(acme, "admin@acme.test", role_key="admin")
    run_id = _enqueue(app, acme)
    login(client, "acme", "admin@acme.test")
    with app.app_context(), tenant_context(acme.id):
        set_run_progress(run_id, 3, 12, "3 of 12")
        db.session.commit()
    live = client.get(f"/acme/jobs/{run_id}/progress").get_json()
    assert live["progress"] == 25 and live["message"] == "3 of 12" and live["open"] is True
    with app.app_context(), tenant_context(acme.id):
        assert finish_run(run_id, {"done": 12}) is True
        db.session.commit()
        assert finish_run(run_id, {"done": 0}) is False  # closed already: the first word stays
        set_run_progress(run_id, 1, 12, "late")  # a closed run's bar no longer moves
        db.session.commit()
    assert _run(app, acme, run_id) | {"finished_at": None} == {
        "status": "finished",
        "progress": 100,
        "result": {"done": 12},
        "attempts": 0,
        "error": None,
        "finished_at": None,
    }
