"""Benchmark of the CSV import of clients: a 10,000-row file with some bad rows.

Runs the real import job on a real RQ worker (burst) and prints the time, the SQL statements per
imported client, the report counts and a few of the per-row problems; then imports the same
file again (nothing new is created). Twice: without plugins, and with the certificates plugin
enabled and a template requested from every new client (its ``clients_created`` reacts to each
batch of the import with one INSERT … SELECT), to show what a plugin costs per client. The import
is started as the form starts it by default, without notifying the new clients: the notices the
requests would cause are held (counted at the end), and no e-mail is queued.

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

from bench.harness import StatementCounter, bench_app


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

    data, bad = make_file(args.rows, args.bad_every)
    print(f"file of {args.rows} rows ({len(data) / 1e6:.1f} MB), {bad} of them bad")
    for plugins in ([], ["center_certificates"]):
        run(data, plugins)


def run(data: bytes, plugins: list[str]) -> None:
    from rq import SimpleWorker
    from sqlalchemy import func, select

    from core.auth.models import User
    from core.clients.imports import start_import
    from core.clients.models import ClientImport
    from core.extensions import db
    from core.groups.models import Group
    from core.jobs.services import get_queue
    from core.provisioning import create_tenant
    from core.redis_connection import get_redis
    from core.roles.models import Role
    from tenants import licensing
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with bench_app(plugins) as app, app.app_context():
        counter = StatementCounter(db.engine)
        tenant = create_tenant("bench", "Bench", "es")
        for plugin in plugins:
            licensing.set_licence(tenant, plugin, True)
        with tenant_context(tenant.id):
            admin_role = db.session.scalar(db.select(Role).where(Role.key == "admin"))
            user = User(email="admin@bench.test", name="Admin", password_hash="x", roles=[admin_role])
            db.session.add_all([user, Group(name="Centro")])
            db.session.commit()
            user_id = user.id
            if plugins:
                from plugins.center_certificates.services import TemplateData, save_template

                save_template(None, TemplateData("Seguro de responsabilidad civil", auto_for_new_clients=True))
        label = "with certificates (a template for new clients)" if plugins else "without plugins"
        print(f"\n{db.engine.dialect.name}, {label}:")
        for attempt in ("first import", "same file again"):
            with tenant_context(tenant.id):
                tenant = db.session.get(Tenant, tenant.id)
                user = db.session.get(User, user_id)
                counter.reset()
                started = time.perf_counter()
                job = start_import(tenant, user, "clientes.csv", data, None, "es")
                # The import's own queue: the job and the plugins' reactions to each batch (the
                # notices the certificates plugin then owes its clients go out on the mail queue).
                SimpleWorker([get_queue("bulk")], connection=get_redis()).work(burst=True)
                elapsed = time.perf_counter() - started
                statements = counter.count
                db.session.expire_all()
                job = db.session.get(ClientImport, job.id)
                per_client = f"{statements / job.created:.2f} SQL a client" if job.created else f"{statements} SQL"
                print(
                    f"  {attempt:<16} {elapsed:6.2f} s  {per_client:<16} rows {job.rows}  created {job.created}  "
                    f"updated {job.updated}  unchanged {job.unchanged}  rejected {job.rejected}"
                )
        if plugins:
            from core.mail.models import OutboundMessage
            from plugins.center_certificates.models import Certificate, CertificateNotice

            with tenant_context(tenant.id):
                requested = db.session.scalar(select(func.count()).select_from(Certificate))
                held = db.session.scalar(select(func.count()).where(CertificateNotice.held_for.is_not(None)))
                mails = db.session.scalar(select(func.count()).select_from(OutboundMessage))
            # The import was started without "Notify the new clients": nothing may be mailed.
            print(f"  certificates requested from the new clients: {requested}; notices held {held}, e-mails {mails}")
        for number, field, message in job.problems[:3]:
            print(f"  row {number}, {field}: {message}")


if __name__ == "__main__":
    main()
