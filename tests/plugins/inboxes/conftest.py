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
