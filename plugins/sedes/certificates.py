"""Certificados digitales: the clients' PKCS#12 files (and the office's own, used under
apoderamiento), kept encrypted with their passwords.

Upload (parsed and checked by ``credentials``), list and detail for whoever sees the client, a
download of the file and a look at its password for a dedicated permission, and warnings 30, 15
and 7 days before a certificate expires (a dashboard widget and an e-mail to the staff who see its
client, each threshold once). Every use — upload, download, password shown, a sync or an opening
(``use_row``) — is in the audit trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from core.api import (
    UPDATE,
    Client,
    DomainError,
    Page,
    Tenant,
    audit_row,
    audit_rows,
    db,
    external_url,
    get_visible_client,
    has_permission,
    keyset_page,
    send_email,
    update_by_id,
    user_language,
    users_with_permission,
    utcnow,
    visible_client_ids,
    visible_clients,
)
from plugins.sedes import CERTIFICATES_DOWNLOAD, CERTIFICATES_MANAGE, CERTIFICATES_VIEW
from plugins.sedes.contract import Credential
from plugins.sedes.credentials import check_validity, parse
from plugins.sedes.models import Certificate, Mailbox

WARN_DAYS = (30, 15, 7)  # days before expiry a warning goes out, each once
USED_FOR = "used_for"  # the audit change that records a use of a certificate

TAX_ID_NOISE = re.compile(r"[^0-9A-Z]")


def _need(user, permission: str) -> None:
    if not has_permission(user, permission):
        raise DomainError(_l("Your role does not allow this."))


def _nif(value: str | None) -> str:
    """A NIF as compared: upper case, no separators, no ``ES`` VAT prefix."""
    text = TAX_ID_NOISE.sub("", (value or "").upper())
    return text[2:] if text.startswith("ES") and len(text) == 11 else text


def matches_client(certificate: Certificate | Credential, client: Client) -> bool:
    """Whether the certificate is the client's: its company's NIF, or its person's, is the client's tax id."""
    nif = _nif(client.tax_id)
    return bool(nif) and nif in {_nif(certificate.entity_nif), _nif(certificate.holder_nif)}


# --- upload -------------------------------------------------------------------------------------


@dataclass
class UploadData:
    data: bytes
    password: str
    client_id: int | None = None  # this client's; None: the client whose NIF is the certificate's
    office: bool = False  # the office's own certificate (apoderamiento): no client


def client_by_nif(user, *nifs: str | None) -> Client | None:
    """The first client ``user`` sees whose tax id is one of ``nifs`` (in that order)."""
    wanted = [_nif(nif) for nif in nifs if nif]
    if not wanted:
        return None
    found = {
        _nif(client.tax_id): client
        for client in db.session.scalars(visible_clients(user, select(Client).where(Client.tax_id.in_(wanted))))
    }
    return next((found[nif] for nif in wanted if nif in found), None)


def upload(tenant: Tenant, user, upload_data: UploadData) -> Certificate:
    """Keep a certificate: parsed, checked (password, key, validity, the client's NIF, not kept
    already), encrypted at rest with its password; the audit trail records it. Committed."""
    _need(user, CERTIFICATES_MANAGE)
    client = None
    if upload_data.client_id is not None and not upload_data.office:
        client = get_visible_client(user, upload_data.client_id)
        if client is None:
            raise DomainError(_l("Choose a client you can see."), field="client_id")
    parsed = parse(upload_data.data, upload_data.password)
    credential = parsed.credential
    check_validity(credential)
    if client is None and not upload_data.office:
        client = client_by_nif(user, credential.entity_nif, credential.holder_nif)
        if client is None:
            raise DomainError(
                _l(
                    "None of your clients has the certificate's NIF (%(nif)s): create the client first, or keep "
                    "it as the office's own certificate.",
                    nif=credential.titular_nif,
                ),
                field="owner",
            )
    if client is not None and not matches_client(credential, client):
        raise DomainError(
            _l(
                "The certificate is of %(nif)s, not of the client (%(tax_id)s). To read the client's mailboxes "
                "under apoderamiento, upload it as the office's own certificate, without a client.",
                nif=credential.titular_nif,
                tax_id=client.tax_id,
            ),
            field="client_id",
        )
    if db.session.scalar(select(Certificate.id).where(Certificate.fingerprint == parsed.fingerprint)) is not None:
        raise DomainError(_l("This certificate is already kept."), field="file")
    certificate = Certificate(
        client_id=client.id if client is not None else None,
        kind=credential.kind.value,
        holder_name=credential.holder_name[:200],
        holder_nif=credential.holder_nif,
        entity_nif=credential.entity_nif,
        issuer=credential.issuer[:300],
        serial=credential.serial[:80],
        fingerprint=parsed.fingerprint,
        not_before=credential.not_before,
        not_after=credential.not_after,
        pkcs12=upload_data.data,
        password=upload_data.password,
        uploaded_by_id=user.id,
    )
    db.session.add(certificate)
    db.session.commit()
    return certificate


# --- reading ------------------------------------------------------------------------------------


def visible(user, stmt: Select | None = None) -> Select:
    """Certificates ``user`` may see: those of the clients they see, and the office's own."""
    stmt = stmt if stmt is not None else select(Certificate)
    return stmt.where(or_(Certificate.client_id.is_(None), Certificate.client_id.in_(visible_client_ids(user))))


