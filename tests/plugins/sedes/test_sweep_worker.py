"""The sweep on real, long-running ``worker.py`` processes (not burst workers), as in production:
three of them share a sweep of thirty mailboxes at the DEHú simulator, and one is killed with
SIGKILL (with its work-horse) while it holds a lease. The others take its mailboxes over once the
lease expires: the sweep ends with every mailbox written once, no mailbox ever read by two at the
same time, the sede never asked more than its limit at once, and one bar reaching the total."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from sqlalchemy import select, update

from tests.plugins.sedes.sweep_helpers import (
    listings_by_nif,
    mailbox_rows,
    office_with_mailboxes,
    overlapping,
    run_row,
    sweep_row,
)
from tests.plugins.sedes.sync_helpers import in_tenant, notifications_of
from tests.workers import running_worker, wait_for, worker_environment

MAILBOXES = 30
WORKERS = 3
SEDE_LIMIT = 3
SETTINGS = {  # each part reads 2 at a time: three workers could ask 6 at once, the sede allows 3
    "SEDES_SWEEP_PARTS": WORKERS,
    "SEDES_SWEEP_BATCH": 3,
    "SEDES_SWEEP_LEASE_SECONDS": 5,  # renewed every 1.7 s: room for a busy machine
    "SEDES_SWEEP_POLL_SECONDS": 0.2,
    "SEDES_SYNC_CONCURRENCY": 2,
}


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _leases(app, tenant) -> dict[int, str]:
    """The mailboxes leased now, with their lease's owner."""
    return {m: row["lease_owner"] for m, row in mailbox_rows(app, tenant).items() if row["lease_owner"]}


def test_a_worker_killed_mid_sweep_leaves_its_mailboxes_to_the_others(app, factory, dehu_simulator, tmp_path):
    from core.extensions import db
    from core.jobs.runner import sweep as run_sweep
    from plugins.sedes.models import Sede

    tenant, ids, cifs = office_with_mailboxes(app, factory, dehu_simulator, MAILBOXES)
    cif_of = dict(zip(ids, cifs, strict=True))
    with app.app_context():
        db.session.execute(update(Sede).where(Sede.code == "dehu").values(max_concurrency=SEDE_LIMIT))
        db.session.commit()
    dehu_simulator.latency = 0.15
    dehu_simulator.reset()

    environment = worker_environment(
        app,
        VENTANILLA_ALLOW_PRIVATE_HOSTS="1",  # the simulator listens on loopback
        **{f"VENTANILLA_{name}": value for name, value in SETTINGS.items()},
    )
    app.config.update(SETTINGS)
    victim = None
    try:
        with contextlib.ExitStack() as stack:
            # Each in a process group of its own, so that SIGKILL reaches its work-horse too; all
            # three start at once.
            workers = [
                stack.enter_context(
                    running_worker(
                        environment,
                        tmp_path / f"worker-{n}.log",
                        *("--queues", "sync", "--no-cron"),
                        idle=False,
                        own_group=True,
                    )
                )
                for n in range(WORKERS)
            ]
            for worker in workers:
                worker.wait_until_idle()
            with app.app_context():
                assert run_sweep("sedes.sweep") == {"mailboxes": MAILBOXES, "runs": WORKERS}

            # Kill a worker once the sweep is under way and while its work-horse holds a lease.
            held: set[int] = set()
            deadline = time.monotonic() + 60
            while victim is None:
                assert time.monotonic() < deadline, "no worker held a lease mid-sweep"
                if sweep_row(app, tenant)["done"] >= 6:
                    leases = _leases(app, tenant)
                    for worker in workers:
                        pid = worker.process.pid
                        mine = {m for m, owner in leases.items() if _parent(int(owner.split(":")[1])) == pid}
                        if mine:
                            worker.kill()
                            victim, held = worker, mine
                            break
                time.sleep(0.05)

            bars = []

            def finished() -> bool:
                row = sweep_row(app, tenant)
                bars.append(run_row(app, tenant, row["job_run_id"])["progress"])
                return row["finished_at"] is not None

            wait_for(finished, 120, "the sweep to finish without the killed worker")
    finally:
        for name in SETTINGS:
            app.config.pop(name, None)

    sweep = sweep_row(app, tenant)
    # Every mailbox written exactly once: a write counts on the sweep only under its own lease, and
    # unstamps the mailbox so that no part leases it again.
    assert (sweep["total"], sweep["done"], sweep["errors"], sweep["new"]) == (MAILBOXES, MAILBOXES, 0, MAILBOXES)
    rows = mailbox_rows(app, tenant)
    assert {(r["last_result"], r["sweep_id"], r["lease_owner"]) for r in rows.values()} == {("ok", None, None)}
    assert len(notifications_of(app, tenant)) == MAILBOXES
    # One bar for the whole sweep, never going back, at the total at the end, closed even if the
    # killed worker was the one running the sweep's own run.
    bar = run_row(app, tenant, sweep["job_run_id"])
    assert (bar["status"], bar["progress"]) == ("finished", 100)
    assert bars == sorted(bars) and bars[-1] == 100
    assert bar["progress_message"] == f"{MAILBOXES} of {MAILBOXES} mailboxes checked"
    # The simulator's own record: each mailbox listed once, except those the killed worker held
    # (it may have asked before dying; they were read again only after its lease expired) ...
    listed = listings_by_nif(dehu_simulator)
    assert sorted(listed) == sorted(cifs)
    twice = {nif for nif, requests in listed.items() if len(requests) > 1}
    assert twice <= {cif_of[m] for m in held}, "only the killed worker's mailboxes may have been asked twice"
    assert all(len(requests) <= 2 for requests in listed.values())
    # ... never two requests for one mailbox at the same time, and never more than the sede's limit.
    by_nif: dict[str, list] = {}
    for served in dehu_simulator.requests:
        by_nif.setdefault(served.nif, []).append(served)
    assert not [nif for nif, requests in by_nif.items() if overlapping(requests)]
    assert 2 <= dehu_simulator.most_in_flight("dehu") <= SEDE_LIMIT
    # The survivors did it all, calmly.
    with in_tenant(app, tenant.id):
        from core.jobs.models import JobRun

        statuses = dict(
            db.session.execute(select(JobRun.id, JobRun.status).where(JobRun.id.in_(sweep["run_ids"]))).all()
        )
    assert list(statuses.values()).count("running") <= 1, "only the killed worker's part stays open"
    for worker in workers:
        if worker is not victim:
            problems = [line for line in worker.lines() if " ERROR " in line or "Traceback" in line]
            assert problems == [], "\n".join(problems)
