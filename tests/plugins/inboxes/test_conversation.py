"""A conversation by e-mail: a customer writes to the Entrada, the flow acknowledges it through the
contract's Salida (or the default one), the staff answer, the customer answers back and it threads;
automatic mail gets no answer; a delivery report marks our message failed. Real Dovecot, real SMTP
server (aiosmtpd), real RQ workers delivering core's outbox."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from plugins.inboxes.mail.threads import normalise_message_id, parse_own_message_id
from plugins.inboxes.models import Request, RequestMessage, StepRun
from tests.conftest import login
from tests.core.mail.conftest import SMTP_USER
from tests.plugins.inboxes.conftest import (
    in_tenant,
    make_contract,
    make_flow,
    make_inbound,
    make_outbound,
    rows,
    sync_now,
)

CUSTOMER = "lucia.perez@cliente.test"


def customer_mail(subject: str, body: str = "Hola", *, message_id: str, headers: dict | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Lucía Pérez <{CUSTOMER}>"
    message["To"] = "soporte@asesoria.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message["Date"] = "Tue, 03 Dec 2024 10:00:00 +0100"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


@pytest.fixture
def office(app, factory, dovecot, mailbox, smtp_server):
    """A tenant whose contract has an Entrada on Dovecot, a Salida on aiosmtpd and an acknowledging flow."""
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    client_id = factory.client(tenant, "Talleres Ruiz SL", email="taller@ruiz.test")
    inbound = make_inbound(app, tenant, dovecot, mailbox)
    outbound = make_outbound(app, tenant, smtp_server)
    flow = make_flow(app, tenant)
    contract = make_contract(app, tenant, client_id, inbound=[inbound], outbound=outbound, flow=flow)
    return {
        "tenant": tenant,
        "inbound": inbound,
        "outbound": outbound,
        "flow": flow,
        "contract": contract,
        "client": client_id,
        "user": mailbox,
    }


def write_in(app, dovecot, office, raw: bytes) -> dict:
    dovecot.deliver(office["user"], raw)
    return sync_now(app, office["tenant"], office["inbound"])


def received_by(smtp_server, address: str) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(r.raw, policy=policy.default) for r in smtp_server.received if address in r.rcpt_tos
    ]


def outbox_rows(app, tenant) -> list[dict]:
    from tests.core.mail.conftest import messages

    return messages(app, tenant)


def test_a_new_request_is_acknowledged_through_the_contracts_outbound_mailbox(
    app, dovecot, office, smtp_server, run_jobs
):
    tenant = office["tenant"]
    assert (
        write_in(app, dovecot, office, customer_mail("No puedo entrar", message_id="c1@cliente.test"))["created"] == 1
    )
    run_jobs()

    [ack] = received_by(smtp_server, CUSTOMER)
    [request_id] = [r for (r,) in rows(app, tenant, Request, "id")]
    assert ack["From"] == "Soporte <soporte@asesoria.test>"
    assert ack["Subject"] == f"[#REQ-{request_id}] Recibida #{request_id}: No puedo entrar"
    assert ack["In-Reply-To"] == "<c1@cliente.test>"
    assert ack["Auto-Submitted"] == "auto-replied" and ack["X-Auto-Response-Suppress"] == "All"
    assert ack["X-Loop"] == "ventanilla-inboxes"
    # Our Message-ID names the request, signed: a reply to it threads back.
    from plugins.inboxes.outbound import signing_key

    with app.app_context():
        own = parse_own_message_id(normalise_message_id(ack["Message-ID"]), signing_key())
    assert own is not None and own.request_id == request_id
    assert smtp_server.received[-1].login == SMTP_USER
    assert [(o["status"], o["smtp_source"]) for o in outbox_rows(app, tenant)] == [("sent", "inboxes")]


def test_the_customers_answer_to_our_message_threads_and_reopens(app, dovecot, office, smtp_server, run_jobs, client):
    tenant = office["tenant"]
    write_in(app, dovecot, office, customer_mail("Factura duplicada", message_id="c2@cliente.test"))
    run_jobs()
    [ack] = received_by(smtp_server, CUSTOMER)
    [request_id] = [r for (r,) in rows(app, tenant, Request, "id")]

    # The staff answer from the request's page and mark it resolved.
    login(client, "acme", "jefa@acme.test")
    response = client.post(
        f"/acme/requests/{request_id}/reply",
        data={"to": CUSTOMER, "text": "Ya está corregida.", "status": "resolved"},
    )
    assert response.status_code == 302
    run_jobs()
    answer = received_by(smtp_server, CUSTOMER)[-1]
    assert answer["Auto-Submitted"] == "no" and "X-Loop" not in answer
    assert answer["In-Reply-To"] == "<c2@cliente.test>"
    assert answer["Subject"] == f"[#REQ-{request_id}] Re: Factura duplicada"
    assert answer.get_body(("plain",)).get_content().strip() == "Ya está corregida."

    # The customer answers our answer (a mail client keeps the thread, not always the subject).
    follow_up = customer_mail(
        "Gracias, pero...",
        message_id="c3@cliente.test",
        headers={"In-Reply-To": answer["Message-ID"], "References": f"<c2@cliente.test> {answer['Message-ID']}"},
    )
    assert write_in(app, dovecot, office, follow_up)["created"] == 0
    with in_tenant(app, tenant.id):
        from core.extensions import db

        request = db.session.get(Request, request_id)
        assert request.status == "in_progress"
        assert [(m.direction, m.origin) for m in request.messages] == [
            ("in", "mail"),
            ("out", "flow"),
            ("out", "reply"),
            ("in", "mail"),
        ]
    # Replying to the acknowledgement works as well (its signed id is enough).
    late = customer_mail("otra cosa", message_id="c4@cliente.test", headers={"In-Reply-To": ack["Message-ID"]})
    assert write_in(app, dovecot, office, late)["created"] == 0


def test_the_subject_tag_threads_within_the_contract_only(app, factory, dovecot, office, run_jobs):
    tenant = office["tenant"]
    write_in(app, dovecot, office, customer_mail("Primera", message_id="t1@cliente.test"))
    [request_id] = [r for (r,) in rows(app, tenant, Request, "id")]
    # A new message with the tag and no references joins it...
    tagged = customer_mail(f"Re: [#REQ-{request_id}] Primera", message_id="t2@cliente.test")
    assert write_in(app, dovecot, office, tagged)["created"] == 0
    # ...but not through another contract's mailbox.
    other_user = dovecot.add_user("otra-entrada@example.test", "s3cret-pass")
    other_client = factory.client(tenant, "Otra SL")
    other_inbound = make_inbound(app, tenant, dovecot, other_user, name="Otra entrada")
    make_contract(app, tenant, other_client, inbound=[other_inbound], name="Otro contrato")
    dovecot.deliver(other_user, customer_mail(f"[#REQ-{request_id}] intruso", message_id="t3@cliente.test"))
    assert sync_now(app, tenant, other_inbound)["created"] == 1
    # A forged id of ours (wrong signature) threads nowhere either.
    forged = f"<vt.{request_id}..abcdef.0123456789abcdef@ventanilla.test>"
    faked = customer_mail("falso", message_id="t4@cliente.test", headers={"In-Reply-To": forged})
    assert write_in(app, dovecot, office, faked)["created"] == 1


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto_reply"),
        ({"Precedence": "bulk"}, "bulk"),
        ({"X-Autoreply": "yes"}, "auto_reply"),
        ({"List-Id": "<novedades.example.com>"}, "bulk"),
    ],
)
def test_automatic_mail_becomes_a_request_without_an_automatic_answer(
    app, dovecot, office, smtp_server, run_jobs, headers, kind
):
    tenant = office["tenant"]
    raw = customer_mail("Fuera de la oficina", message_id="auto@cliente.test", headers=headers)
    assert write_in(app, dovecot, office, raw)["created"] == 1
    run_jobs()
    assert received_by(smtp_server, CUSTOMER) == []
    assert rows(app, tenant, Request, "automatic") == [(kind,)]
    assert rows(app, tenant, StepRun, "message_id", "skipped") == [
        (None, "requester: automatic message, no automatic answer")
    ]


def test_a_delivery_report_marks_our_message_failed(app, dovecot, office, smtp_server, run_jobs, client):
    tenant = office["tenant"]
    write_in(app, dovecot, office, customer_mail("Hola", message_id="b1@cliente.test"))
    run_jobs()
    [ack] = received_by(smtp_server, CUSTOMER)
    assert [o["status"] for o in outbox_rows(app, tenant)] == ["sent"]

    report = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.cliente.test>\r\n"
        "To: soporte@asesoria.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-77@mx.cliente.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.cliente.test\r\n\r\n"
        f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ack['Message-ID']}\r\nSubject: hola\r\n\r\n"
        "--b--\r\n"
    ).encode()
    assert write_in(app, dovecot, office, report)["created"] == 0

    [outbound] = outbox_rows(app, tenant)
    assert outbound["status"] == "failed" and "5.1.1" in outbound["last_error"]
    [request_id] = [r for (r,) in rows(app, tenant, Request, "id")]
    login(client, "acme", "jefa@acme.test")
    page = client.get(f"/acme/requests/{request_id}").get_data(as_text=True)
    assert "Not delivered: delivery report: lucia.perez@cliente.test 5.1.1" in page
    assert 'data-origin="report"' in page


def test_the_default_mode_and_an_unlinked_contract_use_the_default_mailbox(
    app, factory, dovecot, office, smtp_server, run_jobs
):
    tenant = office["tenant"]
    make_outbound(
        app,
        tenant,
        smtp_server,
        name="General",
        sender_address="general@asesoria.test",
        sender_name="",
        is_default=True,
    )
    # A flow set to the default mailbox, on a contract that has its own: the default one carries it.
    default_flow = make_flow(app, tenant, mode="default", name="Por defecto")
    with in_tenant(app, tenant.id):
        from core.extensions import db
        from plugins.inboxes.models import Contract

        db.session.get(Contract, office["contract"]).flow_id = default_flow
        db.session.commit()
    write_in(app, dovecot, office, customer_mail("Uno", message_id="d1@cliente.test"))
    # "Específica" on a contract without an outbound mailbox: the default one too.
    with in_tenant(app, tenant.id):
        from core.extensions import db
        from plugins.inboxes.models import Contract

        contract = db.session.get(Contract, office["contract"])
        contract.flow_id, contract.outbound_mailbox_id = office["flow"], None
        db.session.commit()
    write_in(app, dovecot, office, customer_mail("Dos", message_id="d2@cliente.test"))
    run_jobs()
    senders = [m["From"] for m in received_by(smtp_server, CUSTOMER)]
    assert senders == ["general@asesoria.test", "general@asesoria.test"]


def test_with_nothing_linked_the_systems_default_mail_keeps_working(app, factory, dovecot, mailbox, outbox):
    """The seed's ATENCIÓN: linking a mailbox is optional; without any, mail leaves as always."""
    tenant = factory.tenant("acme", language="en")
    client_id = factory.client(tenant, "Talleres Ruiz SL")
    inbound = make_inbound(app, tenant, dovecot, mailbox)
    make_contract(app, tenant, client_id, inbound=[inbound], flow=make_flow(app, tenant))
    dovecot.deliver(mailbox, customer_mail("Sin buzón de salida", message_id="n1@cliente.test"))
    sync_now(app, tenant, inbound)

    [ack] = [m for m in outbox() if m.to == CUSTOMER]
    assert ack.subject.endswith("Recibida #1: Sin buzón de salida")
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert [(o["status"], o["smtp_source"]) for o in outbox_rows(app, tenant)] == [("sent", "file")]