def get_certificate(user, certificate_id: int) -> Certificate | None:
    """The certificate, if ``user`` may see it (None: answer 404)."""
    if not has_permission(user, CERTIFICATES_VIEW):
        return None
    return db.session.scalar(visible(user, select(Certificate).where(Certificate.id == certificate_id)))


def list_page(
    user,
    cursor: str | None = None,
    *,
    client_id: int | None = None,
    expiring_within: int | None = None,
    office_only: bool = False,
    per_page: int = 50,
    now: datetime | None = None,
) -> Page:
    """A page of the certificates ``user`` sees, by holder (keyset pagination), each with its client
    loaded: a constant number of statements whatever the page holds. (By holder, not by expiry: the
    keyset cursor carries a date-time as text, which SQLite compares with the stored text format
    wrongly at the page's edge; ``expiring_within`` narrows the list to what expires soon.)"""
    stmt = visible(user).options(selectinload(Certificate.client))
    if client_id is not None:
        stmt = stmt.where(Certificate.client_id == client_id)
    if office_only:
        stmt = stmt.where(Certificate.client_id.is_(None))
    if expiring_within is not None:
        stmt = stmt.where(Certificate.not_after <= (now or utcnow()) + timedelta(days=expiring_within))
    return keyset_page(db.session, stmt, [Certificate.holder_name, Certificate.id], cursor, per_page=per_page)


def for_client(user, client: Client, *, include_office: bool = False) -> list[Certificate]:
    """The client's certificates (and the office's own, for apoderamiento, when asked)."""
    condition = Certificate.client_id == client.id
    if include_office:
        condition = or_(condition, Certificate.client_id.is_(None))
    return list(db.session.scalars(visible(user, select(Certificate).where(condition)).order_by(Certificate.not_after)))


def usable(user, now: datetime | None = None) -> list[Certificate]:
    """The certificates ``user`` sees that are valid now (what a mailbox may be read with), by holder."""
    moment = now or utcnow()
    stmt = visible(user).where(Certificate.not_before <= moment, Certificate.not_after > moment)
    return list(db.session.scalars(stmt.order_by(Certificate.holder_name, Certificate.id)))


def expiring_count(user, within_days: int = WARN_DAYS[0], now: datetime | None = None) -> int:
    """How many certificates ``user`` sees expire within ``within_days`` (expired ones included)."""
    limit_at = (now or utcnow()) + timedelta(days=within_days)
    stmt = visible(user, select(func.count()).select_from(Certificate)).where(Certificate.not_after <= limit_at)
    return db.session.scalar(stmt) or 0


def days_left(certificate: Certificate, now: datetime | None = None) -> int:
    """Whole days until the certificate expires (negative once expired)."""
    return (certificate.not_after - (now or datetime.now(UTC))).days


def mailbox_count(certificate: Certificate) -> int:
    return db.session.scalar(select(func.count()).where(Mailbox.certificate_id == certificate.id)) or 0


# --- using it -----------------------------------------------------------------------------------


def use_row(certificate: Certificate, purpose: str, client_id: int | None = None) -> dict:
    """The audit event of one use of a certificate (``audit_rows`` writes a batch of them)."""
    parent_id = client_id if client_id is not None else certificate.client_id
    return audit_row(
        certificate.tenant_id,
        UPDATE,
        "sedes_certificate",
        certificate.id,
        certificate.audit_label(),
        {USED_FOR: [None, purpose]},
        parent=("client", parent_id) if parent_id is not None else None,
    )


