"""Benchmark of the sedes sync: 2,000 DEHú mailboxes read by a real worker process.

The DEHú simulator (HTTPS with client certificates, WS-Security checked on every envelope) answers
each request after ``--latency`` seconds (100 ms by default) and holds ``--notifications`` pending
notifications for every NIF. A tenant has ``--mailboxes`` clients, each with its own certificate
(PKCS#12 encrypted at rest) and a DEHú mailbox; the sweep shares them among its parts (``sweep.py``)
and one ``python worker.py --queues sync`` process (``--workers N``: N of them) reads them all (each
part ``CONCURRENCY`` mailboxes at a time; ``bench/sedes_sweep.py`` compares numbers of workers). Two
rounds: the first sync of every mailbox (it opens each PKCS#12 once and keeps its PEM form) and the
next one (the daily sync). Printed for each:

- mailboxes per second, from the first run queued to the last one finished;
- CPU milliseconds per mailbox spent by the worker processes and their work-horses (our code and the
  libraries it calls: RQ, SQLAlchemy, TLS, XML signing, PKCS#12; not the simulator's);
- the ideal bound for that concurrency, ``concurrency / (requests per mailbox * latency)`` (no
  CPU, no database, no handshakes), and our rate as a ratio of it.

    .venv/bin/python bench/sedes_sync.py                     # SQLite in a temporary folder
    .venv/bin/python bench/sedes_sync.py --mailboxes 500 --latency 0.05 --workers 4
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/sedes_sync.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, update

from bench.harness import bench_app

PASSWORD = "bench-pkcs12"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its children it has waited for (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def cif(number: int) -> str:
    from stdnum.es import cif as cif_check

    digits = f"{number:07d}"
    return f"B{digits}{cif_check.calc_check_digits('B' + digits)[1]}"


def populate(app, simulator, count: int, *, ready: bool = False) -> tuple[int, list[int]]:
    """A tenant with ``count`` clients, each with a certificate of the simulator's CA and a mailbox;
    ``ready``: with the certificate's PEM form stored too, as after its first sync."""
    from core.api.testing import Factory
    from core.clients.models import Client
    from core.clients.services import fold
    from core.extensions import db, utcnow
    from plugins.sedes import credentials
    from plugins.sedes.catalogue import ensure_catalogue
    from plugins.sedes.models import Sede, SedeCertificate, SedeMailbox
    from plugins.sedes.sync import PEM_SEPARATOR
    from tenants.context import tenant_context

    tenant = Factory(app).tenant("bench", plugins=["sedes"])
    ca = simulator.ca
    ca.reuse_keys = True  # one RSA key for every client: issuing 2,000 keys would dominate the setup
    with app.app_context():
        ensure_catalogue()
        sede = db.session.get(Sede, "dehu")
        sede.base_url, sede.ca_certificates = simulator.url, simulator.ca_pem
        db.session.commit()
        with tenant_context(tenant.id):
            clients = []
            for n in range(count):
                tax_id = cif(2000000 + n)
                name = f"Empresa {n:05d} SL"
                clients.append(
                    Client(
                        kind="company",
                        tax_id=tax_id,
                        tax_id_type="es_cif",
                        country="ES",
                        company_name=name,
                        name=name,
                        email="",
                        active=True,
                        search_text=fold(f"{name} {tax_id}"),
                    )
                )
            db.session.add_all(clients)
            db.session.flush()
            certificates = []
            for client in clients:
                issued = ca.sello(client.tax_id, client.name.upper())
                # Described from the certificate itself: opening 2,000 PKCS#12 here would take minutes.
                kind, holder_name, holder_nif, entity_nif, _entity_name = credentials.describe(issued.cert)
                certificates.append(
                    SedeCertificate(
                        client_id=client.id,
                        kind=kind.value,
                        holder_name=holder_name,
                        holder_nif=holder_nif,
                        entity_nif=entity_nif,
                        issuer=issued.cert.issuer.rfc4514_string()[:300],
                        serial=issued.serial,
                        fingerprint=issued.fingerprint,
                        not_before=issued.cert.not_valid_before_utc,
                        not_after=issued.cert.not_valid_after_utc,
                        pkcs12=issued.pkcs12(PASSWORD),
                        password=PASSWORD,
                        credential_pem=(
                            PEM_SEPARATOR.join((issued.cert_pem, issued.key_pem, issued.chain_pem)) if ready else None
                        ),
                    )
                )
            db.session.add_all(certificates)
            db.session.flush()
            due = utcnow() - timedelta(minutes=1)
            mailboxes = [
                SedeMailbox(client_id=client.id, sede_code="dehu", certificate_id=certificate.id, next_sync_at=due)
                for client, certificate in zip(clients, certificates, strict=True)
            ]
            db.session.add_all(mailboxes)
            db.session.commit()
            return tenant.id, [m.id for m in mailboxes]


