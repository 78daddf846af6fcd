"""Benchmark of the certificates plugin's set-based work over one million certificates.

Two tenants with 500,000 certificates each: 10 templates (every other one renewed on expiry),
40,000 clients, one current certificate per client and template (missing information, pending
approval, approved, expiring, expired), plus 100,000 older ones (expired and already renewed,
archived, in the bin). The states are those of the last sweep, a week before "today" (see
--days-behind): since then about 1% of the approved certificates have crossed into expiring and
another 1% into expired.

Prints how long building took; then, for one tenant:
  - one periodic transition run (``services.sweep``): its time and the rows it moved; the same
    starting state is restored and the same three statements, written by hand, run bare (with
    the same tenant keys, so that each is a range or a probe of an index); the ratio, and the
    time of each bare statement;
  - "Generar certificados" (``jobs.run_generation``) for 100,000 clients of five centres,
    against a bare INSERT … SELECT for another 100,000 clients of five other centres; the ratio.

Each timed operation is cancelled after ``--limit`` seconds (and rolled back); it is then
printed as "> N s".

SQLite always runs; with ``BENCH_DATABASE_URL`` PostgreSQL runs too, after it, in the same run
(each in a process of its own, its lines prefixed with the engine).

    .venv/bin/python bench/certificates_sweep.py                     # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/certificates_sweep.py
    .venv/bin/python bench/certificates_sweep.py --tenants-size 50000 --clients 10000   # a quick run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, text
from sqlalchemy.exc import OperationalError

from bench.harness import bench_app

TEMPLATES = 10
LEAD_DAYS = (15, 30, 60, 7, 90)
CENTRES = 10
BATCH = 100_000
CURRENT_SHARE = 0.8  # of a tenant's certificates: the current one of each client and template
INACTIVE_EVERY = 50  # one client in 50 is deactivated (its certificates are not renewed)
NEVER = 2**62


def _series(dialect: str) -> str:
    """A CTE ``s(n)`` with the integers lo … hi - 1 (64-bit, so that the hashing cannot overflow)."""
    if dialect == "postgresql":
        return "s AS (SELECT CAST(g AS bigint) AS n FROM generate_series(:lo, :hi - 1) AS g)"
    return "s(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM s WHERE n + 1 < :hi)"


def _plus_days(dialect: str, days: str) -> str:
    """The date ``:base`` plus ``days`` (an integer SQL expression)."""
    if dialect == "postgresql":
        return f"(CAST(:base AS date) + CAST({days} AS integer))"
    return f"date(:base, ({days}) || ' days')"


def _with(dialect: str, *ctes: str) -> str:
    return ("WITH " if dialect == "postgresql" else "WITH RECURSIVE ") + ", ".join(ctes)


def _stamped(sql: str, **types):
    from core.extensions import UTCDateTime

    return text(sql).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in types))


def _in_batches(connection, statement, count: int, **params) -> None:
    for lo in range(0, count, BATCH):
        connection.execute(statement, {**params, "lo": lo, "hi": min(count, lo + BATCH)})
        connection.commit()


def _contiguous(connection, table: str, after: int, expected: int) -> int:
    """The first id of the ``expected`` rows just inserted (checked to be one unbroken run)."""
    low, high, count = connection.execute(
        text(f"SELECT min(id), max(id), count(*) FROM {table} WHERE id > :after"), {"after": after}
    ).one()
    assert count == expected and high - low + 1 == expected, (table, low, high, count, expected)
    return low


def _last_id(connection, table: str) -> int:
    return connection.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()


def _case(expression: str, ids: list[int]) -> str:
    return "CASE " + expression + " " + " ".join(f"WHEN {i} THEN {int(v)}" for i, v in enumerate(ids)) + " END"


def _insert_clients(
    connection,
    dialect: str,
    tenant_id: int,
    prefix: str,
    count: int,
    inactive_every: int,
    groups: list[int],
    built: datetime,
) -> int:
    """``count`` clients, spread over ``groups`` in runs of consecutive ids; returns the first id.

    Client i (from 0) goes to group ``i * len(groups) / count``: with 2N clients and 10 groups, the
    first N are exactly those of the first 5 groups."""
    before = _last_id(connection, "core_clients")
    statement = _stamped(
        _with(dialect, _series(dialect))
        + """
        INSERT INTO core_clients (tenant_id, kind, tax_id, tax_id_type, country, first_name, last_name,
                                  company_name, name, email, phone, notes, active, search_text,
                                  created_at, updated_at)
        SELECT :tenant, 'company', :prefix || n, 'other', 'ES', '', '', 'Empresa ' || :prefix || n,
               'Empresa ' || :prefix || n, 'info' || n || '@' || :prefix || '.test', '', '',
               (n + 1) % :inactive_every <> 0, 'empresa ' || lower(:prefix) || n, :built, :built
        FROM s""",
        built=True,
    )
    _in_batches(
        connection, statement, count, tenant=tenant_id, prefix=prefix, inactive_every=inactive_every, built=built
    )
    first = _contiguous(connection, "core_clients", before, count)
    connection.execute(
        text(
            f"""INSERT INTO core_group_clients (tenant_id, group_id, client_id)
            SELECT :tenant, {_case("(id - :first) * :groups / :count", groups)}, id
            FROM core_clients WHERE id >= :first"""
        ),
        {"tenant": tenant_id, "first": first, "groups": len(groups), "count": count},
    )
    connection.commit()
    return first


def _build_tenant(app, slug: str, size: int, last_sweep, generation_clients: int) -> dict:
    """A tenant with the plugin, its templates, centres, clients and ``size`` certificates."""
    from core.extensions import db, utcnow
    from core.groups.models import Group
    from core.provisioning import create_tenant
    from plugins.center_certificates.models import CertificateTemplate
    from tenants.context import tenant_context
    from tenants.licensing import set_licence

    tenant = create_tenant(slug, f"Bench {slug}", "es")
    set_licence(tenant, "center_certificates", True)
    with tenant_context(tenant.id):
        templates = [
            CertificateTemplate(
                name=f"Certificado {i}",
                lead_days=LEAD_DAYS[i % len(LEAD_DAYS)],
                renew_on_expiry=i % 2 == 0,
                auto_for_new_clients=False,
                active=True,
            )
            for i in range(TEMPLATES)
        ]
        centres = [Group(name=f"Centro {i}") for i in range(CENTRES)]
        generation = [Group(name=f"Centro nuevo {i}") for i in range(CENTRES if generation_clients else 0)]
        db.session.add_all([*templates, *centres, *generation])
        db.session.commit()
        template_ids = [t.id for t in templates]
        assert template_ids == list(range(template_ids[0], template_ids[0] + TEMPLATES))
        centre_ids, generation_ids = [g.id for g in centres], [g.id for g in generation]
    tenant_id = tenant.id
    db.session.close()

    dialect = db.engine.dialect.name
    built = utcnow()
    current_pairs = max(TEMPLATES, round(size * CURRENT_SHARE) // TEMPLATES * TEMPLATES)
    clients, older = current_pairs // TEMPLATES, size - current_pairs
    assert 0 <= older <= current_pairs, "--tenants-size is too small"
    with db.engine.connect() as connection:
        first_client = _insert_clients(
            connection, dialect, tenant_id, f"C{tenant_id}-", clients, INACTIVE_EVERY, centre_ids, built
        )
        if generation_clients:
            _insert_clients(
                connection, dialect, tenant_id, f"G{tenant_id}-", 2 * generation_clients, NEVER, generation_ids, built
            )

        columns = """tenant_id, template_id, client_id, name, lead_days, status, validity_date, expiring_from,
            notes, uploaded_at, uploaded_by_client, rejection_reason, approved_at, expired_at, archived_at,
            deleted_at, renewal_of_id, created_at, updated_at"""
        # Pair n: template n % 10, client n / 10. Older certificate n (n < older) belongs to pair n:
        # 60% expired (renewed by the current one when its template renews), 25% archived (approved, expiring
        # or expired by their validity, as the sweep leaves them), 15% in the bin.
        older_rows = (
            "r AS (SELECT s.n AS n, t.id AS template_id, t.name AS name, t.lead_days AS lead, "
            ":first_client + s.n / :templates AS client_id, s.n % 20 AS k, (s.n * 104729) % 700 AS age "
            "FROM s JOIN center_certificates_templates t ON t.id = :first_template + s.n % :templates)"
        )
        validity = (
            f"CASE WHEN k < 12 THEN {_plus_days(dialect, '-1 - age')} "
            f"WHEN k < 17 THEN {_plus_days(dialect, 'age - 350')} END"
        )
        expiring_from = (
            f"CASE WHEN k < 12 THEN {_plus_days(dialect, '-1 - age - lead')} "
            f"WHEN k < 17 THEN {_plus_days(dialect, 'age - 350 - lead')} END"
        )
        before = _last_id(connection, "center_certificates_certificates")
        _in_batches(
            connection,
            _stamped(
                _with(dialect, _series(dialect), older_rows)
                + f"""
                INSERT INTO center_certificates_certificates ({columns})
                SELECT :tenant, template_id, client_id, name, lead,
                       CASE WHEN k < 12 OR (k < 17 AND age < 350) THEN 'expired'
                            WHEN k < 17 AND age <= 350 + lead THEN 'expiring'
                            WHEN k < 17 THEN 'approved' ELSE 'missing_info' END,
                       {validity}, {expiring_from}, '', CASE WHEN k < 17 THEN :built END, FALSE, '',
                       CASE WHEN k < 17 THEN :built END, CASE WHEN k < 12 OR (k < 17 AND age < 350) THEN :built END,
                       CASE WHEN k >= 12 AND k < 17 THEN :built END, CASE WHEN k >= 17 THEN :built END,
                       NULL, :built, :built
                FROM r""",
                built=True,
            ),
            older,
            tenant=tenant_id,
            first_client=first_client,
            first_template=template_ids[0],
            templates=TEMPLATES,
            base=last_sweep.isoformat(),
            built=built,
        )
        first_older = _contiguous(connection, "center_certificates_certificates", before, older) if older else 0

        # Current certificate of pair n: 10% missing information, 8% pending approval, 82% approved with
        # its validity 0 … 729 days after the last sweep (templates that renew) or -365 … 729 days
        # (the others, whose expired certificates stay expired); the state is that of the last sweep.
        current_rows = (
            "r AS (SELECT s.n AS n, t.id AS template_id, t.name AS name, t.lead_days AS lead, "
            ":first_client + s.n / :templates AS client_id, (s.n * 7919) % 100 AS h, "
            "30 + (s.n * 104729) % 600 AS pending_off, "
            "CASE WHEN t.renew_on_expiry THEN (s.n * 104729) % 730 ELSE (s.n * 104729) % 1095 - 365 END AS off, "
            "CASE WHEN t.renew_on_expiry AND s.n < :older AND s.n % 20 < 12 THEN :first_older + s.n END AS renewal_of "
            "FROM s JOIN center_certificates_templates t ON t.id = :first_template + s.n % :templates)"
        )
        validity = (
            f"CASE WHEN h < 10 THEN NULL WHEN h < 18 THEN {_plus_days(dialect, 'pending_off')} "
            f"ELSE {_plus_days(dialect, 'off')} END"
        )
        expiring_from = (
            f"CASE WHEN h < 10 THEN NULL WHEN h < 18 THEN {_plus_days(dialect, 'pending_off - lead')} "
            f"ELSE {_plus_days(dialect, 'off - lead')} END"
        )
        _in_batches(
            connection,
            _stamped(
                _with(dialect, _series(dialect), current_rows)
                + f"""
                INSERT INTO center_certificates_certificates ({columns})
                SELECT :tenant, template_id, client_id, name, lead,
                       CASE WHEN h < 10 THEN 'missing_info' WHEN h < 18 THEN 'pending_approval'
                            WHEN off < 0 THEN 'expired' WHEN off <= lead THEN 'expiring' ELSE 'approved' END,
                       {validity}, {expiring_from}, '', CASE WHEN h >= 10 THEN :built END, h % 2 = 0, '',
                       CASE WHEN h >= 18 THEN :built END, CASE WHEN h >= 18 AND off < 0 THEN :built END,
                       NULL, NULL, renewal_of, :built, :built
                FROM r""",
                built=True,
            ),
            current_pairs,
            tenant=tenant_id,
            first_client=first_client,
            first_template=template_ids[0],
            templates=TEMPLATES,
            older=older,
            first_older=first_older,
            base=last_sweep.isoformat(),
            built=built,
        )
    return {
        "id": tenant_id,
        "templates": template_ids,
        "generation_groups": generation_ids,
        "built": built,
        "clients": clients,
    }


def _states(connection, tenant_id: int) -> Counter:
    rows = connection.execute(
        text(
            """SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted' WHEN archived_at IS NOT NULL THEN 'archived'
                      ELSE status END, count(*)
               FROM center_certificates_certificates WHERE tenant_id = :tenant GROUP BY 1"""
        ),
        {"tenant": tenant_id},
    ).all()
    return Counter(dict(rows))


# services.sweep(), written by hand: the same three statements, in one transaction. Every subquery
# names the tenant (the indexes start with tenant_id), as the service does.
BARE_EXPIRED = """
    UPDATE center_certificates_certificates SET status = 'expired', expired_at = :now, updated_at = :now
    WHERE tenant_id = :tenant AND deleted_at IS NULL
      AND status IN ('approved', 'expiring') AND validity_date < :today AND expiring_from < :today"""
BARE_EXPIRING = """
    UPDATE center_certificates_certificates SET status = 'expiring', updated_at = :now
    WHERE tenant_id = :tenant AND deleted_at IS NULL AND archived_at IS NULL
      AND status = 'approved' AND expiring_from <= :today"""
BARE_RENEW = """
    INSERT INTO center_certificates_certificates (tenant_id, template_id, client_id, name, lead_days, status,
        renewal_of_id, created_at, updated_at, notes, uploaded_by_client, rejection_reason)
    SELECT old.tenant_id, old.template_id, old.client_id, t.name, t.lead_days, 'missing_info', old.id,
           :now, :now, '', FALSE, ''
    FROM center_certificates_certificates AS old
    JOIN center_certificates_templates AS t ON t.id = old.template_id
    JOIN core_clients AS c ON c.id = old.client_id
    WHERE old.tenant_id = :tenant AND t.tenant_id = :tenant AND c.tenant_id = :tenant
      AND old.status = 'expired' AND old.deleted_at IS NULL AND t.renew_on_expiry AND t.active AND c.active
      AND NOT EXISTS (SELECT 1 FROM center_certificates_certificates AS renewal
                      WHERE renewal.tenant_id = :tenant AND renewal.renewal_of_id = old.id)
      AND NOT EXISTS (SELECT 1 FROM center_certificates_certificates AS newer
                      WHERE newer.tenant_id = :tenant AND newer.client_id = old.client_id
                        AND newer.template_id = old.template_id AND newer.id > old.id)
      AND NOT EXISTS (SELECT 1 FROM center_certificates_certificates AS other
                      WHERE other.tenant_id = :tenant AND other.client_id = old.client_id
                        AND other.template_id = old.template_id
                        AND other.deleted_at IS NULL AND other.archived_at IS NULL AND other.status <> 'expired')
    RETURNING id"""
# "Generar certificados" written by hand: the clients of the centres without an open certificate.
BARE_GENERATE = """
    INSERT INTO center_certificates_certificates (tenant_id, template_id, client_id, name, lead_days, status,
        issued_by_id, created_at, updated_at, notes, uploaded_by_client, rejection_reason)
    SELECT :tenant, :template, c.id, :name, :lead_days, 'missing_info', NULL, :now, :now, '', FALSE, ''
    FROM core_clients AS c
    WHERE c.tenant_id = :tenant AND c.active
      AND c.id IN (SELECT client_id FROM core_group_clients WHERE tenant_id = :tenant AND group_id IN ({groups}))
      AND NOT EXISTS (SELECT 1 FROM center_certificates_certificates AS open_one
                      WHERE open_one.tenant_id = :tenant AND open_one.client_id = c.id
                        AND open_one.template_id = :template
                        AND open_one.deleted_at IS NULL AND open_one.archived_at IS NULL
                        AND open_one.status <> 'expired')
    RETURNING id"""


class Cancelled(Exception):
    pass


@contextlib.contextmanager
def _cancel_after(seconds: float, connection):
    """Cancel the statement running on ``connection`` (a SQLAlchemy one) after ``seconds``."""
    raw = connection.connection.dbapi_connection
    cancel = getattr(raw, "interrupt", None) or getattr(raw, "cancel_safe", None) or raw.cancel
    timer = threading.Timer(seconds, cancel)
    timer.daemon = True
    started = time.perf_counter()
    timer.start()
    try:
        yield
    except OperationalError as error:
        if time.perf_counter() - started < seconds:
            raise
        raise Cancelled from error
    finally:
        timer.cancel()
        timer.join()  # a cancel already on its way has arrived before the next statement starts


def _ms(value: float | None, limit: float) -> str:
    return f"> {limit:g} s (cancelled)" if value is None else f"{value:9.1f} ms"


def _ratio(ours: float | None, bare: float | None, limit: float) -> str:
    if ours is not None and bare is not None:
        return f"{ours / bare:5.2f}x"
    if ours is None and bare is not None:
        return f"> {limit * 1000 / bare:,.0f}x"
    if ours is not None:
        return f"< {ours / (limit * 1000):.2f}x"
    return "n/a (both cancelled)"


def _moved(counts: dict | None) -> str:
    if counts is None:
        return "nothing (rolled back)"
    return f"expired {counts['expired']:,}, expiring {counts['expiring']:,}, renewals {counts['renewed']:,}"


def _bare_sweep(tenant_id: int, today, statements: tuple[str, str, str], limit: float):
    """The three statements in one transaction; (rows moved or None when cancelled, ms, ms per statement)."""
    from core.extensions import db, utcnow

    params = {"tenant": tenant_id, "today": today.isoformat(), "now": utcnow()}
    expired_sql, expiring_sql, renew_sql = statements
    steps: dict[str, float | None] = {}
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        started = last = time.perf_counter()

        def step(name: str, run):
            nonlocal last
            steps[name] = None
            value = run()
            now = time.perf_counter()
            steps[name], last = (now - last) * 1000, now
            return value

        try:
            with _cancel_after(limit, connection):
                counts = {
                    "expired": step(
                        "expiry UPDATE", lambda: connection.execute(_stamped(expired_sql, now=True), params).rowcount
                    ),
                    "expiring": step(
                        "expiring UPDATE",
                        lambda: connection.execute(_stamped(expiring_sql, now=True), params).rowcount,
                    ),
                    "renewed": step(
                        "renewal INSERT … SELECT",
                        lambda: len(connection.execute(_stamped(renew_sql, now=True), params).all()),
                    ),
                }
                step("commit", connection.commit)
        except Cancelled:
            connection.rollback()
            return None, None, steps
    return counts, (time.perf_counter() - started) * 1000, steps


def _restore(tenant_id: int, built: datetime, last_sweep) -> None:
    """Undo a sweep: drop the renewals it wrote, put back the states of the rows it moved."""
    from core.extensions import db

    base = "CAST(:base AS date)" if db.engine.dialect.name == "postgresql" else ":base"
    params = {"tenant": tenant_id, "built": built, "base": last_sweep.isoformat()}
    with db.engine.connect() as connection:
        connection.execute(
            _stamped(
                "DELETE FROM center_certificates_certificates "
                "WHERE tenant_id = :tenant AND renewal_of_id IS NOT NULL AND created_at > :built",
                built=True,
            ),
            params,
        )
        connection.execute(
            _stamped(
                f"""UPDATE center_certificates_certificates
                SET status = CASE WHEN validity_date < {base} THEN 'expired'
                                  WHEN expiring_from <= {base} THEN 'expiring' ELSE 'approved' END,
                    expired_at = NULL, updated_at = :built
                WHERE tenant_id = :tenant AND updated_at > :built""",
                built=True,
            ),
            params,
        )
        connection.commit()


def _check_restored(tenant_id: int, expected: Counter) -> None:
    from core.extensions import db

    with db.engine.connect() as connection:
        assert _states(connection, tenant_id) == expected, "the starting state was not restored"


def _by_statement(steps: dict, limit: float) -> str:
    return ", ".join(f"{name} {_ms(value, limit).strip()}" for name, value in steps.items())


def _bench_sweep(tenant_id: int, built: datetime, last_sweep, today, size: int, limit: float) -> None:
    from core.extensions import db
    from plugins.center_certificates import services
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with db.engine.connect() as connection:
        start = _states(connection, tenant_id)
    with tenant_context(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        assert services.today_for(tenant) == today
        connection = db.session.connection()
        try:
            with _cancel_after(limit, connection):
                started = time.perf_counter()
                ours = services.sweep(tenant)
                ours_ms = (time.perf_counter() - started) * 1000
        except Cancelled:
            db.session.rollback()
            ours = ours_ms = None
    db.session.close()
    print(
        f"sweep, ours (services.sweep, 1 tenant of {size:,} certificates): {_ms(ours_ms, limit)}  moved {_moved(ours)}"
    )
    _restore(tenant_id, built, last_sweep)
    _check_restored(tenant_id, start)

    bare, bare_ms, steps = _bare_sweep(tenant_id, today, (BARE_EXPIRED, BARE_EXPIRING, BARE_RENEW), limit)
    if ours is not None and bare is not None:
        assert bare == ours, (bare, ours)
    print(
        f"sweep, bare SQL, the same 3 statements by hand (same start): {_ms(bare_ms, limit)}  moved {_moved(bare)}; "
        f"ratio ours/bare {_ratio(ours_ms, bare_ms, limit)}"
    )
    print(f"  by statement: {_by_statement(steps, limit)}")
    _restore(tenant_id, built, last_sweep)
    _check_restored(tenant_id, start)


def _bench_generation(tenant_id: int, template_id: int, groups: list[int], clients: int, limit: float) -> None:
    """Ours for the clients of groups[:5]; a bare INSERT … SELECT for those of groups[5:]."""
    from core.extensions import db
    from plugins.center_certificates import services
    from plugins.center_certificates.jobs import run_generation
    from tenants.context import tenant_context
    from tenants.models import Tenant

    half = len(groups) // 2
    with tenant_context(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        template = services.get_template(template_id)
        name, lead_days = template.name, template.lead_days
        ctx = SimpleNamespace(tenant=tenant, run=SimpleNamespace(started_by_id=None), progress=lambda *a, **k: None)
        connection = db.session.connection()
        try:
            with _cancel_after(limit, connection):
                started = time.perf_counter()
                result = run_generation(ctx, template_id, groups[:half])  # commits after each batch
                ours_ms = (time.perf_counter() - started) * 1000
            assert result["created"] == clients, result
        except Cancelled:
            db.session.rollback()
            result, ours_ms = {"created": 0}, None
    db.session.close()
    print(
        f"Generar certificados, ours (jobs.run_generation, {clients:,} clients of {half} centres, "
        f"batches of {services.GENERATION_BATCH:,}): {_ms(ours_ms, limit)}  created {result['created']:,} "
        f"in {result.get('batches', 0)} INSERT … SELECT"
    )

    params = {
        "tenant": tenant_id,
        "template": template_id,
        "name": name,
        "lead_days": lead_days,
        "now": datetime.now(UTC),
    }
    statement = _stamped(BARE_GENERATE.format(groups=", ".join(map(str, groups[half:]))), now=True)
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        try:
            with _cancel_after(limit, connection):
                started = time.perf_counter()
                created = len(connection.execute(statement, params).all())
                connection.commit()
                bare_ms = (time.perf_counter() - started) * 1000
            assert created == clients, created
        except Cancelled:
            connection.rollback()
            created, bare_ms = 0, None
        print(
            f"Generar certificados, bare INSERT … SELECT ({clients:,} other clients of {len(groups) - half} centres): "
            f"{_ms(bare_ms, limit)}  created {created:,}; ratio ours/bare {_ratio(ours_ms, bare_ms, limit)}"
        )


def _each_engine(argv: list[str]) -> None:
    """SQLite, then PostgreSQL when ``BENCH_DATABASE_URL`` names a server: each in a process of its
    own (a fresh app on its own database), its lines prefixed with the engine."""
    engines = ["sqlite"] + (["postgresql"] if os.environ.get("BENCH_DATABASE_URL") else [])
    for engine in engines:
        env = dict(os.environ)
        if engine == "sqlite":
            env.pop("BENCH_DATABASE_URL", None)
        with subprocess.Popen(
            [sys.executable, "-u", __file__, *argv, "--engine", engine],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            for line in child.stdout:
                print(f"[{engine}] {line}", end="", flush=True)
        if child.returncode:
            raise SystemExit(f"the {engine} run failed ({child.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants-size", type=int, default=500_000, help="certificates in each of the 2 tenants")
    parser.add_argument("--clients", type=int, default=100_000, help="clients of 'Generar certificados' (each side)")
    parser.add_argument("--days-behind", type=int, default=7, help="days since the states were last swept")
    parser.add_argument("--limit", type=float, default=60, help="seconds before a timed operation is cancelled")
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgresql"),
        help="run on this engine only (without it: SQLite, then PostgreSQL when BENCH_DATABASE_URL is set)",
    )
    args = parser.parse_args()
    if args.engine is None:
        _each_engine(sys.argv[1:])
        return
    if args.engine == "sqlite":
        os.environ.pop("BENCH_DATABASE_URL", None)
    elif not os.environ.get("BENCH_DATABASE_URL"):
        parser.error("--engine postgresql needs BENCH_DATABASE_URL")

    from core.extensions import db
    from plugins.center_certificates import services

    with bench_app(["center_certificates"]) as app, app.app_context():
        engine_name = db.engine.dialect.name
        # The tenants are created in Europe/Madrid; "today" is theirs.
        today = services.today_for(SimpleNamespace(timezone="Europe/Madrid"))
        last_sweep = today - timedelta(days=args.days_behind)

        started = time.perf_counter()
        a = _build_tenant(app, "bench-a", args.tenants_size, last_sweep, args.clients)
        _build_tenant(app, "bench-b", args.tenants_size, last_sweep, 0)
        if engine_name == "postgresql":
            with db.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
        elapsed = time.perf_counter() - started
        with db.engine.connect() as connection:
            total = connection.execute(text("SELECT count(*) FROM center_certificates_certificates")).scalar_one()
            start_states = _states(connection, a["id"])
        print(
            f"engine: {engine_name}; {total:,} certificates in 2 tenants ({TEMPLATES} templates, "
            f"{a['clients']:,} clients each, plus {2 * args.clients:,} clients without certificates), "
            f"built in {elapsed:.1f} s ({total / elapsed:,.0f} certificates/s"
            + (", ANALYZE included)" if engine_name == "postgresql" else ")")
        )
        print(
            f"tenant bench-a as of the last sweep ({last_sweep}; today is {today}): "
            + ", ".join(f"{state} {count:,}" for state, count in sorted(start_states.items()))
        )
        _bench_sweep(a["id"], a["built"], last_sweep, today, args.tenants_size, args.limit)
        if args.clients:
            _bench_generation(a["id"], a["templates"][0], a["generation_groups"], args.clients, args.limit)


if __name__ == "__main__":
    main()
