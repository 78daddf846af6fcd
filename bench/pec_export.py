"""Benchmark of the PEC "Esporta Dati": 100,000 boxes exported as CSV.

Prints the time and the peak Python memory of the whole export request (the view, the search
statement, the server-side cursor read in batches, the export's rows, core's csv_response with
its formula neutralisation, streamed to the end), beside a bare loop over the same query on a
DB-API cursor writing the same columns with ``csv.writer``, in the same process, as ratios.

    .venv/bin/python bench/pec_export.py                                   # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/pec_export.py
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text

from bench.harness import bench_app

PASSWORD = "bench-password-1"
SLUG = "bench-pec"


def _populate(app, count: int) -> int:
    from core.auth.models import User
    from core.auth.services import hash_password
    from core.clients.models import Client
    from core.extensions import db, utcnow
    from core.provisioning import create_tenant
    from core.roles.models import Role
    from plugins.pec.models import Agent, Box, Domain, HolderAddress, HolderProfile, Package
    from tenants.context import tenant_context
    from tenants.licensing import set_licence

    tenant = create_tenant(SLUG, "Bench PEC", "it")
    set_licence(tenant, "pec", True)
    with tenant_context(tenant.id):
        role = db.session.scalar(select(Role).where(Role.key == "admin"))
        admin = User(email=f"admin@{SLUG}.test", name="Admin", password_hash=hash_password(PASSWORD), roles=[role])
        domain = Domain(name="pec.bench.example")
        agent = Agent(company_name="Agenzia Bench", email="agent@bench.test")
        db.session.add_all([admin, domain, agent])
        db.session.flush()
        package = Package(agent_id=agent.id, name="Pacchetto bench", size=count, years=1)
        db.session.add(package)
        db.session.flush()
        holders = 1000
        client_ids = db.session.scalars(
            insert(Client).returning(Client.id, sort_by_parameter_order=True),
            [
                {
                    "tenant_id": tenant.id,
                    "kind": "company",
                    "tax_id": f"{n:011d}",
                    "tax_id_type": "it_piva",
                    "country": "IT",
                    "company_name": f"Impresa {n:04d} S.r.l.",
                    "name": f"=Impresa {n:04d} S.r.l." if n % 100 == 0 else f"Impresa {n:04d} S.r.l.",
                    "email": f"info{n}@impresa.test",
                    "search_text": f"impresa {n:04d}",
                }
                for n in range(holders)
            ],
        ).all()
        db.session.execute(
            insert(HolderProfile), [{"tenant_id": tenant.id, "client_id": cid, "partita_iva": ""} for cid in client_ids]
        )
        address_ids = db.session.scalars(
            insert(HolderAddress).returning(HolderAddress.id, sort_by_parameter_order=True),
            [
                {
                    "tenant_id": tenant.id,
                    "client_id": cid,
                    "street": "Via Roma 3",
                    "cap": "10010",
                    "comune": "Samone",
                    "provincia": "TO",
                    "phone": "+390125532917",
                }
                for cid in client_ids
            ],
        ).all()
        now = utcnow()
        for start in range(0, count, 5000):
            db.session.execute(
                insert(Box),
                [
                    {
                        "tenant_id": tenant.id,
                        "domain_id": domain.id,
                        "local_part": f"casella{n:06d}",
                        "address": f"casella{n:06d}@pec.bench.example",
                        "holder_id": client_ids[n % holders],
                        "holder_address_id": address_ids[n % holders],
                        "state": "active" if n % 4 else "pending",
                        "box_type": "standard",
                        "mailbox_mb": 1024,
                        "years": 1,
                        "renewal": "manual",
                        "request_id": f"bench-{n}",
                        "provider": "manual",
                        "provider_reference": "",
                        "provider_error": "",
                        "refusal_reason": "",
                        "activated_at": now if n % 4 else None,
                        "expires_on": None,
                        "agent_id": agent.id if n % 2 else None,
                        "package_id": package.id if n % 8 == 1 else None,
                        "agent_requested": False,
                        "created_by_id": admin.id,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(start, min(count, start + 5000))
                ],
            )
            db.session.commit()
        return tenant.id


BARE_QUERY = """
SELECT b.address, d.name, b.state, b.box_type, b.mailbox_mb, c.name, c.tax_id, p.partita_iva,
       a.company_name, k.name, b.created_at, b.activated_at, b.expires_on, b.renewal
FROM pec_boxes b
JOIN pec_domains d ON d.id = b.domain_id
JOIN core_clients c ON c.id = b.holder_id
LEFT JOIN pec_holder_profiles p ON p.client_id = b.holder_id
LEFT JOIN pec_agents a ON a.id = b.agent_id
LEFT JOIN pec_packages k ON k.id = b.package_id
WHERE b.tenant_id = :tenant
ORDER BY b.id DESC
"""


def _bare(app, tenant_id: int) -> tuple[int, int]:
    """The same rows through a plain DB-API cursor into csv.writer: (bytes written, rows)."""
    from core.extensions import db

    written = rows = 0
    with app.app_context(), db.engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=1000).execute(
            text(BARE_QUERY), {"tenant": tenant_id}
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(list(result.keys()))
        for row in result:
            writer.writerow(row)
            written += len(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate(0)
            rows += 1
    return written, rows


def _ours(client) -> tuple[int, int]:
    """The export request read to its end as a browser would: (bytes, lines)."""
    response = client.get(f"/{SLUG}/pec/boxes/export.csv", buffered=False)
    assert response.status_code == 200, response.status_code
    size = lines = 0
    for chunk in response.response:
        data = chunk if isinstance(chunk, bytes) else chunk.encode()
        size += len(data)
        lines += data.count(b"\n")
    response.close()
    return size, lines


def measure(call, repeat: int) -> tuple[float, int, object]:
    """Median seconds over ``repeat`` runs, and the peak traced memory of one more run."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return statistics.median(times), peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from core.extensions import db

    with bench_app(["pec"], SESSION_COOKIE_SECURE=False, WTF_CSRF_ENABLED=False) as app:
        with app.app_context():
            started = time.perf_counter()
            tenant_id = _populate(app, args.boxes)
            engine = db.engine.dialect.name
            if engine == "postgresql":
                with db.engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()
        print(f"engine: {engine}; {args.boxes} boxes of 1000 holders, created in {time.perf_counter() - started:.1f} s")
        client = app.test_client()
        client.post(f"/{SLUG}/login", data={"email": f"admin@{SLUG}.test", "password": PASSWORD})

        bare_time, bare_peak, (bare_bytes, bare_rows) = measure(lambda: _bare(app, tenant_id), args.repeat)
        our_time, our_peak, (our_bytes, our_lines) = measure(lambda: _ours(client), args.repeat)
        assert bare_rows == args.boxes and our_lines == args.boxes + 1, (bare_rows, our_lines)
        print(
            f"bare cursor -> csv.writer: {bare_time:.2f} s ({args.boxes / bare_time:,.0f} rows/s), "
            f"peak {bare_peak / 1e6:.1f} MB, {bare_bytes / 1e6:.1f} MB written"
        )
        print(
            f"Esporta Dati request:      {our_time:.2f} s ({args.boxes / our_time:,.0f} rows/s), "
            f"peak {our_peak / 1e6:.1f} MB, {our_bytes / 1e6:.1f} MB streamed"
        )
        print(f"ratio ours/bare: time x{our_time / bare_time:.2f}, peak memory x{our_peak / max(bare_peak, 1):.2f}")


if __name__ == "__main__":
    main()
