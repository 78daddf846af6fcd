"""Buzones (seed 000): a mailbox is one client at one sede, read with one certificate — the
client's, or the office's own under apoderamiento ("Buzón bajo perfil de apoderamiento").

Mailboxes are offered for the licensed sedes when a certificate is uploaded or a client is
opened, and added one at a time from the sede's page in Configuración → Servicios y buzones
("Nuevo buzón": certificate, client whose NIF matches it — any client under apoderamiento —, the
next sync and the period in days). The same mailboxes are seen by sede and by client. The
licence's ``mailboxes`` limit caps how many the tenant keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.api import (
    Client,
    DomainError,
    Page,
    Tenant,
    db,
    get_visible_client,
    has_permission,
    keyset_page,
    limit,
    utcnow,
    visible_client_ids,
)
from plugins.sedes import MAILBOXES_LIMIT, MAILBOXES_MANAGE, MAILBOXES_VIEW, NAME
from plugins.sedes import certificates as certificate_service
from plugins.sedes.catalogue import licensed_sedes
from plugins.sedes.client_fields import codes_of
from plugins.sedes.models import CCC, NAF, Certificate, Mailbox, Sede

MAX_PERIOD_DAYS = 365


def _need(user, permission: str) -> None:
    if not has_permission(user, permission):
        raise DomainError(_l("Your role does not allow this."))


# --- the tenant's sedes -------------------------------------------------------------------------


def syncable_sedes(tenant: Tenant) -> list[Sede]:
    """The licensed sedes that a connector reads (where a mailbox makes sense)."""
    return [sede for sede in licensed_sedes(tenant) if sede.syncable]


def licensed_sede(tenant: Tenant, code: str) -> Sede | None:
    """The sede, if the tenant's licence allows it (None: answer 404)."""
    return next((sede for sede in licensed_sedes(tenant) if sede.code == code), None)


@dataclass(frozen=True)
class SedeSummary:
    sede: Sede
    mailboxes: int  # those of clients the user sees
    errors: int


def sede_summaries(tenant: Tenant, user) -> list[SedeSummary]:
    """Servicios y buzones: every licensed sede with its mailboxes (of the clients ``user`` sees),
    counted in one grouped query."""
    counts = {
        code: (total, errors)
        for code, total, errors in db.session.execute(
            select(
                Mailbox.sede_code,
                func.count(Mailbox.id),
                func.count(Mailbox.id).filter(Mailbox.last_result == "error"),
            )
            .where(Mailbox.client_id.in_(visible_client_ids(user)))
            .group_by(Mailbox.sede_code)
        )
    }
    return [SedeSummary(sede, *counts.get(sede.code, (0, 0))) for sede in licensed_sedes(tenant)]


# --- reading ------------------------------------------------------------------------------------


def visible_statement(user):
    """``select(Mailbox)`` limited to the mailboxes of the clients ``user`` sees."""
    return select(Mailbox).where(Mailbox.client_id.in_(visible_client_ids(user)))


def get_mailbox(user, mailbox_id: int) -> Mailbox | None:
    """The mailbox, if ``user`` may see it (None: answer 404)."""
    if not has_permission(user, MAILBOXES_VIEW):
        return None
    return db.session.scalar(visible_statement(user).where(Mailbox.id == mailbox_id))


def sede_page(user, sede_code: str, cursor: str | None = None, per_page: int = 50) -> Page:
    """The mailboxes of a sede, one per client ``user`` sees, by client name (keyset pagination;
    client and certificate loaded with the page: a constant number of statements)."""
    stmt = (
        select(Mailbox, Client.name)
        .join(Client, Client.id == Mailbox.client_id)
        .where(Mailbox.sede_code == sede_code, Mailbox.client_id.in_(visible_client_ids(user)))
        .options(selectinload(Mailbox.client), selectinload(Mailbox.certificate))
    )
    return keyset_page(db.session, stmt, [Client.name, Mailbox.id], cursor, per_page=per_page, rows=True)


def client_mailboxes(client: Client) -> list[Mailbox]:
    """The client's mailboxes, one per sede (the caller has checked it sees the client)."""
    stmt = (
        select(Mailbox)
        .where(Mailbox.client_id == client.id)
        .options(selectinload(Mailbox.sede), selectinload(Mailbox.certificate))
        .order_by(Mailbox.sede_code)
    )
    return list(db.session.scalars(stmt))