def worker_environment(app) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "VENTANILLA_INSTANCE": app.config["INSTANCE_PATH"],
            "VENTANILLA_PLUGINS": "sedes",
            "SECRET_KEY": app.config["SECRET_KEY"],
            "VENTANILLA_PUBLIC_URL": app.config["PUBLIC_URL"],
            "VENTANILLA_ALLOW_PRIVATE_HOSTS": "1",  # the simulator listens on loopback
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the simulator waits per request")
    parser.add_argument("--notifications", type=int, default=2, help="pending notifications per NIF")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (the runs are shared out)")
    args = parser.parse_args()

    from plugins.sedes import sync
    from plugins.sedes.models import DEFAULT_MAX_CONCURRENCY
    from plugins.sedes.simulator import DehuSimulator

    # The simulator in this process, its state in memory (as the tests use it); the worker is a process of its own.
    simulator_options = {"latency": args.latency, "auto_enrol": True, "demo_notifications": args.notifications}
    with bench_app(["sedes"]) as app, DehuSimulator(**simulator_options) as simulator:
        started = time.monotonic()
        tenant_id, ids = populate(app, simulator, args.mailboxes)
        print(f"setup: {args.mailboxes} clients, certificates and mailboxes in {time.monotonic() - started:.1f} s")
        folder = Path(app.config["INSTANCE_PATH"])
        workers = [start_worker(app, folder / f"worker-{n}.log") for n in range(args.workers)]
        try:
            rounds = [
                sweep_round(app, tenant_id, workers, simulator, label)
                for label in ("first sync (opens each PKCS#12)", "next sync (the daily one)")
            ]
        finally:
            for worker, _log in workers:
                worker.terminate()
            for worker, _log in workers:
                worker.wait(timeout=30)
    count = len(ids)
    concurrency = sync.CONCURRENCY
    # A worker beyond the sweep's parts has nothing to do; the sede's limit caps them all.
    busy = min(args.workers, rounds[0][1]["runs"])
    bound = min(concurrency * busy, DEFAULT_MAX_CONCURRENCY)
    print(
        f"mailboxes: {count}, {args.workers} worker process(es) ({busy} busy), {concurrency} mailboxes at a time "
        f"per run (concurrency {concurrency * busy})"
    )
    for label, numbers in rounds:
        per_mailbox = numbers["served"] / count
        ideal = bound / (per_mailbox * args.latency)
        rate = count / numbers["elapsed"]
        print(f"{label}:")
        print(
            f"  runs {numbers['runs']} ({numbers['finished']} finished); mailboxes {numbers['outcomes']}; "
            f"notifications stored {numbers['stored']}"
        )
        latency_ms = args.latency * 1000
        print(f"  requests to DEHú: {numbers['served']} ({per_mailbox:.2f} per mailbox, {latency_ms:.0f} ms each)")
        print(f"  sync rate: {rate:.1f} mailboxes/s ({numbers['elapsed']:.1f} s)")
        print(f"  worker CPU: {numbers['cpu'] * 1000 / count:.1f} ms per mailbox ({numbers['cpu']:.1f} s in all)")
        simulator_share = numbers["simulator_cpu"] / numbers["elapsed"]
        print(
            f"  simulator CPU (one process, one core at most): {numbers['simulator_cpu'] * 1000 / count:.1f} ms "
            f"per mailbox, busy {simulator_share:.0%} of the time"
        )
        print(
            f"  ideal bound at concurrency {bound} (capped by the sede's limit): {ideal:.1f} mailboxes/s "
            f"(concurrency / (requests per mailbox * latency)); ours is {rate / ideal:.2f} of it"
        )


def start_worker(app, log_path: Path) -> tuple[subprocess.Popen, Path]:
    """A ``python worker.py --queues sync`` process, once it listens."""
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "worker.py", "--queues", "sync", "--no-cron"],
            cwd=str(Path(__file__).resolve().parent.parent),
            env=worker_environment(app),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    while "Listening on" not in log_path.read_text():
        if worker.poll() is not None:
            raise SystemExit(f"the worker stopped:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    return worker, log_path


def sweep_round(app, tenant_id, workers, simulator, label) -> tuple[str, dict]:
    """Make every mailbox due, sweep, and wait for the worker to finish every run."""
    from core.extensions import db, utcnow
    from core.jobs.models import FINISHED, OPEN_STATUSES, JobRun
    from plugins.sedes import sweep
    from plugins.sedes.models import SedeMailbox, SedeNotification
    from tenants.context import tenant_context

    with app.app_context():
        with tenant_context(tenant_id):
            db.session.execute(
                update(SedeMailbox).values(next_sync_at=utcnow() - timedelta(minutes=1)),
                execution_options={"synchronize_session": False},
            )
            db.session.commit()
            first_run = (db.session.scalar(select(func.max(JobRun.id))) or 0) + 1
        cpu_before = sum(cpu_seconds(worker.pid) for worker, _log in workers)
        simulator_cpu_before = time.process_time()  # this process: the simulator (and this loop's polling)
        served_before = simulator.requests_served
        begin = time.monotonic()
        result = sweep.start_sweeps([tenant_id])
        while True:
            with tenant_context(tenant_id):
                open_runs = db.session.scalar(
                    select(func.count(JobRun.id)).where(JobRun.status.in_(OPEN_STATUSES), JobRun.id >= first_run)
                )
                db.session.rollback()
            if not open_runs:
                break
            for worker, log_path in workers:
                if worker.poll() is not None:
                    raise SystemExit(f"a worker stopped:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        elapsed = time.monotonic() - begin
        time.sleep(0.5)  # the last work-horse is reaped, its CPU counted
        with tenant_context(tenant_id):
            numbers = {
                "runs": result["runs"],
                "finished": db.session.scalar(
                    select(func.count(JobRun.id)).where(JobRun.status == FINISHED, JobRun.id >= first_run)
                ),
                "stored": db.session.scalar(select(func.count(SedeNotification.id))),
                "outcomes": dict(
                    db.session.execute(
                        select(SedeMailbox.last_result, func.count()).group_by(SedeMailbox.last_result)
                    ).all()
                ),
                "elapsed": elapsed,
                "cpu": sum(cpu_seconds(worker.pid) for worker, _log in workers) - cpu_before,
                "simulator_cpu": time.process_time() - simulator_cpu_before,
                "served": simulator.requests_served - served_before,
            }
    return label, numbers


if __name__ == "__main__":
    main()
