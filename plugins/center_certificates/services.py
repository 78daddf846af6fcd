"""Certificates a centre asks its clients for: templates, requests, the state machine, notices.

States: Falta información (``missing_info``, initial) → Pendiente de aprobación (a file was
uploaded) → Aprobado → Caduca pronto (approved, validity date within the template's lead time)
→ Caducado (24 h after the validity date: from midnight after it, in the tenant's time zone).
Rechazar sends a pending certificate back to Falta información with a reason.

Dates are computed in the tenant's time zone. The date-driven transitions happen both on every
write (a certificate approved late inside a window is right at once) and in a periodic sweep
of set-based statements. Each event the client is told about (created, approved, expiring,
expired) is sent once per certificate: a unique notice row is written in the same transaction
as the e-mail it queues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, insert, literal, select, update
from sqlalchemy.orm import aliased, selectinload

from core.clients.models import Client, GroupClient
from core.clients.services import matching, members_of, visible
from core.errors import DomainError
from core.extensions import db, utcnow
from core.files.kinds import HEIC, JPEG, MB, PDF, PNG, UploadKind, register_kind
from core.files.services import accept_upload, delete_stored_file
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


def visible_client_ids(user):
    """The ids of the clients ``user`` sees, as a subquery."""
    return visible(user, select(Client.id)).scalar_subquery()


def visible_statement(user):
    """Certificates of the clients ``user`` sees, not in the bin."""
    return select(Certificate).where(
        Certificate.deleted_at.is_(None), Certificate.client_id.in_(visible_client_ids(user))
    )


def list_statement(user, *, q: str = "", status: str = "", template_id: int | None = None, group_id: int | None = None):
    """The staff's list: certificates neither archived nor in the bin of the clients ``user`` sees,
    in one state (or in any state but Caducado), of one template, of the clients of one centre, of
    the clients whose name, tax id or e-mail contains ``q``."""
    stmt = visible_statement(user).where(Certificate.archived_at.is_(None))
    stmt = stmt.where(Certificate.status == status) if status in STATUSES else stmt.where(Certificate.status != EXPIRED)
    if template_id:
        stmt = stmt.where(Certificate.template_id == template_id)
    if group_id:
        stmt = stmt.where(Certificate.client_id.in_(members_of(group_id)))
    if q.strip():
        stmt = stmt.where(Certificate.client_id.in_(select(Client.id).where(matching(q))))
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


def clone_template(template: CertificateTemplate, actor=None) -> CertificateTemplate:
    """A copy to start a new template from; it starts without automatic options switched on."""
    base = str(_l("%(name)s (copy)", name=template.name))
    name, number = base, 2
    while db.session.scalar(select(CertificateTemplate.id).where(CertificateTemplate.name == name)) is not None:
        name, number = f"{base} {number}", number + 1
    return save_template(
        None,
        TemplateData(name, template.description, template.lead_days, False, False, template.active),
        actor,
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


def request_for_new_client(tenant, client) -> int:
    """The ``client_created`` reaction: a request from every template that asks for it."""
    templates = db.session.scalars(
        select(CertificateTemplate).where(
            CertificateTemplate.active.is_(True), CertificateTemplate.auto_for_new_clients.is_(True)
        )
    ).all()
    made = 0
    for template in templates:
        if not _has_open(client.id, template.id):
            db.session.add(_new_request(template, client.id))
            made += 1
    if made:
        db.session.commit()
        notify_soon(tenant)
    return made


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
    db.session.commit()
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
    expired = db.session.execute(
        update(Certificate)
        .where(
            live,
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
        .join(Client, Client.id == old.client_id)
        .where(
            old.tenant_id == tenant_id,
            CertificateTemplate.tenant_id == tenant_id,
            Client.tenant_id == tenant_id,
            old.status == EXPIRED,
            old.deleted_at.is_(None),
            CertificateTemplate.renew_on_expiry.is_(True),
            CertificateTemplate.active.is_(True),
            Client.active.is_(True),
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


NOTICE_EVENTS = (CREATED, APPROVED_EVENT, EXPIRING_EVENT, EXPIRED_EVENT)


def notice_subject(event: str, organisation: str, certificate: str):
    """The subject (and push title) of a notice, translated when it is rendered."""
    if event == CREATED:
        return _l("%(organisation)s asks you for: %(certificate)s", organisation=organisation, certificate=certificate)
    if event == APPROVED_EVENT:
        return _l("Your %(certificate)s has been approved", certificate=certificate)
    if event == EXPIRING_EVENT:
        return _l("Your %(certificate)s expires soon", certificate=certificate)
    return _l("Your %(certificate)s has expired", certificate=certificate)


NOTICE_BATCH = 500


def _due_notices(event: str, limit: int):
    """Certificates owed a notice of ``event``: the event happened and no notice was written."""
    condition = {
        CREATED: Certificate.id.is_not(None),
        APPROVED_EVENT: Certificate.approved_at.is_not(None),
        EXPIRING_EVENT: Certificate.status == EXPIRING,
        EXPIRED_EVENT: Certificate.status == EXPIRED,
    }[event]
    told = select(CertificateNotice.id).where(
        CertificateNotice.certificate_id == Certificate.id, CertificateNotice.event == event
    )
    return db.session.scalars(
        select(Certificate)
        .where(condition, Certificate.deleted_at.is_(None), ~told.exists())
        .order_by(Certificate.id)
        .limit(limit)
        .options(selectinload(Certificate.client))
    ).all()


def _portal_accounts(client_ids: set[int]) -> dict:
    """The active portal account of each of these clients that has one."""
    from core.auth.models import User

    accounts = db.session.scalars(select(User).where(User.client_id.in_(client_ids), User.active.is_(True)))
    return {account.client_id: account for account in accounts}


def notify(tenant) -> dict:
    """Write each owed notice once, with its e-mail in the same transaction; then push (best effort)."""
    from core.mail.services import send_email
    from core.urls import external_url

    sent = dict.fromkeys(NOTICE_EVENTS, 0)
    pushes: list[tuple[int, int, dict]] = []
    for event in NOTICE_EVENTS:
        while due := _due_notices(event, NOTICE_BATCH):
            accounts = _portal_accounts({certificate.client_id for certificate in due})
            for certificate in due:
                client = certificate.client
                account = accounts.get(client.id)
                language = (account.locale if account is not None else None) or tenant.language
                subject = notice_subject(event, tenant.name, certificate.name)
                link = external_url(
                    "center_certificates_portal.show", tenant=tenant.slug, certificate_id=certificate.id
                )
                message = None
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
                    )
                notice = CertificateNotice(
                    certificate_id=certificate.id, event=event, message_id=message.id if message else None
                )
                db.session.add(notice)
                if account is not None:
                    db.session.flush()
                    pushes.append((notice.id, account.id, _push_payload(event, subject, certificate, language, link)))
                sent[event] += 1
            db.session.commit()
    _push(pushes)
    return {f"notices_{event}": count for event, count in sent.items()}


def _push_payload(event: str, subject, certificate: Certificate, language: str, link: str) -> dict:
    from flask_babel import force_locale

    with force_locale(language):
        title = str(subject)
    return {
        "title": title,
        "body": certificate.client.name,
        "url": link,
        "tag": f"certificate-{certificate.id}",
        "certificate": certificate.id,
        "event": event,
    }


def _push(pushes: list[tuple[int, int, dict]]) -> None:
    from core.push.services import send_to_user

    for notice_id, user_id, payload in pushes:
        if send_to_user(user_id, payload).delivered:
            db.session.execute(update(CertificateNotice).where(CertificateNotice.id == notice_id).values(pushed=True))
    db.session.commit()


def notify_soon(tenant) -> None:
    """Start the notices job now rather than at the next tick (unless one is already waiting)."""
    from core.jobs.services import enqueue, has_open_run

    try:
        if not has_open_run("center_certificates.notify"):
            enqueue(tenant, "center_certificates.notify")
    except Exception as error:  # Redis away: the periodic sweep sends them later.
        log.warning("could not start the certificate notices now: %s", error)


def run_notify(ctx) -> dict:
    return notify(ctx.tenant)


# --- Generar certificados ---------------------------------------------------------------


def _clients_without_open(tenant_id: int, template_id: int, group_ids: list[int]):
    """Active clients of the centres without an open certificate of the template.

    The tenant key is repeated in the subqueries: inside the INSERT … SELECT of the bulk job the
    ORM's criteria do not reach them, and the indexes start with tenant_id.
    """
    open_one = aliased(Certificate)
    members = select(GroupClient.client_id).where(
        GroupClient.tenant_id == tenant_id, GroupClient.group_id.in_(group_ids)
    )
    return select(Client.id).where(
        Client.tenant_id == tenant_id,
        Client.active.is_(True),
        Client.id.in_(members),
        ~exists().where(
            open_one.tenant_id == tenant_id,
            open_one.client_id == Client.id,
            open_one.template_id == template_id,
            open_one.is_open,
        ),
    )


def generation_count(template: CertificateTemplate, group_ids: list[int]) -> int:
    """How many certificates "Generar certificados" would create now."""
    if not group_ids:
        return 0
    candidates = _clients_without_open(template.tenant_id, template.id, group_ids)
    return db.session.scalar(select(func.count()).select_from(candidates.subquery()))


def start_generation(tenant, template: CertificateTemplate, group_ids: list[int], actor):
    from core.jobs.services import enqueue

    if not template.active:
        raise DomainError(_l("This template is not in use."))
    if not group_ids:
        raise DomainError(_l("Choose at least one centre."), field="groups")
    return enqueue(
        tenant, "center_certificates.generate", {"template_id": template.id, "group_ids": group_ids}, started_by=actor
    )


def run_generation(ctx, template_id: int, group_ids: list[int]) -> dict:
    """The bulk job: one INSERT … SELECT, so 100,000 clients take one statement, not 100,000."""
    template = db.session.get(CertificateTemplate, template_id)
    if template is None or not template.active:
        return {"created": 0}
    ctx.progress(5, message=template.name)
    now = utcnow()
    candidates = _clients_without_open(ctx.tenant.id, template.id, group_ids).subquery()
    source = select(
        literal(ctx.tenant.id),
        literal(template.id),
        candidates.c.id,
        literal(template.name),
        literal(template.lead_days),
        literal(MISSING),
        literal(ctx.run.started_by_id),
        literal(now),
        literal(now),
    )
    created = db.session.execute(
        insert(Certificate)
        .from_select(
            [
                "tenant_id",
                "template_id",
                "client_id",
                "name",
                "lead_days",
                "status",
                "issued_by_id",
                "created_at",
                "updated_at",
            ],
            source,
        )
        .returning(Certificate.id)
    )
    created = len(created.all())
    ctx.progress(90, message=template.name)
    db.session.commit()
    notify_soon(ctx.tenant)
    return {"created": created, "template": template.name}