def count(tenant: Tenant) -> int:
    return db.session.scalar(select(func.count(Mailbox.id))) or 0


def client_for_form(user, tax_id: str | None, certificate: Certificate | None) -> Client | None:
    """The client "Nuevo buzón" means: the one whose NIF/CIF was typed, else the certificate's own
    client, else the client whose NIF is the certificate's."""
    if (tax_id or "").strip():
        client = certificate_service.client_by_nif(user, tax_id)
        if client is None:
            raise DomainError(
                _l("None of your clients has the NIF/CIF %(nif)s.", nif=tax_id.strip()), field="client_id"
            )
        return client
    if certificate is None:
        return None
    return certificate.client or certificate_service.client_by_nif(user, certificate.entity_nif, certificate.holder_nif)


# --- the rules of a new mailbox -----------------------------------------------------------------


@dataclass
class MailboxData:
    """What "Nuevo buzón" asks (and what an offer ticks)."""

    sede_code: str
    certificate_id: int | None
    client_id: int | None
    as_proxy: bool = False
    next_sync_at: datetime | None = None  # None: as soon as possible
    period_days: int = 1


def _check_room(tenant: Tenant, adding: int) -> None:
    allowed = limit(tenant, NAME, MAILBOXES_LIMIT)
    if allowed is None:
        return
    kept = count(tenant)
    if kept + adding > allowed:
        raise DomainError(
            _l(
                "Your licence allows %(allowed)s electronic mailboxes and %(kept)s are in use: "
                "ask the platform to raise the limit, or delete mailboxes no longer needed.",
                allowed=allowed,
                kept=kept,
            )
        )


def _check_period(data: MailboxData) -> None:
    if not 1 <= int(data.period_days or 0) <= MAX_PERIOD_DAYS:
        raise DomainError(_l("The period is between 1 and 365 days."), field="period_days")


def _certificate_and_client(tenant: Tenant, user, data: MailboxData, sede: Sede) -> tuple[Certificate, Client]:
    certificate = (
        certificate_service.get_certificate(user, data.certificate_id) if data.certificate_id is not None else None
    )
    if certificate is None:
        raise DomainError(_l("Choose a certificate."), field="certificate_id")
    client = get_visible_client(user, data.client_id) if data.client_id is not None else None
    if client is None:
        raise DomainError(_l("Choose a client you can see."), field="client_id")
    if certificate.client_id is not None and certificate.client_id != client.id and not data.as_proxy:
        raise DomainError(
            _l(
                "This certificate is another client's: tick the apoderamiento box to read this client's "
                "mailbox with it."
            ),
            field="certificate_id",
        )
    if not data.as_proxy and not certificate_service.matches_client(certificate, client):
        raise DomainError(
            _l(
                "The client's NIF/CIF (%(tax_id)s) is not the certificate's (%(nif)s): choose the client whose NIF "
                "matches, or tick the apoderamiento box if the certificate's holder acts for this client.",
                tax_id=client.tax_id,
                nif=certificate.titular_nif,
            ),
            field="client_id",
        )
    if certificate.not_after <= utcnow():
        raise DomainError(
            _l("The certificate has expired: upload the renewed one and choose it."), field="certificate_id"
        )
    if sede.needs_ssid:
        codes = codes_of([client.id]).get(client.id, {CCC: [], NAF: []})
        if not codes[CCC] and not codes[NAF]:
            raise DomainError(
                _l("%(sede)s needs the client's CCC or NAF: add them to the client's data first.", sede=sede.name),
                field="client_id",
            )
    return certificate, client


def _new(user, data: MailboxData, certificate: Certificate, client: Client, sede: Sede) -> Mailbox:
    return Mailbox(
        client_id=client.id,
        sede_code=sede.code,
        certificate_id=certificate.id,
        as_proxy=bool(data.as_proxy),
        next_sync_at=data.next_sync_at or utcnow(),
        period_days=int(data.period_days or 1),
        created_by_id=user.id,
    )


