"""Clients are told by e-mail (and push) when a certificate is created, approved, about to expire
and expired: each exactly once per certificate and event, in the client's language."""

from __future__ import annotations

from datetime import UTC, date, datetime

import time_machine
from sqlalchemy import func, select

from tests.plugins.center_certificates.conftest import acting, approve, make_request, make_template, upload

SPRING = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def _notify(app, tenant):
    from plugins.center_certificates.services import notify

    with acting(app, tenant) as row:
        return notify(row)


def _transitions(app, tenant):
    from plugins.center_certificates.services import notify, sweep

    with acting(app, tenant) as row:
        sweep(row)
        return notify(row)


def test_each_event_is_mailed_once(app, centre, outbox):
    template = make_template(app, centre.tenant, lead_days=10)
    certificate = make_request(app, centre.tenant, centre.client, template)
    _notify(app, centre.tenant)
    _notify(app, centre.tenant)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 15))
        approve(app, centre.tenant, certificate)
        _transitions(app, centre.tenant)
    with time_machine.travel(datetime(2026, 4, 6, 12, tzinfo=UTC), tick=False):
        _transitions(app, centre.tenant)
        _transitions(app, centre.tenant)
    with time_machine.travel(datetime(2026, 4, 16, 12, tzinfo=UTC), tick=False):
        _transitions(app, centre.tenant)
        _transitions(app, centre.tenant)
    subjects = [m.subject for m in outbox() if m.to == "north@client.test"]
    assert subjects == [
        "Org acme asks you for: Medical certificate",
        "Your Medical certificate has been approved",
        "Your Medical certificate expires soon",
        "Your Medical certificate has expired",
    ]


def test_a_notice_arrives_on_a_real_smtp_server(app, centre, smtp_server, run_jobs):
    from tests.core.mail.conftest import SMTP_USER, use_smtp

    use_smtp(app, centre.tenant, smtp_server)
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    _notify(app, centre.tenant)
    run_jobs()
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["north@client.test"] and received.login == SMTP_USER
    message = received.message
    assert message["Subject"] == "Org acme asks you for: Medical certificate"
    text = message.get_body(("plain",)).get_content()
    assert "Hello Northern Client," in text
    assert "Org acme asks you for this document: Medical certificate." in text
    assert f"/acme/portal/certificates/{certificate}" in text


def test_the_expiring_notice_says_truthfully_how_the_new_one_is_handed_in(app, centre, outbox):
    renewing = make_template(app, centre.tenant, "Renewing", lead_days=10, renew_on_expiry=True)
    plain = make_template(app, centre.tenant, "Plain", lead_days=10)
    for client, template in ((centre.client, renewing), (centre.other_client, plain)):
        certificate = make_request(app, centre.tenant, client, template)
        with time_machine.travel(SPRING, tick=False):
            upload(app, centre.tenant, certificate, date(2026, 4, 15))
            approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime(2026, 4, 6, 12, tzinfo=UTC), tick=False):
        _transitions(app, centre.tenant)
    expiring = {m.to: m.text for m in outbox() if "expires soon" in m.subject}
    assert set(expiring) == {"north@client.test", "south@client.test"}
    for text in expiring.values():
        assert "upload the new one before then" not in text, "the client cannot upload before a request exists"
    assert "When it expires, a new request will appear in your client area" in expiring["north@client.test"]
    assert "contact Org acme so that they can ask you for it" in expiring["south@client.test"]


def test_the_notice_links_to_the_certificate_in_the_portal(app, centre, outbox):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    _notify(app, centre.tenant)
    (mail,) = outbox()
    assert mail.link().endswith(f"/acme/portal/certificates/{certificate}")
    assert "Medical certificate" in mail.html


def test_notices_speak_the_clients_language(app, centre, factory, outbox):
    from core.auth.models import User
    from core.extensions import db

    factory.portal_user(centre.tenant, centre.client, "north@client.test")
    with acting(app, centre.tenant):
        account = db.session.scalar(select(User).where(User.email == "north@client.test"))
        account.locale = "it"
        db.session.commit()
    template = make_template(app, centre.tenant, "Certificato medico")
    make_request(app, centre.tenant, centre.client, template)
    _notify(app, centre.tenant)
    (mail,) = outbox()
    assert mail.language == "it" and "Certificato medico" in mail.subject and "asks you" not in mail.subject


