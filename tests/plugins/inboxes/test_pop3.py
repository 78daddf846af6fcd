"""The POP3 fetcher against a real Dovecot: UIDL de-duplication, deletion only after the commit and only
once QUIT confirmed it, the connection dropping before QUIT, size limit, errors."""

from __future__ import annotations

import pytest

from plugins.inboxes.connectors import (
    AfterFetch,
    Credentials,
    ErrorKind,
    FetchPolicy,
    MailError,
    Pop3Fetcher,
    Pop3State,
    Protocol,
)
from tests.plugins.inboxes.conftest import Store, _subject, corpus, simple_message

KEEP = FetchPolicy(after_fetch=AfterFetch.MARK_SEEN, processed_folder=None)
DELETE = FetchPolicy(after_fetch=AfterFetch.DELETE, processed_folder=None)


def fetcher(dovecot, credentials, policy=DELETE, kind="pop3s", **endpoint) -> Pop3Fetcher:
    return Pop3Fetcher(dovecot.endpoint(kind, **endpoint), credentials, policy)


def on_server(dovecot, mailbox) -> list[str]:
    return sorted(_subject(m["raw"]) for m in dovecot.messages(mailbox).values())


def deliver(dovecot, mailbox, *subjects: str) -> None:
    for subject in subjects:
        dovecot.deliver(mailbox, simple_message(subject, message_id=f"{subject}@example.com"))


@pytest.mark.parametrize(("kind", "starttls"), [("pop3s", False), ("pop3", True), ("pop3", False)])
def test_connection_test_counts_the_inbox(dovecot, mailbox, credentials, kind, starttls):
    deliver(dovecot, mailbox, "uno", "dos")
    report = fetcher(dovecot, credentials, kind=kind, starttls=starttls).test()
    assert (report.protocol, report.folder, report.messages) == (Protocol.POP3, "INBOX", 2)
    assert report.size_bytes > 0 and "UIDL" in report.capabilities
    assert (report.tls is not None) == (kind == "pop3s" or starttls)
    assert [f.name for f in fetcher(dovecot, credentials).list_folders()] == ["INBOX"]


def test_messages_left_on_the_server_are_not_read_twice(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "primero", "segundo")
    state, store = Pop3State(), Store()

    first = fetcher(dovecot, credentials, KEEP).fetch(state, store)
    assert (first.fetched, first.actions_done) == (2, 0)
    assert fetcher(dovecot, credentials, KEEP).fetch(state, store).fetched == 0

    deliver(dovecot, mailbox, "tercero")
    assert fetcher(dovecot, credentials, KEEP).fetch(state, store).fetched == 1
    assert [_subject(m.raw) for m in store.calls] == ["primero", "segundo", "tercero"]
    assert all(m.uidl for m in store.calls) and len(state.seen) == 3
    assert on_server(dovecot, mailbox) == ["primero", "segundo", "tercero"]


def test_delete_mode_empties_the_mailbox_after_each_commit(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "a", "b")
    state = Pop3State()

    result = fetcher(dovecot, credentials).fetch(state, Store())

    assert (result.fetched, result.actions_done, result.ok) == (2, 2, True)
    assert on_server(dovecot, mailbox) == []
    assert state == Pop3State()  # nothing left to remember: the state stays as small as the mailbox


def test_a_connection_lost_before_quit_keeps_the_messages_and_deletes_them_next_time(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "p1", "p2", "p3")
    state = Pop3State()
    store = Store(after=lambda message: len(store.calls) == 2 and dovecot.kick(mailbox))

    first = fetcher(dovecot, credentials).fetch(state, store)

    assert first.error is not None and first.error.kind == ErrorKind.CONNECTION_LOST
    assert first.fetched == 2
    assert on_server(dovecot, mailbox) == ["p1", "p2", "p3"]  # no QUIT: the server forgot the DELEs
    assert len(state.seen) == 2 and state.pending_delete == state.seen

    store.after = None
    second = fetcher(dovecot, credentials).fetch(state, store)

    assert second.ok and second.fetched == 1 and second.actions_done == 3
    assert [_subject(m.raw) for m in store.calls] == ["p1", "p2", "p3"]  # each handed over once
    assert on_server(dovecot, mailbox) == []


def test_a_failed_commit_stops_the_run_and_the_message_comes_again(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "bien", "roto", "luego")
    state = Pop3State()

    result = fetcher(dovecot, credentials).fetch(state, Store(fail_on="roto"))

    assert isinstance(result.commit_error, RuntimeError)
    assert (result.fetched, result.remaining) == (1, 2)
    assert on_server(dovecot, mailbox) == ["luego", "roto"]  # only the committed one was deleted
    retry = Store()
    assert fetcher(dovecot, credentials).fetch(state, retry).fetched == 2
    assert retry.subjects() == ["luego", "roto"]


def test_a_message_over_the_limit_comes_with_its_headers_only(dovecot, mailbox, credentials):
    dovecot.deliver(mailbox, corpus("large_attachment.eml"))
    policy = FetchPolicy(after_fetch=AfterFetch.DELETE, processed_folder=None, max_message_bytes=16 * 1024)
    store = Store()

    result = fetcher(dovecot, credentials, policy).fetch(Pop3State(), store)

    (message,) = store.calls
    assert result.too_large == 1 and message.too_large and message.size > 80_000
    assert b"Subject: Documento escaneado grande" in message.raw and len(message.raw) < 2_000
    assert message.key == "large-1@example.com"


def test_a_backlog_drains_a_few_per_run(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "x1", "x2", "x3")
    policy = FetchPolicy(after_fetch=AfterFetch.DELETE, processed_folder=None, max_messages=2)
    state, store = Pop3State(), Store()
    runs = [fetcher(dovecot, credentials, policy).fetch(state, store) for _ in range(2)]
    assert [(r.fetched, r.remaining) for r in runs] == [(2, 1), (1, 0)]


def test_pop3_refuses_settings_it_cannot_honour():
    assert FetchPolicy(after_fetch=AfterFetch.MOVE).problems(Protocol.POP3)
    assert FetchPolicy(folder="Archivo", after_fetch=AfterFetch.DELETE).problems(Protocol.POP3)
    assert DELETE.problems(Protocol.POP3) == [] and KEEP.problems(Protocol.POP3) == []
    assert FetchPolicy(after_fetch=AfterFetch.MOVE, processed_folder="INBOX").problems(Protocol.IMAP)


def test_pop3_errors_are_classified(dovecot, mailbox, credentials):
    with pytest.raises(MailError) as error:
        fetcher(dovecot, Credentials(mailbox.name, "wrong")).test()
    assert error.value.kind == ErrorKind.AUTH_FAILED
    assert "[AUTH]" not in str(error.value.message) + error.value.detail
    with pytest.raises(MailError) as error:
        fetcher(dovecot, credentials, kind="pop3s", host="pop.other.example").test()
    assert error.value.kind == ErrorKind.TLS_CERTIFICATE
    result = fetcher(dovecot, Credentials(mailbox.name, "wrong")).fetch(Pop3State(), Store())
    assert result.error.kind == ErrorKind.AUTH_FAILED


def test_the_state_survives_a_round_trip_through_json():
    state = Pop3State(seen=["000000016b12870f"], pending_delete=["000000016b12870f"])
    assert Pop3State.from_dict(state.to_dict()) == state
    assert Pop3State.from_dict({}) == Pop3State()
