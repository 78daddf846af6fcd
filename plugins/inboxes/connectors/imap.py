"""Reading a mailbox over IMAP with IMAPClient: test, list folders, and UID-incremental fetch.

A run selects the folder, compares its UIDVALIDITY with the state's (a change means the UIDs were
renumbered: the state starts again from UID 1 and the caller's de-duplication by ``FetchedMessage.key``
keeps the re-read from creating duplicates), finishes the post-fetch actions an earlier run left
undone, then fetches the new UIDs oldest first: sizes first, then bodies in batches of at most
``batch_bytes`` (a message over ``max_message_bytes`` comes with its headers only). Every message goes
to the caller's ``commit``; once it returns, the state's ``last_uid`` moves past it and the message
waits in ``pending_*`` for its post-fetch action, carried out after each batch. Bodies are fetched with
``BODY.PEEK`` so nothing is marked read before the caller has committed.

If the server goes away at any point the run stops with a ``CONNECTION_LOST`` error: everything
committed stays committed (``last_uid``), actions not yet done stay pending, and the next run carries
on from there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError

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
from plugins.inboxes.connectors.tls import PinnedIMAP4, PinnedIMAP4_TLS, endpoint_context

SEEN = b"\\Seen"
DELETED = b"\\Deleted"
META_CHUNK = 500  # UIDs per FETCH of sizes and flags


@dataclass
class ImapState:
    """Where the last run stopped, for one mailbox. Keep it between runs (``to_dict``/``from_dict``)."""

    folder: str | None = None
    uidvalidity: int | None = None
    last_uid: int = 0  # every UID up to this one has been committed (or is gone)
    pending_accepted: list[int] = field(default_factory=list)  # committed, post-fetch action not done yet
    pending_quarantined: list[int] = field(default_factory=list)

    def reset(self, folder: str, uidvalidity: int) -> None:
        self.folder = folder
        self.uidvalidity = uidvalidity
        self.last_uid = 0
        self.pending_accepted = []
        self.pending_quarantined = []

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "pending_accepted": list(self.pending_accepted),
            "pending_quarantined": list(self.pending_quarantined),
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> ImapState:
        data = data or {}
        return cls(
            folder=data.get("folder"),
            uidvalidity=data.get("uidvalidity"),
            last_uid=int(data.get("last_uid") or 0),
            pending_accepted=[int(u) for u in data.get("pending_accepted") or ()],
            pending_quarantined=[int(u) for u in data.get("pending_quarantined") or ()],
        )


class _Client(IMAPClient):
    """IMAPClient whose socket goes to the endpoint's checked address (see ``connectors.tls``)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        super().__init__(
            endpoint.host,
            endpoint.port,
            use_uid=True,
            ssl=endpoint.security == Security.SSL,
            ssl_context=endpoint_context(endpoint) if endpoint.security == Security.SSL else None,
            timeout=endpoint.timeout,
        )
        self.normalise_times = False  # timezone-aware INTERNALDATEs

    def _create_IMAP4(self):
        timeout = self._timeout.connect
        if self.ssl:
            return PinnedIMAP4_TLS(self.host, self.port, self._endpoint.connect_to, self.ssl_context, timeout)
        return PinnedIMAP4(self.host, self.port, self._endpoint.connect_to, timeout)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ImapFetcher:
    """One IMAP mailbox. Every public method opens its own connection and closes it."""

    protocol = Protocol.IMAP

    def __init__(self, endpoint: Endpoint, credentials: Credentials, policy: FetchPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.policy = policy or FetchPolicy()
        self._folders_seen: dict[str, str] = {}  # folder asked for -> the server's name, per session

    # --- connection -----------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[IMAPClient]:
        """A logged-in client; failures to connect, secure or log in raise a classified ``MailError``."""
        self._folders_seen = {}
        try:
            client = _Client(self.endpoint)
        except Exception as exc:
            raise classify(exc, Stage.CONNECT) from exc
        try:
            if self.endpoint.security == Security.STARTTLS:
                try:
                    client.starttls(endpoint_context(self.endpoint))
                except CapabilityError as exc:
                    raise MailError(ErrorKind.STARTTLS_UNSUPPORTED, type(exc).__name__) from exc
                except Exception as exc:
                    raise classify(exc, Stage.TLS) from exc
            try:
                if b"LOGINDISABLED" in client.capabilities():
                    raise MailError(ErrorKind.ENCRYPTION_REQUIRED, "LOGINDISABLED")
                client.login(self.credentials.username, self.credentials.password)
            except MailError:
                raise
            except Exception as exc:
                raise classify(exc, Stage.LOGIN) from exc
            yield client
        finally:
            _close(client)

    def _select(self, client: IMAPClient, folder: str, readonly: bool = False) -> dict:
        try:
            return client.select_folder(folder, readonly=readonly)
        except IMAPClientError as exc:
            if isinstance(exc, IMAPClient.AbortError):
                raise classify(exc, Stage.SESSION) from exc
            raise MailError(ErrorKind.FOLDER_MISSING, type(exc).__name__, folder=folder) from exc
        except Exception as exc:
            raise classify(exc, Stage.SESSION) from exc

    # --- the administrator's buttons --------------------------------------------------------

    def test(self, folder: str | None = None) -> ConnectionReport:
        """Log in, open the folder read-only and count its messages (and the unread ones)."""
        folder = folder or self.policy.folder
        with self.session() as client:
            info = self._select(client, folder, readonly=True)
            try:
                unseen = len(client.search(["UNSEEN"]))
                capabilities = tuple(_text(c) for c in client.capabilities())
                sock = client.socket()
                tls = sock.version() if hasattr(sock, "version") else None
            except Exception as exc:
                raise classify(exc, Stage.SESSION) from exc
            return ConnectionReport(
                protocol=Protocol.IMAP,
                folder=folder,
                messages=int(info.get(b"EXISTS", 0)),
                unseen=unseen,
                capabilities=capabilities,
                tls=tls,
            )

    def list_folders(self) -> list[Folder]:
        """Every folder on the server, decoded names, in the server's order."""
        with self.session() as client:
            try:
                listed = client.list_folders()
            except Exception as exc:
                raise classify(exc, Stage.SESSION) from exc
        return [
            Folder(name=_text(name), delimiter=_text(delimiter) if delimiter else None, flags=tuple(map(_text, flags)))
            for flags, delimiter, name in listed
        ]

    # --- fetching -------------------------------------------------------------------------

    def fetch(
        self,
        state: ImapState,
        commit: CommitCallback,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> FetchResult:
        """Fetch what is new since ``state`` (updated in place), hand each message to ``commit``.

        ``commit(message)`` stores the message and commits, returning ``Outcome.ACCEPTED`` or
        ``Outcome.QUARANTINED``; if it raises, the run stops before that message (it is fetched again
        next time) and the exception is in ``result.commit_error``. ``deadline`` (a ``clock()`` value)
        ends the run early between messages; what is left is counted in ``result.remaining``.
        Connection failures never raise: they end the run with ``result.error``.
        """
        result = FetchResult()
        try:
            with self.session() as client:
                self._run(client, state, commit, result, deadline, clock)
        except MailError as error:
            result.error = error
        return result

    def _run(self, client, state: ImapState, commit, result: FetchResult, deadline, clock) -> None:
        policy = self.policy
        info = self._select(client, policy.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        if state.folder != policy.folder or state.uidvalidity != uidvalidity:
            result.uidvalidity_changed = state.uidvalidity is not None and state.folder == policy.folder
            state.reset(policy.folder, uidvalidity)
        try:
            result.actions_done += self._apply_actions(client, state)
            found = client.search(["UID", f"{state.last_uid + 1}:*"])
        except MailError:
            raise
        except Exception as exc:
            raise classify(exc, Stage.SESSION) from exc
        # "n:*" always matches the highest UID, even when it is below n.
        uids = sorted(uid for uid in found if uid > state.last_uid)
        todo = uids[: policy.max_messages]
        result.remaining = len(uids) - len(todo)
        if not todo:
            return
        try:
            meta = {}
            for start in range(0, len(todo), META_CHUNK):
                meta.update(client.fetch(todo[start : start + META_CHUNK], ["RFC822.SIZE", "FLAGS", "INTERNALDATE"]))
        except Exception as exc:
            raise classify(exc, Stage.SESSION) from exc
        for position, batch in _batches(todo, meta, policy):
            if deadline is not None and clock() >= deadline:
                result.remaining += len(todo) - position
                return
            try:
                bodies = self._fetch_bodies(client, batch, meta)
            except Exception as exc:
                raise classify(exc, Stage.SESSION) from exc
            for uid in batch:
                if uid not in meta or uid not in bodies:
                    # Expunged by someone else between the search and the fetch: nothing to commit.
                    state.last_uid = uid
                    continue
                item = meta[uid]
                size = int(item.get(b"RFC822.SIZE", 0))
                message = FetchedMessage(
                    raw=bodies[uid],
                    size=size,
                    folder=policy.folder,
                    uid=uid,
                    uidvalidity=uidvalidity,
                    flags=tuple(_text(f) for f in item.get(b"FLAGS", ())),
                    internal_date=item.get(b"INTERNALDATE"),
                    too_large=size > policy.max_message_bytes,
                )
                try:
                    outcome = Outcome(commit(message))
                except Exception as exc:
                    result.commit_error = exc
                    result.remaining += len(todo) - todo.index(uid)
                    with contextlib.suppress(MailError):
                        result.actions_done += self._apply_actions(client, state)
                    return
                state.last_uid = uid
                result.fetched += 1
                result.too_large += message.too_large
                if outcome == Outcome.QUARANTINED:
                    result.quarantined += 1
                    state.pending_quarantined.append(uid)
                else:
                    result.accepted += 1
                    state.pending_accepted.append(uid)
            result.actions_done += self._apply_actions(client, state)

    def _fetch_bodies(self, client, batch: list[int], meta: dict) -> dict[int, bytes]:
        limit = self.policy.max_message_bytes
        small = [uid for uid in batch if uid in meta and int(meta[uid].get(b"RFC822.SIZE", 0)) <= limit]
        large = [uid for uid in batch if uid in meta and uid not in small]
        bodies: dict[int, bytes] = {}
        if small:
            for uid, data in client.fetch(small, ["BODY.PEEK[]"]).items():
                if b"BODY[]" in data:
                    bodies[uid] = bytes(data[b"BODY[]"])
        if large:
            for uid, data in client.fetch(large, ["BODY.PEEK[HEADER]"]).items():
                if b"BODY[HEADER]" in data:
                    bodies[uid] = bytes(data[b"BODY[HEADER]"])
        return bodies

    # --- post-fetch actions -----------------------------------------------------------------

    def _apply_actions(self, client, state: ImapState) -> int:
        """Carry out the pending actions; each list is emptied once its command succeeded."""
        done = 0
        policy = self.policy
        try:
            if state.pending_accepted:
                uids = list(state.pending_accepted)
                if policy.after_fetch == AfterFetch.MOVE:
                    self._move(client, uids, policy.processed_folder or "Processed")
                elif policy.after_fetch == AfterFetch.MARK_SEEN:
                    client.add_flags(uids, [SEEN], silent=True)
                else:
                    self._delete(client, uids)
                state.pending_accepted = []
                done += len(uids)
            if state.pending_quarantined:
                uids = list(state.pending_quarantined)
                if policy.quarantine_folder:
                    self._move(client, uids, policy.quarantine_folder)
                state.pending_quarantined = []
                done += len(uids)
        except MailError:
            raise
        except Exception as exc:
            raise classify(exc, Stage.SESSION) from exc
        return done

    def _target_folder(self, client, folder: str) -> str:
        """The server's name for ``folder``, created when missing.

        Servers with a personal namespace prefix (``INBOX.`` on Courier, Cyrus and many hosting
        panels) refuse folders outside it: "Processed" becomes "INBOX.Processed" there.
        """
        if folder in self._folders_seen:
            return self._folders_seen[folder]
        candidates = [folder]
        try:
            personal = client.namespace().personal or ()
        except IMAPClientError as exc:
            if isinstance(exc, IMAPClient.AbortError):
                raise
            personal = ()
        for prefix, delimiter in personal:
            prefix = _text(prefix)
            if prefix and not folder.startswith(prefix):
                delimiter = _text(delimiter) if delimiter else ""
                candidates.append(prefix + (folder.replace("/", delimiter) if delimiter else folder))
        for candidate in candidates:
            if client.folder_exists(candidate):
                self._folders_seen[folder] = candidate
                return candidate
        if not self.policy.create_folders:
            raise MailError(ErrorKind.FOLDER_MISSING, "target folder", folder=folder)
        for candidate in candidates:
            try:
                client.create_folder(candidate)
            except IMAPClientError as exc:
                if isinstance(exc, IMAPClient.AbortError):
                    raise
                if not client.folder_exists(candidate):  # refused, not created meanwhile by someone else
                    continue
            self._folders_seen[folder] = candidate
            return candidate
        raise MailError(ErrorKind.FOLDER_MISSING, "target folder could not be created", folder=folder)

    def _move(self, client, uids: list[int], folder: str) -> None:
        folder = self._target_folder(client, folder)
        if client.has_capability("MOVE"):
            client.move(uids, folder)
            return
        client.copy(uids, folder)
        self._delete(client, uids)

    def _delete(self, client, uids: list[int]) -> None:
        client.add_flags(uids, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()


def _batches(todo: list[int], meta: dict, policy: FetchPolicy) -> Iterator[tuple[int, list[int]]]:
    """Consecutive runs of UIDs whose bodies add up to at most ``batch_bytes`` (always at least one)."""
    batch: list[int] = []
    total = 0
    start = 0
    for index, uid in enumerate(todo):
        size = int(meta.get(uid, {}).get(b"RFC822.SIZE", 0))
        cost = size if size <= policy.max_message_bytes else 4096  # headers only
        if batch and total + cost > policy.batch_bytes:
            yield start, batch
            batch, total, start = [], 0, index
        batch.append(uid)
        total += cost
    if batch:
        yield start, batch


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()
