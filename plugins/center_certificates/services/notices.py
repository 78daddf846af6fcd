"""Notices to clients (e-mail and web push), each once per certificate and event (a rejection once
per rejection): a unique notice row is written in the same transaction as the e-mail it queues."""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import selectinload

from core.api import (
    Client,
    HeldNotices,
    Push,
    User,
    db,
    enqueue,
    external_url,
    has_open_run,
    portal_accounts,
    sees_every_client,
    send_email,
    send_later,
    update_by_id,
    utcnow,
    visible_client_ids,
)
from plugins.center_certificates.models import (
    APPROVED_EVENT,
    CREATED,
    EXPIRED,
    EXPIRED_EVENT,
    EXPIRING,
    EXPIRING_EVENT,
    MISSING,
    REJECTED_EVENT,
    Certificate,
    CertificateNotice,
)

log = logging.getLogger(__name__)


NOTICE_EVENTS = (CREATED, APPROVED_EVENT, EXPIRING_EVENT, EXPIRED_EVENT, REJECTED_EVENT)


def notice_subject(event: str, organisation: str, certificate: str):
    """The subject (and push title) of a notice, translated when it is rendered."""
    if event == CREATED:
        return _l("%(organisation)s asks you for: %(certificate)s", organisation=organisation, certificate=certificate)
    if event == APPROVED_EVENT:
        return _l("Your %(certificate)s has been approved", certificate=certificate)
    if event == EXPIRING_EVENT:
        return _l("Your %(certificate)s expires soon", certificate=certificate)
    if event == REJECTED_EVENT:
        return _l("Your %(certificate)s has been sent back", certificate=certificate)
    return _l("Your %(certificate)s has expired", certificate=certificate)


NOTICE_BATCH = 500


def _occurrence(event: str):
    """Which occurrence of ``event`` a certificate is owed a notice of: its latest rejection for a
    rejection (one notice per rejection), else the one and only (0)."""
    return Certificate.rejections if event == REJECTED_EVENT else literal(0)


def _due_notices(event: str, limit: int):
    """Certificates owed a notice of ``event``: the event happened and no notice was written."""
    condition = {
        CREATED: Certificate.id.is_not(None),
        APPROVED_EVENT: Certificate.approved_at.is_not(None),
        # Not for archived ones: they expire in the history, quietly.
        EXPIRING_EVENT: and_(Certificate.status == EXPIRING, Certificate.archived_at.is_(None)),
        EXPIRED_EVENT: and_(Certificate.status == EXPIRED, Certificate.archived_at.is_(None)),
        # Still sent back (not uploaded again since): the client has something to do.
        REJECTED_EVENT: and_(Certificate.rejections > 0, Certificate.status == MISSING),
    }[event]
    told = select(CertificateNotice.id).where(
        CertificateNotice.certificate_id == Certificate.id,
        CertificateNotice.event == event,
        CertificateNotice.occurrence == _occurrence(event),
    )
    return db.session.scalars(
        select(Certificate)
        .where(condition, Certificate.deleted_at.is_(None), ~told.exists())
        .order_by(Certificate.id)
        .limit(limit)
        .options(selectinload(Certificate.client), selectinload(Certificate.template))
    ).all()


def next_can_be_handed_in(certificate: Certificate) -> bool:
    """Whether the client can already upload the next document (while it expires soon): its
    template is still in use."""
    template = certificate.template
    return bool(template is not None and template.active)


