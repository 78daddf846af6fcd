"""Demo data (``flask demo load``) and the demo's mail servers (``make run``).

The demo tenant gets an inbound mailbox on the demo's own Dovecot (``entrada@demo.test``, which holds
a few customer messages), an outbound mailbox on the demo's SMTP relay, a flow whose first step
acknowledges every new request, and a contract of *Talleres del Turia SL* that links the three: a
minute after ``make run`` starts, its requests are there. Idempotent: a second load adds nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from core.api import Client, DemoService, db
from plugins.inboxes import flows, mailboxes
from plugins.inboxes.dovecot import DEMO_PASSWORD, DEMO_USER, INSTALL_HINT, demo_ports, demo_root, find_dovecot
from plugins.inboxes.models import INBOUND, NEW, OUTBOUND, SPECIFIC, Contract, ContractInbox, Flow, Mailbox

DEMO_TENANT = "demo"
INBOUND_NAME = "Soporte Talleres del Turia"
OUTBOUND_NAME = "Salida Talleres del Turia"
FLOW_NAME = "Atención por correo"
CONTRACT_NAME = "Mantenimiento Talleres del Turia"
CLIENT_TAX_ID = "B4612345A"


def _instance() -> Path:
    return Path(current_app.config.get("INSTANCE_PATH") or current_app.instance_path)


def demo_ca(instance: Path) -> str:
    """The demo Dovecot's CA certificate (made now if it is not there yet), for the mailbox to trust."""
    from plugins.inboxes.dovecot import make_certificates

    folder = demo_root(instance) / "tls"
    if not (folder / "ca.pem").exists():
        make_certificates(folder)
    return (folder / "ca.pem").read_text()


def load(tenant) -> list[str]:
    if tenant.slug != DEMO_TENANT:
        return []
    lines = []
    client = db.session.scalar(select(Client).where(Client.tax_id == CLIENT_TAX_ID))
    if client is None:
        return []
    inbound = db.session.scalar(select(Mailbox).where(Mailbox.name == INBOUND_NAME))
    if inbound is None:
        installed = find_dovecot() is not None
        inbound = mailboxes.save_mailbox(
            None,
            INBOUND,
            mailboxes.MailboxData(
                name=INBOUND_NAME,
                host="127.0.0.1",
                port=demo_ports()["imaps"],
                security="ssl",
                username=DEMO_USER,
                password=DEMO_PASSWORD,
                email_address=DEMO_USER,
                protocol="imap",
                ca_certificate=demo_ca(_instance()),
                after_fetch="move",
                processed_folder="Procesados",
                quarantine_folder="Cuarentena",
                poll_minutes=1,
                active=installed,
            ),
        )
        lines.append(f"inbound mailbox {DEMO_USER} created" + ("" if installed else f" (off: {INSTALL_HINT})"))
    outbound = db.session.scalar(select(Mailbox).where(Mailbox.name == OUTBOUND_NAME))
    if outbound is None:
        from plugins.inboxes.demo_server import smtp_port

        outbound = mailboxes.save_mailbox(
            None,
            OUTBOUND,
            mailboxes.MailboxData(
                name=OUTBOUND_NAME,
                host="127.0.0.1",
                port=smtp_port(),
                security="none",
                use_auth=False,
                sender_address="soporte@demo.test",
                sender_name="Asesoría Demo · Soporte",
            ),
        )
        lines.append("outbound mailbox soporte@demo.test created")
    flow = db.session.scalar(select(Flow).where(Flow.name == FLOW_NAME))
    if flow is None:
        flow = flows.save_flow(
            None,
            flows.FlowData(FLOW_NAME, "Acuse de recibo de cada solicitud, desde el buzón del contrato.", SPECIFIC),
        )
        flows.save_step(
            flow,
            None,
            flows.StepData(
                name="Envío de Mensaje - E-mail: acuse de recibo",
                trigger=NEW,
                mailbox_mode=SPECIFIC,
                subject="Hemos recibido su solicitud {number}: {subject}",
                body=(
                    "Hola, {requester}:\n\nHemos registrado su solicitud con el número {number} y le "
                    "responderemos lo antes posible.\n\nUn saludo,\n{organisation}"
                ),
                to_requester=True,
            ),
        )
        lines.append(f"flow {FLOW_NAME} created")
    if db.session.scalar(select(Contract.id).where(Contract.name == CONTRACT_NAME)) is None:
        contract = Contract(
            client_id=client.id,
            name=CONTRACT_NAME,
            reference="CT-2024-001",
            outbound_mailbox_id=outbound.id,
            flow_id=flow.id,
        )
        db.session.add(contract)
        db.session.flush()
        db.session.add(ContractInbox(contract_id=contract.id, mailbox_id=inbound.id))
        db.session.commit()
        lines.append(f"contract {CONTRACT_NAME} created")
    return lines


def services(app) -> list[DemoService]:
    """Dovecot and the SMTP relay for ``make run`` (or how to install Dovecot when it is missing)."""
    from plugins.inboxes.demo_server import CUSTOMERS_PASSWORD, CUSTOMERS_USER, smtp_port

    if find_dovecot() is None:
        return [
            DemoService(
                "inboxes",
                (sys.executable, "-c", f"print({INSTALL_HINT!r})"),
                lines=(f"{INSTALL_HINT} — then `make run` again to see e-mails become requests.",),
            )
        ]
    instance = app.config.get("INSTANCE_PATH") or app.instance_path
    return [
        DemoService(
            "inboxes",
            (sys.executable, "-m", "plugins.inboxes.demo_server", "--instance", str(instance)),
            lines=(
                f"Dovecot on 127.0.0.1: IMAPS {demo_ports()['imaps']} (inbound mailbox {DEMO_USER} / {DEMO_PASSWORD});"
                f" SMTP relay on 127.0.0.1:{smtp_port()} (the outbound mailbox)",
                "requests appear in /demo/requests/ within a minute; write another: "
                '.venv/bin/python -m plugins.inboxes.demo_server send "Asunto" "Texto"',
                f"what customers receive lands in {CUSTOMERS_USER} / {CUSTOMERS_PASSWORD} (same Dovecot)",
            ),
        )
    ]
