"""The sync engine against the DEHú simulator over real HTTPS, on real RQ workers: "Consultar
buzón" brings each notification once, listing never opens one, one mailbox's failure never blocks
the others, retryable errors back off, and only who may sync what they see does."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import time_machine
from sqlalchemy import select

from tests.conftest import login
from tests.plugins.sedes.sync_helpers import (
    aware,
    company_certificate,
    in_tenant,
    mailbox_row,
    make_mailbox,
    notifications_of,
    point_catalogue_at,
    store_certificate,
)

CIF = "B12345674"
OTHER_CIF = "A58818501"
THIRD_CIF = "B87654328"


def sweep(app) -> dict:
    """What the cron's five-minute sweep runs (``core.jobs.runner.sweep``): across tenants."""
    from core.jobs.runner import sweep as run_sweep

    with app.app_context():
        return run_sweep("sedes.sweep")


def office(app, factory, simulator, *, cif=CIF, name="Construcciones Levante SL"):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    point_catalogue_at(app, simulator)
    client_id = factory.client(tenant, name, cif)
    certificate = store_certificate(app, tenant, client_id, company_certificate(simulator, cif))
    mailbox = make_mailbox(app, tenant, client_id, certificate)
    return tenant, client_id, mailbox


def test_consultar_buzon_brings_the_new_notifications_once_and_never_opens_them(
    app, factory, client, dehu_simulator, run_jobs
):
    tenant, _client_id, mailbox = office(app, factory, dehu_simulator)
    made = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # already 4 December in Madrid
    first = dehu_simulator.add_notification(
        CIF, subject="Requerimiento IVA 2025", made_available_at=made, procedure="Gestión tributaria"
    )
    dehu_simulator.add_notification(CIF, subject="Aviso de campaña", kind="comunicacion")
    dehu_simulator.add_notification(OTHER_CIF, subject="De otra empresa")

    login(client, "acme", "jefa@acme.test")
    response = client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    assert response.status_code == 302 and "/sedes/notifications/sync/runs/" in response.headers["Location"]
    run_page = response.headers["Location"]
    assert mailbox_row(app, tenant, mailbox)["queued_at"] is not None
    run_jobs()

    page = client.get(run_page).get_data(as_text=True)
    assert "Requerimiento IVA 2025" in page and "Aviso de campaña" in page and "De otra empresa" not in page
    stored = dict(
        (subject, (kind, state, deadline, workflow))
        for subject, kind, state, deadline, workflow in notifications_of(
            app, tenant, "subject", "kind", "sede_state", "deadline_on", "workflow_state"
        )
    )
    assert stored == {
        "Requerimiento IVA 2025": ("notificacion", "pendiente", date(2026, 12, 14), "unread"),
        "Aviso de campaña": ("comunicacion", "pendiente", None, "unread"),
    }
    row = mailbox_row(app, tenant, mailbox)
    assert (row["last_result"], row["last_new_count"], row["failures"], row["queued_at"]) == ("ok", 2, 0, None)
    assert aware(row["next_sync_at"]) > datetime.now(UTC) + timedelta(hours=23)
    # Listing is not comparecencia: the sede was only asked to list.
    assert set(dehu_simulator.operations()) <= {"Localiza", "LocalizaRealizadas"}
    assert dehu_simulator.notification(first.identificador).state == "PENDIENTE"

    # Again: nothing is stored twice; a notification accepted meanwhile at the sede changes state.
    dehu_simulator.add_notification(CIF, subject="Embargo de cuentas")
    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()
    subjects = [s for (s,) in notifications_of(app, tenant, "subject")]
    assert sorted(subjects) == ["Aviso de campaña", "Embargo de cuentas", "Requerimiento IVA 2025"]
    assert mailbox_row(app, tenant, mailbox)["last_new_count"] == 1