def _claim_notices(tenant_id: int, due: list[Certificate], event: str) -> dict[int, int]:
    """Write the markers of a batch's notices in one statement, except those another run has:
    ``{certificate id: marker id}`` of the ones this run claimed.

    INSERT … ON CONFLICT DO NOTHING … RETURNING on the marker's unique key (both engines): of two
    runs racing for the same notice, the second waits for the first's transaction and then writes
    nothing for it, instead of failing its whole batch on the unique constraint.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    if not due:
        return {}
    dialect = db.session.get_bind(mapper=CertificateNotice.__mapper__).dialect.name
    now = utcnow()
    rows = [
        {
            "tenant_id": tenant_id,
            "certificate_id": certificate.id,
            "event": event,
            "occurrence": certificate.rejections if event == REJECTED_EVENT else 0,
            "pushed": False,
            "created_at": now,
        }
        for certificate in due
    ]
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CertificateNotice)
    claimed = db.session.execute(
        statement.values(rows)
        .on_conflict_do_nothing(index_elements=["certificate_id", "event", "occurrence"])
        .returning(CertificateNotice.certificate_id, CertificateNotice.id)
    )
    return {certificate_id: notice_id for certificate_id, notice_id in claimed}


def notify(tenant) -> dict:
    """Write each owed notice once, with its e-mail in the same transaction; then push (best effort).

    The markers of a batch are written first, in one statement: a notice another run has just
    claimed is left to it (no e-mail, no push, no error), so two runs at the same time tell the
    client once.
    """
    sent = dict.fromkeys(NOTICE_EVENTS, 0)
    pushes: list[tuple[int, int, dict]] = []
    for event in NOTICE_EVENTS:
        while due := _due_notices(event, NOTICE_BATCH):
            accounts = portal_accounts({certificate.client_id for certificate in due})
            claimed = _claim_notices(tenant.id, due, event)
            messages = []
            for certificate in due:
                notice_id = claimed.get(certificate.id)
                if notice_id is None:
                    continue
                client = certificate.client
                account = accounts.get(client.id)
                # The portal account's own choice, else the client's language, else the organisation's.
                language = (account.locale if account is not None else None) or client.locale or tenant.language
                subject = notice_subject(event, tenant.name, certificate.name)
                link = external_url(
                    "center_certificates_portal.show", tenant=tenant.slug, certificate_id=certificate.id
                )
                if client.email:
                    message = send_email(
                        tenant,
                        client.email,
                        subject,
                        "center_certificates/mail/notice",
                        language,
                        commit=False,
                        # Background news: behind mail someone is waiting for, never ahead of it.
                        priority="bulk",
                        event=event,
                        certificate=certificate,
                        client=client,
                        link=link,
                        next_now=next_can_be_handed_in(certificate),
                    )
                    messages.append({"id": notice_id, "message_id": message.id})
                if account is not None:
                    pushes.append(
                        (notice_id, account.id, _push_payload(event, certificate, language, link, tenant.name))
                    )
                sent[event] += 1
            if messages:
                # One executemany for the batch: each marker points at its e-mail.
                update_by_id(CertificateNotice, messages)
            db.session.commit()
    _push(pushes)
    return {f"notices_{event}": count for event, count in sent.items()}


def _push_payload(event: str, certificate: Certificate, language: str, link: str, organisation: str) -> dict:
    """The push: the certificate's name as its title, what happened as its body, in ``language``."""
    from flask_babel import force_locale

    with force_locale(language):
        body = push_text(event, certificate, organisation)
    return {
        "title": certificate.name,
        "body": body,
        "url": link,
        "tag": f"certificate-{certificate.id}",
        "certificate": certificate.id,
        "event": event,
    }


def push_text(event: str, certificate: Certificate, organisation: str) -> str:
    """What happened to ``certificate``, in the current locale: a push's body (one short line)."""
    from flask_babel import format_date, gettext

    until = format_date(certificate.validity_date, "long") if certificate.validity_date else ""
    if event == CREATED:
        return gettext("%(organisation)s asks you for it: upload it with its validity date.", organisation=organisation)
    if event == APPROVED_EVENT:
        return gettext("Approved: valid until %(date)s.", date=until)
    if event == EXPIRING_EVENT:
        return gettext("Expires soon: valid until %(date)s.", date=until)
    if event == REJECTED_EVENT:
        return gettext("Sent back: %(reason)s", reason=certificate.rejection_reason)
    return gettext("It has expired (valid until %(date)s).", date=until)


def _push(pushes: list[tuple[int, int, dict]]) -> None:
    """Send the pushes from core's push queue; each notice that reaches a browser is marked pushed."""
    send_later(
        [Push(user_id, payload, key=notice_id) for notice_id, user_id, payload in pushes],
        on_delivered="plugins.center_certificates.services.notices:mark_pushed",
    )


def mark_pushed(notice_ids: list[int]) -> None:
    """Called by the push job with the notices whose push reached a browser."""
    db.session.execute(update(CertificateNotice).where(CertificateNotice.id.in_(notice_ids)).values(pushed=True))