def create_mailbox(tenant: Tenant, user, data: MailboxData) -> Mailbox:
    """Nuevo buzón, with every rule: a licensed sede a connector reads, a certificate and a client
    the user sees whose NIF match (or apoderamiento), a valid certificate, the client's CCC/NAF where
    the sede needs them, one mailbox per client and sede, the licence's limit. Committed."""
    _need(user, MAILBOXES_MANAGE)
    sede = licensed_sede(tenant, data.sede_code)
    if sede is None or not sede.syncable:
        raise DomainError(_l("Mailboxes cannot be read at this sede."), field="sede_code")
    _check_period(data)
    certificate, client = _certificate_and_client(tenant, user, data, sede)
    existing = db.session.scalar(
        select(Mailbox.id).where(Mailbox.client_id == client.id, Mailbox.sede_code == sede.code)
    )
    if existing is not None:
        raise DomainError(
            _l("%(client)s already has a mailbox at %(sede)s.", client=client.name, sede=sede.name), field="client_id"
        )
    _check_room(tenant, 1)
    mailbox = _new(user, data, certificate, client, sede)
    db.session.add(mailbox)
    db.session.commit()
    return mailbox


def update_mailbox(tenant: Tenant, user, mailbox: Mailbox, data: MailboxData) -> Mailbox:
    """Change a mailbox's certificate, apoderamiento, next sync and period (its client and sede stay)."""
    _need(user, MAILBOXES_MANAGE)
    _check_period(data)
    data.client_id = mailbox.client_id
    certificate, _client = _certificate_and_client(tenant, user, data, mailbox.sede)
    mailbox.certificate_id = certificate.id
    mailbox.as_proxy = bool(data.as_proxy)
    if data.next_sync_at is not None:
        mailbox.next_sync_at = data.next_sync_at
    mailbox.period_days = int(data.period_days)
    db.session.commit()
    return mailbox


def delete_mailbox(user, mailbox: Mailbox) -> None:
    """Stop reading a mailbox; its notifications stay (they keep the client and the sede). Committed."""
    _need(user, MAILBOXES_MANAGE)
    db.session.delete(mailbox)
    db.session.commit()


# --- offers: the mailboxes a new certificate or client could have --------------------------------


@dataclass(frozen=True)
class Offer:
    client: Client
    sede: Sede
    certificate: Certificate
    as_proxy: bool
    problem: str | None  # why it cannot be made as it is (missing CCC/NAF), else None

    @property
    def key(self) -> str:
        return f"{self.client.id}:{self.sede.code}:{self.certificate.id}"


def offers(
    tenant: Tenant, user, *, certificate: Certificate | None = None, client: Client | None = None
) -> list[Offer]:
    """The mailboxes that could be added now: for a client's certificate, its client at every
    licensed sede it has no mailbox at; for a client, each such sede with the client's newest valid
    certificate. The office's own certificates are offered from the sede's page (any client)."""
    if certificate is not None:
        client = certificate.client
        candidates = [certificate] if certificate.not_after > utcnow() else []
    elif client is not None:
        candidates = [c for c in certificate_service.for_client(user, client) if c.not_after > utcnow()]
        candidates.sort(key=lambda c: c.not_after, reverse=True)
    else:
        return []
    if client is None or not candidates:
        return []
    taken = set(db.session.scalars(select(Mailbox.sede_code).where(Mailbox.client_id == client.id)))
    codes = codes_of([client.id]).get(client.id, {CCC: [], NAF: []})
    has_codes = bool(codes[CCC] or codes[NAF])
    chosen = candidates[0]
    return [
        Offer(
            client,
            sede,
            chosen,
            not certificate_service.matches_client(chosen, client),
            str(_l("Add the client's CCC or NAF first.")) if sede.needs_ssid and not has_codes else None,
        )
        for sede in syncable_sedes(tenant)
        if sede.code not in taken
    ]


def accept_offers(tenant: Tenant, user, chosen: list[Offer], period_days: int = 1) -> list[Mailbox]:
    """Create the ticked offers at once: all or none (the licence's limit counts them together)."""
    _need(user, MAILBOXES_MANAGE)
    usable = [offer for offer in chosen if offer.problem is None]
    if not usable:
        return []
    _check_room(tenant, len(usable))
    made = []
    for offer in usable:
        data = MailboxData(
            offer.sede.code, offer.certificate.id, offer.client.id, as_proxy=offer.as_proxy, period_days=period_days
        )
        _check_period(data)
        certificate, client = _certificate_and_client(tenant, user, data, offer.sede)
        made.append(_new(user, data, certificate, client, offer.sede))
    db.session.add_all(made)
    db.session.commit()
    return made


def next_sync_default() -> datetime:
    """What "Nuevo buzón" proposes for the first sync: in a few minutes (the sweep picks it up)."""
    return (utcnow() + timedelta(minutes=5)).replace(second=0, microsecond=0)
