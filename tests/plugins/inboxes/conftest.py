"""Fixtures of the inboxes plugin: a real Dovecot on loopback, a fresh mailbox per test, the .eml corpus.

The engine's tests (connectors, parsing, outbound) need no Flask app: the suite-wide ``_clean_state``
(which empties the app's database) is only run for tests here that ask for the app.
Outside CI a machine without Dovecot skips the server tests with the reason; with CI=true they fail.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.inboxes.connectors import Credentials, FetchedMessage, Outcome
from plugins.inboxes.dovecot import INSTALL_HINT, DovecotServer, MailUser, find_dovecot
from tests.conftest import require
from tests.core.mail.conftest import smtp_server  # noqa: F401  (aiosmtpd on loopback, for the outbound mailboxes)

CORPUS = Path(__file__).parent / "corpus"
# The test server's certificate names: "localhost", and one that resolves nowhere, to prove that the
# fetchers connect to the checked address given and verify the certificate for the name typed.
UNRESOLVABLE = "imap.ventanilla-test.invalid"


@pytest.fixture(autouse=True)
def _clean_state(request):
    if "app" in request.fixturenames:
        request.getfixturevalue("_clean_state")  # the suite's: empty database, Redis and outbox
    yield


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def corpus_names() -> list[str]:
    return sorted(p.name for p in CORPUS.glob("*.eml"))


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot per test worker, on free loopback ports; each test gets its own mailbox (``mailbox``)."""
    require(find_dovecot() is not None, INSTALL_HINT)
    server = DovecotServer(cert_names=("localhost", UNRESOLVABLE))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


_serial = itertools.count(1)


@pytest.fixture
def mailbox(dovecot) -> MailUser:
    """A new, empty mailbox on the shared server (the server is running: a test that stops it restarts it)."""
    if not dovecot.running:
        dovecot.start()
    return dovecot.add_user(f"user{os.getpid()}-{next(_serial)}@example.test", "s3cret-pass")


@pytest.fixture
def credentials(mailbox) -> Credentials:
    return Credentials(mailbox.name, mailbox.password)


class Store:
    """What a caller's ``commit`` does, minus the database: keeps each message once, by its key.

    ``fail_on`` makes the commit raise for messages whose subject contains it (a database error);
    ``quarantine_if`` decides which messages are quarantined.
    """

    def __init__(self, *, fail_on: str | None = None, quarantine_if=None, after=None) -> None:
        self.messages: dict[str, FetchedMessage] = {}
        self.calls: list[FetchedMessage] = []
        self.fail_on = fail_on
        self.quarantine_if = quarantine_if
        self.after = after  # called after each commit (a test stops the server there)

    def commit(self, message: FetchedMessage) -> Outcome:
        self.calls.append(message)
        if self.fail_on and self.fail_on.encode() in message.raw:
            raise RuntimeError("database unavailable")
        self.messages.setdefault(message.key, message)
        outcome = Outcome.QUARANTINED if self.quarantine_if and self.quarantine_if(message) else Outcome.ACCEPTED
        if self.after:
            self.after(message)
        return outcome

    __call__ = commit

    def subjects(self) -> list[str]:
        return sorted(_subject(m.raw) for m in self.messages.values())


def _subject(raw: bytes) -> str:
    for line in raw.splitlines():
        if line.lower().startswith(b"subject:"):
            return line[8:].strip().decode("utf-8", "replace")
        if not line.strip():
            break
    return ""


def simple_message(subject: str, body: str = "body", *, message_id: str | None = None, extra: str = "") -> bytes:
    lines = ["From: Cliente <cliente@example.com>", "To: soporte@asesoria.example", f"Subject: {subject}"]
    if message_id:
        lines.append(f"Message-ID: <{message_id}>")
    lines.append("Date: Tue, 03 Dec 2024 10:00:00 +0100")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


# --- the plugin in an app: a tenant's mailboxes, contract and flow on the real servers -------------