def credential_for(certificate: Certificate, purpose: str | None = None, client_id: int | None = None) -> Credential:
    """The certificate ready for a connector (decrypted and parsed in memory, never stored so);
    with ``purpose`` the use is recorded in the audit trail (in the caller's transaction)."""
    credential = parse(certificate.pkcs12, certificate.password).credential
    if purpose:
        audit_rows([use_row(certificate, purpose, client_id)])
    return credential


def download(user, certificate: Certificate) -> tuple[str, bytes]:
    """The PKCS#12 as it was uploaded (its password protects it), for the download permission;
    who and when is recorded. Committed."""
    _need(user, CERTIFICATES_DOWNLOAD)
    audit_rows([use_row(certificate, "download")])
    db.session.commit()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", f"{certificate.holder_name}-{certificate.titular_nif}").strip("-")
    return f"{stem or 'certificate'}.p12", certificate.pkcs12


def reveal_password(user, certificate: Certificate) -> str:
    """The file's password, to install it in a browser, for the download permission; recorded. Committed."""
    _need(user, CERTIFICATES_DOWNLOAD)
    audit_rows([use_row(certificate, "password shown")])
    db.session.commit()
    return certificate.password


def delete(user, certificate: Certificate) -> None:
    """Forget a certificate no mailbox uses (the audit trail records it). Committed."""
    _need(user, CERTIFICATES_MANAGE)
    used = mailbox_count(certificate)
    if used:
        raise DomainError(
            _l(
                "%(count)s mailboxes read with this certificate: give them another certificate or delete them first.",
                count=used,
            )
        )
    db.session.delete(certificate)
    db.session.commit()


# --- expiry warnings ----------------------------------------------------------------------------


def warning_due(days: int, warned: int | None) -> int | None:
    """The threshold to warn of now for a certificate ``days`` from expiry, already warned at
    ``warned`` (None: never); None when nothing is due. A certificate that comes in with 5 days left
    is warned once, at 7; an expired one no more."""
    if days < 0:
        return None
    due = min((threshold for threshold in WARN_DAYS if days <= threshold), default=None)
    if due is None or (warned is not None and warned <= due):
        return None
    return due


def send_expiry_warnings(tenant: Tenant, now: datetime | None = None) -> dict:
    """E-mail the staff who see each certificate's client (the office's own: every holder of the
    permission) at 30, 15 and 7 days before it expires, each threshold once. Idempotent."""
    now = now or utcnow()
    candidates = db.session.scalars(
        select(Certificate)
        .where(Certificate.not_after > now, Certificate.not_after <= now + timedelta(days=WARN_DAYS[0] + 1))
        .options(selectinload(Certificate.client))
        .order_by(Certificate.id)
    ).all()
    staff = users_with_permission(CERTIFICATES_VIEW)
    seers: dict[int | None, list] = {}
    warned: list[dict] = []
    mails = 0
    for certificate in candidates:
        left = days_left(certificate, now)
        threshold = warning_due(left, certificate.warned_days)
        if threshold is None:
            continue
        key = certificate.client_id
        if key not in seers:
            seers[key] = staff if key is None else [u for u in staff if get_visible_client(u, key) is not None]
        link = external_url("sedes.certificate_detail", tenant=tenant.slug, certificate_id=certificate.id)
        for user in seers[key]:
            send_email(
                tenant,
                user.email,
                lazy_ngettext(
                    "The digital certificate of %(holder)s expires in %(num)s day",
                    "The digital certificate of %(holder)s expires in %(num)s days",
                    left,
                    holder=certificate.holder_name,
                ),
                "sedes/mail/certificate_expiry",
                user_language(user, tenant),
                commit=False,
                certificate=certificate,
                days=left,
                link=link,
            )
            mails += 1
        warned.append({"id": certificate.id, "warned_days": threshold})
    update_by_id(Certificate, warned)
    db.session.commit()
    return {"certificates": len(warned), "emails": mails}


def run_expiry_warnings(ctx) -> dict:
    """The daily job (per tenant)."""
    return send_expiry_warnings(ctx.tenant)


def register_jobs(jobs) -> None:
    jobs.add(
        "sedes.certificate_expiry",
        run_expiry_warnings,
        queue="mail",
        title=_l("Warn of digital certificates about to expire"),
        cron="40 6 * * *",
        timeout=1800,
    )
