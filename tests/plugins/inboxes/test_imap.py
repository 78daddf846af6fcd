"""The IMAP fetcher against a real Dovecot: test, folders, UID-incremental fetch, post-fetch actions only
after the commit, size limit, UIDVALIDITY change, the server going away mid-fetch, errors in words."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from plugins.inboxes.connectors import (
    AfterFetch,
    Credentials,
    Endpoint,
    ErrorKind,
    FetchPolicy,
    ImapFetcher,
    ImapState,
    MailError,
    Outcome,
    Security,
)
from plugins.inboxes.connectors.errors import TRANSIENT
from plugins.inboxes.dovecot import DovecotServer, free_ports
from plugins.inboxes.mail.parsing import Quarantined, parse_fetched
from tests.plugins.inboxes.conftest import UNRESOLVABLE, Store, _subject, corpus, simple_message


def fetcher(dovecot, credentials, kind="imaps", policy=None, **endpoint) -> ImapFetcher:
    return ImapFetcher(dovecot.endpoint(kind, **endpoint), credentials, policy or FetchPolicy())


def subjects(dovecot, mailbox, folder="INBOX") -> list[str]:
    return sorted(_subject(m["raw"]) for m in dovecot.messages(mailbox, folder).values())


def deliver(dovecot, mailbox, *names: str) -> None:
    for name in names:
        dovecot.deliver(mailbox, simple_message(name, message_id=f"{name.replace(' ', '-')}@example.com"))
        time.sleep(0.001)  # maildir order: the file names carry the time


# --- connection test and folders -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "starttls", "encrypted"),
    [("imaps", False, True), ("imap", True, True), ("imap", False, False)],
    ids=["ssl", "starttls", "none"],
)
def test_connection_test_logs_in_opens_the_folder_and_counts(dovecot, mailbox, credentials, kind, starttls, encrypted):
    deliver(dovecot, mailbox, "one", "two")
    dovecot.deliver(mailbox, simple_message("read already"), seen=True)

    report = fetcher(dovecot, credentials, kind, starttls=starttls).test()

    assert (report.folder, report.messages, report.unseen) == ("INBOX", 3, 2)
    assert (report.tls is not None) == encrypted
    assert "IMAP4REV1" in report.capabilities
    assert subjects(dovecot, mailbox) == ["one", "read already", "two"]  # nothing fetched, nothing flagged


def test_connection_goes_to_the_checked_address_and_tls_is_verified_for_the_typed_name(dovecot, mailbox, credentials):
    port = dovecot.ports["imaps"]
    # A name that resolves nowhere works: the socket goes to the address core checked...
    pinned = Endpoint(UNRESOLVABLE, port, Security.SSL, ca_file=str(dovecot.ca_file), address=(dovecot.host, port))
    assert ImapFetcher(pinned, credentials).test().messages == 0
    # ...and without that address the name is looked up, and is not found.
    unpinned = Endpoint(UNRESOLVABLE, port, Security.SSL, ca_file=str(dovecot.ca_file))
    with pytest.raises(MailError) as lookup:
        ImapFetcher(unpinned, credentials).test()
    assert lookup.value.kind == ErrorKind.HOST_NOT_FOUND
    # The certificate is checked for the typed name, not for the address.
    with pytest.raises(MailError) as wrong_name:
        fetcher(dovecot, credentials, host="mail.other.example").test()
    assert wrong_name.value.kind == ErrorKind.TLS_CERTIFICATE
    assert "mail.other.example" in wrong_name.value.detail


def test_certificates_are_verified_unless_the_mailbox_turns_it_off(dovecot, mailbox, credentials):
    port = dovecot.ports["imaps"]
    untrusted = Endpoint("localhost", port, Security.SSL, address=(dovecot.host, port))  # system CAs only
    with pytest.raises(MailError) as error:
        ImapFetcher(untrusted, credentials).test()
    assert error.value.kind == ErrorKind.TLS_CERTIFICATE

    opted_out = Endpoint("mail.other.example", port, Security.SSL, verify_tls=False, address=(dovecot.host, port))
    assert ImapFetcher(opted_out, credentials).test().tls is not None
    starttls = dovecot.endpoint("imap", starttls=True, host="mail.other.example")
    with pytest.raises(MailError) as error:
        ImapFetcher(starttls, credentials).test()
    assert error.value.kind == ErrorKind.TLS_CERTIFICATE


def test_list_folders_gives_decoded_names_and_flags(dovecot, mailbox, credentials):
    dovecot.append(mailbox, simple_message("factura"), folder="Facturas/Año 2024")
    dovecot.append(mailbox, simple_message("archivo"), folder="Archivo")

    folders = {f.name: f for f in fetcher(dovecot, credentials).list_folders()}

    assert {"INBOX", "Archivo", "Facturas", "Facturas/Año 2024"} <= set(folders)
    assert folders["Facturas/Año 2024"].delimiter == "/"
    assert not folders["Facturas"].selectable  # an implicit parent: \\Noselect, not offered as a choice
    assert folders["Archivo"].selectable
    assert fetcher(dovecot, credentials).test("Facturas/Año 2024").messages == 1


# --- fetching ------------------------------------------------------------------------------------


def test_fetch_is_incremental_by_uid_and_marks_read_only_after_the_commit(dovecot, mailbox, credentials):
    policy = FetchPolicy(after_fetch=AfterFetch.MARK_SEEN)
    state, store = ImapState(), Store()
    deliver(dovecot, mailbox, "first", "second")

    result = fetcher(dovecot, credentials, policy=policy).fetch(state, store)

    assert (result.ok, result.fetched, result.accepted, result.actions_done) == (True, 2, 2, 2)
    assert store.subjects() == ["first", "second"]
    assert all("\\Seen" in m["flags"] for m in dovecot.messages(mailbox).values())
    assert state.last_uid == 2 and state.pending_accepted == []

    deliver(dovecot, mailbox, "third")
    again = fetcher(dovecot, credentials, policy=policy).fetch(state, store)
    assert again.fetched == 1 and [_subject(m.raw) for m in store.calls] == ["first", "second", "third"]
    assert fetcher(dovecot, credentials, policy=policy).fetch(state, store).fetched == 0
    assert len(store.calls) == 3


def test_fetched_messages_carry_where_they_came_from(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "hola")
    store = Store()
    fetcher(dovecot, credentials).fetch(ImapState(), store)

    (message,) = store.calls
    assert message.uid == 1 and message.uidvalidity and message.folder == "INBOX"
    assert message.internal_date is not None and message.internal_date.tzinfo is not None
    assert message.size == len(message.raw) and not message.too_large
    assert message.key == "hola@example.com"
    assert "\\Seen" not in message.flags  # fetched with BODY.PEEK: not marked read by the fetch itself


def test_move_after_commit_creates_the_folder_and_empties_the_inbox(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "a", "b", "c")
    policy = FetchPolicy(after_fetch=AfterFetch.MOVE, processed_folder="Procesados/2024")

    result = fetcher(dovecot, credentials, policy=policy).fetch(ImapState(), Store())

    assert result.accepted == 3
    assert subjects(dovecot, mailbox) == []
    assert subjects(dovecot, mailbox, "Procesados/2024") == ["a", "b", "c"]


def test_delete_after_commit_expunges_only_what_was_committed(dovecot, mailbox, credentials):
    dovecot.append(mailbox, simple_message("fetched"))
    dovecot.append(mailbox, simple_message("flagged deleted by a person"), flags=("\\Deleted",))
    dovecot.append(mailbox, simple_message("not yet fetched"))
    policy = FetchPolicy(after_fetch=AfterFetch.DELETE, max_messages=1)

    result = fetcher(dovecot, credentials, policy=policy).fetch(ImapState(), Store())

    # UID EXPUNGE of the committed UID only: a person's own \Deleted message is not swept away with it.
    assert (result.fetched, result.remaining) == (1, 2)
    assert subjects(dovecot, mailbox) == ["flagged deleted by a person", "not yet fetched"]


def test_nothing_happens_on_the_server_to_a_message_whose_commit_failed(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "alpha", "broken", "gamma")
    state = ImapState()
    failing = Store(fail_on="broken")

    result = fetcher(dovecot, credentials).fetch(state, failing)

    assert isinstance(result.commit_error, RuntimeError) and not result.ok
    assert (result.fetched, result.remaining) == (1, 2)
    assert subjects(dovecot, mailbox, "Processed") == ["alpha"]  # the committed one was still moved
    inbox = dovecot.messages(mailbox)
    assert sorted(_subject(m["raw"]) for m in inbox.values()) == ["broken", "gamma"]
    assert not any("\\Seen" in m["flags"] for m in inbox.values())

    working = Store()
    assert fetcher(dovecot, credentials).fetch(state, working).fetched == 2
    assert working.subjects() == ["broken", "gamma"]  # alpha is not handed over a second time
    assert subjects(dovecot, mailbox) == []


def test_quarantined_messages_go_to_the_quarantine_folder(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "good", "poison")
    policy = FetchPolicy(quarantine_folder="Cuarentena")
    store = Store(quarantine_if=lambda m: b"poison" in m.raw)

    result = fetcher(dovecot, credentials, policy=policy).fetch(ImapState(), store)

    assert (result.accepted, result.quarantined) == (1, 1)
    assert subjects(dovecot, mailbox, "Processed") == ["good"]
    assert subjects(dovecot, mailbox, "Cuarentena") == ["poison"]


def test_a_message_over_the_size_limit_comes_with_its_headers_only(dovecot, mailbox, credentials):
    dovecot.deliver(mailbox, corpus("large_attachment.eml"))
    deliver(dovecot, mailbox, "small")
    policy = FetchPolicy(max_message_bytes=16 * 1024, quarantine_folder="Cuarentena")
    fetched = []

    def commit(message):
        fetched.append(message)
        return Outcome.QUARANTINED if isinstance(parse_fetched(message), Quarantined) else Outcome.ACCEPTED

    result = fetcher(dovecot, credentials, policy=policy).fetch(ImapState(), commit)

    large, small = fetched
    assert result.too_large == 1 and large.too_large and not small.too_large
    assert large.size > 80_000 and len(large.raw) < 2_000
    assert b"Subject: Documento escaneado grande" in large.raw and b"Documento adjunto" not in large.raw
    quarantined = parse_fetched(large)
    assert isinstance(quarantined, Quarantined) and quarantined.reason == "too_large"
    assert quarantined.subject == "Documento escaneado grande" and quarantined.message_id == "large-1@example.com"
    assert subjects(dovecot, mailbox, "Cuarentena") == ["Documento escaneado grande"]


def test_a_backlog_drains_oldest_first_a_few_messages_per_run(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, *(f"m{n}" for n in range(5)))
    state, store = ImapState(), Store()
    policy = FetchPolicy(max_messages=2)

    runs = [fetcher(dovecot, credentials, policy=policy).fetch(state, store) for _ in range(3)]

    assert [(r.fetched, r.remaining) for r in runs] == [(2, 3), (2, 1), (1, 0)]
    assert [_subject(m.raw) for m in store.calls] == ["m0", "m1", "m2", "m3", "m4"]


def test_a_deadline_ends_the_run_between_batches(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, "one", "two", "three")
    ticks = iter([0.0, 10.0, 20.0, 30.0])
    policy = FetchPolicy(batch_bytes=1)  # one message per batch

    result = fetcher(dovecot, credentials, policy=policy).fetch(
        ImapState(), Store(), deadline=15.0, clock=lambda: next(ticks)
    )

    assert (result.fetched, result.remaining, result.ok) == (2, 1, True)


def test_a_uidvalidity_change_rereads_the_folder_without_duplicates(dovecot, mailbox, credentials):
    for name in ("uno", "dos"):
        dovecot.append(mailbox, simple_message(name, message_id=f"{name}@example.com"), folder="Tickets")
    policy = FetchPolicy(folder="Tickets", after_fetch=AfterFetch.MARK_SEEN)
    state, store = ImapState(), Store()
    fetcher(dovecot, credentials, policy=policy).fetch(state, store)
    old_validity = state.uidvalidity

    # The folder is rebuilt (restored from a backup, migrated): same messages, new UIDs.
    client = dovecot.imap(mailbox)
    client.delete_folder("Tickets")
    client.logout()
    for name in ("uno", "dos", "tres"):
        dovecot.append(mailbox, simple_message(name, message_id=f"{name}@example.com"), folder="Tickets")

    result = fetcher(dovecot, credentials, policy=policy).fetch(state, store)

    assert result.uidvalidity_changed and state.uidvalidity != old_validity
    assert result.fetched == 3  # everything re-read...
    assert store.subjects() == ["dos", "tres", "uno"]  # ...and kept once, by Message-ID
    assert len(store.calls) == 5


def test_the_state_survives_a_round_trip_through_json(dovecot, mailbox, credentials):
    state = ImapState(folder="INBOX", uidvalidity=7, last_uid=12, pending_accepted=[11, 12], pending_quarantined=[9])
    assert ImapState.from_dict(state.to_dict()) == state
    assert ImapState.from_dict(None) == ImapState()


# --- the server going away -----------------------------------------------------------------------


def test_the_server_going_away_mid_fetch_loses_nothing_and_repeats_nothing(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, *(f"msg{n}" for n in range(5)))
    state = ImapState()
    policy = FetchPolicy(batch_bytes=1)  # a move after every message

    def stop_after_third(message):
        if len(store.calls) == 3:
            dovecot.stop()

    store = Store(after=stop_after_third)
    result = fetcher(dovecot, credentials, policy=policy).fetch(state, store)

    assert result.error is not None and result.error.kind == ErrorKind.CONNECTION_LOST
    assert result.error.transient and result.fetched == 3
    assert state.last_uid == 3 and state.pending_accepted == [3]  # committed, not yet moved

    dovecot.start()
    store.after = None
    again = fetcher(dovecot, credentials, policy=policy).fetch(state, store)

    assert again.ok and again.fetched == 2
    assert [_subject(m.raw) for m in store.calls] == [f"msg{n}" for n in range(5)]  # each handed over once
    assert subjects(dovecot, mailbox) == []
    assert subjects(dovecot, mailbox, "Processed") == [f"msg{n}" for n in range(5)]


def test_a_dropped_connection_mid_fetch_is_retried_from_the_last_commit(dovecot, mailbox, credentials):
    deliver(dovecot, mailbox, *(f"k{n}" for n in range(4)))
    state = ImapState()
    store = Store(after=lambda message: len(store.calls) == 2 and dovecot.kick(mailbox))

    first = fetcher(dovecot, credentials, policy=FetchPolicy(batch_bytes=1)).fetch(state, store)
    assert first.error is not None and first.error.kind == ErrorKind.CONNECTION_LOST
    assert first.fetched == 2

    store.after = None
    second = fetcher(dovecot, credentials).fetch(state, store)
    assert second.ok and second.fetched == 2
    assert [_subject(m.raw) for m in store.calls] == ["k0", "k1", "k2", "k3"]
    assert subjects(dovecot, mailbox, "Processed") == ["k0", "k1", "k2", "k3"]


# --- errors in words -----------------------------------------------------------------------------


def test_a_wrong_password_is_auth_failed_in_words_never_the_servers_reply(dovecot, mailbox):
    with pytest.raises(MailError) as error:
        fetcher(dovecot, Credentials(mailbox.name, "wrong")).test()
    assert error.value.kind == ErrorKind.AUTH_FAILED and not error.value.transient
    text = str(error.value.message)
    assert text == "The server refused the user name or the password."
    assert "AUTHENTICATIONFAILED" not in text + error.value.detail
    assert "Authentication failed" not in text + error.value.detail


def test_fetch_reports_errors_instead_of_raising(dovecot, mailbox):
    result = fetcher(dovecot, Credentials(mailbox.name, "wrong")).fetch(ImapState(), Store())
    assert result.error.kind == ErrorKind.AUTH_FAILED and result.fetched == 0


def test_a_missing_folder_is_named(dovecot, mailbox, credentials):
    with pytest.raises(MailError) as error:
        fetcher(dovecot, credentials).test("No existe")
    assert error.value.kind == ErrorKind.FOLDER_MISSING and error.value.folder == "No existe"
    result = fetcher(dovecot, credentials, policy=FetchPolicy(folder="No existe")).fetch(ImapState(), Store())
    assert result.error.kind == ErrorKind.FOLDER_MISSING


def test_a_closed_port_is_a_refused_connection(credentials):
    (port,) = free_ports(1)
    with pytest.raises(MailError) as error:
        ImapFetcher(Endpoint("localhost", port, Security.SSL, address=("127.0.0.1", port)), credentials).test()
    assert error.value.kind == ErrorKind.CONNECTION_REFUSED and error.value.kind in TRANSIENT


@pytest.fixture
def silent_server():
    """A TCP server that accepts and never says a word (a firewall, a hung server, the wrong service)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for sock in held:
        sock.close()
    listener.close()