def test_one_failing_mailbox_never_blocks_the_others(app, factory, dehu_simulator, run_jobs):
    from core.jobs.models import JobRun

    tenant, _good_client, good = office(app, factory, dehu_simulator)
    # Not enrolled as Gran Destinatario: DEHú answers fault 4102.
    refused_client = factory.client(tenant, "Sin alta SL", OTHER_CIF)
    refused = make_mailbox(
        app,
        tenant,
        refused_client,
        store_certificate(app, tenant, refused_client, company_certificate(dehu_simulator, OTHER_CIF, enrol=False)),
    )
    # Expired: never sent to the sede.
    expired_client = factory.client(tenant, "Caducada SL", THIRD_CIF)
    old = datetime.now(UTC) - timedelta(days=400)
    expired_cert = company_certificate(
        dehu_simulator, THIRD_CIF, not_before=old, not_after=datetime.now(UTC) - timedelta(days=1)
    )
    expired = make_mailbox(app, tenant, expired_client, store_certificate(app, tenant, expired_client, expired_cert))
    for mailbox in (good, refused, expired):
        with in_tenant(app, tenant.id):
            from core.extensions import db
            from plugins.sedes.models import SedeMailbox

            db.session.get(SedeMailbox, mailbox).next_sync_at = datetime.now(UTC) - timedelta(minutes=1)
            db.session.commit()
    dehu_simulator.add_notification(CIF, subject="Para la buena")
    dehu_simulator.add_notification(THIRD_CIF, subject="Para la caducada")

    assert sweep(app) == {"mailboxes": 3, "runs": 1}
    assert sweep(app) == {"mailboxes": 0, "runs": 0}  # queued already: not twice
    run_jobs()

    assert [s for (s,) in notifications_of(app, tenant, "subject")] == ["Para la buena"]
    states = {m: mailbox_row(app, tenant, m) for m in (good, refused, expired)}
    assert states[good]["last_result"] == "ok"
    assert states[refused]["last_result"] == "error"
    assert "Gran Destinatario" in states[refused]["last_error"] and "4102" in states[refused]["last_error"]
    assert states[expired]["last_result"] == "error"
    assert states[expired]["last_error"] == "The certificate has expired."
    asked_for = {r.fields.get("nifTitular") for r in dehu_simulator.requests}
    assert CIF in asked_for and THIRD_CIF not in asked_for  # the expired one never went out
    # A refused or expired certificate does not heal by waiting: no quick retry, the next period.
    assert all(states[m]["retry_at"] is None and states[m]["failures"] == 1 for m in (refused, expired))
    with in_tenant(app, tenant.id):
        from core.extensions import db

        assert [r.status for r in db.session.scalars(select(JobRun))] == ["finished"]
    assert sweep(app) == {"mailboxes": 0, "runs": 0}


def test_a_sede_that_is_away_is_retried_after_a_back_off(app, factory, client, dehu_simulator, run_jobs):
    tenant, _client_id, mailbox = office(app, factory, dehu_simulator)
    dehu_simulator.add_notification(CIF, subject="Tras la caída")
    dehu_simulator.unavailable(retry_after=600, times=None)
    login(client, "acme", "jefa@acme.test")
    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()
    row = mailbox_row(app, tenant, mailbox)
    assert row["last_result"] == "error" and row["failures"] == 1
    assert "will be tried again" in row["last_error"] or "wait" in row["last_error"]
    retry_at = aware(row["retry_at"])
    assert retry_at >= datetime.now(UTC) + timedelta(seconds=590)  # the sede's Retry-After
    assert aware(row["next_sync_at"]) == retry_at
    assert sweep(app) == {"mailboxes": 0, "runs": 0}  # not before its time

    dehu_simulator.reset()
    with time_machine.travel(retry_at + timedelta(seconds=1)):
        assert sweep(app) == {"mailboxes": 1, "runs": 1}
        run_jobs()
        row = mailbox_row(app, tenant, mailbox)
    assert (row["last_result"], row["failures"], row["retry_at"], row["last_error"]) == ("ok", 0, None, "")
    assert notifications_of(app, tenant, "subject") == [("Tras la caída",)]


def test_the_back_off_doubles_with_each_failure_has_a_ceiling_and_honours_retry_after():
    from plugins.sedes.sync import MAX_BACKOFF, backoff

    waits = [backoff(failures) for failures in range(1, 12)]
    assert waits[:4] == [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]
    assert waits[-1] == MAX_BACKOFF and max(waits) == MAX_BACKOFF
    assert backoff(1, retry_after=3600) == timedelta(hours=1)
    assert backoff(8, retry_after=30) == MAX_BACKOFF


