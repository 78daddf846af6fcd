"""What the sync and notification tests share: the catalogue pointed at the simulator, certificates
made by the simulator's CA stored as the office would store them, mailboxes, and reading rows back."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from sqlalchemy import select

from plugins.sedes import pki

PASSWORD = "pkcs12-secret"


@contextlib.contextmanager
def in_tenant(app, tenant_id: int):
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        yield


def point_catalogue_at(app, simulator, code: str = "dehu") -> None:
    """The operator's catalogue: the sede's connector talks to the simulator and trusts its CA."""
    from core.extensions import db
    from plugins.sedes.catalogue import ensure_catalogue
    from plugins.sedes.models import Sede

    with app.app_context():
        ensure_catalogue()
        sede = db.session.get(Sede, code)
        sede.base_url = simulator.url
        sede.ca_certificates = simulator.ca_pem
        sede.active = True
        db.session.commit()


def company_certificate(simulator, cif: str, *, enrol: bool = True, **options) -> pki.Issued:
    """A representative's certificate of the company ``cif`` (its person 12345678Z), enrolled at DEHú."""
    issued = simulator.ca.representante("12345678Z", cif, **options)
    if enrol:
        simulator.enrol(issued, [cif])
    return issued


def store_certificate(app, tenant, client_id: int | None, issued: pki.Issued) -> int:
    """The certificate as the office uploads it (PKCS#12 and password encrypted at rest)."""
    from core.extensions import db
    from plugins.sedes import credentials
    from plugins.sedes.models import SedeCertificate

    data = issued.pkcs12(PASSWORD)
    parsed = credentials.parse(data, PASSWORD)
    credential = parsed.credential
    with in_tenant(app, tenant.id):
        row = SedeCertificate(
            client_id=client_id,
            kind=credential.kind.value,
            holder_name=credential.holder_name,
            holder_nif=credential.holder_nif,
            entity_nif=credential.entity_nif,
            issuer=credential.issuer,
            serial=credential.serial,
            fingerprint=parsed.fingerprint,
            not_before=credential.not_before,
            not_after=credential.not_after,
            pkcs12=data,
            password=PASSWORD,
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def make_mailbox(app, tenant, client_id: int, certificate_id: int, *, sede: str = "dehu", **values) -> int:
    from core.extensions import db
    from plugins.sedes.models import SedeMailbox

    with in_tenant(app, tenant.id):
        row = SedeMailbox(client_id=client_id, sede_code=sede, certificate_id=certificate_id, **values)
        db.session.add(row)
        db.session.commit()
        return row.id


def mailbox_row(app, tenant, mailbox_id: int) -> dict:
    from core.extensions import db
    from plugins.sedes.models import SedeMailbox

    with in_tenant(app, tenant.id):
        row = db.session.get(SedeMailbox, mailbox_id)
        values = {
            c: getattr(row, c)
            for c in (
                "last_result",
                "last_error",
                "last_new_count",
                "failures",
                "retry_at",
                "next_sync_at",
                "queued_at",
                "synced_until",
                "last_sync_at",
            )
        }
        db.session.rollback()
        return values


def notifications_of(app, tenant, *columns: str) -> list[tuple]:
    from core.extensions import db
    from plugins.sedes.models import SedeNotification

    columns = columns or ("external_id",)
    with in_tenant(app, tenant.id):
        stmt = select(*(getattr(SedeNotification, c) for c in columns)).order_by(SedeNotification.id)
        return [tuple(r) for r in db.session.execute(stmt)]


def aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else (moment if moment.tzinfo else moment.replace(tzinfo=UTC))