def notify_soon(tenant) -> None:
    """Start the notices job now rather than at the next tick (unless one is already waiting)."""
    try:
        if not has_open_run("center_certificates.notify"):
            enqueue(tenant, "center_certificates.notify")
    except Exception as error:  # Redis away: the periodic sweep sends them later.
        log.warning("could not start the certificate notices now: %s", error)


# --- notices a bulk action holds back -------------------------------------------------------


def reachable(client_id):
    """The condition that the client (``Client`` joined on ``client_id``) can be told: an e-mail
    address, or an active portal account (a push), as ``notify`` tells them."""
    account = select(User.id).where(User.client_id == client_id, User.active.is_(True))
    return or_(func.coalesce(Client.email, "") != "", account.exists())


def hold_created(tenant_id: int, certificate_ids: list[int], held_for: str) -> None:
    """Record the "created" notices of these new certificates as not sent, held for the bulk
    action ``held_for``, in the caller's transaction (the one that creates them): the periodic
    ``notify`` sees a marker and sends nothing; ``release_held`` may send them later."""
    if certificate_ids:
        now = utcnow()
        db.session.execute(
            insert(CertificateNotice),
            [
                {
                    "tenant_id": tenant_id,
                    "certificate_id": certificate_id,
                    "event": CREATED,
                    "occurrence": 0,
                    "pushed": False,
                    "held_for": held_for,
                    "created_at": now,
                }
                for certificate_id in certificate_ids
            ],
        )


GENERATION_HELD = "center_certificates.generate:"


def _releasable(held_for: str | None, template_id: int | None = None, actor=None):
    """The held markers whose notice would still go: the certificate still asks the client for
    something (Falta información, not in the bin) and the client can be told. Those of the bulk
    action ``held_for``, or (None) those that "Generar certificados" held for ``template_id``, of
    the clients ``actor`` sees (when given: one sends only to the clients of one's centres)."""
    condition = (
        CertificateNotice.held_for == held_for
        if held_for is not None
        else and_(CertificateNotice.held_for.startswith(GENERATION_HELD), Certificate.template_id == template_id)
    )
    if actor is not None and not sees_every_client(actor):
        condition = and_(condition, Certificate.client_id.in_(visible_client_ids(actor)))
    return (
        select(CertificateNotice.id)
        .join(Certificate, Certificate.id == CertificateNotice.certificate_id)
        .join(Client, Client.id == Certificate.client_id)
        .where(
            condition,
            Certificate.status == MISSING,
            Certificate.deleted_at.is_(None),
            reachable(Certificate.client_id),
        )
    )


def held_count(held_for: str | None, template_id: int | None = None, actor=None) -> int:
    """How many notices ``release_held`` would send now (one per certificate: an e-mail to who has
    an address, a push to who has a portal account)."""
    return db.session.scalar(select(func.count()).select_from(_releasable(held_for, template_id, actor).subquery()))


def release_held(tenant, held_for: str | None, template_id: int | None = None, actor=None) -> int:
    """Send the notices held for ``held_for`` (or held by the generations of ``template_id``):
    their markers are deleted (so ``notify`` owes them and sends each once, by its unique marker)
    and the notices job is started. Once: a second call finds no marker to delete and sends
    nothing. Markers of notices that would no longer go (approved since, client without e-mail)
    stay, as not sent."""
    ids = list(db.session.scalars(_releasable(held_for, template_id, actor)))
    released = 0
    for start in range(0, len(ids), NOTICE_BATCH):
        # The rows deleted by this call, not those counted: a concurrent release takes the others.
        released += db.session.execute(
            delete(CertificateNotice)
            .where(CertificateNotice.id.in_(ids[start : start + NOTICE_BATCH]))
            .execution_options(synchronize_session=False)
        ).rowcount
    db.session.commit()
    if released:
        notify_soon(tenant)
    return released


def held_notices(tenant, held_for: str) -> list[HeldNotices]:
    """The ``held_notices`` answer: the certificate requests held back for ``held_for``."""
    count = held_count(held_for)
    if not count:
        return []
    return [HeldNotices(_l("Certificate requests"), count, lambda: release_held(tenant, held_for))]
