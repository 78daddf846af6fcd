"""Certificates a centre asks its clients for: templates, requests, the state machine, notices.

States: Falta información (``missing_info``, initial) → Pendiente de aprobación (a file was
uploaded) → Aprobado → Caduca pronto (approved, validity date within the template's lead time)
→ Caducado (24 h after the validity date: from midnight after it, in the tenant's time zone).
Rechazar sends a pending certificate back to Falta información with a reason.

Dates are computed in the tenant's time zone. The date-driven transitions happen both on every
write (a certificate approved late inside a window is right at once) and in a periodic sweep
of set-based statements. An archived approved certificate also becomes Caducado when its
validity passes (so the history shows what it is), without a notice and without a renewal.

Each event the client is told about (created, approved, expiring, expired) is sent once per
certificate, and a rejection once per rejection: a unique notice row is written in the same
transaction as the e-mail it queues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import aliased, selectinload

from core.api import (
    HEIC,
    JPEG,
    MB,
    PDF,
    PNG,
    Client,
    DomainError,
    Push,
    UploadKind,
    accept_upload,
    active_client_ids,
    assignable_groups,
    client_ids_in_groups,
    clients_matching,
    db,
    delete_stored_file,
    enqueue,
    external_url,
    has_open_run,
    own_group_ids,
    portal_accounts,
    register_kind,
    sees_every_client,
    send_email,
    send_later,
    utcnow,
    visible_client_ids,
)
from plugins.center_certificates.models import (
    APPROVED,
    APPROVED_EVENT,
    CREATED,
    DEFAULT_LEAD_DAYS,
    EXPIRED,
    EXPIRED_EVENT,
    EXPIRING,
    EXPIRING_EVENT,
    MISSING,
    NOTE_MAX,
    PENDING,
    REJECTED_EVENT,
    STATUSES,
    Certificate,
    CertificateNotice,
    CertificateTemplate,
)

log = logging.getLogger(__name__)

UPLOAD_KIND = register_kind(
    UploadKind(
        "center_certificates.document",
        frozenset({JPEG, PNG, HEIC, PDF}),
        10 * MB,
        _l("a JPG, PNG, HEIC or PDF"),
    )
)


def today_for(tenant) -> date:
    """Today in the tenant's time zone."""
    return utcnow().astimezone(ZoneInfo(tenant.timezone)).date()


def dated_status(validity: date, expiring_from: date, today: date) -> str:
    """The state of an approved certificate on ``today``."""
    if validity < today:
        return EXPIRED
    if expiring_from <= today:
        return EXPIRING
    return APPROVED


# --- who sees what ----------------------------------------------------------------------


def visible_statement(user):
    """Certificates of the clients ``user`` sees, not in the bin."""
    return select(Certificate).where(
        Certificate.deleted_at.is_(None), Certificate.client_id.in_(visible_client_ids(user))
    )


def superseded():
    """The condition that a newer certificate (not in the bin) of the same template exists for the
    same client: an expired one that was renewed, or asked again, is no longer news."""
    newer = aliased(Certificate)
    return exists().where(
        newer.tenant_id == Certificate.tenant_id,
        newer.client_id == Certificate.client_id,
        newer.template_id == Certificate.template_id,
        newer.id > Certificate.id,
        newer.deleted_at.is_(None),
    )


def status_counts(user) -> dict[str, int]:
    """Certificates neither archived nor in the bin by state, among the clients ``user`` sees (one
    query). Caducado counts only those not superseded by a newer one, as the list's filter shows."""
    stmt = (
        select(Certificate.status, func.count())
        .where(
            Certificate.deleted_at.is_(None),
            Certificate.archived_at.is_(None),
            Certificate.client_id.in_(visible_client_ids(user)),
            or_(Certificate.status != EXPIRED, ~superseded()),
        )
        .group_by(Certificate.status)
    )
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(dict(db.session.execute(stmt).all()))
    return counts