@pytest.mark.parametrize("security", [Security.SSL, Security.NONE])
def test_a_server_that_never_answers_is_a_timeout(silent_server, credentials, security):
    endpoint = Endpoint("localhost", silent_server, security, address=("127.0.0.1", silent_server), timeout=0.5)
    with pytest.raises(MailError) as error:
        ImapFetcher(endpoint, credentials).test()
    assert error.value.kind == ErrorKind.TIMEOUT


def test_tls_against_a_plain_port_is_a_tls_failure(dovecot, credentials):
    port = dovecot.ports["imap"]
    endpoint = Endpoint("localhost", port, Security.SSL, ca_file=str(dovecot.ca_file), address=(dovecot.host, port))
    with pytest.raises(MailError) as error:
        ImapFetcher(endpoint, credentials).test()
    assert error.value.kind == ErrorKind.TLS_FAILED


@pytest.fixture(scope="module")
def plain_only_dovecot(dovecot):
    """A server without TLS that accepts passwords only over TLS: an old or badly set-up one.

    On 127.0.0.2, because Dovecot takes a connection from its own address as secure.
    """
    with DovecotServer(host="127.0.0.2", tls=False, plaintext_auth=False) as server:
        yield server


def test_starttls_on_a_server_without_it_is_said_so(plain_only_dovecot):
    user = plain_only_dovecot.add_user("old@example.test", "pw")
    with pytest.raises(MailError) as error:
        ImapFetcher(plain_only_dovecot.endpoint("imap", starttls=True), Credentials(user.name, "pw")).test()
    assert error.value.kind == ErrorKind.STARTTLS_UNSUPPORTED