def test_a_client_without_a_portal_account_is_written_to_in_the_clients_language(app, centre, outbox):
    from core.clients.models import Client
    from core.extensions import db

    with acting(app, centre.tenant):
        db.session.get(Client, centre.client).locale = "it"
        db.session.commit()
    make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
    _notify(app, centre.tenant)
    (mail,) = outbox()
    assert mail.language == "it" and "asks you" not in mail.subject


def test_a_notice_is_written_once_even_when_two_sweeps_race(app, centre, outbox):
    from core.extensions import db
    from plugins.center_certificates.models import CertificateNotice

    template = make_template(app, centre.tenant)
    make_request(app, centre.tenant, centre.client, template)
    first = _notify(app, centre.tenant)
    second = _notify(app, centre.tenant)
    assert first["notices_created"] == 1 and second["notices_created"] == 0
    with acting(app, centre.tenant):
        (notice,) = db.session.scalars(select(CertificateNotice))
        assert notice.message_id is not None, "the marker points at its e-mail"
    assert len(outbox()) == 1


def test_the_run_that_loses_the_race_for_a_notice_sends_nothing_and_does_not_fail(
    app, centre, owner_engine, database, outbox
):
    """Another run writes the marker after this one found the notice owed and before it writes
    it (from its own connection, committed): this run must step aside, not fail its batch."""
    from sqlalchemy import event, text

    from core.extensions import db
    from core.mail.models import OutboundMessage
    from plugins.center_certificates.models import CertificateNotice

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with app.app_context():
        engine = db.engine
    raced = []

    def the_other_run_gets_there_first(connection, cursor, statement, *args):
        if raced or not statement.lstrip().upper().startswith("INSERT INTO CENTER_CERTIFICATES_NOTICES"):
            return
        raced.append(statement)
        with owner_engine.begin() as other:
            if database["engine"] == "postgresql":
                other.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(centre.tenant.id)})
            other.execute(
                text(
                    "INSERT INTO center_certificates_notices "
                    "(tenant_id, certificate_id, event, occurrence, pushed, created_at) "
                    "VALUES (:tenant, :certificate, 'created', 0, FALSE, CURRENT_TIMESTAMP)"
                ),
                {"tenant": centre.tenant.id, "certificate": certificate},
            )

    event.listen(engine, "before_cursor_execute", the_other_run_gets_there_first)
    try:
        counts = _notify(app, centre.tenant)
    finally:
        event.remove(engine, "before_cursor_execute", the_other_run_gets_there_first)
    assert raced, "the marker was written between the check and the insert"
    assert counts["notices_created"] == 0
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(CertificateNotice)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 0, "no second e-mail"
    assert outbox() == []


def test_the_periodic_job_runs_transitions_and_notices_on_the_worker(app, centre, run_jobs, outbox):
    from core.extensions import db
    from core.jobs.runner import fan_out
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 1))
        approve(app, centre.tenant, certificate)
    run_jobs()
    with time_machine.travel(datetime(2026, 4, 5, tzinfo=UTC), tick=False):
        with app.app_context():
            assert fan_out("center_certificates.transitions") == 1
        run_jobs()
    with acting(app, centre.tenant):
        assert db.session.get(Certificate, certificate).status == "expired"
    assert "Your Medical certificate has expired" in [m.subject for m in outbox()]


def _phone(app, centre, factory, service, path: str, locale: str | None = None):
    """The client's portal account, subscribed from a phone that receives on ``service``."""
    from core.auth.models import User
    from core.extensions import db
    from core.push.services import subscribe
    from tests.core.test_push import Receiver

    account_id = factory.portal_user(centre.tenant, centre.client, "north@client.test")
    phone = Receiver(f"{service.origin}/push/{path}")
    with acting(app, centre.tenant):
        account = db.session.get(User, account_id)
        if locale:
            account.locale = locale
        subscribe(account, phone.subscription())
    return phone


