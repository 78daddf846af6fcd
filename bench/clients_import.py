"""Benchmark of the CSV import of clients: a 10,000-row file with some bad rows.

Runs the real import job on a real RQ worker (burst) and prints the time, the report counts
and a few of the per-row problems; then imports the same file again (nothing new is created).

    .venv/bin/python bench/clients_import.py
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/clients_import.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_app


def make_file(rows: int, bad_every: int) -> tuple[bytes, int]:
    from stdnum.es import dni

    random.seed(7)
    lines = ["NIF;Nombre;Apellidos;Email;Teléfono;Grupos;Dirección;CP;Ciudad"]
    bad = 0
    for n in range(rows):
        number = f"{10_000_000 + n:08d}"
        tax_id = number + dni.calc_check_digit(number)
        email, phone = f"cliente{n}@ejemplo.test", f"6{n:08d}"
        if n % bad_every == 0:
            bad += 1
            kind = n // bad_every % 3
            if kind == 0:
                tax_id = number + ("A" if dni.calc_check_digit(number) != "A" else "B")
            elif kind == 1:
                email = "not-an-email"
            else:
                phone = "12"
        lines.append(f"{tax_id};Nombre{n};Apellido{n};{email};{phone};Centro;Calle {n};46001;Valencia")
    return ("\n".join(lines) + "\n").encode("utf-8"), bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--bad-every", type=int, default=50)
    args = parser.parse_args()

    from rq import SimpleWorker

    from core.auth.models import User
    from core.clients.imports import start_import
    from core.clients.models import ClientImport
    from core.extensions import db
    from core.groups.models import Group
    from core.jobs.services import all_queues
    from core.provisioning import create_tenant
    from core.redis_connection import get_redis
    from core.roles.models import Role
    from tenants.context import tenant_context
    from tenants.models import Tenant

    data, bad = make_file(args.rows, args.bad_every)
    with bench_app([]) as app, app.app_context():
        tenant = create_tenant("bench", "Bench", "es")
        with tenant_context(tenant.id):
            admin_role = db.session.scalar(db.select(Role).where(Role.key == "admin"))
            user = User(email="admin@bench.test", name="Admin", password_hash="x", roles=[admin_role])
            db.session.add_all([user, Group(name="Centro")])
            db.session.commit()
            user_id = user.id
        print(
            f"engine: {db.engine.dialect.name}; file of {args.rows} rows ({len(data) / 1e6:.1f} MB), {bad} of them bad"
        )
        for attempt in ("first import", "same file again"):
            with tenant_context(tenant.id):
                tenant = db.session.get(Tenant, tenant.id)
                user = db.session.get(User, user_id)
                started = time.perf_counter()
                job = start_import(tenant, user, "clientes.csv", data, None, "es")
                SimpleWorker(all_queues(), connection=get_redis()).work(burst=True)
                elapsed = time.perf_counter() - started
                db.session.expire_all()
                job = db.session.get(ClientImport, job.id)
                print(
                    f"{attempt:<16} {elapsed:6.2f} s  rows {job.rows}  created {job.created}  "
                    f"updated {job.updated}  unchanged {job.unchanged}  rejected {job.rejected}"
                )
        for number, field, message in job.problems[:3]:
            print(f"  row {number}, {field}: {message}")


if __name__ == "__main__":
    main()