def test_a_server_refusing_plaintext_passwords_asks_for_encryption(plain_only_dovecot):
    user = plain_only_dovecot.add_user("plain@example.test", "pw")
    with pytest.raises(MailError) as error:
        ImapFetcher(plain_only_dovecot.endpoint("imap"), Credentials(user.name, "pw")).test()
    assert error.value.kind == ErrorKind.ENCRYPTION_REQUIRED
    assert "SSL or STARTTLS" in str(error.value.message)


def test_folders_go_under_the_servers_namespace_prefix_when_it_has_one():
    """Courier, Cyrus and many hosting panels keep every folder under "INBOX." and refuse others."""
    with DovecotServer(inbox_prefix=True) as server:
        user = server.add_user("hosting@example.test", "pw")
        for name in ("uno", "dos"):
            server.deliver(user, simple_message(name))
        policy = FetchPolicy(processed_folder="Procesados", quarantine_folder="Cuarentena")
        store = Store(quarantine_if=lambda m: b"dos" in m.raw)

        result = ImapFetcher(server.endpoint("imaps"), Credentials(user.name, "pw"), policy).fetch(ImapState(), store)

        assert result.ok and (result.accepted, result.quarantined) == (1, 1)
        names = {f.name for f in ImapFetcher(server.endpoint("imaps"), Credentials(user.name, "pw")).list_folders()}
        assert names == {"INBOX", "INBOX.Procesados", "INBOX.Cuarentena"}
        assert subjects(server, user, "INBOX.Procesados") == ["uno"]
        assert subjects(server, user, "INBOX.Cuarentena") == ["dos"]
