"""The periodic sweep: set-based transitions (expiring, expired) and the renewal requests."""

from __future__ import annotations

from sqlalchemy import and_, exists, insert, literal, select, update
from sqlalchemy.orm import aliased

from core.api import (
    active_client_ids,
    db,
    utcnow,
)
from plugins.center_certificates.models import (
    APPROVED,
    EXPIRED,
    EXPIRING,
    MISSING,
    Certificate,
    CertificateTemplate,
)
from plugins.center_certificates.services.dates import today_for


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