def test_a_mailbox_switched_off_meanwhile_fails_visibly_and_is_retried(
    app, dovecot, office, smtp_server, run_jobs, client
):
    from core.mail.delivery import flush_due_messages
    from core.mail.models import OutboundMessage
    from plugins.inboxes import mailboxes
    from plugins.inboxes.models import Mailbox

    tenant = office["tenant"]
    with in_tenant(app, tenant.id):
        from core.extensions import db

        mailboxes.set_active(db.session.get(Mailbox, office["outbound"]), False)
    # The contract still names it, but a mailbox that is off carries nothing: the default does (core's).
    write_in(app, dovecot, office, customer_mail("Uno", message_id="o1@cliente.test"))
    with in_tenant(app, tenant.id):
        from core.extensions import db

        mailboxes.set_active(db.session.get(Mailbox, office["outbound"]), True)
    write_in(app, dovecot, office, customer_mail("Dos", message_id="o2@cliente.test"))
    with in_tenant(app, tenant.id):
        from core.extensions import db

        mailboxes.set_active(db.session.get(Mailbox, office["outbound"]), False)
    run_jobs()

    first, second = outbox_rows(app, tenant)
    assert first["status"] == "sent" and first["smtp_source"] == "file"
    assert second["status"] == "queued" and "no mail server" in second["last_error"]
    request_id = rows(app, tenant, Request, "id")[-1][0]
    login(client, "acme", "jefa@acme.test")
    page = client.get(f"/acme/requests/{request_id}").get_data(as_text=True)
    assert "Not sent yet (it will be tried again)" in page and 'data-delivery="queued"' in page

    # Switched on again, the next attempt goes.
    with in_tenant(app, tenant.id):
        from core.extensions import db

        mailboxes.set_active(db.session.get(Mailbox, office["outbound"]), True)
        db.session.get(OutboundMessage, second["id"]).next_attempt_at = None
        db.session.commit()
        flush_due_messages([tenant.id])
    run_jobs()
    assert outbox_rows(app, tenant)[-1]["status"] == "sent"
    assert [m["Subject"].split("] ", 1)[1] for m in received_by(smtp_server, CUSTOMER)] == ["Recibida #2: Dos"]


