"""Benchmark of the sweep at scale: 10,000 DEHú mailboxes swept by 1 and by 4 worker processes.

The DEHú simulator (HTTPS with client certificates, WS-Security checked on every envelope, in this
process) answers each request after ``--latency`` seconds (100 ms by default). A tenant has
``--mailboxes`` clients, each with its certificate (its PEM form stored, as after a first sync: this
measures the daily sweep) and a due DEHú mailbox. For each number of workers (``--workers 1,4``) the
mailboxes are made due, the cron's ``sedes.sweep`` opens a sweep of as many parts as workers, and
that many ``python worker.py --queues sync`` processes read them (each part ``CONCURRENCY`` mailboxes
at a time, the sede's ``max_concurrency`` set to ``--sede-limit`` over all of them). Printed for each:

- mailboxes per second, from the sweep's start to its end (every outcome written);
- CPU milliseconds per mailbox of the worker processes and their work-horses (not the simulator's);
- the ideal concurrency bound, ``min(workers * CONCURRENCY, sede limit) / (requests per mailbox *
  latency)`` (no CPU, no database, no handshakes), and our rate as a ratio of it;

then the speed-up of the last number of workers over the first.

    .venv/bin/python bench/sedes_sweep.py                          # 10,000 mailboxes, SQLite
    .venv/bin/python bench/sedes_sweep.py --mailboxes 1000         # a quick check
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/sedes_sweep.py
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, update

from bench.harness import bench_app
from bench.sedes_sync import cpu_seconds, populate, worker_environment


def start_workers(app, folder: Path, count: int, parts: int) -> list:
    """``count`` long-running ``worker.py --queues sync`` processes, once they all listen."""
    import subprocess

    environment = worker_environment(app)
    environment["VENTANILLA_SEDES_SWEEP_PARTS"] = str(parts)
    workers = []
    for n in range(count):
        log_path = folder / f"worker-{count}-{n}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "worker.py", "--queues", "sync", "--no-cron"],
                cwd=str(Path(__file__).resolve().parent.parent),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        workers.append((process, log_path))
    for process, log_path in workers:
        while "Listening on" not in log_path.read_text():
            if process.poll() is not None:
                raise SystemExit(f"a worker stopped:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
    return workers


def sweep_with(app, tenant_id: int, simulator, folder: Path, count: int) -> dict:
    """Make every mailbox due, start a sweep of ``count`` parts, and time it on ``count`` workers."""
    from core.extensions import db, utcnow
    from core.jobs.models import OPEN_STATUSES, JobRun
    from plugins.sedes import sweep
    from plugins.sedes.models import SedeMailbox, SedeSweep
    from tenants.context import tenant_context

    workers = start_workers(app, folder, count, count)
    try:
        with app.app_context():
            with tenant_context(tenant_id):
                db.session.execute(
                    update(SedeMailbox).values(next_sync_at=utcnow() - timedelta(minutes=1)),
                    execution_options={"synchronize_session": False},
                )
                db.session.commit()
            app.config["SEDES_SWEEP_PARTS"] = count
            cpu_before = sum(cpu_seconds(process.pid) for process, _log in workers)
            simulator_cpu_before = time.process_time()  # this process: the simulator (and this loop's polling)
            served_before = simulator.requests_served
            begin = time.monotonic()
            started = sweep.start_sweeps([tenant_id])
            while True:
                with tenant_context(tenant_id):
                    row = db.session.execute(
                        select(SedeSweep.total, SedeSweep.done, SedeSweep.errors, SedeSweep.finished_at)
                        .order_by(SedeSweep.id.desc())
                        .limit(1)
                    ).one()
                    db.session.rollback()
                if row.finished_at is not None:
                    break
                for process, log_path in workers:
                    if process.poll() is not None:
                        raise SystemExit(f"a worker stopped:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            elapsed = time.monotonic() - begin
            served = simulator.requests_served - served_before
            simulator_cpu = time.process_time() - simulator_cpu_before
            # Every part ends (one waiting for the others looks again every few seconds) and its
            # work-horse is reaped: only then is its CPU counted in its worker's.
            with tenant_context(tenant_id):
                run_ids = db.session.scalar(select(SedeSweep.run_ids).order_by(SedeSweep.id.desc()).limit(1))
                while db.session.scalar(
                    select(func.count(JobRun.id)).where(JobRun.id.in_(run_ids), JobRun.status.in_(OPEN_STATUSES))
                ):
                    db.session.rollback()
                    time.sleep(0.1)
                db.session.rollback()
            time.sleep(1.0)
            cpu = sum(cpu_seconds(process.pid) for process, _log in workers) - cpu_before
            with tenant_context(tenant_id):
                stamped = db.session.scalar(select(func.count(SedeMailbox.id)).where(SedeMailbox.sweep_id.is_not(None)))
                db.session.rollback()
    finally:
        for process, _log in workers:
            process.terminate()
        for process, _log in workers:
            process.wait(timeout=60)
    return {
        "runs": started["runs"],
        "total": row.total,
        "done": row.done,
        "errors": row.errors,
        "left": stamped,
        "elapsed": elapsed,
        "served": served,
        "cpu": cpu,
        "simulator_cpu": simulator_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the simulator waits per request")
    parser.add_argument("--workers", default="1,4", help="numbers of worker processes to compare, in order")
    parser.add_argument("--sede-limit", type=int, default=64, help="the sede's max_concurrency (every worker)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]

    from core.extensions import db
    from plugins.sedes import sync
    from plugins.sedes.models import Sede
    from plugins.sedes.simulator import DehuSimulator

    simulator_options = {"latency": args.latency, "auto_enrol": True, "demo_notifications": 1}
    with bench_app(["sedes"]) as app, DehuSimulator(**simulator_options) as simulator:
        started = time.monotonic()
        tenant_id, ids = populate(app, simulator, args.mailboxes, ready=True)
        with app.app_context():
            db.session.execute(update(Sede).where(Sede.code == "dehu").values(max_concurrency=args.sede_limit))
            db.session.commit()
        print(f"setup: {len(ids)} clients, certificates and mailboxes in {time.monotonic() - started:.1f} s")
        folder = Path(app.config["INSTANCE_PATH"])
        results = []
        for count in counts:
            results.append((count, sweep_with(app, tenant_id, simulator, folder, count)))

    concurrency = sync.CONCURRENCY
    print(
        f"mailboxes: {len(ids)}, latency {args.latency * 1000:.0f} ms per request, {concurrency} mailboxes at a time "
        f"per part, sede limit {args.sede_limit}"
    )
    rates = {}
    for count, numbers in results:
        per_mailbox = numbers["served"] / numbers["total"]
        bound = min(count * concurrency, args.sede_limit)
        ideal = bound / (per_mailbox * args.latency)
        rate = numbers["done"] / numbers["elapsed"]
        rates[count] = rate
        print(f"{count} worker(s), {numbers['runs']} part(s):")
        print(
            f"  swept {numbers['done']} of {numbers['total']} ({numbers['errors']} errors, {numbers['left']} left) "
            f"in {numbers['elapsed']:.1f} s: {rate:.1f} mailboxes/s"
        )
        print(f"  requests to DEHú: {numbers['served']} ({per_mailbox:.2f} per mailbox)")
        print(f"  worker CPU: {numbers['cpu'] * 1000 / numbers['done']:.1f} ms per mailbox ({numbers['cpu']:.1f} s)")
        print(
            f"  simulator CPU (this process, one core at most): {numbers['simulator_cpu'] * 1000 / numbers['done']:.1f}"
            f" ms per mailbox, busy {numbers['simulator_cpu'] / numbers['elapsed']:.0%} of the time"
        )
        print(
            f"  ideal bound min({count} x {concurrency}, {args.sede_limit}) / ({per_mailbox:.2f} x "
            f"{args.latency * 1000:.0f} ms) = {ideal:.1f} mailboxes/s; ours is {rate / ideal:.2f} of it"
        )
    first, last = counts[0], counts[-1]
    if first != last:
        print(f"speed-up of {last} workers over {first}: {rates[last] / rates[first]:.2f}x (ideal {last / first:.0f}x)")


if __name__ == "__main__":
    main()
