"""Bulk CSV import of holders and boxes: a ``bulk`` job with progress, and a per-row report.

The file is parsed and every row checked by the engine (``plugins.pec.imports``); what needs the
database — does the holder exist, is the name free on its domain, which agent and package — is
checked here, a batch of rows at a time with one query per kind of lookup. Valid rows are saved
in the same batch; every rejected row is reported with its line, column and reason. Importing
the same file again creates nothing new (holders are found by codice fiscale, boxes by name).
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, tuple_

from core.api import Client, User, db, enqueue, tenant_today, utcnow
from plugins.pec import holders, people
from plugins.pec.activation import service as activation
from plugins.pec.assistants import check_may_register
from plugins.pec.errors import PecError
from plugins.pec.imports import BOXES, HOLDERS, ImportReport, field_label, parse_boxes, parse_holders
from plugins.pec.lifecycle import BoxState
from plugins.pec.mailboxes import NameUse, check_name_available
from plugins.pec.models import Agent, Box, Domain, HolderAddress, HolderProfile, ImportRun

JOB = "pec.import"
BATCH = 500
MAX_BYTES = 20 * 1024 * 1024


def start(tenant, user, kind: str, filename: str, data: bytes) -> ImportRun:
    """Keep the file and queue the job; the report page follows its progress."""
    if kind not in (HOLDERS, BOXES):
        raise PecError(_l("Choose what the file holds."), field="kind", code="import.kind")
    if not data:
        raise PecError(_l("The file is empty."), field="file", code="file.empty")
    if len(data) > MAX_BYTES:
        raise PecError(_l("The file is larger than 20 MB: split it."), field="file", code="file.size")
    run = ImportRun(kind=kind, filename=(filename or "import.csv")[:255], data=data, created_by_id=user.id)
    db.session.add(run)
    db.session.commit()
    job = enqueue(tenant, JOB, {"import_id": run.id}, started_by=user)
    run.run_id = job.id
    db.session.commit()
    return run


def _problem(line: int, field: str | None, message) -> list:
    return [line, field_label(field), str(message)]


def run_import(ctx, import_id: int) -> dict:
    run = db.session.get(ImportRun, import_id)
    if run is None or run.finished_at is not None:
        return {"created": 0}
    user = db.session.get(User, run.created_by_id) if run.created_by_id else None
    with force_locale(ctx.tenant.language):
        try:
            report = parse_holders(run.data) if run.kind == HOLDERS else parse_boxes(run.data)
        except PecError as error:
            run.problems = [_problem(1, error.field, error.message)]
            run.rejected, run.finished_at = 0, utcnow()
            db.session.commit()
            return {"created": 0, "error": str(error.message)}
        problems = [_problem(e.row, e.field, e.message) for e in report.errors]
        apply = _import_holders if run.kind == HOLDERS else _import_boxes
        created, more, submitted = apply(ctx, report, user)
    problems += more
    run.rows = len(report.rows)
    run.created = created
    run.rejected = len({p[0] for p in problems})
    run.problems = sorted(problems, key=lambda p: p[0])
    run.finished_at = utcnow()
    db.session.commit()
    for box in submitted:
        activation.request_activation(ctx.tenant, box)
    return {"rows": run.rows, "created": created, "rejected": run.rejected}


def _batches(report: ImportReport):
    valid = [r for r in report.rows if r.ok]
    for start in range(0, len(valid), BATCH):
        yield start, valid[start : start + BATCH], len(valid)


def _import_holders(ctx, report: ImportReport, user):
    created = 0
    problems: list[list] = []
    for start, batch, total in _batches(report):
        codes = {r.data.identity.codice_fiscale for r in batch}
        existing = {c.tax_id: c for c in db.session.scalars(select(Client).where(Client.tax_id.in_(codes)))}
        known = defaultdict(set)
        if existing:
            for client_id, street, cap in db.session.execute(
                select(HolderAddress.client_id, HolderAddress.street, HolderAddress.cap).where(
                    HolderAddress.client_id.in_([c.id for c in existing.values()])
                )
            ):
                known[client_id].add((street.lower(), cap))
        for row in batch:
            data = row.data
            client = existing.get(data.identity.codice_fiscale)
            if client is None:
                client = people.create_holder_client(data.identity, data.email, data.address.phone.e164, user)
                db.session.add(HolderProfile(client_id=client.id, partita_iva=data.identity.partita_iva or ""))
                db.session.flush()
                holders.fill_from_codice_fiscale(client)
                existing[client.tax_id] = client
                created += 1
            key = (data.address.street.lower(), data.address.cap)
            if key in known[client.id]:
                continue
            known[client.id].add(key)
            address = data.address
            db.session.add(
                HolderAddress(
                    client_id=client.id,
                    street=address.street,
                    cap=address.cap,
                    comune=address.comune,
                    provincia=address.provincia,
                    nazione=address.nazione,
                    codice_istat=address.codice_istat,
                    phone=address.phone.e164,
                    mobile=address.mobile.e164 if address.mobile else "",
                    fax=address.fax.e164 if address.fax else "",
                )
            )
        db.session.commit()
        ctx.progress(start + len(batch), total, f"{start + len(batch)}/{total}")
    return created, problems, []


def _import_boxes(ctx, report: ImportReport, user):
    created = 0
    problems: list[list] = []
    submitted: list[Box] = []
    domains = {d.name: d for d in db.session.scalars(select(Domain).where(Domain.active.is_(True)))}
    agents = list(db.session.scalars(select(Agent).where(Agent.active.is_(True))))
    by_email = {a.email.lower(): a for a in agents}
    by_name = {a.name.lower(): a for a in agents} | {a.company_name.lower(): a for a in agents if a.company_name}
    for start, batch, total in _batches(report):
        codes = {r.data.holder_codice_fiscale for r in batch}
        clients = {c.tax_id: c for c in db.session.scalars(select(Client).where(Client.tax_id.in_(codes)))}
        first_address = dict(
            db.session.execute(
                select(HolderAddress.client_id, func.min(HolderAddress.id))
                .where(HolderAddress.client_id.in_([c.id for c in clients.values()] or [0]))
                .group_by(HolderAddress.client_id)
            ).all()
        )
        pivas = dict(
            db.session.execute(
                select(HolderProfile.client_id, HolderProfile.partita_iva).where(
                    HolderProfile.client_id.in_([c.id for c in clients.values()] or [0])
                )
            ).all()
        )
        names = [(domains[r.data.domain].id, r.data.local_part) for r in batch if r.data.domain in domains]
        uses = defaultdict(list)
        if names:
            for domain_id, local_part, state, deleted_on, tax_id, piva in db.session.execute(
                select(
                    Box.domain_id, Box.local_part, Box.state, Box.deleted_on, Client.tax_id, HolderProfile.partita_iva
                )
                .join(Client, Client.id == Box.holder_id)
                .outerjoin(HolderProfile, HolderProfile.client_id == Box.holder_id)
                .where(tuple_(Box.domain_id, Box.local_part).in_(names))
            ):
                uses[(domain_id, local_part)].append(
                    NameUse(BoxState(state), frozenset(x for x in (tax_id, piva) if x), deleted_on)
                )
        today = tenant_today(ctx.tenant)
        for row in batch:
            data = row.data
            line = row.row
            domain = domains.get(data.domain)
            client = clients.get(data.holder_codice_fiscale)
            if domain is None:
                problems.append(_problem(line, "domain", _l("%(name)s is not one of your domains.", name=data.domain)))
                continue
            if client is None:
                problems.append(
                    _problem(line, "codice_fiscale", _l("No holder has this codice fiscale: import the holders first."))
                )
                continue
            ids = {client.tax_id, pivas.get(client.id) or ""} - {""}
            try:
                check_may_register(ctx.tenant, user)
                check_name_available(data.local_part, domain.name, ids, uses[(domain.id, data.local_part)], today)
            except PecError as error:
                problems.append(_problem(line, error.field if error.field != "name" else "address", error.message))
                continue
            agent = None
            if data.agent:
                agent = by_email.get(data.agent.lower()) or by_name.get(data.agent.lower())
                if agent is None:
                    problems.append(_problem(line, "agent", _l("No active agent is called %(name)s.", name=data.agent)))
                    continue
            if data.package:
                problems.append(
                    _problem(
                        line,
                        "package",
                        _l("Only an active box joins a package: leave the column empty and choose it once active."),
                    )
                )
                continue
            box = Box(
                domain_id=domain.id,
                local_part=data.local_part,
                address=data.address,
                holder_id=client.id,
                holder_address_id=first_address.get(client.id),
                state=BoxState.PENDING.value,
                box_type=data.box_type.code,
                mailbox_mb=data.mailbox_mb,
                years=data.years,
                renewal=data.renewal.value,
                request_id=uuid.uuid4().hex,
                provider=domain.provider,
                agent_id=agent.id if agent else None,
                created_by_id=getattr(user, "id", None),
            )
            db.session.add(box)
            uses[(domain.id, data.local_part)].append(NameUse(BoxState.PENDING, frozenset(ids)))
            submitted.append(box)
            created += 1
        db.session.commit()
        ctx.progress(start + len(batch), total, f"{start + len(batch)}/{total}")
    return created, problems, submitted


def report_rows(run: ImportRun):
    """The downloadable report: one line per problem."""
    from flask_babel import gettext

    yield [gettext("Row"), gettext("Column"), gettext("Problem")]
    for line, column, message in run.problems or []:
        yield [line, column, message]
