"""Who is missing what: clients by templates with the state of each one's certificate."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exists, or_, select

from core.api import Client, client_ids_in_groups, db, keyset_page, visible_clients
from plugins.center_certificates.models import EXPIRED, STATUS_LABELS, Certificate, CertificateTemplate

NOT_REQUESTED = "none"
BATCH = 500


def _templates() -> list[CertificateTemplate]:
    return list(
        db.session.scalars(
            select(CertificateTemplate).where(CertificateTemplate.active.is_(True)).order_by(CertificateTemplate.name)
        )
    )


def _clients(user, group_id: int | None, status: str | None, templates: list[CertificateTemplate]):
    stmt = visible_clients(user, select(Client).where(Client.active.is_(True)))
    if group_id:
        stmt = stmt.where(Client.id.in_(client_ids_in_groups([group_id])))
    live = (Certificate.client_id == Client.id) & Certificate.deleted_at.is_(None) & Certificate.archived_at.is_(None)
    if status == NOT_REQUESTED:
        # Some template in use has no current (or expired) certificate for the client.
        template_ids = [t.id for t in templates]
        missing = [~exists().where(live, Certificate.template_id == template_id) for template_id in template_ids]
        stmt = stmt.where(or_(*missing)) if missing else stmt.where(False)
    elif status:
        stmt = stmt.where(exists().where(live, Certificate.status == status))
    return stmt


def _cells(client_ids: list[int]) -> dict[tuple[int, int], Certificate]:
    """The certificate that speaks for each (client, template): the open one, else the last expired."""
    if not client_ids:
        return {}
    rows = db.session.scalars(
        select(Certificate)
        .where(
            Certificate.client_id.in_(client_ids), Certificate.deleted_at.is_(None), Certificate.archived_at.is_(None)
        )
        .order_by(Certificate.id)
    ).all()
    cells: dict[tuple[int, int], Certificate] = {}
    for certificate in rows:
        key = (certificate.client_id, certificate.template_id)
        held = cells.get(key)
        if held is None or held.status == EXPIRED:
            cells[key] = certificate
    return cells


def report_page(user, group_id: int | None, status: str | None, after: str | None):
    templates = _templates()
    page = keyset_page(
        db.session, _clients(user, group_id, status, templates), [Client.name, Client.id], after, per_page=50
    )
    return page, templates, _cells([c.id for c in page.items])


def report_rows(user, group_id: int | None, status: str | None) -> Iterator[list]:
    """The report as CSV rows, read in keyset batches (flat memory whatever the size)."""
    templates = _templates()
    yield ["tax_id", "client", "email", *[t.name for t in templates]]
    base = _clients(user, group_id, status, templates)
    after = None
    while True:
        stmt = base
        if after is not None:
            stmt = stmt.where((Client.name > after[0]) | ((Client.name == after[0]) & (Client.id > after[1])))
        clients = db.session.scalars(stmt.order_by(Client.name, Client.id).limit(BATCH)).all()
        if not clients:
            return
        cells = _cells([c.id for c in clients])
        for client in clients:
            states = []
            for template in templates:
                certificate = cells.get((client.id, template.id))
                states.append(str(STATUS_LABELS[certificate.status]) if certificate else "")
            yield [client.tax_id, client.name, client.email, *states]
        after = (clients[-1].name, clients[-1].id)
        for row in [*clients, *cells.values()]:
            db.session.expunge(row)
