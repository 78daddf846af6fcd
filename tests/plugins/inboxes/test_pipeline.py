"""The whole corpus through Dovecot → fetcher → parser, as the sync job will run it: what can be read
becomes a request's data, what cannot is quarantined and moved aside, and nothing is lost or doubled
when the server goes away half-way."""

from __future__ import annotations

import pytest

from plugins.inboxes.connectors import (
    AfterFetch,
    ErrorKind,
    FetchedMessage,
    FetchPolicy,
    ImapFetcher,
    ImapState,
    Outcome,
    Pop3Fetcher,
    Pop3State,
)
from plugins.inboxes.mail.automation import Kind
from plugins.inboxes.mail.parsing import Limits, ParsedMessage, Quarantined, parse_fetched
from plugins.inboxes.mail.threads import message_key
from tests.plugins.inboxes.conftest import _subject, corpus, corpus_names

# What each corpus message must become: ("request", automation kind) or ("quarantine", reason).
EXPECTED = {
    "autoreply_vacation.eml": ("request", Kind.AUTO_REPLY),
    "autoreply_x_autorespond.eml": ("request", Kind.AUTO_REPLY),
    "bounce_nonstandard.eml": ("request", Kind.BOUNCE),
    "bulk_newsletter.eml": ("request", Kind.BULK),
    "dsn_delayed.eml": ("request", Kind.BOUNCE),
    "dsn_failed.eml": ("request", Kind.BOUNCE),
    "encoded_words_split.eml": ("request", None),
    "forwarded_message.eml": ("request", None),
    "html_only_scripts.eml": ("request", None),
    "large_attachment.eml": ("quarantine", "too_large"),  # over the mailbox's 48 KiB limit below
    "latin1.eml": ("request", None),
    "loop_x_loop.eml": ("request", Kind.LOOP),
    "malformed_boundary_missing.eml": ("quarantine", "boundary_not_found"),
    "malformed_no_boundary.eml": ("quarantine", "no_boundary"),
    "malformed_no_headers.eml": ("quarantine", "no_headers"),
    "no_message_id.eml": ("request", None),
    "plain_utf8.eml": ("request", None),
    "read_receipt.eml": ("request", Kind.READ_RECEIPT),
    "related_inline_and_pdf.eml": ("request", None),
    "reply_with_tag.eml": ("request", None),
    "unknown_charset.eml": ("request", None),
    "windows1252.eml": ("request", None),
    "wrong_charset_latin1_as_utf8.eml": ("request", None),
    "wrong_charset_utf8_as_latin1.eml": ("request", None),
}
OPTIONS = {"own_domains": ("ventanilla.example",), "loop_token": "ventanilla-inboxes", "tag_prefix": "REQ"}
LIMIT = 48 * 1024


class Ingest:
    """What the sync job's commit will do: parse, store once by key, quarantine what cannot be read."""

    def __init__(self, after=None) -> None:
        self.requests: dict[str, ParsedMessage] = {}
        self.quarantine: dict[str, Quarantined] = {}
        self.handed: list[str] = []
        self.after = after

    def __call__(self, fetched: FetchedMessage) -> Outcome:
        self.handed.append(fetched.key)
        result = parse_fetched(fetched, limits=Limits(), **OPTIONS)
        if isinstance(result, Quarantined):
            self.quarantine.setdefault(result.key, result)
            outcome = Outcome.QUARANTINED
        else:
            self.requests.setdefault(result.key, result)
            outcome = Outcome.ACCEPTED
        if self.after:
            self.after()
        return outcome

    def by_file(self) -> dict[str, tuple]:
        found = {}
        # A message without Message-ID is known by a digest of its bytes, and IMAP cannot carry NUL:
        # Dovecot sends 0x80 instead. Compare the corpus file as the server handed it over.
        served = {message_key(_as_served(q.raw)): key for key, q in self.quarantine.items()}
        for name in corpus_names():
            key = FetchedMessage(raw=corpus(name), size=0, folder="INBOX").key
            key = served.get(message_key(_as_served(corpus(name))), key)
            if key in self.requests:
                found[name] = ("request", self.requests[key].automation.kind)
            elif key in self.quarantine:
                found[name] = ("quarantine", self.quarantine[key].reason)
        return found


