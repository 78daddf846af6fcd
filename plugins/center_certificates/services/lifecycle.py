"""A certificate's life on each write: requested, uploaded (by the client or the centre), approved,
rejected, archived, deleted. The date-driven states are right at once on every write; the
periodic sweep (``sweep``) moves the rest."""

from __future__ import annotations

from datetime import date, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, exists, literal, select
from sqlalchemy.orm import aliased

from core.api import (
    HEIC,
    JPEG,
    MB,
    PDF,
    PNG,
    Client,
    DomainError,
    UploadKind,
    accept_upload,
    active_client_ids,
    audited_write,
    db,
    delete_stored_file,
    register_kind,
    utcnow,
)
from plugins.center_certificates.models import (
    CREATED,
    MISSING,
    NOTE_MAX,
    PENDING,
    Certificate,
    CertificateNotice,
    CertificateTemplate,
)
from plugins.center_certificates.services.dates import dated_status, today_for
from plugins.center_certificates.services.notices import hold_created, notify_soon

UPLOAD_KIND = register_kind(
    UploadKind(
        "center_certificates.document",
        frozenset({JPEG, PNG, HEIC, PDF}),
        10 * MB,
        _l("a JPG, PNG, HEIC or PDF"),
    )
)


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


def request_for_new_clients(tenant, client_ids: list[int], *, notify: bool = True, held_for: str = "") -> int:
    """The ``clients_created`` reaction: a request from every template that asks for it, for
    every one of the new (active) clients, set-based: one INSERT … SELECT per template, whatever
    the number of clients (an import hands over a thousand at a time), and one commit.

    ``notify`` False (an import the person chose not to announce): the requests' notices are
    recorded as held for ``held_for`` in the same transaction, so none is ever sent by itself."""
    templates = db.session.scalars(
        select(CertificateTemplate).where(
            CertificateTemplate.active.is_(True), CertificateTemplate.auto_for_new_clients.is_(True)
        )
    ).all()
    made, now = [], utcnow()
    for template in templates:
        candidates = clients_without_open(tenant.id, template.id, None).where(Client.id.in_(client_ids)).subquery()
        made += [row.id for row in insert_requests(tenant.id, template, candidates, None, now)]
    if made:
        if not notify:
            hold_created(tenant.id, made, held_for)
        db.session.commit()
        if notify:
            notify_soon(tenant)
    return len(made)


def insert_requests(tenant_id: int, template: CertificateTemplate, candidates, issued_by_id, now) -> list:
    """INSERT … SELECT a request of ``template`` (Falta información) for each client id of the
    ``candidates`` subquery (a column ``id``), each with its creation in the audit trail; returns
    the rows made, as ``(client_id, id)``."""
    source = select(
        literal(template.id).label("template_id"),
        candidates.c.id.label("client_id"),
        literal(template.name).label("name"),
        literal(template.lead_days).label("lead_days"),
        literal(MISSING).label("status"),
        literal(issued_by_id, Integer).label("issued_by_id"),
        literal(now, Certificate.created_at.type).label("created_at"),
        literal(now, Certificate.updated_at.type).label("updated_at"),
    )
    return audited_write(Certificate, tenant_id, insert_from=source, returning=("client_id", "id"))


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

    Either may do it while information is missing and, to correct what was sent, while it waits
    for approval; approval freezes it. An upload makes it Pendiente de aprobación.
    """
    if not certificate.accepts_upload:
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


def hand_in_next(
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
    """The next document of a certificate that expires soon, handed in before it expires (by the
    client or the centre): a new certificate of the same template, linked to this one
    (``renewal_of_id``) and pending approval, while this one stays valid until its date. When the
    new one is approved, this one goes to the history by itself (see ``approve``).

    Nothing is asked of the client (the document came with the request), so the "created" notice
    is marked as told; the sweep asks for no renewal of a certificate that has one.
    """
    if not certificate.accepts_next:
        raise DomainError(_l("The next document can only be handed in while the certificate expires soon."))
    template = certificate.template
    if template is None or not template.active:
        raise DomainError(_l("This template is not in use."))
    _check_date_and_notes(tenant, validity_date, notes)
    if validity_date <= certificate.validity_date:
        raise DomainError(
            _l(
                "The new document must be valid after the current one (until %(date)s).", date=certificate.validity_date
            ),
            field="validity_date",
        )
    if upload is None:
        raise DomainError(_l("Choose the file of the document."), field="file")
    following = _new_request(template, certificate.client_id, issued_by_id=getattr(actor, "id", None))
    following.previous = certificate
    db.session.add(following)
    db.session.flush()
    db.session.add(CertificateNotice(certificate_id=following.id, event=CREATED))
    return submit(
        tenant,
        following,
        validity_date=validity_date,
        notes=notes,
        upload=upload,
        filename=filename,
        by_client=by_client,
        actor=actor,
    )


def update_notes(certificate: Certificate, notes: str | None) -> Certificate:
    """Notes can be edited while the certificate is not approved."""
    if not certificate.editable:
        raise DomainError(_l("This certificate can no longer be changed."))
    certificate.notes = _checked_notes(notes)
    db.session.commit()
    return certificate


def approve(tenant, certificate: Certificate, actor) -> Certificate:
    if not certificate.can_be_decided:
        raise DomainError(_l("Only a certificate pending approval can be approved."))
    today = today_for(tenant)
    if certificate.validity_date < today:
        raise DomainError(_l("The validity date has already passed: reject it and ask for a current one."))
    certificate.approved_at = utcnow()
    certificate.approved_by_id = getattr(actor, "id", None)
    certificate.status = dated_status(certificate.validity_date, certificate.expiring_from, today)
    previous = certificate.previous
    if previous is not None and previous.can_be_archived:
        # The document it follows (still valid, expiring soon) goes to the history by itself.
        previous.archived_at = certificate.approved_at
    db.session.commit()
    notify_soon(tenant)
    return certificate


def reject(tenant, certificate: Certificate, reason: str | None, actor) -> Certificate:
    """Send it back to Falta información; the client sees the reason and uploads again."""
    if not certificate.can_be_decided:
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
    if not certificate.can_be_archived:
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
    # A certificate in the bin follows nothing: the one it followed may be handed in again.
    certificate.renewal_of_id = None
    if stored is not None:
        delete_stored_file(stored)
    db.session.commit()


def clients_without_open(tenant_id: int, template_id: int, group_ids: list[int] | None):
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