def list_statement(user, *, q: str = "", status: str = "", template_id: int | None = None, group_id: int | None = None):
    """The staff's list: certificates neither archived nor in the bin of the clients ``user`` sees,
    in one state (or in any state but Caducado), of one template, of the clients of one centre, of
    the clients whose name, tax id or e-mail contains ``q``. Caducado lists only the expired
    certificates not superseded by a newer one (the dashboard counts the same)."""
    stmt = visible_statement(user).where(Certificate.archived_at.is_(None))
    if status == EXPIRED:
        stmt = stmt.where(Certificate.status == EXPIRED, ~superseded())
    elif status in STATUSES:
        stmt = stmt.where(Certificate.status == status)
    else:
        stmt = stmt.where(Certificate.status != EXPIRED)
    if template_id:
        stmt = stmt.where(Certificate.template_id == template_id)
    if group_id:
        stmt = stmt.where(Certificate.client_id.in_(client_ids_in_groups([group_id])))
    if q.strip():
        stmt = stmt.where(Certificate.client_id.in_(select(Client.id).where(clients_matching(q))))
    return stmt


def get_visible(user, certificate_id: int) -> Certificate | None:
    return db.session.scalar(visible_statement(user).where(Certificate.id == certificate_id))


def of_client(client_id: int) -> tuple[list[Certificate], list[Certificate]]:
    """A client's current certificates and their history (expired or archived), newest first."""
    rows = db.session.scalars(
        select(Certificate)
        .where(Certificate.client_id == client_id, Certificate.deleted_at.is_(None))
        .order_by(Certificate.id.desc())
    ).all()
    return [c for c in rows if c.is_open], [c for c in rows if c.in_history]


# --- templates --------------------------------------------------------------------------


@dataclass
class TemplateData:
    name: str
    description: str = ""
    lead_days: int = DEFAULT_LEAD_DAYS
    auto_for_new_clients: bool = False
    renew_on_expiry: bool = False
    active: bool = True


