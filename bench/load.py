"""Load benchmark of the staff pages: the measure of issue 10.

Builds, on the PostgreSQL server of ``BENCH_DATABASE_URL``, a scratch database laid out as
production has it (the tables owned by the migrations' role, the application connected as a role
that owns nothing and cannot bypass row-level security) with one tenant of 20,000 clients in 10
centres, a certificate or two each and about 62,000 audit events, analysed. Then it starts
gunicorn as the README's production section does (4 workers) and drives 1, 8 and 32 closed-loop
sessions (no think time) over the page mix: dashboard, client list, search, client page,
certificate list, audit; half of them as the administrator (sees every client), half as a member
of staff of 2 of the 10 centres (sees a fifth of them). For each number of sessions it prints the
requests per second, p50/p95/p99 of every page and of all, and per page the SQL statements and
the database milliseconds (the server's ``X-Sql`` header, bench-only: ``VENTANILLA_SQL_TRACE=1``).

Then the same mix against the baseline (``bench/baseline_app.py``: the same views, queries and
templates without row-level security, the tenant setting, the session records and the access
pipeline) and the ratio of the two. The two take turns (``--rounds`` windows each, ABBA…) so that
a machine whose speed drifts from one minute to the next weighs both alike. The load average is
printed beside each figure: other work on the machine shows there.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
      .venv/bin/python bench/load.py --seconds 15
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APP_ROLE = "ventanilla_bench_app"
SLUG = "bench"
PASSWORD = "bench-password-1"
ADMIN = "admin@bench.test"
STAFF = "staff@bench.test"
SECRET = "bench-secret-key"
CENTRES = 10
SURNAMES = [
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Alonso",
    "Gutiérrez",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vázquez",
    "Ramos",
    "Gil",
    "Ramírez",
    "Serrano",
    "Blanco",
    "Molina",
    "Morales",
    "Suárez",
    "Ortega",
    "Delgado",
    "Castro",
    "Ortiz",
    "Rubio",
    "Marín",
    "Sanz",
    "Núñez",
    "Iglesias",
    "Medina",
    "Garrido",
    "Cortés",
    "Castillo",
    "Santos",
    "Lozano",
    "Guerrero",
    "Cano",
    "Prieto",
]
NAMES = [
    "Ana",
    "Luis",
    "María",
    "Carlos",
    "Lucía",
    "Javier",
    "Elena",
    "Pablo",
    "Carmen",
    "Jorge",
    "Laura",
    "Miguel",
    "Sara",
    "David",
    "Marta",
]
PAGES = ("dashboard", "client list", "search", "client page", "certificate list", "audit")


# --- the database ---------------------------------------------------------------------------


def _scratch_database(admin_url: str) -> tuple[str, str, callable]:
    """A new database on the server, owned by the admin role, and the application's role that
    cannot bypass row-level security; returns the owner's URL, the application's and the drop."""
    from core.config import _normalise_db_url

    admin_url = _normalise_db_url(admin_url)
    name = f"ventanilla_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        connection.execute(
            text(
                f"DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        )
    parts = urlsplit(admin_url)
    owner_url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    host = parts.netloc.rsplit("@", 1)[-1]
    app_url = urlunsplit((parts.scheme, f"{APP_ROLE}@{host}", f"/{name}", parts.query, ""))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return owner_url, app_url, drop


def _environment(owner_url: str, app_url: str, redis_url: str, instance: Path) -> dict:
    """The production settings of the README, on this scratch database."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": app_url,
        "DATABASE_MIGRATION_URL": owner_url,
        "DATABASE_APP_ROLE": APP_ROLE,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET,
        "VENTANILLA_INSTANCE": str(instance),
        "VENTANILLA_PUBLIC_URL": "http://127.0.0.1",
        "VENTANILLA_SECURE_COOKIES": "0",
        "VENTANILLA_ALLOW_TEST_EMAIL": "1",
        "VENTANILLA_QUEUE_PREFIX": "bench-load-",
    }


def _build(env: dict, clients: int) -> dict:
    """Migrate and fill the scratch database; returns what the sessions need (client ids)."""
    import flask_migrate

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from core.app import create_app

        app = create_app({"INSTANCE_PATH": env["VENTANILLA_INSTANCE"]})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with app.app_context():
        flask_migrate.upgrade(revision="heads")
        refs = _populate(clients)
        from core.extensions import db

        db.session.remove()
        db.engine.dispose()
    owner = create_engine(env["DATABASE_MIGRATION_URL"], isolation_level="AUTOCOMMIT")
    with owner.connect() as connection:
        connection.execute(text("VACUUM ANALYZE"))
    owner.dispose()
    return refs