def test_only_who_may_sync_and_sees_the_client_can_consult_its_mailbox(app, factory, client, dehu_simulator, run_jobs):
    tenant, client_id, mailbox = office(app, factory, dehu_simulator)
    # A gestor of another group: the client is not theirs.
    other = factory.group(tenant, "Otros")
    factory.user(tenant, "ana@acme.test", role_key="operator", groups=[other])
    # A role that sees every client but may not sync.
    factory.user(tenant, "lee@acme.test", permissions=["core.clients:view_all", "sedes.mailboxes:view"])
    login(client, "acme", "ana@acme.test")
    assert client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}").status_code == 404
    assert client.post(f"/acme/sedes/notifications/sync/client/{client_id}").status_code == 404
    reader = app.test_client()
    login(reader, "acme", "lee@acme.test")
    assert reader.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}").status_code == 403
    run_jobs()
    assert dehu_simulator.requests_served == 0
    assert mailbox_row(app, tenant, mailbox)["queued_at"] is None


def test_a_run_rechecks_the_permission_of_who_started_it(app, factory, dehu_simulator, run_jobs):
    from core.extensions import db
    from core.roles.models import Role
    from plugins.sedes import sync
    from plugins.sedes.models import SedeMailbox
    from tenants.models import Tenant

    tenant, _client_id, mailbox = office(app, factory, dehu_simulator)
    user_id = factory.user(tenant, "eva@acme.test", permissions=["core.clients:view_all", "sedes.mailboxes:sync"])
    with in_tenant(app, tenant.id):
        from core.auth.models import User

        user = db.session.get(User, user_id)
        run = sync.request_mailbox_sync(db.session.get(Tenant, tenant.id), user, db.session.get(SedeMailbox, mailbox))
        assert run.arguments == {"mailbox_ids": [mailbox]}
        # Her role loses the permission while the run waits in the queue.
        for role in db.session.scalars(select(Role).where(Role.name == "role for eva@acme.test")):
            role.grants = [g for g in role.grants if g.code != "sedes.mailboxes:sync"]
        db.session.commit()
    run_jobs()
    assert dehu_simulator.requests_served == 0
    row = mailbox_row(app, tenant, mailbox)
    assert (row["last_result"], row["queued_at"]) == ("never", None)


def test_a_second_consultar_buzon_while_the_first_waits_is_not_queued(app, factory, client, dehu_simulator, run_jobs):
    tenant, client_id, mailbox = office(app, factory, dehu_simulator)
    login(client, "acme", "jefa@acme.test")
    assert client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}").status_code == 302
    again = client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}", follow_redirects=True)
    assert "This mailbox is already being checked." in again.get_data(as_text=True)
    run_jobs()
    with in_tenant(app, tenant.id):
        from core.extensions import db
        from core.jobs.models import JobRun

        assert db.session.scalar(select(JobRun.id).where(JobRun.name == "sedes.sync").offset(1)) is None
    assert client_id


def test_the_first_sync_keeps_the_credential_encrypted_and_later_syncs_use_it(
    app, factory, client, dehu_simulator, run_jobs, database, owner_engine
):
    from core.extensions import db
    from plugins.sedes.models import SedeCertificate
    from plugins.sedes.sync import credential_of
    from tests.core.mail.test_secrets_at_rest import _raw_database

    issued = company_certificate(dehu_simulator, CIF)
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "jefa@acme.test", role_key="manager")
    point_catalogue_at(app, dehu_simulator)
    client_id = factory.client(tenant, "Construcciones Levante SL", CIF)
    certificate_id = store_certificate(app, tenant, client_id, issued)
    mailbox = make_mailbox(app, tenant, client_id, certificate_id)
    login(client, "acme", "jefa@acme.test")
    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()
    assert mailbox_row(app, tenant, mailbox)["last_result"] == "ok"

    with in_tenant(app, tenant.id):
        certificate = db.session.get(SedeCertificate, certificate_id)
        assert certificate.credential_pem is not None
        # What a later sync reads, without opening the PKCS#12: the same credential.
        stored = credential_of(certificate)
        certificate.pkcs12 = b"not a PKCS#12 any more"
        db.session.commit()
    assert (stored.cert_pem, stored.key_pem) == (issued.cert_pem, issued.key_pem)
    assert stored.entity_nif == CIF and stored.not_after.tzinfo is not None

    dehu_simulator.add_notification(CIF, subject="Con la forma guardada")
    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()
    assert mailbox_row(app, tenant, mailbox)["last_result"] == "ok"
    assert notifications_of(app, tenant, "subject") == [("Con la forma guardada",)]

    raw = _raw_database(database, owner_engine)
    assert b"Construcciones Levante SL" in raw, "the dump does see the rows"
    key_body = b"".join(issued.key_pem.splitlines()[1:-1])
    for secret in (key_body[:64], key_body[-64:], b"BEGIN PRIVATE KEY"):
        assert secret not in raw and secret.hex().encode() not in raw
