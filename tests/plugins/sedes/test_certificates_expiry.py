"""Warnings before a digital certificate expires: 30, 15 and 7 days before, each once, by e-mail to
the staff who see its client (the daily job, on a real worker) and on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from core.api import Tenant
from plugins.sedes.pki import CertificateAuthority
from tests.plugins.sedes.data_helpers import COMPANY, PASSWORD, PERSON, in_tenant, make_office, sign_in, upload

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _run_job(app, office, run_jobs):
    from core.api import db, enqueue

    with app.app_context():
        enqueue(db.session.get(Tenant, office.tenant.id), "sedes.certificate_expiry")
    run_jobs()


def _warned(app, office):
    from core.api import db
    from plugins.sedes.models import Certificate

    with in_tenant(app, office.tenant.id):
        return [c.warned_days for c in db.session.scalars(select(Certificate).order_by(Certificate.id))]


def test_each_threshold_is_warned_once_to_the_staff_who_see_the_client(app, factory, outbox, run_jobs):
    office = make_office(factory)
    elsewhere = factory.group(office.tenant, "Madrid")
    factory.user(office.tenant, "lejos@gestoria.test", role_key="operator", groups=[elsewhere])
    with time_machine.travel(START, tick=False):
        authority = CertificateAuthority(reuse_keys=True)
        expiring = authority.representante(PERSON, COMPANY, not_after=START + timedelta(days=29, hours=12))
        web = sign_in(app, office)
        assert upload(web, office, expiring.pkcs12(PASSWORD)).status_code == 302
        _run_job(app, office, run_jobs)
        first = outbox()
        assert sorted(mail.to for mail in first) == ["gestor@gestoria.test", "manager@gestoria.test"]
        assert "expires in 29 days" in first[0].subject
        assert "JUAN ESPAÑOL ESPAÑOL" in first[0].text and "/sedes/certificates/" in first[0].link()
        assert _warned(app, office) == [30]
        _run_job(app, office, run_jobs)
        assert len(outbox()) == 2, "the 30-day warning goes once"
    with time_machine.travel(START + timedelta(days=15), tick=False):
        _run_job(app, office, run_jobs)
        _run_job(app, office, run_jobs)
        mails = outbox()
        assert len(mails) == 4 and "expires in 14 days" in mails[-1].subject
        assert _warned(app, office) == [15]
    with time_machine.travel(START + timedelta(days=23), tick=False):
        _run_job(app, office, run_jobs)
        assert len(outbox()) == 6 and _warned(app, office) == [7]
        page = sign_in(app, office, "gestor").get("/gestoria/").get_data(as_text=True)
        widget = page.split('data-widget="sedes_certificates_expiring"')[1]
        assert "data-count>1<" in widget
    with time_machine.travel(START + timedelta(days=31), tick=False):
        _run_job(app, office, run_jobs)
        assert len(outbox()) == 6, "an expired certificate is not warned again"
    lejos = sign_in(app, office, "lejos")
    assert "data-count>0<" in lejos.get("/gestoria/").get_data(as_text=True).split("sedes_certificates_expiring")[1]


def test_a_certificate_that_arrives_with_a_few_days_left_is_warned_once_at_seven(app, factory, outbox, run_jobs):
    from plugins.sedes.certificates import warning_due

    assert [warning_due(days, None) for days in (40, 30, 20, 15, 9, 7, 0, -1)] == [None, 30, 30, 15, 15, 7, 7, None]
    assert warning_due(5, 30) == 7 and warning_due(5, 7) is None and warning_due(20, 15) is None
    office = make_office(factory)
    with time_machine.travel(START, tick=False):
        authority = CertificateAuthority(reuse_keys=True)
        web = sign_in(app, office)
        upload(
            web, office, authority.representante(PERSON, COMPANY, not_after=START + timedelta(days=5)).pkcs12(PASSWORD)
        )
        _run_job(app, office, run_jobs)
        _run_job(app, office, run_jobs)
        mails = outbox()
        assert len(mails) == 2 and all("expires in 5 days" in mail.subject for mail in mails)
        assert _warned(app, office) == [7]
