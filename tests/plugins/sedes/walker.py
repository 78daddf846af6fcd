"""What the isolation and permission walkers need of the sedes plugin (see tests/walker.py).

A sede's ``code`` names a row of the operator's catalogue, shared by every tenant: each walked
tenant gets a sede of its own in its licence, so another tenant's code answers 404 as a row would.
The catalogue is no tenant's data (every tenant's list of services shows it), so the sede carries
no marker, only a code derived from it.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select

ROW_ARGUMENTS = {
    "certificate_id": "sedes_certificate",
    "mailbox_id": "sedes_mailbox",
    "code": "sedes_sede",
    "notification_id": "sedes_notification",
    "notification_document_id": "sedes_notification_document",
    "sync_run_id": "sedes_sync_run",
    # The calendar feed's secret: another tenant's (or a revoked) one answers 404 as a row does.
    "feed_token": "sedes_calendar_feed",
    "webhook_id": "sedes_webhook",
    "webhook_delivery_id": "sedes_webhook_delivery",
}
OPERATOR_ARGUMENTS = {"sede_code": "sedes_sede"}


def _tax_id(app, tenant_id: int, client_id: int) -> str:
    from core.api import Client, db, tenant_context

    with app.app_context(), tenant_context(tenant_id):
        return db.session.get(Client, client_id).tax_id


def populate(app, tenant_id: int, client_id: int, marker: str) -> dict:
    """A sede of the tenant's own licence (read by the DEHú connector), the client's seal
    certificate, a mailbox there with a notification, the client's CCC — every text carrying ``marker``."""
    from core.api import JobRun, Tenant, accept_upload, db, tenant_context, utcnow
    from plugins.sedes import credentials
    from plugins.sedes.catalogue import SedeData, ensure_catalogue, save_sede
    from plugins.sedes.models import (
        Certificate,
        Mailbox,
        Notification,
        NotificationDocument,
        SedesClientData,
        SsidCode,
    )
    from plugins.sedes.pki import CertificateAuthority
    from tenants.licensing import set_licence
    from tests.core.files.samples import pdf

    code = "walker_" + hashlib.sha256(marker.encode()).hexdigest()[:10]
    tax_id = _tax_id(app, tenant_id, client_id)
    issued = CertificateAuthority(name=f"{marker} AC").sello(tax_id, f"{marker} SL")
    data = issued.pkcs12(f"{marker}-pw")
    parsed = credentials.parse(data, f"{marker}-pw")
    with app.app_context():
        ensure_catalogue()
        save_sede(
            SedeData(
                code,
                f"Sede {code}",
                portal_url=f"https://{code.replace('_', '-')}.example/",
                connector="dehu",
                base_url=f"https://{code.replace('_', '-')}.example/ws",
            )
        )
        set_licence(db.session.get(Tenant, tenant_id), "sedes", True, limits={"sedes": [code]})
        with tenant_context(tenant_id):
            credential = parsed.credential
            certificate = Certificate(
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
                password=f"{marker}-pw",
            )
            db.session.add(certificate)
            db.session.flush()
            mailbox = Mailbox(
                client_id=client_id,
                sede_code=code,
                certificate_id=certificate.id,
                last_result="error",
                last_error=f"{marker} error",
            )
            db.session.add_all(
                [
                    mailbox,
                    SedesClientData(client_id=client_id, receives_electronic=True, checks_board=True),
                    SsidCode(client_id=client_id, kind="ccc", code="28123456742"),
                ]
            )
            db.session.flush()
            notification = Notification(
                client_id=client_id,
                mailbox_id=mailbox.id,
                sede_code=code,
                external_id=f"{marker}-1",
                kind="notificacion",
                sede_state="pendiente",
                issuer_name=f"{marker} Issuer",
                subject=f"{marker} Subject",
                titular_nif=tax_id,
                made_available_at=utcnow(),
            )
            db.session.add(notification)
            db.session.flush()
            stored = accept_upload(pdf(), f"{marker}.pdf", tenant_id=tenant_id)
            document = NotificationDocument(
                notification_id=notification.id, file_id=stored.id, name=f"{marker}.pdf", mime="application/pdf"
            )
            db.session.add(document)
            # A "Consultar buzón" of the mailbox, as the sync leaves it (its page shows the outcome).
            run = JobRun(name="sedes.sync", queue="sync", status="finished", arguments={"mailbox_ids": [mailbox.id]})
            db.session.add(run)
            hook_id, delivery_id = _webhook(notification.id, marker)
            db.session.commit()
            return {
                "sedes_certificate": certificate.id,
                "sedes_mailbox": mailbox.id,
                "sedes_sede": code,
                "sedes_notification": notification.id,
                "sedes_notification_document": document.id,
                "sedes_sync_run": run.id,
                "sedes_calendar_feed": _calendar_feed(tenant_id, marker),
                "sedes_webhook": hook_id,
                "sedes_webhook_delivery": delivery_id,
            }


