"""The demo's mail servers, started by ``make run`` (the ``demo_services`` hook): Dovecot and an SMTP relay.

- Dovecot (``plugins.inboxes.dovecot``) on 127.0.0.1 holds the demo's inbound mailbox
  ``entrada@demo.test`` (IMAPS 10993), with a few customer messages the first time;
- a small SMTP server (aiosmtpd) on 127.0.0.1:10025 — the demo's outbound mailbox — delivers every
  message into Dovecot: to a mailbox of its own when the recipient has one (write to
  ``entrada@demo.test`` and a request appears), else into ``clientes@demo.test``, where the
  customers' side of the conversation can be read with any IMAP client.

``python -m plugins.inboxes.demo_server --instance instance`` runs both until stopped;
``python -m plugins.inboxes.demo_server send "Subject" "Text"`` writes to the inbound mailbox
through the relay, as a customer would.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import smtplib
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from plugins.inboxes.dovecot import DEMO_USER, INSTALL_HINT, DovecotServer, find_dovecot, start_demo

log = logging.getLogger(__name__)

CUSTOMERS_USER = "clientes@demo.test"
CUSTOMERS_PASSWORD = "demo-clientes"
DEFAULT_SMTP_PORT = 10025


def smtp_port() -> int:
    return int(os.environ.get("VENTANILLA_DEMO_SMTP_PORT") or DEFAULT_SMTP_PORT)


class Relay:
    """aiosmtpd handler: each accepted message is delivered into Dovecot's maildirs."""

    def __init__(self, server: DovecotServer) -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        for recipient in envelope.rcpt_tos:
            address = parseaddr(recipient)[1].lower()
            user = address if address in self.server.users else CUSTOMERS_USER
            self.server.deliver(user, raw)
            log.info("demo relay: %s -> %s", address, user)
        return "250 Message accepted for delivery"


def run(instance: str, port: int | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's line per SMTP command
    if not find_dovecot():
        print(f"inboxes demo: {INSTALL_HINT}", file=sys.stderr)
        return 0
    from aiosmtpd.controller import Controller

    server = start_demo(instance)
    if CUSTOMERS_USER not in server.users:
        server.add_user(CUSTOMERS_USER, CUSTOMERS_PASSWORD)
    controller = Controller(Relay(server), hostname="127.0.0.1", port=port or smtp_port())
    controller.start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while server.running and not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        server.cleanup()
    return 0


def send(subject: str, text: str, sender: str = "Cliente Demo <cliente.demo@example.com>", port: int | None = None):
    """Write to the demo's inbound mailbox through the relay, as a customer would."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = DEMO_USER
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(text)
    with smtplib.SMTP("127.0.0.1", port or smtp_port(), timeout=10) as client:
        client.send_message(message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--instance", default="instance")
    writer = sub.add_parser("send", help="write to the demo's inbound mailbox")
    writer.add_argument("subject")
    writer.add_argument("text")
    writer.add_argument("--sender", default="Cliente Demo <cliente.demo@example.com>")
    args = parser.parse_args(argv)
    if args.command == "send":
        send(args.subject, args.text, args.sender)
        print(f"sent to {DEMO_USER}: it becomes a request at the next reading (within a minute)")
        return 0
    return run(args.instance)


if __name__ == "__main__":
    sys.exit(main())
