"""Talking to mail servers: fetchers, TLS, errors in words, provider presets, a throwaway Dovecot."""

from __future__ import annotations

from plugins.inboxes.connectors.base import (
    AfterFetch,
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
from plugins.inboxes.connectors.errors import ErrorKind, MailError
from plugins.inboxes.connectors.imap import ImapFetcher, ImapState
from plugins.inboxes.connectors.pop3 import Pop3Fetcher, Pop3State

__all__ = [
    "AfterFetch",
    "ConnectionReport",
    "Credentials",
    "Endpoint",
    "ErrorKind",
    "FetchPolicy",
    "FetchResult",
    "FetchedMessage",
    "Folder",
    "ImapFetcher",
    "ImapState",
    "MailError",
    "Outcome",
    "Pop3Fetcher",
    "Pop3State",
    "Protocol",
    "Security",
    "fetcher_for",
    "new_state",
    "state_from_dict",
]


def fetcher_for(
    protocol: Protocol | str, endpoint: Endpoint, credentials: Credentials, policy: FetchPolicy | None = None
) -> ImapFetcher | Pop3Fetcher:
    """The fetcher of ``protocol`` for one mailbox."""
    cls = ImapFetcher if Protocol(protocol) == Protocol.IMAP else Pop3Fetcher
    return cls(endpoint, credentials, policy)


def new_state(protocol: Protocol | str) -> ImapState | Pop3State:
    return ImapState() if Protocol(protocol) == Protocol.IMAP else Pop3State()


def state_from_dict(protocol: Protocol | str, data: dict | None) -> ImapState | Pop3State:
    """The fetch state kept (as JSON) with a mailbox; a state of the other protocol starts afresh."""
    if Protocol(protocol) == Protocol.IMAP:
        return ImapState.from_dict(data if data and "last_uid" in data else None)
    return Pop3State.from_dict(data if data and "seen" in data else None)