def _as_served(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\x00", b"\x80")


def deliver_corpus(dovecot, mailbox) -> None:
    for name in corpus_names():
        dovecot.deliver(mailbox, corpus(name))


def test_the_whole_corpus_through_imaps(dovecot, mailbox, credentials):
    deliver_corpus(dovecot, mailbox)
    policy = FetchPolicy(
        after_fetch=AfterFetch.MOVE,
        processed_folder="Procesados",
        quarantine_folder="Cuarentena",
        max_message_bytes=LIMIT,
        max_messages=100,
    )
    ingest = Ingest()

    result = ImapFetcher(dovecot.endpoint("imaps"), credentials, policy).fetch(ImapState(), ingest)

    assert result.ok and result.fetched == len(EXPECTED) and result.too_large == 1
    assert ingest.by_file() == EXPECTED
    assert dovecot.messages(mailbox) == {}
    assert len(dovecot.messages(mailbox, "Procesados")) == result.accepted == 20
    quarantined = sorted(_subject(m["raw"]) for m in dovecot.messages(mailbox, "Cuarentena").values())
    assert quarantined == ["", "Boundary never appears", "Documento escaneado grande", "Multipart without boundary"]

    # What arrived over IMAP parses as the file does.
    plain = ingest.requests["CAF1234.5678@mail.example.com"]
    assert plain.subject == "No puedo acceder al portal de señales" and plain.from_address.name == "Lucía Pérez"
    assert ingest.requests["cp1252-0001@example.it"].subject == "Preventivo € 1.200 “urgente”"
    assert ingest.requests["related-1@example.com"].inline[0].content_id == "logo@example.com"
    assert ingest.requests["dsn-1@mx.asesoria.example"].bounce.status == "5.1.1"


def test_the_whole_corpus_through_pop3s(dovecot, mailbox, credentials):
    deliver_corpus(dovecot, mailbox)
    policy = FetchPolicy(
        after_fetch=AfterFetch.DELETE, processed_folder=None, max_message_bytes=LIMIT, max_messages=100
    )
    ingest = Ingest()

    result = Pop3Fetcher(dovecot.endpoint("pop3s"), credentials, policy).fetch(Pop3State(), ingest)

    assert result.ok and result.fetched == len(EXPECTED)
    assert ingest.by_file() == EXPECTED
    assert dovecot.messages(mailbox) == {}


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_the_server_going_away_during_the_corpus_loses_and_doubles_nothing(dovecot, mailbox, credentials, protocol):
    deliver_corpus(dovecot, mailbox)
    if protocol == "imap":
        policy = FetchPolicy(
            quarantine_folder="Cuarentena", max_message_bytes=LIMIT, max_messages=100, batch_bytes=4096
        )
        fetcher, state = ImapFetcher(dovecot.endpoint("imaps"), credentials, policy), ImapState()
    else:
        policy = FetchPolicy(
            after_fetch=AfterFetch.DELETE, processed_folder=None, max_message_bytes=LIMIT, max_messages=100
        )
        fetcher, state = Pop3Fetcher(dovecot.endpoint("pop3s"), credentials, policy), Pop3State()

    def stop_midway():
        if len(ingest.handed) == 9:
            dovecot.stop()

    ingest = Ingest(after=stop_midway)
    first = fetcher.fetch(state, ingest)
    assert first.error is not None and first.error.kind == ErrorKind.CONNECTION_LOST
    assert first.fetched == 9

    dovecot.start()
    ingest.after = None
    second = fetcher.fetch(state, ingest)

    assert second.ok and first.fetched + second.fetched == len(EXPECTED)
    assert sorted(ingest.handed) == sorted(set(ingest.handed))  # nothing handed over twice
    assert ingest.by_file() == EXPECTED
    assert dovecot.messages(mailbox) == {}