def _populate(count: int) -> dict:
    from core.audit.models import AuditEvent
    from core.auth.models import User
    from core.auth.services import hash_password
    from core.clients.models import Client, GroupClient
    from core.extensions import db
    from core.groups.models import Group, GroupUser
    from core.provisioning import create_tenant
    from core.roles.models import Role, RolePermission
    from plugins.center_certificates import services as certificates
    from plugins.center_certificates.models import APPROVED, EXPIRED, EXPIRING, MISSING, PENDING, Certificate
    from tenants.context import tenant_context
    from tenants.licensing import set_licence

    rng = random.Random(10)
    tenant = create_tenant(SLUG, "Asesoría Bench", "es")
    set_licence(tenant, "center_certificates", True)
    with tenant_context(tenant.id):
        admin_role = db.session.scalar(select(Role).where(Role.key == "admin"))
        staff_role = db.session.scalar(select(Role).where(Role.key == "operator"))
        db.session.add(RolePermission(role_id=staff_role.id, code="core.audit:view"))
        password = hash_password(PASSWORD)
        admin = User(email=ADMIN, name="Ana Administradora", password_hash=password, roles=[admin_role])
        staff = User(email=STAFF, name="Sergio Gestor", password_hash=password, roles=[staff_role])
        others = [
            User(email=f"staff{n}@bench.test", name=f"{NAMES[n % len(NAMES)]} {SURNAMES[n]}", roles=[staff_role])
            for n in range(20)
        ]
        centres = [Group(name=f"Centro {n + 1}") for n in range(CENTRES)]
        db.session.add_all([admin, staff, *others, *centres])
        db.session.flush()
        db.session.add_all([GroupUser(group_id=centres[n].id, user_id=staff.id) for n in (0, 1)])
        templates = [
            certificates.save_template(None, certificates.TemplateData("Seguro de responsabilidad civil")),
            certificates.save_template(None, certificates.TemplateData("Certificado de la Seguridad Social")),
        ]
        db.session.commit()

        today = date.today()
        statuses = (MISSING, PENDING, APPROVED, APPROVED, EXPIRING, EXPIRED)
        validity = {MISSING: None, PENDING: None, APPROVED: 200, EXPIRING: 20, EXPIRED: -10}
        actors = [("user", admin.id, admin.name), ("user", staff.id, staff.name), ("system", None, "")]
        actors += [("user", u.id, u.name) for u in others]
        start = datetime.now(UTC) - timedelta(days=365)
        ids: list[int] = []
        for first in range(0, count, 5000):
            rows = []
            for n in range(first, min(count, first + 5000)):
                surname, second = SURNAMES[n % len(SURNAMES)], SURNAMES[(n // 7) % len(SURNAMES)]
                name = f"{NAMES[n % len(NAMES)]} {surname} {second} {n:05d}"
                rows.append(
                    {
                        "tenant_id": tenant.id,
                        "kind": "person",
                        "tax_id": f"X{n:08d}",
                        "tax_id_type": "other",
                        "country": "FR",
                        "first_name": NAMES[n % len(NAMES)],
                        "last_name": f"{surname} {second} {n:05d}",
                        "name": name,
                        "email": f"cliente{n}@clientes.test",
                        "search_text": f"{name} x{n:08d} cliente{n}@clientes.test".lower(),
                        "active": n % 25 != 0,
                    }
                )
            batch = db.session.scalars(insert(Client).returning(Client.id, sort_by_parameter_order=True), rows).all()
            ids += batch
            db.session.execute(
                insert(GroupClient),
                [
                    {"tenant_id": tenant.id, "group_id": centres[i % CENTRES].id, "client_id": cid}
                    for i, cid in enumerate(batch)
                ],
            )
            certificate_rows = []
            for i, cid in enumerate(batch):
                for template in templates[: 1 + (i % 2)]:
                    status = statuses[(i + template.id) % len(statuses)]
                    days = validity[status]
                    certificate_rows.append(
                        {
                            "tenant_id": tenant.id,
                            "template_id": template.id,
                            "client_id": cid,
                            "name": template.name,
                            "lead_days": template.lead_days,
                            "status": status,
                            "validity_date": None if days is None else today + timedelta(days=days),
                            "expiring_from": None
                            if days is None
                            else today + timedelta(days=days - template.lead_days),
                            "expired_at": datetime.now(UTC) if status == EXPIRED else None,
                        }
                    )
            certificate_ids = db.session.scalars(
                insert(Certificate).returning(Certificate.id, sort_by_parameter_order=True), certificate_rows
            ).all()
            events = []
            for cid, row in zip(batch, rows, strict=True):
                kind, actor_id, actor_name = rng.choice(actors)
                events.append(
                    _event(tenant.id, start, rng, kind, actor_id, actor_name, "create", "client", cid, row["name"])
                )
                if rng.random() < 0.6:
                    kind, actor_id, actor_name = rng.choice(actors)
                    events.append(
                        _event(tenant.id, start, rng, kind, actor_id, actor_name, "update", "client", cid, row["name"])
                    )
            for certificate_id, row in zip(certificate_ids, certificate_rows, strict=True):
                kind, actor_id, actor_name = rng.choice(actors)
                events.append(
                    _event(
                        tenant.id,
                        start,
                        rng,
                        kind,
                        actor_id,
                        actor_name,
                        "create",
                        "certificate",
                        certificate_id,
                        row["name"],
                        parent=row["client_id"],
                    )
                )
            db.session.execute(insert(AuditEvent), events)
            db.session.commit()
    return {
        "tenant_id": tenant.id,
        "clients": ids,
        "staff_clients": [cid for i, cid in enumerate(ids) if i % CENTRES < 2],
    }


def _event(tenant_id, start, rng, kind, actor_id, actor_name, action, object_type, object_id, label, parent=None):
    return {
        "tenant_id": tenant_id,
        "at": start + timedelta(seconds=rng.randrange(365 * 86400)),
        "actor_kind": kind,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_label": label,
        "parent_type": "client" if parent else None,
        "parent_id": parent,
        "changes": {"name": [None, label]}
        if action == "create"
        else {"email": ["antes@clientes.test", "despues@clientes.test"]},
        "address": "192.0.2.10",
    }


# --- the server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn with ``workers`` workers (4, as the README starts it), serving ``factory``."""

    def __init__(self, factory: str, env: dict, workers: int) -> None:
        self.port = _free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.process = subprocess.Popen(
            [
                gunicorn,
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                factory,
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", f"/{SLUG}/login")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"gunicorn serving {factory} did not answer")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


# --- the sessions ---------------------------------------------------------------------------


_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


class Browser:
    """One signed-in person: a kept-alive connection and the cookies it was given."""

    def __init__(self, port: int, email: str) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, body, _ = self.get(f"/{SLUG}/login")
        match = _CSRF.search(body)
        if not match:
            raise RuntimeError("no CSRF token on the login page")
        token = match.group(1) or match.group(2)
        status, _, _ = self.request(
            "POST", f"/{SLUG}/login", urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
        )
        if status != 302:
            raise RuntimeError(f"login of {email} answered {status}")

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str, str | None]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.connection.request(method, path, body, headers)
                response = self.connection.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = response.read().decode("utf-8", "replace")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, data, response.getheader("X-Sql")

    def get(self, path: str):
        return self.request("GET", path)


def _paths(rng: random.Random, client_ids: list[int]):
    """The next page of the mix (uniform over the six), as a path."""
    page = rng.choice(PAGES)
    if page == "dashboard":
        return page, f"/{SLUG}/"
    if page == "client list":
        return page, f"/{SLUG}/clients/"
    if page == "search":
        return page, f"/{SLUG}/search?" + urlencode({"q": rng.choice(SURNAMES)[:5]})
    if page == "client page":
        return page, f"/{SLUG}/clients/{rng.choice(client_ids)}"
    if page == "certificate list":
        return page, f"/{SLUG}/certificates/"
    return page, f"/{SLUG}/audit/"


def drive(port: int, sessions: int, seconds: float, refs: dict, warmup: float) -> dict:
    """``sessions`` closed loops for ``seconds`` (after ``warmup``); what each request took."""
    browsers = [Browser(port, ADMIN if n % 2 == 0 else STAFF) for n in range(sessions)]
    samples: list[tuple[str, float, int, float, float]] = []
    failures: list[tuple[str, int]] = []
    lock = threading.Lock()
    measuring_from = time.monotonic() + warmup
    stop_at = measuring_from + seconds

    def loop(n: int, browser: Browser) -> None:
        rng = random.Random(n)
        ids = refs["clients"] if n % 2 == 0 else refs["staff_clients"]
        mine, bad = [], []
        while True:
            page, path = _paths(rng, ids)
            started = time.monotonic()
            if started >= stop_at:
                break
            status, _body, sql = browser.get(path)
            ended = time.monotonic()
            if started < measuring_from:
                continue
            if status != 200:
                bad.append((page, status))
            count, ms, cpu = (sql or "0;0;0").split(";")
            mine.append((page, (ended - started) * 1000, int(count), float(ms), float(cpu)))
        with lock:
            samples.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=loop, args=(n, b)) for n, b in enumerate(browsers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for browser in browsers:
        browser.connection.close()
    return {"samples": samples, "failures": failures, "seconds": seconds, "load": os.getloadavg()[0]}


def interleaved(ours: int, theirs: int, sessions: int, seconds: float, refs: dict, rounds: int, warmup: float):
    """The platform and the baseline in turns, ``rounds`` windows each (ABBA…), ``seconds`` in all
    for each: a machine whose speed drifts by minutes (a shared host) then weighs both alike, and
    the ratio compares like with like. Both servers stay up; the one not driven sits idle."""
    runs: dict[int, list[dict]] = {ours: [], theirs: []}
    for round_ in range(rounds):
        order = (ours, theirs) if round_ % 2 == 0 else (theirs, ours)
        for port in order:
            runs[port].append(drive(port, sessions, seconds / rounds, refs, warmup if round_ < 2 else 1.0))
    return tuple(
        {
            "samples": [sample for run in runs[port] for sample in run["samples"]],
            "failures": [failure for run in runs[port] for failure in run["failures"]],
            "seconds": seconds,
            "load": max(run["load"] for run in runs[port]),
        }
        for port in (ours, theirs)
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _report(label: str, sessions: int, result: dict) -> dict:
    samples = result["samples"]
    times = [s[1] for s in samples]
    rate = len(samples) / result["seconds"]
    p = {q: _percentile(times, q) for q in (0.5, 0.95, 0.99)} if times else {0.5: 0, 0.95: 0, 0.99: 0}
    print(
        f"{label:<9} {sessions:>2} sessions: {rate:6.1f} req/s  all pages p50/p95/p99 "
        f"{p[0.5]:6.1f} / {p[0.95]:6.1f} / {p[0.99]:6.1f} ms  failed {len(result['failures'])}  "
        f"load average {result['load']:.2f}"
    )
    by_page = defaultdict(list)
    for sample in samples:
        by_page[sample[0]].append(sample)
    for page in PAGES:
        rows = by_page.get(page) or []
        if not rows:
            continue
        t = [r[1] for r in rows]
        print(
            f"    {page:<17} n {len(rows):5d}  p50 {_percentile(t, 0.5):6.1f}  p95 {_percentile(t, 0.95):6.1f}  "
            f"p99 {_percentile(t, 0.99):6.1f} ms  SQL {statistics.mean(r[2] for r in rows):5.1f}  "
            f"db {statistics.mean(r[3] for r in rows):6.2f} ms  "
            f"server CPU {statistics.mean(r[4] for r in rows):6.2f} ms"
        )
    if result["failures"]:
        print(f"    failures: {sorted(set(result['failures']))[:10]}")
    return {"rate": rate, "p95": p[0.95], "p50": p[0.5]}


def _refs_of(owner_url: str) -> dict:
    """The client ids of a database built by an earlier run (``--keep``)."""
    engine = create_engine(owner_url)
    with engine.connect() as connection:
        ids = connection.execute(text("SELECT id FROM core_clients ORDER BY id")).scalars().all()
        staff = (
            connection.execute(
                text(
                    "SELECT gc.client_id FROM core_group_clients gc "
                    "JOIN core_group_users gu ON gu.group_id = gc.group_id "
                    "JOIN core_users u ON u.id = gu.user_id WHERE u.email = :email ORDER BY 1"
                ),
                {"email": STAFF},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return {"clients": list(ids), "staff_clients": list(staff)}


def profile(env: dict, refs: dict, repeat: int, pages: list[str]) -> None:
    """In this process: each page ``repeat`` times as each user, its CPU time and SQL, then
    pyinstrument's tree of where the time of all of them went."""
    from pyinstrument import Profiler

    os.environ.update({**env, "VENTANILLA_SQL_TRACE": "1"})
    from core.app import create_app

    app = create_app({"INSTANCE_PATH": env["VENTANILLA_INSTANCE"], "WTF_CSRF_ENABLED": False})
    browsers = {}
    for label, email, ids in (("admin", ADMIN, refs["clients"]), ("staff", STAFF, refs["staff_clients"])):
        client = app.test_client()
        response = client.post(f"/{SLUG}/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        browsers[label] = (client, ids)
    rng = random.Random(1)

    def path_of(page: str, ids: list[int]) -> str:
        while True:
            name, path = _paths(rng, ids)
            if name == page:
                return path

    for label, (client, ids) in browsers.items():
        for page in pages:
            for _ in range(3):
                client.get(path_of(page, ids))  # warm: the first request of a page compiles its templates
            figures = []
            for _ in range(repeat):
                started = time.thread_time()
                response = client.get(path_of(page, ids))
                cpu = (time.thread_time() - started) * 1000
                count, ms, _server = response.headers["X-Sql"].split(";")
                figures.append((cpu, int(count), float(ms)))
                assert response.status_code == 200, (page, response.status_code)
            print(
                f"{label:<5} {page:<17} CPU median {statistics.median(f[0] for f in figures):6.2f} ms  "
                f"SQL {figures[-1][1]:3d}  db median {statistics.median(f[2] for f in figures):6.2f} ms"
            )
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for client, ids in browsers.values():
        for page in pages:
            for _ in range(repeat):
                client.get(path_of(page, ids))
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per number of sessions")
    parser.add_argument("--sessions", default="1,8,32", help="numbers of sessions, comma-separated")
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-baseline", action="store_true", help="measure only the platform")
    parser.add_argument(
        "--rounds", type=int, default=4, help="windows each of the platform and the baseline take in turns"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    parser.add_argument("--reuse", metavar="URL", help="a database kept by --keep (owner's URL): no build")
    parser.add_argument(
        "--profile", metavar="PAGES", help=f"profile in this process instead of the load: 'all' or some of {PAGES}"
    )
    parser.add_argument("--repeat", type=int, default=20, help="requests of each page when profiling")
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_DATABASE_URL")
    if not admin_url or not admin_url.startswith("postgres"):
        sys.exit("BENCH_DATABASE_URL must name a PostgreSQL server (the database is created there)")
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    counts = [int(n) for n in args.sessions.split(",")]

    if args.reuse:
        owner_url = args.reuse
        parts = urlsplit(owner_url)
        app_url = urlunsplit(
            (parts.scheme, f"{APP_ROLE}@{parts.netloc.rsplit('@', 1)[-1]}", parts.path, parts.query, "")
        )
        drop = lambda: None  # noqa: E731 - kept for the next run
    else:
        owner_url, app_url, drop = _scratch_database(admin_url)
    instance = Path(tempfile.mkdtemp(prefix="ventanilla-load-"))
    env = _environment(owner_url, app_url, redis_url, instance)
    try:
        started = time.monotonic()
        refs = _refs_of(owner_url) if args.reuse else _build(env, args.clients)
        if args.profile:
            pages = list(PAGES) if args.profile == "all" else [p.strip() for p in args.profile.split(",")]
            profile(env, refs, args.repeat, pages)
            return
        print(
            f"PostgreSQL, one tenant of {len(refs['clients']):,} clients ({len(refs['staff_clients']):,} seen by the "
            f"staff sessions), built and analysed in {time.monotonic() - started:.0f} s; gunicorn --workers "
            f"{args.workers}; {args.seconds:.0f} s per run; {os.cpu_count()} cores"
        )
        warmup = min(5.0, args.seconds / 5)
        server = Server("core.app:create_app()", {**env, "VENTANILLA_SQL_TRACE": "1"}, args.workers)
        if args.no_baseline:
            try:
                for sessions in counts:
                    _report("platform", sessions, drive(server.port, sessions, args.seconds, refs, warmup))
            finally:
                server.stop()
            return
        # The baseline connects as the owner of the database, which bypasses row-level security.
        baseline_env = {**env, "DATABASE_URL": owner_url, "VENTANILLA_SQL_TRACE": "1"}
        baseline = None
        ratios = []
        try:
            baseline = Server("bench.baseline_app:create_app()", baseline_env, args.workers)
            for sessions in counts:
                ours, theirs = interleaved(
                    server.port, baseline.port, sessions, args.seconds, refs, args.rounds, warmup
                )
                a, b = _report("platform", sessions, ours), _report("baseline", sessions, theirs)
                ratios.append((sessions, a, b))
        finally:
            server.stop()
            if baseline is not None:
                baseline.stop()
        for sessions, a, b in ratios:
            print(
                f"ratio at {sessions:>2} sessions: baseline req/s / ours {b['rate'] / max(a['rate'], 1e-9):4.2f}x, "
                f"our p95 / baseline p95 {a['p95'] / max(b['p95'], 1e-9):4.2f}x"
            )
    finally:
        if args.keep:
            print(f"kept: {owner_url} (application role {APP_ROLE})")
        else:
            drop()
        import shutil

        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
