"""Outbound mail on a real SMTP server (aiosmtpd), a real RQ worker and a controllable clock."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
import time_machine
from sqlalchemy import func, select

from tests.core.mail.conftest import SMTP_USER, messages, use_smtp

# Every byte value, so a lossy transfer encoding would show.
BINARY = bytes(range(256)) * 40
TEXT_FILE = "Año fiscal: 1.234,56 €\nfine riga\n".encode()


def _send(app, tenant, to="ana@client.test", *, language="es", attachments=(), commit=True, **extra):
    """Queue an invitation-like message for ``tenant`` through the public API; returns its row id."""
    from flask_babel import lazy_gettext as _l

    from core.extensions import db
    from core.mail.services import send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context(), tenant_context(tenant.id):
        row = db.session.get(Tenant, tenant.id)
        message = send_email(
            row,
            to,
            _l("You are invited to %(organisation)s", organisation=row.name),
            "invitation",
            language,
            attachments,
            commit=commit,
            user={"name": "Ana Cliente"},
            inviter="Ada Admin",
            link="http://ventanilla.test/acme/invitation/abc",
            days=7,
            **extra,
        )
        return message.id


def _translated(app, language: str, organisation: str) -> str:
    from flask_babel import force_locale
    from flask_babel import lazy_gettext as _l

    with app.test_request_context(), force_locale(language):
        return str(_l("You are invited to %(organisation)s", organisation=organisation))


def _flush(app, tenant, run_jobs) -> None:
    """Run the ``core.mail_flush`` sweep as cron does, on the real worker (it enqueues, the worker sends)."""
    from core.jobs.services import get_queue

    with app.app_context():
        get_queue("mail").enqueue("core.jobs.runner.sweep", "core.mail_flush")
    run_jobs()


def _now():
    from core.extensions import utcnow

    return utcnow()


def test_a_message_reaches_the_tenants_server_with_its_headers_alternatives_and_attachments(
    app, factory, smtp_server, run_jobs
):
    from core.mail.services import Attachment

    tenant = factory.tenant("acme", name="Gestoría Acme")
    use_smtp(app, tenant, smtp_server)
    before = _now().replace(microsecond=0)
    message_id = _send(
        app,
        tenant,
        "ana@client.test",
        attachments=[Attachment("informe.pdf", BINARY, "application/pdf"), ("notas.txt", TEXT_FILE)],
        cc=["copia@client.test"],
        bcc="oculto@client.test",
        reply_to="gestor@acme.test",
    )
    assert smtp_server.received == [], "nothing leaves before the worker runs"
    run_jobs()

    (received,) = smtp_server.received
    assert received.login == SMTP_USER, "the tenant's user name and stored password were used"
    assert received.mail_from == "noreply@acme.test"
    assert received.rcpt_tos == ["ana@client.test", "copia@client.test", "oculto@client.test"]
    mail = received.message
    assert mail["From"].addresses[0].display_name == "Gestoría Acme"
    assert mail["From"].addresses[0].addr_spec == "noreply@acme.test"
    assert mail["To"] == "ana@client.test"
    assert mail["Cc"] == "copia@client.test"
    assert mail["Bcc"] is None, "blind copies travel in the envelope only"
    assert mail["Reply-To"] == "gestor@acme.test"
    assert mail["Subject"] == _translated(app, "es", "Gestoría Acme")
    assert mail["Content-Language"] == "es"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert before <= parsedate_to_datetime(mail["Date"]) <= _now()
    (row,) = messages(app, tenant)
    assert mail["Message-ID"] == row["message_id"]
    assert row["status"] == "sent" and row["attempts"] == 1 and row["smtp_source"] == "tenant"
    assert row["id"] == message_id

    assert mail.get_content_type() == "multipart/mixed"
    alternative = next(part for part in mail.iter_parts() if part.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Ana Cliente" in text and "http://ventanilla.test/acme/invitation/abc" in text
    assert "Ana Cliente" in html and 'href="http://ventanilla.test/acme/invitation/abc"' in html
    attachments = {part.get_filename(): part for part in mail.iter_attachments()}
    assert attachments["informe.pdf"].get_content_type() == "application/pdf"
    assert attachments["informe.pdf"].get_payload(decode=True) == BINARY
    assert attachments["notas.txt"].get_content_type() == "text/plain"
    assert attachments["notas.txt"].get_payload(decode=True) == TEXT_FILE


def test_while_the_server_is_down_messages_wait_and_then_each_is_delivered_exactly_once(
    app, factory, smtp_server, run_jobs
):
    from core.redis_connection import get_redis

    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    smtp_server.stop()
    ids = [_send(app, tenant, f"client{n}@client.test") for n in range(3)]
    sent_at = _now()
    run_jobs()

    rows = messages(app, tenant)
    assert [r["status"] for r in rows] == ["queued"] * 3
    assert [r["attempts"] for r in rows] == [1, 1, 1]
    assert all(r["next_attempt_at"] > sent_at + timedelta(seconds=60) for r in rows), "they wait before retrying"
    assert all("ConnectionRefusedError" in r["last_error"] for r in rows)

    # Not due yet: the periodic flush leaves them alone.
    _flush(app, tenant, run_jobs)
    assert [r["attempts"] for r in messages(app, tenant)] == [1, 1, 1]

    # The queue is lost (Redis flushed, a worker died...) and the server comes back.
    with app.app_context():
        get_redis().flushdb()
    smtp_server.start()
    with time_machine.travel(_now() + timedelta(minutes=10), tick=True):
        _flush(app, tenant, run_jobs)
        rows = messages(app, tenant)
        assert [r["status"] for r in rows] == ["sent"] * 3
        assert [r["attempts"] for r in rows] == [2, 2, 2]
        assert sorted(r.message["Message-ID"] for r in smtp_server.received) == sorted(r["message_id"] for r in rows)
    assert [r["id"] for r in rows] == ids

    # Later flushes send nothing again.
    with time_machine.travel(_now() + timedelta(days=3), tick=True):
        _flush(app, tenant, run_jobs)
    assert len(smtp_server.received) == 3
    assert [r["attempts"] for r in messages(app, tenant)] == [2, 2, 2]


def test_failed_attempts_back_off_exponentially_and_end_failed_after_the_last_one(
    app, factory, smtp_server, run_jobs, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_MAX_ATTEMPTS", 4)
    base = app.config["MAIL_RETRY_BASE_SECONDS"]
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    smtp_server.stop()
    _send(app, tenant)
    run_jobs()
    waits = []
    for _ in range(3):
        (row,) = messages(app, tenant)
        assert row["status"] == "queued"
        waits.append(row["next_attempt_at"])
        with time_machine.travel(row["next_attempt_at"] + timedelta(seconds=1), tick=True):
            _flush(app, tenant, run_jobs)
    (row,) = messages(app, tenant)
    assert row["status"] == "failed" and row["attempts"] == 4 and row["next_attempt_at"] is None
    assert "ConnectionRefusedError" in row["last_error"]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(waits)]
    assert gaps == [pytest.approx(2 * base + 1, abs=2), pytest.approx(4 * base + 1, abs=2)]


def test_the_default_schedule_retries_for_about_two_days(app):
    from core.mail.delivery import retry_delay

    with app.app_context():
        attempts = app.config["MAIL_MAX_ATTEMPTS"]
        total = sum((retry_delay(n) for n in range(1, attempts)), timedelta())
    assert timedelta(days=1, hours=12) <= total <= timedelta(days=3)


def test_a_recipient_the_server_refuses_for_good_fails_at_once(app, factory, smtp_server, run_jobs):
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    smtp_server.handler.refuse.add("gone@client.test")
    _send(app, tenant, "gone@client.test")
    run_jobs()
    (row,) = messages(app, tenant)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "550" in row["last_error"] and "gone@client.test" in row["last_error"]
    assert smtp_server.received == []


def test_a_message_delivered_twice_is_sent_once(app, factory, smtp_server, run_jobs):
    from core.jobs.services import get_queue
    from core.mail.delivery import deliver

    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    message_id = _send(app, tenant)
    with app.app_context():
        # More jobs that would deliver it (a retry, a flush, a job of the previous version).
        get_queue("mail").enqueue("core.mail.delivery.deliver_batch", tenant.id, None, 2)
        get_queue("mail").enqueue("core.mail.delivery.deliver_batch", tenant.id, None, 0)
        get_queue("mail").enqueue("core.mail.delivery.deliver", tenant.id, message_id)
    run_jobs()
    with app.app_context():
        assert deliver(tenant.id, message_id) == "skipped"
    assert len(smtp_server.received) == 1
    assert messages(app, tenant)[0]["attempts"] == 1


def test_two_workers_racing_for_one_message_send_it_once(app, factory, smtp_server):
    from core.mail.delivery import deliver

    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    message_id = _send(app, tenant)
    start = threading.Barrier(2)
    outcomes = []

    def worker():
        with app.app_context():
            start.wait()
            outcomes.append(deliver(tenant.id, message_id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(smtp_server.received) == 1


def test_the_platforms_server_is_used_when_the_tenant_has_none(app, factory, smtp_server, run_jobs, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "SMTP_PORT", smtp_server.port)
    monkeypatch.setitem(app.config, "SMTP_SECURITY", "none")
    monkeypatch.setitem(app.config, "MAIL_FROM", "Ventanilla <platform@ventanilla.test>")
    tenant = factory.tenant("acme")
    _send(app, tenant, "ana@client.test", language="en")
    run_jobs()
    (received,) = smtp_server.received
    assert received.login is None, "the platform's server here takes no login"
    assert received.mail_from == "platform@ventanilla.test"
    assert received.message["From"].addresses[0].addr_spec == "platform@ventanilla.test"
    assert received.message["Subject"] == _translated(app, "en", "Org acme")
    (row,) = messages(app, tenant)
    assert row["smtp_source"] == "system" and row["from_address"] == "Ventanilla <platform@ventanilla.test>"


def test_with_no_server_anywhere_the_message_is_written_to_the_outbox_folder(app, factory, outbox):
    tenant = factory.tenant("acme")
    _send(app, tenant, "ana@client.test", language="it", bcc=["hidden@client.test"])
    (mail,) = outbox()
    assert mail.to == "ana@client.test" and mail.language == "it"
    assert mail.subject == _translated(app, "it", "Org acme")
    assert mail.message["Bcc"] == "hidden@client.test", "the file keeps the envelope's blind copies"
    assert "http://ventanilla.test/acme/invitation/abc" in mail.text
    (row,) = messages(app, tenant)
    assert row["status"] == "sent" and row["smtp_source"] == "file"
    assert mail.message["Message-ID"] == row["message_id"]


def test_a_message_belongs_to_the_callers_transaction(app, factory, outbox):
    from core.extensions import db
    from core.jobs.services import get_queue
    from core.mail.models import OutboundMessage
    from core.mail.services import send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    with app.app_context(), tenant_context(tenant.id):
        row = db.session.get(Tenant, tenant.id)
        context = {"user": {"name": "Ana"}, "host": ""}
        send_email(row, "rolled-back@client.test", "Hello", "test_message", "en", commit=False, **context)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 0
        assert get_queue("mail").count == 0, "nothing is enqueued for a transaction that rolled back"
        send_email(row, "committed@client.test", "Hello", "test_message", "en", commit=False, **context)
        assert get_queue("mail").count == 0, "nothing is enqueued before the commit"
        db.session.commit()
        assert get_queue("mail").count == 1
    assert [m.to for m in outbox()] == ["committed@client.test"]


def test_the_flush_job_is_registered_to_run_every_minute(app):
    spec = app.extensions["ventanilla_jobs"].get("core.mail_flush")
    assert spec is not None and spec.cron == "* * * * *" and spec.queue == "mail" and not spec.per_tenant


def test_names_and_subjects_in_any_language_arrive_as_written_in_a_seven_bit_message(
    app, factory, smtp_server, run_jobs
):
    from core.extensions import db
    from core.mail.services import send_composed_email
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", name="Gestoría Acme")
    use_smtp(app, tenant, smtp_server)
    subject = "Recordatorio: su certificado de estar al corriente con la Agencia Tributaria — año 2026 ✓"
    copies = [f"socio{n}@client.test" for n in range(12)]
    with app.app_context(), tenant_context(tenant.id):
        send_composed_email(
            tenant.id,
            '"Pérez, Ana" <ana@client.test>',
            subject,
            "Línea con acentos: ñ, ü, €.\n" + "x" * 120 + "\n.\nFin\n",
            "<p>Año fiscal</p>",
            cc=copies,
            reply_to="Gestor (Acme) <gestor@acme.test>",
            locale="es",
        )
        db.session.commit()
    run_jobs()

    (received,) = smtp_server.received
    assert received.raw.isascii(), "no 8-bit byte: any server takes it without 8BITMIME"
    assert max(len(line) for line in received.raw.splitlines()) <= 78
    mail = received.message
    assert mail["Subject"] == subject
    assert [(a.display_name, a.addr_spec) for a in mail["To"].addresses] == [("Pérez, Ana", "ana@client.test")]
    assert mail["From"].addresses[0].display_name == "Gestoría Acme"
    assert [a.addr_spec for a in mail["Cc"].addresses] == copies
    assert mail["Reply-To"].addresses[0].display_name == "Gestor (Acme)"
    # As received over SMTP: CRLF line ends.
    text = mail.get_body(("plain",)).get_content()
    assert text == "Línea con acentos: ñ, ü, €.\r\n" + "x" * 120 + "\r\n.\r\nFin\r\n"
    assert mail.get_body(("html",)).get_content() == "<p>Año fiscal</p>\r\n"
    assert received.rcpt_tos == ["ana@client.test", *copies]


def test_a_line_break_in_a_header_fails_the_message_and_sends_nothing(app, factory, smtp_server, run_jobs):
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    _send(app, tenant, reply_to="gestor@acme.test\r\nBcc: someone@elsewhere.test")
    run_jobs()
    assert smtp_server.received == []
    (row,) = messages(app, tenant)
    assert row["status"] == "failed" and "line break" in row["last_error"]


def test_an_address_that_is_not_ascii_goes_through_smtputf8_as_written(app, factory, smtp_server, run_jobs):
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    _send(app, tenant, "josé@client.test")
    run_jobs()
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["josé@client.test"]
    assert received.message["To"] == "josé@client.test"
    assert messages(app, tenant)[0]["status"] == "sent"


def test_an_address_that_is_not_ascii_waits_for_a_server_with_smtputf8_and_says_so(app, factory, run_jobs):
    from tests.core.mail.conftest import SmtpServer

    server = SmtpServer(smtputf8=False)
    server.start()
    try:
        tenant = factory.tenant("acme", language="en")
        use_smtp(app, tenant, server)
        _send(app, tenant, "josé@client.test")
        run_jobs()
        assert server.received == []
        (row,) = messages(app, tenant)
        assert row["status"] == "queued" and "SMTPUTF8" in row["last_error"]
    finally:
        server.stop()
