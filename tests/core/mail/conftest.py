"""A real SMTP server on loopback (aiosmtpd), and helpers to point a tenant at it."""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass
from email import policy

import pytest

SMTP_USER = "mailer@acme.test"
SMTP_PASSWORD = "smtp-Pa55word-for-acme"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None
    # (address, port) of the client: one per SMTP connection.
    peer: tuple | None = None

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)


class Recorder:
    """The server's handler: keeps every message it accepts and every login tried; can refuse chosen
    recipients for good (``refuse``) or for now (``defer``), and close connections after
    ``per_connection`` messages (as servers that limit them do)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.logins: list[tuple[str, str]] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.per_connection: int | None = None
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        accepted = getattr(session, "accepted", 0)
        if self.per_connection is not None and accepted >= self.per_connection:
            server.transport.close()
            return "421 4.7.0 Too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        if address in self.defer:
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if session.authenticated else None
        received = Received(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, login, tuple(session.peer)
        )
        session.accepted = getattr(session, "accepted", 0) + 1
        with self.lock:
            self.received.append(received)
        return "250 Message accepted for delivery"


def _authenticator(recorder: Recorder):
    def authenticate(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword):
            with recorder.lock:
                recorder.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            if (auth_data.login, auth_data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode()):
                return AuthResult(success=True, auth_data=auth_data)
        # handled=False: aiosmtpd answers 535 itself (handled=True would leave the client waiting).
        return AuthResult(success=False, handled=False)

    return authenticate


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``stop()`` and ``start()`` take it down and up on the same port."""

    host = "127.0.0.1"

    def __init__(self, *, smtputf8: bool = True) -> None:
        self.port = _free_port()
        self.handler = Recorder()
        self.controller = None
        self.smtputf8 = smtputf8

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        # A stopped controller's loop is closed: a restart needs a new one, on the same port.
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            authenticator=_authenticator(self.handler),
            auth_require_tls=False,
            enable_SMTPUTF8=self.smtputf8,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@pytest.fixture
def smtp_server():
    pytest.importorskip("aiosmtpd")
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def use_smtp(app, tenant, server: SmtpServer, *, username=SMTP_USER, password=SMTP_PASSWORD, sender=None) -> None:
    """Save the tenant's SMTP settings pointing at the test server (plain connection, with login)."""
    from core.extensions import db
    from core.mail.services import save_tenant_settings
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context(), tenant_context(tenant.id):
        save_tenant_settings(
            db.session.get(Tenant, tenant.id),
            server.host,
            server.port,
            "none",
            username,
            password,
            sender or f"noreply@{tenant.slug}.test",
        )


def messages(app, tenant) -> list[dict]:
    """The tenant's outbox rows as plain values, oldest first."""
    from sqlalchemy import select

    from core.extensions import db
    from core.mail.models import OutboundMessage
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return [
            {
                "id": m.id,
                "status": m.status,
                "attempts": m.attempts,
                "next_attempt_at": m.next_attempt_at,
                "last_error": m.last_error,
                "sent_at": m.sent_at,
                "smtp_source": m.smtp_source,
                "message_id": m.message_id,
                "from_address": m.from_address,
                "template": m.template,
                "to": list(m.to_addresses),
                "priority": m.priority,
            }
            for m in db.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id))
        ]
