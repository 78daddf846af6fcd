"""Comparecencia against the DEHú simulator: only after the user confirms, audited with who and
when, with the document, its annexes and the acuse kept through core's files; and the 5/2/1-day
deadline alerts, each sent once, to whoever handles the notification."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from plugins.sedes.simulator.pdf import tiny_pdf
from tests.conftest import login
from tests.plugins.sedes.sync_helpers import (
    company_certificate,
    in_tenant,
    make_mailbox,
    notifications_of,
    point_catalogue_at,
    store_certificate,
)

CIF = "B12345674"


def synced_office(app, factory, client, simulator, run_jobs, **notification):
    tenant = factory.tenant("acme", language="en")
    gestor_group = factory.group(tenant, "Valencia")
    factory.user(tenant, "ana@acme.test", role_key="operator", name="Ana", groups=[gestor_group])
    point_catalogue_at(app, simulator)
    client_id = factory.client(tenant, "Construcciones Levante SL", CIF, groups=[gestor_group])
    certificate = store_certificate(app, tenant, client_id, company_certificate(simulator, CIF))
    mailbox = make_mailbox(app, tenant, client_id, certificate)
    sent = simulator.add_notification(
        CIF,
        subject=notification.pop("subject", "Liquidación provisional IVA"),
        anexos=[("anexo-calculo.pdf", tiny_pdf("Anexo", "Cálculo"), "application/pdf")],
        **notification,
    )
    login(client, "acme", "ana@acme.test")
    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()
    ((notification_id,),) = notifications_of(app, tenant, "id")
    return tenant, client_id, notification_id, sent


def test_opening_needs_the_users_confirmation(app, factory, client, dehu_simulator, run_jobs):
    tenant, _client_id, nid, sent = synced_office(app, factory, client, dehu_simulator, run_jobs)
    page = client.get(f"/acme/sedes/notifications/{nid}").get_data(as_text=True)
    assert "counts as notified" in page and 'id="open-form"' in page
    answer = client.post(f"/acme/sedes/notifications/{nid}/open", follow_redirects=True).get_data(as_text=True)
    assert "Confirm that you want to open it" in answer
    assert "PeticionAcceso" not in dehu_simulator.operations()
    assert dehu_simulator.notification(sent.identificador).state == "PENDIENTE"
    assert notifications_of(app, tenant, "sede_state", "opened_at") == [("pendiente", None)]


def test_opening_after_confirming_keeps_document_annex_and_acuse_and_is_audited(
    app, factory, client, dehu_simulator, run_jobs
):
    from core.audit.models import AuditEvent
    from core.auth.models import User
    from core.extensions import db
    from plugins.sedes.models import SedeNotification

    tenant, client_id, nid, sent = synced_office(app, factory, client, dehu_simulator, run_jobs)
    before = datetime.now(UTC)
    page = client.post(f"/acme/sedes/notifications/{nid}/open", data={"confirm": "yes"}, follow_redirects=True)
    page = page.get_data(as_text=True)
    assert "The notification has been opened at the sede" in page
    assert dehu_simulator.operations().count("PeticionAcceso") == 1
    assert dehu_simulator.notification(sent.identificador).state == "ACEPTADA"

    with in_tenant(app, tenant.id):
        row = db.session.get(SedeNotification, nid)
        ana = db.session.scalar(select(User).where(User.email == "ana@acme.test"))
        assert (row.sede_state, row.opened_by_id, row.workflow_state) == ("aceptada", ana.id, "read")
        opened_at = row.opened_at if row.opened_at.tzinfo else row.opened_at.replace(tzinfo=UTC)
        assert opened_at >= before - timedelta(seconds=1)
        documents = [(d.name, d.is_acuse, d.file is not None) for d in row.documents]
        links = [d.id for d in row.documents]
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.object_type == "sedes_notification", AuditEvent.object_id == nid)
        ).all()
        opening = [e for e in events if "opened_at" in (e.changes or {})]
        assert len(opening) == 1 and opening[0].actor_id == ana.id and opening[0].parent_id == client_id
        uses = db.session.scalars(select(AuditEvent.changes).where(AuditEvent.object_type == "sedes_certificate")).all()
        assert any(str(u.get("used_for", [None, ""])[1]).startswith("open dehu") for u in uses)
        assert any(str(u.get("used_for", [None, ""])[1]).startswith("sync dehu") for u in uses)
    assert sorted(documents) == sorted(
        [(sent.document_name, False, True), ("anexo-calculo.pdf", False, True), (documents[-1][0], True, True)]
    )
    for document_id in links:
        download = client.get(f"/acme/sedes/notifications/{nid}/documents/{document_id}")
        assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert f"/acme/sedes/notifications/{nid}/documents/{links[0]}" in page

    # Opening twice asks the sede nothing more.
    client.post(f"/acme/sedes/notifications/{nid}/open", data={"confirm": "yes"})
    assert dehu_simulator.operations().count("PeticionAcceso") == 1


def test_a_role_without_the_open_permission_cannot_open(app, factory, client, dehu_simulator, run_jobs):
    tenant, _client_id, nid, _sent = synced_office(app, factory, client, dehu_simulator, run_jobs)
    factory.user(tenant, "lee@acme.test", permissions=["core.clients:view_all", "sedes.notifications:view"])
    reader = app.test_client()
    login(reader, "acme", "lee@acme.test")
    page = reader.get(f"/acme/sedes/notifications/{nid}").get_data(as_text=True)
    assert 'id="open-form"' not in page
    assert reader.post(f"/acme/sedes/notifications/{nid}/open", data={"confirm": "yes"}).status_code == 403
    assert "PeticionAcceso" not in dehu_simulator.operations()


def test_deadline_alerts_go_five_two_and_one_days_before_each_once(
    app, factory, client, dehu_simulator, run_jobs, outbox
):
    from core.extensions import db
    from plugins.sedes import notifications
    from plugins.sedes.models import SedeNotification
    from tenants.models import Tenant

    made = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    tenant, _client_id, nid, _sent = synced_office(
        app, factory, client, dehu_simulator, run_jobs, made_available_at=made, subject="Embargo"
    )
    assert notifications_of(app, tenant, "deadline_on") == [(date(2026, 12, 14),)]
    outbox()  # whatever the sync sent

    def run_on(day: date) -> dict:
        with in_tenant(app, tenant.id):
            return notifications.send_deadline_alerts(db.session.get(Tenant, tenant.id), today=day)

    sent_days = {}
    for offset in range(8, -1, -1):
        day = date(2026, 12, 14) - timedelta(days=offset)
        counts = run_on(day)
        counts_again = run_on(day)  # the hourly job runs many times a day
        assert counts_again == {"alerts": 0, "emails": 0}
        if counts["alerts"]:
            sent_days[offset] = counts
    assert sent_days == {5: {"alerts": 1, "emails": 1}, 2: {"alerts": 1, "emails": 1}, 1: {"alerts": 1, "emails": 1}}
    mails = outbox()
    assert [m.to for m in mails] == ["ana@acme.test"] * 3
    assert mails[0].subject == "5 days left to open a notification of Construcciones Levante SL"
    assert "Embargo" in mails[2].text and f"/acme/sedes/notifications/{nid}" in mails[2].text
    with in_tenant(app, tenant.id):
        assert sorted(db.session.get(SedeNotification, nid).alerts_sent) == [1, 2, 5]


def test_a_notification_realised_elsewhere_changes_state_and_its_documents_can_be_brought(
    app, factory, client, dehu_simulator, run_jobs
):
    tenant, _client_id, nid, sent = synced_office(app, factory, client, dehu_simulator, run_jobs)
    page = client.get(f"/acme/sedes/notifications/{nid}").get_data(as_text=True)
    assert 'id="fetch-documents"' not in page  # pending: only comparecencia gives its documents

    # The client accepted it at DEHú's own web meanwhile: the next sync sees it realised.
    realised = dehu_simulator.notification(sent.identificador)
    realised.state = "ACEPTADA"
    realised.state_at = datetime.now(UTC).replace(microsecond=0)
    realised.acuse = b""
    client.post(f"/acme/sedes/notifications/sync/mailbox/{_mailbox_of(app, tenant)}")
    run_jobs()
    assert notifications_of(app, tenant, "sede_state", "opened_at") == [("aceptada", None)]
    page = client.get(f"/acme/sedes/notifications/{nid}").get_data(as_text=True)
    assert 'id="fetch-documents"' in page and 'id="open-form"' not in page

    page = client.post(f"/acme/sedes/notifications/{nid}/documents/fetch", follow_redirects=True)
    page = page.get_data(as_text=True)
    assert "The documents have been brought from the sede." in page
    assert "PeticionAcceso" not in dehu_simulator.operations()  # no comparecencia of ours
    assert "ConsultaRealizadas" in dehu_simulator.operations()
    links = re.findall(rf'href="(/acme/sedes/notifications/{nid}/documents/\d+)"', page)
    assert links and all(client.get(link).data.startswith(b"%PDF") for link in links)
    assert 'id="fetch-documents"' not in page


def _mailbox_of(app, tenant) -> int:
    from core.extensions import db
    from plugins.sedes.models import SedeMailbox

    with in_tenant(app, tenant.id):
        return db.session.scalar(select(SedeMailbox.id))


def test_the_hourly_deadline_job_runs_on_the_worker_and_the_sweep_is_on_the_cron(app, factory, run_jobs):
    from core.extensions import db
    from core.jobs.models import JobRun
    from core.jobs.services import enqueue
    from tenants.models import Tenant

    jobs = app.extensions["ventanilla_jobs"]
    assert jobs.get("sedes.deadline_alerts").cron and jobs.get("sedes.deadline_alerts").queue == "mail"
    assert jobs.get("sedes.sweep").cron and not jobs.get("sedes.sweep").per_tenant
    assert jobs.get("sedes.sync").queue == "sync" and not jobs.get("sedes.sync").scheduled
    tenant = factory.tenant("acme", plugins=["sedes"])
    with app.app_context():
        enqueue(db.session.get(Tenant, tenant.id), "sedes.deadline_alerts")
    run_jobs()
    with in_tenant(app, tenant.id):
        run = db.session.scalar(select(JobRun).where(JobRun.name == "sedes.deadline_alerts"))
        assert (run.status, run.result) == ("finished", {"alerts": 0, "emails": 0})
