"""Reading a mailbox into requests: the .eml corpus through Dovecot, the fetcher, the parser and the
database; re-runs that duplicate nothing; the server going away; a lease; back-off and the alert."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import func, select

from plugins.inboxes.models import Mailbox, Quarantined, Request, RequestMessage
from tests.plugins.inboxes.conftest import (
    corpus,
    corpus_names,
    in_tenant,
    make_contract,
    make_flow,
    make_inbound,
    rows,
    simple_message,
    sync_now,
)
from tests.plugins.inboxes.test_pipeline import EXPECTED

# What the corpus becomes in the database: requests (with the kind of automation), follow-ups, quarantine.
QUARANTINED = {
    "malformed_boundary_missing.eml": "boundary_not_found",
    "malformed_no_boundary.eml": "no_boundary",
    "malformed_no_headers.eml": "no_headers",
    # Reports about messages that are not ours, and a loop of ours that answers nothing: no request.
    "dsn_failed.eml": "unmatched_report",
    "dsn_delayed.eml": "unmatched_report",
    "bounce_nonstandard.eml": "unmatched_report",
    "read_receipt.eml": "unmatched_report",
    "loop_x_loop.eml": "loop",
}


@pytest.fixture
def desk(app, factory, dovecot, mailbox):
    """A tenant with an inbound mailbox on Dovecot, linked to a contract with an acknowledging flow."""
    tenant = factory.tenant("acme", language="en")
    client_id = factory.client(tenant, "Talleres Ruiz SL", email="taller@ruiz.test")
    inbound = make_inbound(app, tenant, dovecot, mailbox, max_message_mb=1)
    flow = make_flow(app, tenant)
    contract = make_contract(app, tenant, client_id, inbound=[inbound], flow=flow)
    return {"tenant": tenant, "inbound": inbound, "contract": contract, "user": mailbox}


def deliver_corpus(dovecot, user):
    for name in corpus_names():
        dovecot.deliver(user, corpus(name))


def test_the_corpus_becomes_requests_and_quarantine_and_leaves_the_inbox(app, dovecot, desk):
    deliver_corpus(dovecot, desk["user"])
    tenant = desk["tenant"]

    summary = sync_now(app, tenant, desk["inbound"])

    assert summary["fetched"] == len(corpus_names()) and "error" not in summary
    assert summary["quarantined"] == len(QUARANTINED)
    quarantined = dict(rows(app, tenant, Quarantined, "subject", "reason"))
    assert sorted(quarantined.values()) == sorted(QUARANTINED.values())
    # Every quarantined message keeps its bytes.
    assert all(raw for (raw,) in rows(app, tenant, Quarantined, "raw"))
    people = len(EXPECTED) - len(QUARANTINED)
    with in_tenant(app, tenant.id):
        from core.extensions import db

        requests = db.session.scalars(select(Request).order_by(Request.id)).all()
        by_subject = {r.subject: r for r in requests}
        # The reply whose References name the portal message joins that request (its tag, [#REQ-123],
        # names no request of this contract): one request fewer than messages people wrote.
        assert len(requests) == people - 1
        portal = by_subject["No puedo acceder al portal de señales"]
        assert portal.requester_name == "Lucía Pérez"
        assert [m.subject for m in portal.messages if m.direction == "in"] == [
            "No puedo acceder al portal de señales",
            "RE: Re: [#REQ-123] No puedo acceder al portal",
        ]
        assert by_subject["Preventivo € 1.200 “urgente”"].status == "new"
        vacation = next(r for r in requests if r.automatic == "auto_reply")
        assert vacation is not None
        # HTML arrives sanitised; inline images and attachments are kept.
        html = db.session.scalar(
            select(RequestMessage.html_body).where(
                RequestMessage.html_body.like("%<p%"), RequestMessage.direction == "in"
            )
        )
        assert html is not None and "<script" not in html.lower()
        related = db.session.scalar(select(RequestMessage).where(RequestMessage.message_id == "related-1@example.com"))
        assert {a.filename for a in related.attachments if not a.inline} == {
            "presupuesto año 2025.pdf",
            "attachment-3.png",
        }
        assert any(a.inline and a.content_id == "logo@example.com" for a in related.attachments)
    assert dovecot.messages(desk["user"]) == {}
    assert len(dovecot.messages(desk["user"], "Procesados")) == people
    assert len(dovecot.messages(desk["user"], "Cuarentena")) == len(QUARANTINED)


def test_reading_again_duplicates_nothing_even_when_the_folder_is_renumbered(app, dovecot, desk):
    user, tenant = desk["user"], desk["tenant"]
    for n in range(3):
        dovecot.deliver(user, simple_message(f"pedido {n}", message_id=f"pedido-{n}@cliente.test"))
    assert sync_now(app, tenant, desk["inbound"])["created"] == 3

    # The messages come back (someone moved them back; or the server renumbered the folder).
    for n in range(3):
        dovecot.deliver(user, simple_message(f"pedido {n}", message_id=f"pedido-{n}@cliente.test"))
    with in_tenant(app, tenant.id):
        from core.extensions import db

        db.session.get(Mailbox, desk["inbound"]).fetch_state = {}
        db.session.commit()
    again = sync_now(app, tenant, desk["inbound"])

    assert (again["fetched"], again["created"], again["duplicates"]) == (3, 0, 3)
    assert len(rows(app, tenant, Request, "id")) == 3
    assert dovecot.messages(user) == {}


def test_the_server_going_away_mid_reading_loses_and_doubles_nothing(app, dovecot, desk):
    user, tenant = desk["user"], desk["tenant"]
    deliver_corpus(dovecot, user)
    # Enough bytes for the bodies to come in several round trips (8 MiB each).
    for n in range(20):
        dovecot.deliver(user, simple_message(f"relleno {n}", "x" * 450_000, message_id=f"relleno-{n}@cliente.test"))
    total = len(corpus_names()) + 20

    def stop_after_some(done, total, message):
        if done == 7:
            dovecot.stop()

    first = sync_now(app, tenant, desk["inbound"], progress=stop_after_some)
    assert first["error"] == "connection_lost" and 7 <= first["fetched"] < total
    with in_tenant(app, tenant.id):
        from core.extensions import db

        box = db.session.get(Mailbox, desk["inbound"])
        assert (box.failures, box.last_error) == (1, "connection_lost")

    dovecot.start()
    second = sync_now(app, tenant, desk["inbound"])

    assert "error" not in second and first["fetched"] + second["fetched"] == total
    assert len(rows(app, tenant, Request, "id")) == len(EXPECTED) - len(QUARANTINED) - 1 + 20
    assert len(rows(app, tenant, Quarantined, "id")) == len(QUARANTINED)
    assert dovecot.messages(user) == {}
    with in_tenant(app, tenant.id):
        from core.extensions import db

        box = db.session.get(Mailbox, desk["inbound"])
        assert (box.failures, box.last_error) == (0, None)


def test_a_mailbox_being_read_is_not_read_by_a_second_worker(app, dovecot, desk):
    from plugins.inboxes.sync import Lease, run_sync

    tenant = desk["tenant"]
    dovecot.deliver(desk["user"], simple_message("uno", message_id="uno@cliente.test"))
    with in_tenant(app, tenant.id):
        held = Lease.acquire(desk["inbound"])
        assert held is not None
        assert Lease.acquire(desk["inbound"]) is None
        assert run_sync(None, desk["inbound"]) == {"skipped": "being read by another worker"}
        held.release()
        assert run_sync(None, desk["inbound"])["created"] == 1


def test_an_expired_lease_is_taken_over_and_its_old_holder_stops(app, dovecot, desk):
    from plugins.inboxes.sync import Lease, LeaseLost

    with in_tenant(app, desk["tenant"].id):
        stale = Lease.acquire(desk["inbound"], seconds=60)
        with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2), tick=False):
            fresh = Lease.acquire(desk["inbound"])
        assert fresh is not None
        with pytest.raises(LeaseLost):
            stale.renew()
        fresh.release()


def test_failures_back_off_alert_once_and_recovery_is_told(app, factory, dovecot, desk, outbox):
    from plugins.inboxes import mailboxes

    tenant = desk["tenant"]
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    factory.user(tenant, "jefe@acme.test", role_key="manager", name="Jefe")
    with in_tenant(app, tenant.id):
        from core.auth.models import User
        from core.extensions import db

        db.session.scalar(select(User).where(User.email == "jefe@acme.test")).locale = "es"
        db.session.commit()
    with in_tenant(app, tenant.id):
        from core.extensions import db

        box = db.session.get(Mailbox, desk["inbound"])
        data = mailboxes.MailboxData(
            **{k: getattr(box, k) for k in ("name", "host", "port", "security", "username", "email_address")},
            password="wrong-password",
            ca_certificate=box.ca_certificate,
            processed_folder="Procesados",
        )
        mailboxes.save_mailbox(box, "inbound", data)

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)  # the runs happen in the past: mail is due now
    waits = []
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(6):
            summary = sync_now(app, tenant, desk["inbound"])
            assert summary["error"] == "auth_failed"
            with in_tenant(app, tenant.id):
                from core.extensions import db

                box = db.session.get(Mailbox, desk["inbound"])
                waits.append(round((box.next_sync_at - box.last_sync_at).total_seconds() / 60))
                clock.move_to(box.next_sync_at)
    assert waits == [5, 10, 20, 40, 80, 160]
    alerts = [m for m in outbox() if m.to == "jefa@acme.test"]
    assert len(alerts) == 1 and "Entrada" in alerts[0].subject
    assert "user name or the password" in alerts[0].text and "wrong-password" not in alerts[0].text
    # Each manager reads it in their own language.
    [spanish] = [m for m in outbox() if m.to == "jefe@acme.test"]
    assert spanish.subject.startswith("No se puede leer el buzón"), spanish.subject
    assert "El servidor ha rechazado" in spanish.text, spanish.text

    with in_tenant(app, tenant.id):
        from core.extensions import db

        box = db.session.get(Mailbox, desk["inbound"])
        data.password = desk["user"].password
        mailboxes.save_mailbox(box, "inbound", data)
    assert "error" not in sync_now(app, tenant, desk["inbound"])
    recovered = [m for m in outbox() if m.to == "jefa@acme.test"]
    assert len(recovered) == 2 and "works again" in recovered[-1].subject


def test_a_mailbox_not_linked_to_a_contract_is_not_read(app, factory, dovecot, mailbox):
    tenant = factory.tenant("acme")
    inbound = make_inbound(app, tenant, dovecot, mailbox)
    dovecot.deliver(mailbox, simple_message("hola"))

    assert sync_now(app, tenant, inbound) == {"error": "not_linked"}
    assert len(dovecot.messages(mailbox)) == 1
    with in_tenant(app, tenant.id):
        from core.extensions import db

        assert db.session.scalar(select(func.count()).select_from(Request)) == 0


def test_a_pop3_mailbox_becomes_requests_and_its_messages_are_deleted_once_stored(app, factory, dovecot, mailbox):
    tenant = factory.tenant("acme", language="en")
    inbound = make_inbound(
        app,
        tenant,
        dovecot,
        mailbox,
        protocol="pop3",
        port=dovecot.ports["pop3"],
        security="starttls",
        after_fetch="delete",
        quarantine_folder="",
    )
    make_contract(app, tenant, factory.client(tenant, "Cliente"), inbound=[inbound])
    for name in ("plain_utf8.eml", "malformed_no_boundary.eml", "windows1252.eml"):
        dovecot.deliver(mailbox, corpus(name))

    summary = sync_now(app, tenant, inbound)

    assert (summary["created"], summary["quarantined"]) == (2, 1)
    assert dovecot.messages(mailbox) == {}
    assert sorted(s for (s,) in rows(app, tenant, Request, "subject")) == [
        "No puedo acceder al portal de señales",
        "Preventivo € 1.200 “urgente”",
    ]
    assert sync_now(app, tenant, inbound)["fetched"] == 0
