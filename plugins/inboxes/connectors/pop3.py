"""Reading a mailbox over POP3 (stdlib poplib), de-duplicated by UIDL.

POP3 has no folders and no flags: a message is either left on the server (``AfterFetch.MARK_SEEN``:
its UIDL is remembered so it is not read again) or deleted (``AfterFetch.DELETE``). Deletions only
take effect when the session ends with QUIT, so a message is marked for deletion right after the
caller committed it and its UIDL stays in ``pending_delete`` until QUIT succeeded: if the connection
drops first, the server forgets the deletions and the next run makes them again (the UIDL is already
``seen``, so the message is not handed over twice).
"""

from __future__ import annotations

import contextlib
import poplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from plugins.inboxes.connectors.base import (
    AfterFetch,
    CommitCallback,
    ConnectionReport,
    Credentials,
    Endpoint,
    FetchedMessage,
    FetchPolicy,
    FetchResult,
    Folder,
    Outcome,
    Protocol,
    Security,
)
from plugins.inboxes.connectors.errors import ErrorKind, MailError, Stage, classify
from plugins.inboxes.connectors.tls import PinnedPOP3, PinnedPOP3_SSL, endpoint_context

INBOX = "INBOX"


@dataclass
class Pop3State:
    seen: list[str] = field(default_factory=list)  # UIDLs committed and still on the server
    pending_delete: list[str] = field(default_factory=list)  # committed, to delete, QUIT not confirmed yet

    def to_dict(self) -> dict:
        return {"seen": list(self.seen), "pending_delete": list(self.pending_delete)}

    @classmethod
    def from_dict(cls, data: dict | None) -> Pop3State:
        data = data or {}
        return cls(
            seen=[str(u) for u in data.get("seen") or ()],
            pending_delete=[str(u) for u in data.get("pending_delete") or ()],
        )


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")


def _numbered(lines: list[bytes]) -> list[tuple[int, str]]:
    """``[b"1 abc", b"2 def"]`` → ``[(1, "abc"), (2, "def")]`` (lines that do not parse are skipped)."""
    found = []
    for line in lines:
        number, _, value = line.strip().partition(b" ")
        if number.isdigit() and value:
            found.append((int(number), _text(value.strip())))
    return found


class Pop3Fetcher:
    protocol = Protocol.POP3

    def __init__(self, endpoint: Endpoint, credentials: Credentials, policy: FetchPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.policy = policy or FetchPolicy(folder=INBOX, after_fetch=AfterFetch.DELETE, processed_folder=None)

    @contextlib.contextmanager
    def session(self) -> Iterator[poplib.POP3]:
        endpoint = self.endpoint
        try:
            if endpoint.security == Security.SSL:
                client = PinnedPOP3_SSL(
                    endpoint.host, endpoint.port, endpoint.connect_to, endpoint_context(endpoint), endpoint.timeout
                )
            else:
                client = PinnedPOP3(endpoint.host, endpoint.port, endpoint.connect_to, endpoint.timeout)
        except Exception as exc:
            raise classify(exc, Stage.CONNECT) from exc
        try:
            if endpoint.security == Security.STARTTLS:
                try:
                    client.stls(endpoint_context(endpoint))
                except Exception as exc:
                    raise classify(exc, Stage.TLS) from exc
            try:
                if endpoint.security == Security.NONE and self._refuses_plaintext(client):
                    raise MailError(ErrorKind.ENCRYPTION_REQUIRED, "no USER in CAPA")
                client.user(self.credentials.username)
                client.pass_(self.credentials.password)
            except MailError:
                raise
            except Exception as exc:
                raise classify(exc, Stage.LOGIN) from exc
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()

    @staticmethod
    def _refuses_plaintext(client: poplib.POP3) -> bool:
        try:
            capabilities = client.capa()
        except poplib.error_proto:
            return False  # an old server without CAPA: just try
        return "USER" not in capabilities and "SASL" in capabilities

    def test(self, folder: str | None = None) -> ConnectionReport:
        """Log in and count (STAT). POP3 has only the inbox."""
        capabilities: tuple[str, ...] = ()
        with self.session() as client:
            try:
                count, size = client.stat()
                with contextlib.suppress(poplib.error_proto):
                    capabilities = tuple(client.capa())
                sock = client.sock
                tls = sock.version() if hasattr(sock, "version") else None
                client.quit()
            except Exception as exc:
                raise classify(exc, Stage.SESSION) from exc
        return ConnectionReport(
            protocol=Protocol.POP3, folder=INBOX, messages=count, size_bytes=size, capabilities=capabilities, tls=tls
        )

    def list_folders(self) -> list[Folder]:
        with self.session() as client, contextlib.suppress(Exception):
            client.quit()
        return [Folder(INBOX, None)]

    def fetch(
        self,
        state: Pop3State,
        commit: CommitCallback,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> FetchResult:
        """Fetch the messages whose UIDL is not in ``state`` (updated in place); see ``ImapFetcher.fetch``."""
        result = FetchResult()
        try:
            with self.session() as client:
                self._run(client, state, commit, result, deadline, clock)
        except MailError as error:
            result.error = error
        return result

    def _run(self, client: poplib.POP3, state: Pop3State, commit, result: FetchResult, deadline, clock) -> None:
        policy = self.policy
        delete = policy.after_fetch == AfterFetch.DELETE
        try:
            uidls = _numbered(client.uidl()[1])
            sizes = dict(_numbered(client.list()[1]))
        except Exception as exc:
            raise classify(exc, Stage.SESSION) from exc
        present = {uidl: number for number, uidl in uidls}
        # Forget what is no longer on the server: the state stays as small as the mailbox.
        seen = {uidl for uidl in state.seen if uidl in present}
        state.seen = [uidl for uidl in state.seen if uidl in seen]
        state.pending_delete = [uidl for uidl in state.pending_delete if uidl in present]
        new = [(number, uidl) for number, uidl in uidls if uidl not in seen]
        todo = new[: policy.max_messages]
        result.remaining = len(new) - len(todo)
        try:
            for uidl in state.pending_delete:
                client.dele(present[uidl])
                result.actions_done += 1
            for position, (number, uidl) in enumerate(todo):
                if deadline is not None and clock() >= deadline:
                    result.remaining += len(todo) - position
                    break
                size = int(sizes.get(number, "0") or 0)
                too_large = size > policy.max_message_bytes
                lines = client.top(number, 0)[1] if too_large else client.retr(number)[1]
                message = FetchedMessage(
                    raw=b"\r\n".join(lines) + b"\r\n",
                    size=size,
                    folder=INBOX,
                    uidl=uidl,
                    too_large=too_large,
                )
                try:
                    outcome = Outcome(commit(message))
                except Exception as exc:
                    result.commit_error = exc
                    result.remaining += len(todo) - position
                    break
                state.seen.append(uidl)
                result.fetched += 1
                result.too_large += too_large
                if outcome == Outcome.QUARANTINED:
                    result.quarantined += 1
                else:
                    result.accepted += 1
                if delete:
                    state.pending_delete.append(uidl)
                    client.dele(number)
                    result.actions_done += 1
            client.quit()
        except MailError:
            raise
        except Exception as exc:
            raise classify(exc, Stage.SESSION) from exc
        # QUIT answered +OK: the deletions happened.
        deleted = set(state.pending_delete)
        state.pending_delete = []
        state.seen = [uidl for uidl in state.seen if uidl not in deleted]