def test_a_status_change_runs_the_steps_of_that_status_once_per_pass(app, dovecot, office, smtp_server, run_jobs):
    tenant = office["tenant"]
    from plugins.inboxes import flows, requests

    with in_tenant(app, tenant.id):
        from core.extensions import db
        from plugins.inboxes.models import Flow

        flows.save_step(
            db.session.get(Flow, office["flow"]),
            None,
            flows.StepData(
                "Resuelta", "resolved", "specific", "Resuelta {number}", "Cerramos {subject}.", to_client=True
            ),
        )
    write_in(app, dovecot, office, customer_mail("Pedido", message_id="s1@cliente.test"))
    with in_tenant(app, tenant.id):
        from core.extensions import db

        request = db.session.scalar(select(Request))
        requests.set_status(request, "resolved")
        requests.set_status(request, "resolved")  # no change, no step
        requests.set_status(request, "in_progress")
        requests.set_status(request, "resolved")
    run_jobs()
    to_client = received_by(smtp_server, "taller@ruiz.test")
    assert [m["Subject"] for m in to_client] == ["[#REQ-1] Resuelta #1", "[#REQ-1] Resuelta #1"]
    assert to_client[0]["Auto-Submitted"] == "auto-generated"
    assert len(rows(app, tenant, RequestMessage, "id")) == 4  # the mail, the acknowledgement, two notices