def test_a_subscribed_phone_gets_the_notice_as_a_push_it_can_decrypt(
    app, centre, factory, outbox, push_service, run_jobs
):
    from core.extensions import db
    from plugins.center_certificates.models import CertificateNotice

    phone = _phone(app, centre, factory, push_service, "phone-1")
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    _notify(app, centre.tenant)
    assert push_service.received == [], "sent from the push queue, not by the notices run"
    run_jobs()
    (request,) = push_service.received
    payload = phone.decrypt(request["body"])
    assert payload["certificate"] == certificate and payload["event"] == "created"
    assert payload["title"] == "Medical certificate", "the title names the certificate"
    assert payload["body"] == "Org acme asks you for it: upload it with its validity date.", "the body, what happened"
    assert payload["url"].endswith(f"/acme/portal/certificates/{certificate}")
    assert int({k.lower(): v for k, v in request["headers"].items()}["ttl"]) > 0
    with acting(app, centre.tenant):
        assert db.session.scalar(select(CertificateNotice.pushed)) is True
    assert [m.subject for m in outbox()] == ["Org acme asks you for: Medical certificate"], "e-mail always"


def test_a_phone_the_push_service_forgot_is_unsubscribed(app, centre, factory, push_service, run_jobs):
    from core.extensions import db
    from core.push.models import PushSubscription

    push_service.status = 410
    _phone(app, centre, factory, push_service, "old")
    make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
    _notify(app, centre.tenant)
    run_jobs()
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 0


def test_the_push_says_what_happened_in_the_clients_language(app, centre, factory, push_service, run_jobs):
    phone = _phone(app, centre, factory, push_service, "phone-it", locale="it")
    certificate = make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 15))
        approve(app, centre.tenant, certificate)
        _notify(app, centre.tenant)
    run_jobs()
    payloads = {p["event"]: p for p in (phone.decrypt(r["body"]) for r in push_service.received)}
    assert set(payloads) == {"created", "approved"}
    approved = payloads["approved"]
    assert approved["title"] == "Medical certificate"
    assert "15 aprile 2026" in approved["body"], "the date is written as an Italian reader writes it"
    assert "Northern Client" not in approved["body"]


def _reject(app, tenant, certificate_id: int, reason: str) -> None:
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import reject

    with acting(app, tenant) as row:
        reject(row, db.session.get(Certificate, certificate_id), reason, None)


def test_each_rejection_is_told_once_by_mail_and_push_with_its_reason(app, centre, factory, outbox, push_service):
    phone = _phone(app, centre, factory, push_service, "phone-rejected")
    certificate = make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
    with time_machine.travel(SPRING, tick=False):
        for reason in ("The photo is illegible", "It is not signed"):
            upload(app, centre.tenant, certificate, date(2026, 12, 31))
            _reject(app, centre.tenant, certificate, reason)
            _notify(app, centre.tenant)
            _notify(app, centre.tenant)
    sent_back = [m for m in outbox() if m.subject == "Your Medical certificate has been sent back"]
    assert [m.to for m in sent_back] == ["north@client.test"] * 2, "once per rejection, not once per run"
    assert "Their reason: The photo is illegible" in sent_back[0].text
    assert "Their reason: It is not signed" in sent_back[1].text
    assert "Please upload it again from your client area" in sent_back[1].text
    pushes = [phone.decrypt(r["body"]) for r in push_service.received]
    rejected = [p for p in pushes if p["event"] == "rejected"]
    assert [p["body"] for p in rejected] == ["Sent back: The photo is illegible", "Sent back: It is not signed"]
    assert {p["title"] for p in rejected} == {"Medical certificate"}


def test_a_rejection_already_answered_is_not_told(app, centre, outbox):
    certificate = make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
        _reject(app, centre.tenant, certificate, "Blurred")
        upload(app, centre.tenant, certificate, date(2026, 12, 31))  # sent again before the notices ran
        _notify(app, centre.tenant)
    assert "Your Medical certificate has been sent back" not in [m.subject for m in outbox()]