def _check_template_name(name: str, except_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError(_l("The name is required."), field="name")
    stmt = select(CertificateTemplate.id).where(func.lower(CertificateTemplate.name) == name.lower())
    if except_id is not None:
        stmt = stmt.where(CertificateTemplate.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise DomainError(_l("There is already a template called %(name)s.", name=name), field="name")
    return name


def save_template(template: CertificateTemplate | None, data: TemplateData, actor=None) -> CertificateTemplate:
    name = _check_template_name(data.name, template.id if template else None)
    if not 0 <= int(data.lead_days) <= 365:
        raise DomainError(_l("The notice period must be between 0 and 365 days."), field="lead_days")
    if template is None:
        template = CertificateTemplate(created_by_id=getattr(actor, "id", None))
        db.session.add(template)
    template.name = name
    template.description = (data.description or "").strip()
    template.lead_days = int(data.lead_days)
    template.auto_for_new_clients = bool(data.auto_for_new_clients)
    template.renew_on_expiry = bool(data.renew_on_expiry)
    template.active = bool(data.active)
    db.session.commit()
    return template


def clone_data(template: CertificateTemplate) -> TemplateData:
    """What the new-template form starts from when a template is cloned: everything of it, the
    automatic options too, under a name not yet taken ("… (copy)", translated)."""
    base = str(_l("%(name)s (copy)", name=template.name))
    name, number = base, 2
    while db.session.scalar(select(CertificateTemplate.id).where(func.lower(CertificateTemplate.name) == name.lower())):
        name, number = f"{base} {number}", number + 1
    return TemplateData(
        name,
        template.description,
        template.lead_days,
        template.auto_for_new_clients,
        template.renew_on_expiry,
        template.active,
    )


# --- requests ---------------------------------------------------------------------------


def _has_open(client_id: int, template_id: int) -> bool:
    return (
        db.session.scalar(
            select(Certificate.id).where(
                Certificate.client_id == client_id, Certificate.template_id == template_id, Certificate.is_open
            )
        )
        is not None
    )


def _new_request(template: CertificateTemplate, client_id: int, issued_by_id: int | None = None) -> Certificate:
    """A certificate of ``template`` asked of the client: it starts in Falta información."""
    return Certificate(
        template_id=template.id,
        client_id=client_id,
        name=template.name,
        lead_days=template.lead_days,
        status=MISSING,
        issued_by_id=issued_by_id,
    )


def request_certificate(tenant, client: Client, template: CertificateTemplate, actor=None) -> Certificate:
    """Ask ``client`` for a certificate of ``template``: it starts in Falta información."""
    if not template.active:
        raise DomainError(_l("This template is not in use."), field="template")
    if not client.active:
        raise DomainError(_l("The client is deactivated."))
    if _has_open(client.id, template.id):
        raise DomainError(
            _l("%(client)s already has an open %(certificate)s.", client=client.name, certificate=template.name),
            field="template",
        )
    certificate = _new_request(template, client.id, issued_by_id=getattr(actor, "id", None))
    db.session.add(certificate)
    db.session.commit()
    notify_soon(tenant)
    return certificate


def request_for_new_clients(tenant, client_ids: list[int]) -> int:
    """The ``clients_created`` reaction: a request from every template that asks for it, for
    every one of the new (active) clients, set-based: one INSERT … SELECT per template, whatever
    the number of clients (an import hands over a thousand at a time)."""
    templates = db.session.scalars(
        select(CertificateTemplate).where(
            CertificateTemplate.active.is_(True), CertificateTemplate.auto_for_new_clients.is_(True)
        )
    ).all()
    made, now = 0, utcnow()
    for template in templates:
        candidates = _clients_without_open(tenant.id, template.id, None).where(Client.id.in_(client_ids)).subquery()
        made += len(_insert_requests(tenant.id, template, candidates, None, now))
    if made:
        db.session.commit()
        notify_soon(tenant)
    return made


def _insert_requests(tenant_id: int, template: CertificateTemplate, candidates, issued_by_id, now) -> list[int]:
    """INSERT … SELECT a request of ``template`` (Falta información) for each client id of the
    ``candidates`` subquery (a column ``id``); returns the client ids it was made for."""
    source = select(
        literal(tenant_id),
        literal(template.id),
        candidates.c.id,
        literal(template.name),
        literal(template.lead_days),
        literal(MISSING),
        literal(issued_by_id),
        literal(now),
        literal(now),
    )
    columns = ["tenant_id", "template_id", "client_id", "name", "lead_days", "status", "issued_by_id"]
    return db.session.scalars(
        insert(Certificate).from_select([*columns, "created_at", "updated_at"], source).returning(Certificate.client_id)
    ).all()


# --- the client's (or the centre's) document --------------------------------------------


def _check_date_and_notes(tenant, validity_date: date | None, notes: str | None) -> str:
    if validity_date is None:
        raise DomainError(_l("Write the validity date that appears on the document."), field="validity_date")
    if validity_date < today_for(tenant):
        raise DomainError(
            _l("The validity date has already passed: this document is no longer valid."), field="validity_date"
        )
    return _checked_notes(notes)


def _checked_notes(notes: str | None) -> str:
    notes = (notes or "").strip()
    if len(notes) > NOTE_MAX:
        raise DomainError(_l("The notes may have at most %(n)s characters.", n=NOTE_MAX), field="notes")
    return notes


def submit(
    tenant,
    certificate: Certificate,
    *,
    validity_date: date | None,
    notes: str | None,
    upload=None,
    filename: str | None = None,
    by_client: bool,
    actor,
) -> Certificate:
    """Upload the document with its validity date and notes (the client, or the staff for them).

    The client may only do it while information is missing; the staff also while it waits for
    approval (to correct what the client sent). A first upload makes it Pendiente de aprobación.
    """
    allowed = (MISSING,) if by_client else (MISSING, PENDING)
    if certificate.deleted_at is not None or certificate.archived_at is not None or certificate.status not in allowed:
        raise DomainError(_l("This certificate can no longer be changed."))
    notes = _check_date_and_notes(tenant, validity_date, notes)
    if upload is None and certificate.file_id is None:
        raise DomainError(_l("Choose the file of the document."), field="file")
    old_file = certificate.file if upload is not None else None
    if upload is not None:
        stored = accept_upload(
            upload, filename, UPLOAD_KIND.name, tenant_id=tenant.id, user_id=getattr(actor, "id", None)
        )
        certificate.file_id = stored.id
        certificate.uploaded_at = utcnow()
        certificate.uploaded_by_client = by_client
        certificate.uploaded_by_id = getattr(actor, "id", None)
    certificate.validity_date = validity_date
    certificate.expiring_from = validity_date - timedelta(days=certificate.lead_days)
    certificate.notes = notes
    certificate.status = PENDING
    certificate.rejection_reason = ""
    if old_file is not None and old_file.id != certificate.file_id:
        delete_stored_file(old_file)
    db.session.commit()
    return certificate


def update_notes(certificate: Certificate, notes: str | None) -> Certificate:
    """Notes can be edited while the certificate is not approved."""
    if not certificate.editable:
        raise DomainError(_l("This certificate can no longer be changed."))
    certificate.notes = _checked_notes(notes)
    db.session.commit()
    return certificate


def approve(tenant, certificate: Certificate, actor) -> Certificate:
    if certificate.status != PENDING or certificate.deleted_at is not None:
        raise DomainError(_l("Only a certificate pending approval can be approved."))
    today = today_for(tenant)
    if certificate.validity_date < today:
        raise DomainError(_l("The validity date has already passed: reject it and ask for a current one."))
    certificate.approved_at = utcnow()
    certificate.approved_by_id = getattr(actor, "id", None)
    certificate.status = dated_status(certificate.validity_date, certificate.expiring_from, today)
    db.session.commit()
    notify_soon(tenant)
    return certificate


def reject(tenant, certificate: Certificate, reason: str | None, actor) -> Certificate:
    """Send it back to Falta información; the client sees the reason and uploads again."""
    if certificate.status != PENDING or certificate.deleted_at is not None:
        raise DomainError(_l("Only a certificate pending approval can be rejected."))
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Write why it is rejected: the client will read it."), field="reason")
    if len(reason) > NOTE_MAX:
        raise DomainError(_l("The reason may have at most %(n)s characters.", n=NOTE_MAX), field="reason")
    certificate.status = MISSING
    certificate.rejection_reason = reason
    certificate.rejected_at = utcnow()
    certificate.rejections = (certificate.rejections or 0) + 1
    db.session.commit()
    notify_soon(tenant)
    return certificate


def archive(certificate: Certificate) -> Certificate:
    if certificate.status not in (APPROVED, EXPIRING) or certificate.archived_at or certificate.deleted_at:
        raise DomainError(_l("Only an approved certificate can be archived."))
    certificate.archived_at = utcnow()
    db.session.commit()
    return certificate


def delete(certificate: Certificate, actor) -> None:
    """To the bin, for good: its file is purged and it leaves every list, count and export."""
    if certificate.deleted_at is not None:
        return
    stored = certificate.file
    certificate.deleted_at = utcnow()
    certificate.deleted_by_id = getattr(actor, "id", None)
    certificate.file_id = None
    if stored is not None:
        delete_stored_file(stored)
    db.session.commit()


# --- the periodic sweep -----------------------------------------------------------------


def sweep(tenant) -> dict:
    """Set-based transitions for one tenant: expired, expiring, and the renewal requests."""
    today = today_for(tenant)
    now = utcnow()
    live = and_(Certificate.deleted_at.is_(None), Certificate.archived_at.is_(None))
    # Archived ones too: an approved certificate is Caducado once its validity has passed, also in
    # the history (no notice is owed for them, and they are not renewed).
    expired = db.session.execute(
        update(Certificate)
        .where(
            Certificate.deleted_at.is_(None),
            Certificate.status.in_((APPROVED, EXPIRING)),
            Certificate.validity_date < today,
            # Implied (expiring_from <= validity_date), but it turns the scan into a range on the due index.
            Certificate.expiring_from < today,
        )
        .values(status=EXPIRED, expired_at=now, updated_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    expiring = db.session.execute(
        update(Certificate)
        .where(live, Certificate.status == APPROVED, Certificate.expiring_from <= today)
        .values(status=EXPIRING, updated_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    renewed = _renew_expired(tenant.id, now)
    db.session.commit()
    return {"expired": expired, "expiring": expiring, "renewed": renewed}


def _renew_expired(tenant_id: int, now) -> int:
    """One INSERT … SELECT: a new request for each expired certificate whose template renews.

    Only the newest certificate of a client and template is renewed (so a template switched to
    renewing with years of history asks once, not once per old certificate), and never when an
    open one exists. Every subquery names the tenant: the ORM's tenant criteria do not reach into
    an INSERT, and without the key the indexes (which start with tenant_id) cannot be used.
    """
    old = aliased(Certificate)
    other = aliased(Certificate)
    newer = aliased(Certificate)
    renewal = aliased(Certificate)
    source = (
        select(
            old.tenant_id,
            old.template_id,
            old.client_id,
            CertificateTemplate.name,
            CertificateTemplate.lead_days,
            literal(MISSING),
            old.id,
            literal(now),
            literal(now),
        )
        .join(CertificateTemplate, CertificateTemplate.id == old.template_id)
        .where(
            old.tenant_id == tenant_id,
            CertificateTemplate.tenant_id == tenant_id,
            old.client_id.in_(active_client_ids(tenant_id)),
            old.status == EXPIRED,
            old.deleted_at.is_(None),
            # An archived one was taken out of the running by the centre: it asks for nothing new.
            old.archived_at.is_(None),
            CertificateTemplate.renew_on_expiry.is_(True),
            CertificateTemplate.active.is_(True),
            ~exists().where(renewal.tenant_id == tenant_id, renewal.renewal_of_id == old.id),
            ~exists().where(
                newer.tenant_id == tenant_id,
                newer.client_id == old.client_id,
                newer.template_id == old.template_id,
                newer.id > old.id,
            ),
            ~exists().where(
                other.tenant_id == tenant_id,
                other.client_id == old.client_id,
                other.template_id == old.template_id,
                other.is_open,
            ),
        )
    )
    result = db.session.execute(
        insert(Certificate)
        .from_select(
            [
                "tenant_id",
                "template_id",
                "client_id",
                "name",
                "lead_days",
                "status",
                "renewal_of_id",
                "created_at",
                "updated_at",
            ],
            source,
        )
        .returning(Certificate.id)
    )
    # Counted from RETURNING: the driver's rowcount of an INSERT … SELECT is not reliable everywhere.
    return len(result.all())


def run_transitions(ctx) -> dict:
    """The periodic job: transitions, then the notices they call for."""
    counts = sweep(ctx.tenant)
    counts.update(notify(ctx.tenant))
    return counts


# --- notices ----------------------------------------------------------------------------


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


def renews_on_expiry(certificate: Certificate) -> bool:
    """Whether a new request follows when this certificate expires (what the client can be told)."""
    template = certificate.template
    return bool(template is not None and template.active and template.renew_on_expiry)


def _claim_notice(certificate: Certificate, event: str) -> int | None:
    """Write the marker of a notice, unless another run has: its id, or None when it was there.

    INSERT … ON CONFLICT DO NOTHING on the marker's unique key (both engines): of two runs racing
    for the same notice, the second waits for the first's transaction and then writes nothing,
    instead of failing its whole batch on the unique constraint.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = db.session.get_bind(mapper=CertificateNotice.__mapper__).dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CertificateNotice)
    return db.session.scalar(
        statement.values(
            certificate_id=certificate.id,
            event=event,
            occurrence=certificate.rejections if event == REJECTED_EVENT else 0,
        )
        .on_conflict_do_nothing(index_elements=["certificate_id", "event", "occurrence"])
        .returning(CertificateNotice.id)
    )


def notify(tenant) -> dict:
    """Write each owed notice once, with its e-mail in the same transaction; then push (best effort).

    The marker is written first: a notice another run has just claimed is left to it (no e-mail,
    no push, no error), so two runs at the same time tell the client once.
    """
    sent = dict.fromkeys(NOTICE_EVENTS, 0)
    pushes: list[tuple[int, int, dict]] = []
    for event in NOTICE_EVENTS:
        while due := _due_notices(event, NOTICE_BATCH):
            accounts = portal_accounts({certificate.client_id for certificate in due})
            messages = []
            for certificate in due:
                notice_id = _claim_notice(certificate, event)
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
                        event=event,
                        certificate=certificate,
                        client=client,
                        link=link,
                        renews=renews_on_expiry(certificate),
                    )
                    messages.append({"id": notice_id, "message_id": message.id})
                if account is not None:
                    pushes.append(
                        (notice_id, account.id, _push_payload(event, certificate, language, link, tenant.name))
                    )
                sent[event] += 1
            if messages:
                # One executemany for the batch: each marker points at its e-mail.
                db.session.execute(update(CertificateNotice), messages)
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
        on_delivered="plugins.center_certificates.services:mark_pushed",
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


def run_notify(ctx) -> dict:
    return notify(ctx.tenant)


# --- Generar certificados ---------------------------------------------------------------


def _clients_without_open(tenant_id: int, template_id: int, group_ids: list[int] | None):
    """Active clients (of the centres, or every one when ``group_ids`` is None) without an open
    certificate of the template.

    The tenant key is repeated in the subqueries: inside the INSERT … SELECT of the bulk job the
    ORM's criteria do not reach them, and the indexes start with tenant_id.
    """
    open_one = aliased(Certificate)
    return active_client_ids(tenant_id, group_ids).where(
        ~exists().where(
            open_one.tenant_id == tenant_id,
            open_one.client_id == Client.id,
            open_one.template_id == template_id,
            open_one.is_open,
        ),
    )


ALL_CLIENTS = "all"
CENTRES = "centres"


@dataclass(frozen=True)
class GenerationChoice:
    """Whose certificates "Generar certificados" creates: the active clients of these centres, or
    every active client of the organisation (also those in no centre)."""

    group_ids: tuple[int, ...] = ()
    all_clients: bool = False

    @classmethod
    def of(cls, group_ids, scope: str | None = CENTRES) -> GenerationChoice:
        if scope == ALL_CLIENTS:
            return cls((), True)
        return cls(tuple(sorted({int(i) for i in group_ids or ()})))

    @property
    def made(self) -> bool:
        return self.all_clients or bool(self.group_ids)

    @property
    def scope(self) -> str:
        return ALL_CLIENTS if self.all_clients else CENTRES

    @property
    def groups_text(self) -> str:
        """The centres as the confirmation carries them (a hidden field): "3,7"."""
        return ",".join(map(str, self.group_ids))

    @classmethod
    def parse(cls, scope: str | None, groups_text: str | None) -> GenerationChoice | None:
        """The choice a confirmation was counted for; None when the texts are not one."""
        try:
            return cls.of((part for part in (groups_text or "").split(",") if part.strip()), scope)
        except ValueError:
            return None


def centres_for(user) -> list:
    """The centres offered to ``user`` (to filter by, to generate for): every one when they see
    every client, else their own."""
    return assignable_groups(user)


def _check_generation_choice(choice: GenerationChoice, actor) -> None:
    """Every active client only for who sees every client; otherwise only one's own centres."""
    if not choice.made:
        raise DomainError(_l("Choose at least one centre."), field="groups")
    if actor is None or sees_every_client(actor):
        return
    if choice.all_clients:
        raise DomainError(_l("Only someone who sees every client can generate for every client."), field="groups")
    if set(choice.group_ids) - own_group_ids(actor):
        raise DomainError(_l("You can only generate certificates for the clients of your centres."), field="groups")


def generation_count(template: CertificateTemplate, choice: GenerationChoice, actor=None) -> int:
    """How many certificates "Generar certificados" would create now (for ``actor``, who may only
    count what they may generate)."""
    _check_generation_choice(choice, actor)
    group_ids = None if choice.all_clients else list(choice.group_ids)
    candidates = _clients_without_open(template.tenant_id, template.id, group_ids)
    return db.session.scalar(select(func.count()).select_from(candidates.subquery()))


class GenerationChanged(DomainError):
    """The confirmation was for another choice or another number: it must be counted again."""


def start_generation(
    tenant,
    template: CertificateTemplate,
    choice: GenerationChoice,
    actor,
    *,
    counted_for: GenerationChoice | None,
    counted: int | None,
):
    """Start the bulk job, if what is confirmed is what was counted and shown.

    The page said "N certificates will be created" for ``counted_for``; the choice is counted
    again here, and a different choice (centres ticked after counting) or a different number
    (clients added, another run) refuses with :class:`GenerationChanged`, so that the person
    confirms the number that will really be created.
    """
    if not template.active:
        raise DomainError(_l("This template is not in use."))
    _check_generation_choice(choice, actor)
    if counted_for != choice or counted != generation_count(template, choice, actor):
        raise GenerationChanged(
            _l("The choice or the number has changed since it was counted: check the new number and confirm again.")
        )
    return enqueue(
        tenant,
        "center_certificates.generate",
        {"template_id": template.id, "group_ids": list(choice.group_ids), "all_clients": choice.all_clients},
        started_by=actor,
    )


GENERATION_BATCH = 5_000


def run_generation(
    ctx, template_id: int, group_ids: list[int], all_clients: bool = False, batch: int = GENERATION_BATCH
) -> dict:
    """The bulk job: INSERT … SELECT in keyset batches of ``batch`` client ids, each committed.

    Set-based (100,000 clients take 20 statements, not 100,000) with real progress between
    batches. Idempotent: each batch takes only clients without an open certificate of the
    template (and the partial unique index makes it a fact), so a retried or repeated run goes on
    where the last one stopped and never gives a client a second open certificate.
    """
    template = db.session.get(CertificateTemplate, template_id)
    if template is None or not template.active:
        return {"created": 0}
    scope = None if all_clients else group_ids
    total = db.session.scalar(
        select(func.count()).select_from(_clients_without_open(ctx.tenant.id, template.id, scope).subquery())
    )
    ctx.progress(0, total, message=template.name)
    now = utcnow()
    created, batches, after = 0, 0, 0
    while True:
        candidates = (
            _clients_without_open(ctx.tenant.id, template.id, scope)
            .where(Client.id > after)
            .order_by(Client.id)
            .limit(batch)
            .subquery()
        )
        clients = _insert_requests(ctx.tenant.id, template, candidates, ctx.run.started_by_id, now)
        created, batches = created + len(clients), batches + 1
        # Published with the batch's commit: the job's page moves as the rows are written.
        ctx.progress(min(created, total), total, message=template.name)
        db.session.commit()
        if len(clients) < batch:
            break
        after = max(clients)
    notify_soon(ctx.tenant)
    return {"created": created, "template": template.name, "batches": batches}
