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


def test_a_notice_is_written_once_even_when_two_sweeps_race(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import CertificateNotice

    template = make_template(app, centre.tenant)
    make_request(app, centre.tenant, centre.client, template)
    first = _notify(app, centre.tenant)
    second = _notify(app, centre.tenant)
    assert first["notices_created"] == 1 and second["notices_created"] == 0
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(CertificateNotice)) == 1


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


def test_a_subscribed_phone_gets_the_notice_as_a_push_it_can_decrypt(app, centre, factory, outbox):
    from core.extensions import db
    from core.push.services import subscribe
    from plugins.center_certificates.models import CertificateNotice
    from tests.core.test_push import PushService, Receiver

    previous = app.config["PUSH_ALLOW_HTTP_ENDPOINTS"]
    app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = True
    service = PushService()
    try:
        account_id = factory.portal_user(centre.tenant, centre.client, "north@client.test")
        phone = Receiver(f"{service.origin}/push/phone-1")
        with acting(app, centre.tenant):
            from core.auth.models import User

            subscribe(db.session.get(User, account_id), phone.subscription())
        template = make_template(app, centre.tenant)
        certificate = make_request(app, centre.tenant, centre.client, template)
        _notify(app, centre.tenant)
        (request,) = service.received
        payload = phone.decrypt(request["body"])
        assert payload["certificate"] == certificate and payload["event"] == "created"
        assert payload["title"] == "Org acme asks you for: Medical certificate"
        assert payload["url"].endswith(f"/acme/portal/certificates/{certificate}")
        assert int({k.lower(): v for k, v in request["headers"].items()}["ttl"]) > 0
        with acting(app, centre.tenant):
            assert db.session.scalar(select(CertificateNotice.pushed)) is True
        assert [m.subject for m in outbox()] == ["Org acme asks you for: Medical certificate"], "e-mail always"
    finally:
        service.close()
        app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = previous


def test_a_phone_the_push_service_forgot_is_unsubscribed(app, centre, factory):
    from core.auth.models import User
    from core.extensions import db
    from core.push.models import PushSubscription
    from core.push.services import subscribe
    from tests.core.test_push import PushService, Receiver

    previous = app.config["PUSH_ALLOW_HTTP_ENDPOINTS"]
    app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = True
    service = PushService()
    service.status = 410
    try:
        account_id = factory.portal_user(centre.tenant, centre.client, "north@client.test")
        with acting(app, centre.tenant):
            subscribe(db.session.get(User, account_id), Receiver(f"{service.origin}/push/old").subscription())
        make_request(app, centre.tenant, centre.client, make_template(app, centre.tenant))
        _notify(app, centre.tenant)
        with acting(app, centre.tenant):
            assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 0
    finally:
        service.close()
        app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = previous