def _webhook(notification_id: int, marker: str) -> tuple[int, int]:
    """A webhook with one delivery that was tried once, every text carrying ``marker``."""
    from core.api import db
    from plugins.sedes.webhooks import FAILED, NEW, Attempt, Delivery, Webhook

    hook = Webhook(
        url=f"https://{marker.lower()}.example/hook",
        description=f"{marker} hook",
        events=[NEW],
        secret=f"{marker}-secret",
    )
    db.session.add(hook)
    db.session.flush()
    delivery = Delivery(
        uuid=f"{marker}-delivery"[:36],
        hook_id=hook.id,
        event=NEW,
        notification_id=notification_id,
        payload={"notification": {"subject": f"{marker} Subject"}},
        status=FAILED,
        attempts=1,
    )
    db.session.add(delivery)
    db.session.flush()
    db.session.add(
        Attempt(delivery_id=delivery.id, status_code=500, response_excerpt=f"{marker} answer", error="http_status")
    )
    return hook.id, delivery.id


def _calendar_feed(tenant_id: int, marker: str) -> str:
    """The secret of the calendar feed of a manager of the tenant (who sees its notifications)."""
    from core.api import Tenant, create_staff_account, db
    from plugins.sedes import calendar_feed

    digest = hashlib.sha256(marker.encode()).hexdigest()[:10]
    reader, _password = create_staff_account(
        db.session.get(Tenant, tenant_id), f"feed-{digest}@walker.test", f"{marker} Feed reader", "manager"
    )
    return calendar_feed.issue(reader)


def snapshot(app, tenant_id: int) -> dict:
    from core.api import db, tenant_context
    from plugins.sedes.calendar_feed import SedeCalendarFeed
    from plugins.sedes.escalation import SedeDeadlineEscalation
    from plugins.sedes.models import Certificate, Mailbox, Notification, SedesClientData, SsidCode
    from plugins.sedes.webhooks import Delivery, Webhook

    with app.app_context(), tenant_context(tenant_id):
        return {
            "certificates": sorted(
                (c.id, c.client_id, c.fingerprint, c.warned_days) for c in db.session.scalars(select(Certificate))
            ),
            "mailboxes": sorted(
                (m.id, m.client_id, m.sede_code, m.certificate_id, m.as_proxy, m.period_days, m.next_sync_at)
                for m in db.session.scalars(select(Mailbox))
            ),
            "client_data": sorted(
                (d.client_id, d.receives_electronic, d.checks_board)
                for d in db.session.scalars(select(SedesClientData))
            ),
            "codes": sorted((c.client_id, c.kind, c.code) for c in db.session.scalars(select(SsidCode))),
            "calendar_feeds": sorted(
                (f.id, f.user_id, f.secret_hash) for f in db.session.scalars(select(SedeCalendarFeed))
            ),
            "escalations": sorted(
                (e.notification_id, e.user_id, e.threshold) for e in db.session.scalars(select(SedeDeadlineEscalation))
            ),
            "webhooks": sorted(
                (h.id, h.url, h.active, h.secret, tuple(h.events)) for h in db.session.scalars(select(Webhook))
            ),
            "webhook_deliveries": sorted(
                (d.id, d.status, d.attempts, d.claimed_at) for d in db.session.scalars(select(Delivery))
            ),
            "notifications": sorted(
                (n.id, n.workflow_state, n.assignee_id, n.opened_at) for n in db.session.scalars(select(Notification))
            ),
        }
