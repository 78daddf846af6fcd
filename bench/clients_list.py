"""Benchmark of the client list: 100,000 clients in each of two tenants.

Prints, for the first, a middle and the last page of the list (search off and on), and for a
search that matches one client (the worst case: nothing stops the scan early): the median and
p95 time of the whole request, the number of SQL statements it ran, and the median of the same
page through the minimal Flask baseline (``bench/baseline_app.py``: the same views, queries and
templates without the platform's pipeline) as a ratio; the page's query run bare through
SQLAlchemy is shown beside it. Run it with ``--clients 1000`` too: the
SQL per page is the same at either size.

    .venv/bin/python bench/clients_list.py                       # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/clients_list.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text, tuple_

from bench.harness import StatementCounter, bench_app

PASSWORD = "bench-password-1"


def _populate(app, count: int) -> dict:
    from core.auth.models import User
    from core.auth.services import hash_password
    from core.clients.models import Client, GroupClient
    from core.extensions import db
    from core.groups.models import Group, GroupUser
    from core.provisioning import create_tenant
    from core.roles.models import Role
    from tenants.context import tenant_context

    refs = {}
    for slug in ("bench-a", "bench-b"):
        tenant = create_tenant(slug, f"Bench {slug}", "es")
        with tenant_context(tenant.id):
            admin_role = db.session.scalar(select(Role).where(Role.key == "admin"))
            operator_role = db.session.scalar(select(Role).where(Role.key == "operator"))
            admin = User(
                email=f"admin@{slug}.test", name="Admin", password_hash=hash_password(PASSWORD), roles=[admin_role]
            )
            staff = User(
                email=f"staff@{slug}.test", name="Staff", password_hash=hash_password(PASSWORD), roles=[operator_role]
            )
            groups = [Group(name=f"Centro {n}") for n in range(10)]
            db.session.add_all([admin, staff, *groups])
            db.session.flush()
            db.session.add_all(
                [GroupUser(group_id=groups[0].id, user_id=staff.id), GroupUser(group_id=groups[1].id, user_id=staff.id)]
            )
            for start in range(0, count, 5000):
                rows = [
                    {
                        "tenant_id": tenant.id,
                        "kind": "company",
                        "tax_id": f"X{n:08d}",
                        "tax_id_type": "other",
                        "country": "FR",
                        "company_name": f"Empresa {n:06d}",
                        "name": f"Empresa {n:06d}",
                        "email": f"info{n}@empresa.test",
                        "search_text": f"empresa {n:06d} x{n:08d} info{n}@empresa.test",
                        "active": n % 20 != 0,
                    }
                    for n in range(start, min(count, start + 5000))
                ]
                ids = db.session.scalars(insert(Client).returning(Client.id, sort_by_parameter_order=True), rows).all()
                db.session.execute(
                    insert(GroupClient),
                    [
                        {"tenant_id": tenant.id, "group_id": groups[i % 10].id, "client_id": cid}
                        for i, cid in enumerate(ids)
                    ],
                )
                db.session.commit()
        refs[slug] = tenant.id
    return refs


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100_000, help="clients per tenant")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from core.clients.models import Client
    from core.clients.services import matching
    from core.extensions import db
    from tenants.context import tenant_context

    with bench_app([], SESSION_COOKIE_SECURE=False, WTF_CSRF_ENABLED=False) as app:
        with app.app_context():
            started = time.perf_counter()
            tenants = _populate(app, args.clients)
            engine_name = db.engine.dialect.name
            if engine_name == "postgresql":
                with db.engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()
            print(
                f"engine: {engine_name}; {args.clients} clients in each of 2 tenants, "
                f"created in {time.perf_counter() - started:.1f} s"
            )
            tenant_id = tenants["bench-a"]
            with tenant_context(tenant_id):
                active = select(Client.name, Client.id).where(Client.active.is_(True)).order_by(Client.name, Client.id)
                total = db.session.scalar(select(db.func.count()).select_from(Client).where(Client.active.is_(True)))
                middle = db.session.execute(active.offset(total // 2)).first()
                last = db.session.execute(active.offset(total - 50)).first()
                q = "empresa 00"
                # In group 1 (the staff user's) and active: both users find it.
                rare = f"x{args.clients * 2 // 3 // 10 * 10 + 1:08d}"
                searched = (
                    select(Client.name, Client.id)
                    .where(Client.active.is_(True), matching(q))
                    .order_by(Client.name, Client.id)
                )
                found = db.session.scalar(select(db.func.count()).select_from(searched.subquery()))
                s_middle = db.session.execute(searched.offset(found // 2)).first()
                s_last = db.session.execute(searched.offset(max(0, found - 50))).first()

        with app.app_context():
            statements = StatementCounter(db.engine)

        cases = [
            ("first page", "", None),
            ("middle page", "", [middle.name, middle.id]),
            ("last page", "", [last.name, last.id]),
            (f"search '{q}' first page", q, None),
            (f"search '{q}' middle page", q, [s_middle.name, s_middle.id]),
            (f"search '{q}' last page", q, [s_last.name, s_last.id]),
            (f"search '{rare}' (1 match)", rare, None),
        ]
        users = (("admin (sees every client)", "admin@bench-a.test"), ("staff (2 of 10 groups)", "staff@bench-a.test"))
        print(f"search '{q}' matches {found} active clients of {total}")
        ours = _measure(app, users, cases, args.repeat, statements)
        bare = {
            (email, label): _bare(app, tenant_id, email, search, after, args.repeat)
            for _who, email in users
            for label, search, after in cases
        }
        # The same views, queries and templates without the pipeline (bench/baseline_app.py); it
        # changes the whole process, so it comes after every measure of the platform.
        from bench.baseline_app import strip
        from core.app import create_app

        keys = ("INSTANCE_PATH", "SQLALCHEMY_DATABASE_URI", "DATABASE_MIGRATION_URL", "REDIS_URL", "SECRET_KEY")
        keys += ("PUBLIC_URL", "PLUGIN_ALLOWLIST", "SESSION_COOKIE_SECURE", "WTF_CSRF_ENABLED")
        baseline = strip(create_app({key: app.config[key] for key in keys}))
        theirs = _measure(baseline, users, cases, args.repeat, None)
        for who, email in users:
            for label, _search, _after in cases:
                median, p95, count = ours[email, label]
                flask_median = theirs[email, label][0]
                print(
                    f"{who:<27} {label:<30} median {median:7.2f} ms  p95 {p95:7.2f} ms  SQL per page {count:2d}  "
                    f"minimal Flask median {flask_median:7.2f} ms  ratio {median / flask_median:4.2f}x  "
                    f"(bare query {bare[email, label]:6.2f} ms)"
                )


def _measure(app, users, cases, repeat: int, statements) -> dict:
    """Median, p95 and statements of each page for each user, through ``app``."""
    from core.pagination import _encode

    results = {}
    for _who, email in users:
        browser = app.test_client()
        browser.post("/bench-a/login", data={"email": email, "password": PASSWORD})
        for label, search, after in cases:
            query = {"q": search} if search else {}
            if after:
                query["after"] = _encode(after)
            times, counts = [], []
            for _ in range(repeat):
                if statements:
                    statements.reset()
                started = time.perf_counter()
                response = browser.get("/bench-a/clients/", query_string=query)
                times.append((time.perf_counter() - started) * 1000)
                counts.append(statements.count if statements else 0)
                assert response.status_code == 200, response.status_code
            results[email, label] = (statistics.median(times), _percentile(times, 0.95), max(counts))
    return results


def _bare(app, tenant_id: int, email: str, search: str, after, repeat: int) -> float:
    """The page's own query (the same visibility, search and keyset), run bare through SQLAlchemy:
    no request, no permission checks, no template."""
    from core.auth.models import User
    from core.clients.models import Client
    from core.clients.services import list_statement
    from core.extensions import db
    from tenants.context import tenant_context

    times = []
    with app.test_request_context(), tenant_context(tenant_id):
        user = db.session.scalar(select(User).where(User.email == email))
        stmt = list_statement(user, search or None)
        if after:
            stmt = stmt.where(tuple_(Client.name, Client.id) > tuple_(*after))
        stmt = stmt.order_by(Client.name, Client.id).limit(51)
        for _ in range(repeat):
            started = time.perf_counter()
            db.session.scalars(stmt).all()
            times.append((time.perf_counter() - started) * 1000)
            db.session.expunge_all()
    return statistics.median(times)


if __name__ == "__main__":
    main()
