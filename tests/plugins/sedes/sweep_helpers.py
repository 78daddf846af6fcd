"""What the sweep tests share: an office with many DEHú mailboxes, all due, and reading a sweep back."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import select, update

from tests.plugins.sedes.sync_helpers import company_certificate, in_tenant, point_catalogue_at, store_certificate


def cif(number: int) -> str:
    """A valid CIF (its control character computed) of a limited company, numbered."""
    from stdnum.es import cif as cif_check

    digits = f"{number:07d}"
    return f"B{digits}{cif_check.calc_check_digits('B' + digits)[1]}"


def office_with_mailboxes(app, factory, simulator, count: int, *, slug: str = "acme") -> tuple:
    """A tenant with ``count`` clients, each with its certificate (enrolled at the simulator), a DEHú
    mailbox due now and one pending notification there. Returns the tenant, the mailbox ids and their
    CIFs, in the same order."""
    from core.extensions import db, utcnow
    from plugins.sedes.models import SedeMailbox

    tenant = factory.tenant(slug, language="en")
    point_catalogue_at(app, simulator)
    simulator.ca.reuse_keys = True  # one RSA key for all: generating dozens would dominate the test
    ids, cifs = [], []
    for n in range(count):
        tax_id = cif(3000000 + n)
        client_id = factory.client(tenant, f"Empresa {n:03d} SL", tax_id)
        certificate = store_certificate(app, tenant, client_id, company_certificate(simulator, tax_id))
        with in_tenant(app, tenant.id):
            mailbox = SedeMailbox(client_id=client_id, sede_code="dehu", certificate_id=certificate)
            db.session.add(mailbox)
            db.session.commit()
            ids.append(mailbox.id)
        simulator.add_notification(tax_id, subject=f"Requerimiento {n:03d}")
        cifs.append(tax_id)
    make_due(app, tenant, utcnow() - timedelta(minutes=1))
    return tenant, ids, cifs


def make_due(app, tenant, when) -> None:
    from core.extensions import db
    from plugins.sedes.models import SedeMailbox

    with in_tenant(app, tenant.id):
        db.session.execute(update(SedeMailbox).values(next_sync_at=when).execution_options(synchronize_session=False))
        db.session.commit()


def sweep_row(app, tenant) -> dict | None:
    """The tenant's latest sweep, as a dict."""
    from core.extensions import db
    from plugins.sedes.models import SedeSweep

    with in_tenant(app, tenant.id):
        sweep = db.session.scalar(select(SedeSweep).order_by(SedeSweep.id.desc()).limit(1))
        values = None
        if sweep is not None:
            values = {
                c: getattr(sweep, c)
                for c in ("id", "job_run_id", "parts", "run_ids", "total", "done", "errors", "new", "finished_at")
            }
        db.session.rollback()
        return values


def run_row(app, tenant, run_id: int) -> dict:
    from core.extensions import db
    from core.jobs.models import JobRun

    with in_tenant(app, tenant.id):
        run = db.session.get(JobRun, run_id)
        values = {c: getattr(run, c) for c in ("name", "status", "progress", "progress_message", "result")}
        db.session.rollback()
        return values


def mailbox_rows(app, tenant) -> dict[int, dict]:
    from core.extensions import db
    from plugins.sedes.models import SedeMailbox

    columns = ("last_result", "sweep_id", "lease_owner", "leased_until", "queued_at", "last_new_count")
    with in_tenant(app, tenant.id):
        rows = {m.id: {c: getattr(m, c) for c in columns} for m in db.session.scalars(select(SedeMailbox))}
        db.session.rollback()
        return rows


def listings_by_nif(simulator) -> dict[str, list]:
    """The simulator's own record: each NIF's listing requests (``Localiza``), in order."""
    found: dict[str, list] = {}
    for served in simulator.requests:
        if served.operation == "Localiza" and served.nif:
            found.setdefault(served.nif, []).append(served)
    return found


def overlapping(requests: list) -> bool:
    """Whether two of these requests were being answered at the same time."""
    spans = sorted((r.started, r.finished) for r in requests)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
