"""Benchmark of the certificate notices: one run of ``services.notify`` that owes a notice for
every certificate of a tenant (as after "Generar certificados").

Each client has an e-mail, and one in ten a portal account (its notices also go out as pushes,
to no browser here). Prints the time of the run, the notices written, the SQL statements it ran
(in all and per notice) and the e-mails put in the outbox.

    .venv/bin/python bench/certificates_notices.py                  # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/certificates_notices.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from bench.harness import StatementCounter, bench_app

PORTAL_EVERY = 10


def _build(count: int) -> int:
    """A tenant with the plugin, ``count`` clients and a certificate requested from each."""
    from core.auth.models import User
    from core.clients.models import Client
    from core.extensions import db
    from core.provisioning import create_tenant
    from plugins.center_certificates import services
    from plugins.center_certificates.models import MISSING, Certificate
    from tenants.context import tenant_context
    from tenants.licensing import set_licence

    tenant = create_tenant("bench", "Asesoría Bench", "es")
    set_licence(tenant, "center_certificates", True)
    with tenant_context(tenant.id):
        template = services.save_template(None, services.TemplateData("Seguro de responsabilidad civil"))
        ids = db.session.scalars(
            insert(Client).returning(Client.id, sort_by_parameter_order=True),
            [
                {
                    "tenant_id": tenant.id,
                    "kind": "company",
                    "tax_id": f"BENCH{n}",
                    "tax_id_type": "other",
                    "country": "ES",
                    "company_name": f"Empresa {n}",
                    "name": f"Empresa {n}",
                    "email": f"empresa{n}@clientes.test",
                    "search_text": f"empresa {n}",
                }
                for n in range(count)
            ],
        ).all()
        db.session.execute(
            insert(User),
            [
                {"tenant_id": tenant.id, "email": f"portal{n}@clientes.test", "name": f"Empresa {n}", "client_id": i}
                for n, i in enumerate(ids)
                if n % PORTAL_EVERY == 0
            ],
        )
        db.session.execute(
            insert(Certificate),
            [
                {
                    "tenant_id": tenant.id,
                    "template_id": template.id,
                    "client_id": i,
                    "name": template.name,
                    "lead_days": template.lead_days,
                    "status": MISSING,
                }
                for i in ids
            ],
        )
        db.session.commit()
    return tenant.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=5_000)
    args = parser.parse_args()

    with bench_app(["center_certificates"]) as app, app.app_context():
        from core.extensions import db
        from core.mail.models import OutboundMessage
        from plugins.center_certificates import services
        from tenants.context import tenant_context
        from tenants.models import Tenant

        tenant_id = _build(args.certificates)
        statements = StatementCounter(db.engine)
        with tenant_context(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            statements.reset()
            started = time.perf_counter()
            sent = services.notify(tenant)
            elapsed = time.perf_counter() - started
            ran = statements.count
            outbox = db.session.scalar(select(func.count()).select_from(OutboundMessage))
        notices = sum(sent.values())
        assert notices == args.certificates, sent
        print(
            f"engine: {db.engine.dialect.name}; notify, {notices:,} notices owed: {elapsed:.2f} s "
            f"({elapsed * 1000 / notices:.2f} ms a notice), {ran:,} SQL statements ({ran / notices:.2f} a notice), "
            f"{outbox:,} e-mails in the outbox"
        )


if __name__ == "__main__":
    main()
