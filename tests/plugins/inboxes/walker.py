"""What the isolation and permission walkers need of the inboxes plugin (see tests/walker.py)."""

from __future__ import annotations

from sqlalchemy import select

ROW_ARGUMENTS = {
    "inbox_id": "inboxes_mailbox",
    "inbox_contract_id": "inboxes_contract",
    "inbox_flow_id": "inboxes_flow",
    "inbox_step_id": "inboxes_step",
    "inbox_request_id": "inboxes_request",
    "inbox_message_id": "inboxes_message",
    "inbox_attachment_id": "inboxes_attachment",
    "inbox_quarantine_id": "inboxes_quarantine",
}
# A port nothing listens on: the buttons' connections are refused at once.
CLOSED_PORT = 9


def raw_message(marker: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = f"{marker} Sender <sender@{marker.lower()}.example>"
    message["To"] = "entrada@example.test"
    message["Subject"] = f"{marker} subject"
    message["Message-ID"] = f"<{marker.lower()}-1@example.com>"
    message.set_content(f"{marker} text")
    message.add_alternative(f"<p>{marker} <b>html</b></p>", subtype="html")
    message.add_attachment(f"{marker} notes".encode(), maintype="text", subtype="plain", filename=f"{marker}.txt")
    return message.as_bytes()


def populate(app, tenant_id: int, client_id: int, marker: str) -> dict:
    """An inbound and an outbound mailbox, a flow with a step, a contract of the client linking them,
    a request made from a message (with an HTML body and an attachment), and a quarantined message."""
    from core.extensions import db
    from plugins.inboxes import flows, mailboxes
    from plugins.inboxes.ingest import Ingestor
    from plugins.inboxes.models import Contract, ContractInbox, Quarantined, Request, RequestMessage
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        inbound = mailboxes.save_mailbox(
            None,
            "inbound",
            mailboxes.MailboxData(
                name=f"{marker} Entrada",
                host="127.0.0.1",
                port=CLOSED_PORT,
                username=f"{marker}-user",
                password=f"{marker}-password",
                email_address="entrada@example.test",
            ),
        )
        outbound = mailboxes.save_mailbox(
            None,
            "outbound",
            mailboxes.MailboxData(
                name=f"{marker} Salida",
                host="127.0.0.1",
                port=CLOSED_PORT,
                security="none",
                username=f"{marker}-smtp",
                password=f"{marker}-smtp-password",
                sender_address="salida@example.test",
            ),
        )
        flow = flows.save_flow(None, flows.FlowData(f"{marker} Flow"))
        step = flows.save_step(
            flow,
            None,
            flows.StepData(f"{marker} Step", "resolved", "specific", f"{marker} subject", f"{marker} body"),
        )
        contract = Contract(
            client_id=client_id, name=f"{marker} Contract", outbound_mailbox_id=outbound.id, flow_id=flow.id
        )
        db.session.add(contract)
        db.session.flush()
        db.session.add(ContractInbox(contract_id=contract.id, mailbox_id=inbound.id))
        db.session.commit()
        ingestor = Ingestor(inbound)
        raw = raw_message(marker)
        stored = ingestor.store(ingestor.reparse(raw), raw)
        request = db.session.get(Request, stored.request_id)
        entry = db.session.scalar(select(RequestMessage).where(RequestMessage.request_id == request.id))
        broken = (
            f"From: {marker} <x@example.com>\r\nSubject: {marker} broken\r\n"
            "Content-Type: multipart/mixed\r\n\r\nno parts"
        ).encode()
        ingestor.store(ingestor.reparse(broken), broken)
        quarantined = db.session.scalar(select(Quarantined.id))
        return {
            "inboxes_mailbox": inbound.id,
            "inboxes_contract": contract.id,
            "inboxes_flow": flow.id,
            "inboxes_step": step.id,
            "inboxes_request": request.id,
            "inboxes_message": entry.id,
            "inboxes_attachment": entry.attachments[0].id,
            "inboxes_quarantine": quarantined,
        }


def snapshot(app, tenant_id: int) -> dict:
    from core.extensions import db
    from plugins.inboxes.models import Contract, Flow, FlowStep, Mailbox, Quarantined, Request, RequestMessage
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        return {
            "mailboxes": sorted(
                (m.id, m.name, m.host, m.port, m.username, m.password, m.active, m.is_default, m.queued_at, m.failures)
                for m in db.session.scalars(select(Mailbox))
            ),
            "contracts": sorted(
                (c.id, c.name, c.outbound_mailbox_id, c.flow_id, c.active) for c in db.session.scalars(select(Contract))
            ),
            "flows": sorted((f.id, f.name, f.reply_mode) for f in db.session.scalars(select(Flow))),
            "steps": sorted((s.id, s.name, s.subject) for s in db.session.scalars(select(FlowStep))),
            "requests": sorted((r.id, r.status, r.subject) for r in db.session.scalars(select(Request))),
            "messages": sorted((m.id, m.request_id) for m in db.session.scalars(select(RequestMessage))),
            "quarantine": sorted((q.id, q.state) for q in db.session.scalars(select(Quarantined))),
        }
