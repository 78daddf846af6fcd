"""The shapes every fetcher shares: where the server is, how to log in, what to fetch, what came back.

A fetch run hands each new message to a caller-supplied ``commit`` callback. The callback stores the
message (a request, a follow-up, or a quarantine row) and commits its transaction; only when it
returns does the fetcher move, flag or delete the message on the server. What the run has committed is
recorded in a small state object (``ImapState``/``Pop3State``) that the caller keeps between runs
(``to_dict``/``from_dict`` for a JSON column), so a run that dies half-way loses nothing and repeats
nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l

from plugins.inboxes.connectors.errors import MailError
from plugins.inboxes.mail.threads import message_key


class Protocol(enum.StrEnum):
    IMAP = "imap"
    POP3 = "pop3"


class Security(enum.StrEnum):
    SSL = "ssl"  # TLS from the first byte (993, 995, 465)
    STARTTLS = "starttls"  # plain connection upgraded before logging in (143, 110, 587)
    NONE = "none"  # nothing encrypted: only for a server on a trusted network


class AfterFetch(enum.StrEnum):
    """What happens on the server to a message once the caller has committed it."""

    MOVE = "move"  # to ``processed_folder`` (IMAP only)
    MARK_SEEN = "mark_seen"  # flag \\Seen and leave it (IMAP); POP3 leaves it and remembers its UIDL
    DELETE = "delete"


AFTER_FETCH_LABELS = {
    AfterFetch.MOVE: _l("Move to a folder"),
    AfterFetch.MARK_SEEN: _l("Mark as read"),
    AfterFetch.DELETE: _l("Delete"),
}

SECURITY_LABELS = {
    Security.SSL: _l("SSL/TLS"),
    Security.STARTTLS: _l("STARTTLS"),
    Security.NONE: _l("None (unencrypted)"),
}

DEFAULT_PORTS = {
    (Protocol.IMAP, Security.SSL): 993,
    (Protocol.IMAP, Security.STARTTLS): 143,
    (Protocol.IMAP, Security.NONE): 143,
    (Protocol.POP3, Security.SSL): 995,
    (Protocol.POP3, Security.STARTTLS): 110,
    (Protocol.POP3, Security.NONE): 110,
}

MIB = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and how to secure it.

    ``address`` is the already-checked ``(ip, port)`` to open the socket to (core's
    ``checked_address(host, port)``, which refuses private and loopback addresses unless the
    operator allows them); the TLS certificate is still verified against ``host``. Without it the
    socket goes to ``(host, port)``. ``ca_file`` (a path) or ``ca_data`` (PEM text) add trust anchors
    to the system's (a company CA, the tests' throwaway CA); ``verify_tls=False`` is the explicit,
    per-mailbox opt-out.
    """

    host: str
    port: int
    security: Security = Security.SSL
    verify_tls: bool = True
    ca_file: str | None = None
    address: tuple[str, int] | None = None
    timeout: float = 30.0
    ca_data: str | None = field(default=None, repr=False)

    @property
    def connect_to(self) -> tuple[str, int]:
        return self.address or (self.host, self.port)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:  # never the password, not even in a traceback
        return f"Credentials(username={self.username!r}, password='***')"


@dataclass(frozen=True)
class FetchPolicy:
    """What one run fetches and what it does afterwards."""

    folder: str = "INBOX"
    after_fetch: AfterFetch = AfterFetch.MOVE
    processed_folder: str | None = "Processed"  # for AfterFetch.MOVE
    quarantine_folder: str | None = None  # where quarantined messages go (IMAP); None leaves them
    max_message_bytes: int = 10 * MIB  # a larger message is handed over with its headers only
    max_messages: int = 50  # per run, oldest first: a backlog drains over several runs
    batch_bytes: int = 8 * MIB  # message bodies fetched per round trip (IMAP)
    create_folders: bool = True  # create processed/quarantine folders when missing

    def problems(self, protocol: Protocol) -> list:
        """What is wrong with this policy for ``protocol``, as translatable messages (empty: fine)."""
        found = []
        if protocol == Protocol.POP3:
            if self.after_fetch == AfterFetch.MOVE:
                found.append(_l("POP3 has no folders: choose delete or mark as read."))
            if self.folder.upper() != "INBOX":
                found.append(_l("POP3 reads only the inbox."))
        elif self.after_fetch == AfterFetch.MOVE:
            if not self.processed_folder:
                found.append(_l("Choose the folder processed messages are moved to."))
            elif self.processed_folder == self.folder:
                found.append(_l("Processed messages must go to a folder other than the one that is read."))
        if self.quarantine_folder and self.quarantine_folder == self.folder:
            found.append(_l("Quarantined messages must go to a folder other than the one that is read."))
        if self.max_message_bytes < 1024:
            found.append(_l("The maximum message size is too small."))
        if self.max_messages < 1:
            found.append(_l("At least one message must be read per run."))
        return found


class Outcome(enum.StrEnum):
    """What the caller did with a message: decides what happens to it on the server."""

    ACCEPTED = "accepted"  # stored (or already stored: a duplicate): the post-fetch action applies
    QUARANTINED = "quarantined"  # kept raw with a reason: moved to the quarantine folder, if any


@dataclass
class FetchedMessage:
    """One message handed to the caller's ``commit`` callback.

    ``raw`` is the whole message, or only its header section when ``too_large`` (its ``size`` is over
    the policy's limit: the caller quarantines it, perhaps telling the sender). ``uid``/``uidvalidity``
    (IMAP) or ``uidl`` (POP3) say where it came from; record them with the message if you like, the
    fetcher's state is what matters for the next run.
    """

    raw: bytes
    size: int
    folder: str
    uid: int | None = None
    uidvalidity: int | None = None
    uidl: str | None = None
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    too_large: bool = False

    @property
    def key(self) -> str:
        return message_key(self.raw)


CommitCallback = Callable[[FetchedMessage], Outcome]


@dataclass
class FetchResult:
    """What a run did. ``error`` is set when the run stopped early; what it committed stays committed."""

    fetched: int = 0  # handed to the callback and committed
    accepted: int = 0
    quarantined: int = 0
    too_large: int = 0
    actions_done: int = 0  # post-fetch actions carried out (this run's and earlier runs' leftovers)
    remaining: int = 0  # new messages left for the next run (over max_messages)
    uidvalidity_changed: bool = False
    error: MailError | None = None
    commit_error: BaseException | None = None  # the callback raised: the run stopped at that message

    @property
    def ok(self) -> bool:
        return self.error is None and self.commit_error is None


@dataclass(frozen=True)
class Folder:
    name: str  # decoded (IMAP modified UTF-7 already undone)
    delimiter: str | None
    flags: tuple[str, ...] = ()

    @property
    def selectable(self) -> bool:
        return "\\Noselect" not in self.flags and "\\NonExistent" not in self.flags

    @property
    def special_use(self) -> str | None:
        for flag in self.flags:
            if flag in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged"):
                return flag
        return None


@dataclass(frozen=True)
class ConnectionReport:
    """A successful connection test: logged in, opened the folder, counted."""

    protocol: Protocol
    folder: str
    messages: int
    unseen: int | None = None  # IMAP only
    size_bytes: int | None = None  # POP3 (STAT) only
    capabilities: tuple[str, ...] = ()
    tls: str | None = None  # the negotiated TLS version, None for an unencrypted connection