def in_tenant(app, tenant_id: int):
    """An app context acting for the tenant (``with in_tenant(app, t.id): ...``)."""
    import contextlib

    from tenants.context import tenant_context

    @contextlib.contextmanager
    def block():
        with app.app_context(), tenant_context(tenant_id):
            yield

    return block()


def make_inbound(app, tenant, dovecot, user: MailUser, **overrides) -> int:
    """An IMAPS inbound mailbox on the test Dovecot, trusting its CA (verification on)."""
    from plugins.inboxes import mailboxes

    values = {
        "name": f"Entrada {user.name}",
        "host": "localhost",
        "port": dovecot.ports["imaps"],
        "security": "ssl",
        "username": user.name,
        "password": user.password,
        "email_address": user.name,
        "protocol": "imap",
        "ca_certificate": dovecot.ca_file.read_text(),
        "after_fetch": "move",
        "processed_folder": "Procesados",
        "quarantine_folder": "Cuarentena",
        "poll_minutes": 5,
    }
    values.update(overrides)
    with in_tenant(app, tenant.id):
        return mailboxes.save_mailbox(None, "inbound", mailboxes.MailboxData(**values)).id


def make_outbound(app, tenant, server, **overrides) -> int:
    """An outbound mailbox on the test SMTP server (plain connection, with login)."""
    from plugins.inboxes import mailboxes
    from tests.core.mail.conftest import SMTP_PASSWORD, SMTP_USER

    values = {
        "name": "Salida",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "sender_address": "soporte@asesoria.test",
        "sender_name": "Soporte",
    }
    values.update(overrides)
    with in_tenant(app, tenant.id):
        return mailboxes.save_mailbox(None, "outbound", mailboxes.MailboxData(**values)).id


ACK_SUBJECT = "Recibida {number}: {subject}"
ACK_BODY = "Hola {requester}, registramos {number}."


def make_flow(app, tenant, *, mode: str = "specific", steps=None, name: str = "Atención") -> int:
    """A flow with an acknowledgement step on creation (or ``steps``: StepData keyword dicts)."""
    from plugins.inboxes import flows

    steps = steps if steps is not None else [{"name": "Acuse", "trigger": "new", "mailbox_mode": mode}]
    with in_tenant(app, tenant.id):
        flow = flows.save_flow(None, flows.FlowData(name, reply_mode=mode))
        for step in steps:
            values = {"subject": ACK_SUBJECT, "body": ACK_BODY, **step}
            flows.save_step(flow, None, flows.StepData(**values))
        return flow.id


def make_contract(app, tenant, client_id: int, *, inbound=(), outbound=None, flow=None, name="Contrato") -> int:
    from core.extensions import db
    from plugins.inboxes.models import Contract, ContractInbox

    with in_tenant(app, tenant.id):
        contract = Contract(client_id=client_id, name=name, outbound_mailbox_id=outbound, flow_id=flow)
        db.session.add(contract)
        db.session.flush()
        for mailbox_id in inbound:
            db.session.add(ContractInbox(contract_id=contract.id, mailbox_id=mailbox_id))
        db.session.commit()
        return contract.id


def sync_now(app, tenant, mailbox_id: int, **options) -> dict:
    """One reading of the mailbox, as the job does it (lease taken and released)."""
    from core.extensions import db
    from plugins.inboxes.models import Mailbox
    from plugins.inboxes.sync import Lease, sync_mailbox

    with in_tenant(app, tenant.id):
        lease = Lease.acquire(mailbox_id)
        assert lease is not None, "the mailbox is leased by someone else"
        try:
            return sync_mailbox(db.session.get(Mailbox, mailbox_id), lease, **options)
        finally:
            lease.release()


def rows(app, tenant, model, *columns, order=None) -> list[tuple]:
    """Plain tuples of ``columns`` of the tenant's ``model`` rows, by id."""
    from sqlalchemy import select

    from core.extensions import db

    with in_tenant(app, tenant.id):
        stmt = select(*(getattr(model, c) for c in columns)).order_by(order if order is not None else model.id)
        return [tuple(r) for r in db.session.execute(stmt).all()]
