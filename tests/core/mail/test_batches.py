"""Mail at volume: batches over one SMTP connection, per-message outcomes, priorities and the
tenant's rate (a real aiosmtpd server, real RQ jobs, real Redis)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.core.mail.conftest import messages, use_smtp


@pytest.fixture
def unlimited(app, monkeypatch):
    """No rate: these tests are about batches, not about pacing."""
    monkeypatch.setitem(app.config, "MAIL_RATE_PER_MINUTE", 0)
    monkeypatch.setitem(app.config, "MAIL_RATE_MAX_PER_MINUTE", 0)


def _store(app, tenant, addresses, *, priority="normal", subject="Aviso") -> list[int]:
    """One message per address (or list of addresses), committed together; their row ids."""
    from core.extensions import db
    from core.mail.services import send_composed_email
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        ids = [
            send_composed_email(tenant.id, to, f"{subject} {n}", "Texto del aviso.", commit=False, priority=priority).id
            for n, to in enumerate(addresses)
        ]
        db.session.commit()
    return ids


def _connections(server) -> int:
    return len({received.peer for received in server.received})


def test_a_backlog_goes_out_in_batches_each_over_one_connection_and_every_message_once(
    app, factory, smtp_server, run_jobs, unlimited, monkeypatch
):
    from core.jobs.services import get_queue

    monkeypatch.setitem(app.config, "MAIL_CLAIM_SIZE", 7)
    monkeypatch.setitem(app.config, "MAIL_BATCH_SIZE", 20)
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    _store(app, tenant, [f"client{n}@client.test" for n in range(50)])
    with app.app_context():
        assert get_queue("mail").count == 1, "one job for the whole transaction, not one per message"
    run_jobs()

    rows = messages(app, tenant)
    assert [r["status"] for r in rows] == ["sent"] * 50 and {r["attempts"] for r in rows} == {1}
    ids = Counter(received.message["Message-ID"] for received in smtp_server.received)
    assert sorted(ids) == sorted(r["message_id"] for r in rows) and set(ids.values()) == {1}
    # 20 a job: three jobs (the first two enqueue the next), each one SMTP session with one login.
    assert _connections(smtp_server) == 3
    assert len(smtp_server.handler.logins) == 3
    per_connection = Counter(received.peer for received in smtp_server.received)
    assert sorted(per_connection.values()) == [10, 20, 20]
    # In the order they were queued.
    assert [received.rcpt_tos[0] for received in smtp_server.received] == [r["to"][0] for r in rows]


def test_refusals_in_the_middle_of_a_batch_are_recorded_for_their_message_alone(
    app, factory, smtp_server, run_jobs, unlimited
):
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    smtp_server.handler.refuse.add("gone@client.test")
    smtp_server.handler.defer.add("busy@client.test")
    _store(
        app,
        tenant,
        [
            "one@client.test",
            "gone@client.test",
            "two@client.test",
            "busy@client.test",
            ["three@client.test", "gone@client.test"],
            "four@client.test",
        ],
    )
    run_jobs()

    one, gone, two, busy, partly, four = messages(app, tenant)
    assert [m["status"] for m in (one, two, four)] == ["sent"] * 3
    assert gone["status"] == "failed" and "550" in gone["last_error"], "refused for good: no retry"
    assert busy["status"] == "queued" and busy["next_attempt_at"] is not None and "450" in busy["last_error"]
    assert partly["status"] == "sent" and "gone@client.test: 550" in partly["last_error"]
    assert one["last_error"] is None
    assert _connections(smtp_server) == 1, "the refusals did not cost the connection"
    assert [r.rcpt_tos for r in smtp_server.received] == [
        ["one@client.test"],
        ["two@client.test"],
        ["three@client.test"],
        ["four@client.test"],
    ]


def test_a_server_that_closes_the_connection_mid_batch_gets_the_rest_on_a_new_one_without_duplicates(
    app, factory, smtp_server, run_jobs, unlimited
):
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    smtp_server.handler.per_connection = 4
    _store(app, tenant, [f"client{n}@client.test" for n in range(10)])
    run_jobs()

    rows = messages(app, tenant)
    assert [r["status"] for r in rows] == ["sent"] * 10 and {r["attempts"] for r in rows} == {1}
    received = [r.message["Message-ID"] for r in smtp_server.received]
    assert received == [r["message_id"] for r in rows], "each once, in order"
    assert sorted(Counter(r.peer for r in smtp_server.received).values()) == [2, 4, 4]


def test_a_server_that_is_away_fails_the_attempt_of_the_claim_and_the_rest_waits_for_the_flush(
    app, factory, smtp_server, run_jobs, unlimited, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_CLAIM_SIZE", 5)
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    smtp_server.stop()
    _store(app, tenant, [f"client{n}@client.test" for n in range(12)])
    run_jobs()
    rows = messages(app, tenant)
    assert [r["attempts"] for r in rows] == [1] * 5 + [0] * 7, "one connection tried, not twelve"
    assert all("ConnectionRefusedError" in r["last_error"] for r in rows[:5])
    assert {r["status"] for r in rows} == {"queued"}


def test_urgent_mail_goes_ahead_of_a_bulk_backlog(app, factory, smtp_server, run_jobs, unlimited):
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    _store(app, tenant, [f"client{n}@client.test" for n in range(30)], priority="bulk")
    _store(app, tenant, ["normal@client.test"])
    _store(app, tenant, ["person@client.test"], priority="urgent", subject="Reset")
    run_jobs()
    order = [received.rcpt_tos[0] for received in smtp_server.received]
    assert order[:2] == ["person@client.test", "normal@client.test"]
    assert len(order) == 32
    assert [r["priority"] for r in messages(app, tenant)] == [2] * 30 + [1, 0]


def test_a_password_reset_is_urgent(app, factory, outbox):
    from core.auth.services import request_password_reset
    from core.extensions import db
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    factory.user(tenant, "ana@acme.test")
    with app.test_request_context():
        request_password_reset(db.session.get(Tenant, tenant.id), "ana@acme.test", "192.0.2.1")
    (mail,) = outbox()
    assert mail.to == "ana@acme.test"
    assert [r["priority"] for r in messages(app, tenant)] == [0]


def test_the_tenants_rate_holds_the_rest_back_for_later(app, factory, smtp_server, run_jobs, monkeypatch):
    from rq.registry import ScheduledJobRegistry

    from core.extensions import db
    from core.jobs.services import get_queue
    from core.mail.models import TenantMailSettings
    from tenants.context import tenant_context

    monkeypatch.setitem(app.config, "MAIL_RATE_PER_MINUTE", 6000)
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    with app.app_context(), tenant_context(tenant.id):
        db.session.scalar(db.select(TenantMailSettings)).rate_per_minute = 6
        db.session.commit()
    _store(app, tenant, [f"client{n}@client.test" for n in range(3)])
    run_jobs()
    assert len(smtp_server.received) == 1, "six a minute: one now, the next in ten seconds"
    assert [r["status"] for r in messages(app, tenant)] == ["sent", "queued", "queued"]
    with app.app_context():
        queue = get_queue("mail")
        assert ScheduledJobRegistry(queue=queue).count == 1, "the job comes back when the rate allows"


def test_the_rate_is_shared_by_every_worker(app):
    from core.mail.delivery import RateBucket

    with app.app_context():
        one, other = RateBucket("test-rate", 120), RateBucket("test-rate", 120)
        assert one.take(10) == (2, 0), "a second's worth at once"
        granted, wait = other.take(10)
        assert granted == 0 and 0 < wait <= 0.5


def test_the_rate_a_tenant_sets_is_checked_and_capped_by_the_operator(app, factory, monkeypatch):
    from core.errors import DomainError
    from core.extensions import db
    from core.mail.delivery import tenant_rate
    from core.mail.services import save_tenant_settings, tenant_settings
    from tenants.context import tenant_context
    from tenants.models import Tenant

    monkeypatch.setitem(app.config, "MAIL_RATE_PER_MINUTE", 300)
    monkeypatch.setitem(app.config, "MAIL_RATE_MAX_PER_MINUTE", 1000)
    tenant = factory.tenant("acme")
    with app.app_context(), tenant_context(tenant.id):
        row = db.session.get(Tenant, tenant.id)
        for wrong in ("0", "-5", "many", "1001"):
            with pytest.raises(DomainError) as error:
                save_tenant_settings(row, None, 587, "starttls", None, None, None, wrong)
            assert error.value.field == "rate_per_minute"
            db.session.rollback()
        assert tenant_rate(tenant_settings()) == 300, "no settings: the operator's default"
        save_tenant_settings(row, None, 587, "starttls", None, None, None, " 120 ")
        assert tenant_settings().rate_per_minute == 120 and tenant_rate(tenant_settings()) == 120
        save_tenant_settings(row, None, 587, "starttls", None, None, None, "")
        assert tenant_settings().rate_per_minute is None and tenant_rate(tenant_settings()) == 300
        monkeypatch.setitem(app.config, "MAIL_RATE_MAX_PER_MINUTE", 100)
        assert tenant_rate(tenant_settings()) == 100, "the operator's ceiling wins over the default too"


def test_the_rate_holds_back_mail_written_to_the_outbox_folder_too(app, factory, run_jobs, monkeypatch):
    from pathlib import Path

    from rq.registry import ScheduledJobRegistry

    from core.jobs.services import get_queue

    monkeypatch.setitem(app.config, "MAIL_RATE_PER_MINUTE", 6)
    tenant = factory.tenant("acme")  # no server anywhere: the mail becomes .eml files
    _store(app, tenant, [f"client{n}@client.test" for n in range(3)])
    run_jobs()
    assert len(list(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))) == 1, "six a minute, as to a server"
    assert [r["status"] for r in messages(app, tenant)] == ["sent", "queued", "queued"]
    with app.app_context():
        assert ScheduledJobRegistry(queue=get_queue("mail")).count == 1, "the job comes back when the rate allows"


def test_delivering_one_message_now_keeps_to_the_same_rate(app, factory, smtp_server, run_jobs, monkeypatch):
    from rq.registry import ScheduledJobRegistry

    from core.jobs.services import get_queue
    from core.mail.delivery import deliver

    monkeypatch.setitem(app.config, "MAIL_RATE_PER_MINUTE", 6)
    tenant = factory.tenant("acme")
    use_smtp(app, tenant, smtp_server)
    first, second = _store(app, tenant, ["one@client.test", "two@client.test"])
    with app.app_context():
        assert deliver(tenant.id, first) == "sent"
        assert deliver(tenant.id, second) == "held", "the rate's one message of these ten seconds is gone"
    assert [r.rcpt_tos for r in smtp_server.received] == [["one@client.test"]]
    assert [r["status"] for r in messages(app, tenant)] == ["sent", "queued"]
    # The delivery job of the batch shares the rate: it sends nothing now and comes back later.
    run_jobs()
    assert len(smtp_server.received) == 1
    with app.app_context():
        assert ScheduledJobRegistry(queue=get_queue("mail")).count == 1
