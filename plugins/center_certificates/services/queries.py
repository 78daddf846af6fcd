"""Who sees which certificates, the lists and counts: every read of the plugin's screens."""

from __future__ import annotations

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from core.api import (
    CREATE,
    Client,
    client_ids_in_groups,
    clients_matching,
    db,
    history,
    kept_choices,
    visible_client_ids,
)
from plugins.center_certificates.models import (
    EXPIRED,
    STATUSES,
    Certificate,
    CertificateTemplate,
)


def visible_statement(user):
    """Certificates of the clients ``user`` sees, not in the bin."""
    return select(Certificate).where(
        Certificate.deleted_at.is_(None), Certificate.client_id.in_(visible_client_ids(user))
    )


# Made once: aliasing the mapper cost a millisecond of each client page and dashboard.
_newer = aliased(Certificate, name="newer_certificate")


def superseded():
    """The condition that a newer certificate (not in the bin) of the same template exists for the
    same client: an expired one that was renewed, or asked again, is no longer news."""
    return exists().where(
        _newer.tenant_id == Certificate.tenant_id,
        _newer.client_id == Certificate.client_id,
        _newer.template_id == Certificate.template_id,
        _newer.id > Certificate.id,
        _newer.deleted_at.is_(None),
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
    """A client's current certificates and their history, newest first (one query).

    Current: the open ones, and one that expired and was not renewed (nothing newer of its
    template), which stays there as Caducado: the client still lacks it. History: the archived
    ones and the expired ones something newer follows.
    """
    rows = db.session.execute(
        select(Certificate, superseded().label("superseded"))
        .where(Certificate.client_id == client_id, Certificate.deleted_at.is_(None))
        .order_by(Certificate.id.desc())
    ).all()
    current, past = [], []
    for certificate, newer in rows:
        lapsed = certificate.status == EXPIRED and certificate.archived_at is None and not newer
        (current if certificate.is_open or lapsed else past).append(certificate)
    return current, past


def history_events(certificate: Certificate) -> list:
    """What the certificate's page lists as its history: its own audit events, and the creation
    of the certificate that follows it (renewed on expiry, or its next document), newest first."""
    events = list(history("certificate", certificate.id))
    following = certificate.renewal
    if following is not None:
        events += [event for event in history("certificate", following.id) if event.action == CREATE]
    return sorted(events, key=lambda event: event.id, reverse=True)


def all_templates() -> list[CertificateTemplate]:
    return list(db.session.scalars(select(CertificateTemplate).order_by(CertificateTemplate.name)))


def template_choices(in_use: bool = False) -> list:
    """Every template as the list's filter offers it, or (``in_use``) those that can be asked for
    now as a client's page does: kept until the tenant's data next changes."""
    return kept_choices(f"certificate template choices:{in_use}", templates_in_use if in_use else all_templates)


def templates_in_use() -> list[CertificateTemplate]:
    """The templates that can be asked for now."""
    return list(
        db.session.scalars(
            select(CertificateTemplate).where(CertificateTemplate.active.is_(True)).order_by(CertificateTemplate.name)
        )
    )


def get_template(template_id: int | None) -> CertificateTemplate | None:
    return db.session.get(CertificateTemplate, template_id) if template_id is not None else None


def open_counts() -> dict[int, int]:
    """How many open certificates each template has."""
    return dict(
        db.session.execute(
            select(Certificate.template_id, func.count()).where(Certificate.is_open).group_by(Certificate.template_id)
        ).all()
    )


def bin_statement(user):
    """The certificates in the bin of the clients ``user`` sees (listed, never restorable)."""
    return (
        select(Certificate)
        .where(Certificate.deleted_at.is_not(None), Certificate.client_id.in_(visible_client_ids(user)))
        .options(selectinload(Certificate.client))
    )


def of_portal_account(client_id: int, certificate_id: int) -> Certificate | None:
    """A certificate of the client a portal account is (never one in the bin)."""
    return db.session.scalar(
        select(Certificate).where(
            Certificate.id == certificate_id, Certificate.client_id == client_id, Certificate.deleted_at.is_(None)
        )
    )
