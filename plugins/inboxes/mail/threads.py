"""Threading keys: Message-IDs, In-Reply-To/References, our own Message-IDs, and the subject tag.

A reply is matched to its request, in this order: one of its referenced ids is one of ours (signed,
so an outsider cannot forge a reference into someone else's request) or one stored with the request
(the caller's lookup), then the subject tag ``[#REQ-123]``. ``reference_chain`` gives the ids to
look up, nearest first.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_ID = re.compile(r"<([^<>\s]+)>")
_BARE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
_MAX_REFERENCES = 20  # ids kept in an outgoing References header (first one + the nearest)


def normalise_message_id(value: str | None) -> str | None:
    """``"  <Abc@Example.COM> "`` → ``"Abc@example.com"``: no brackets, domain in lower case.

    The local part is compared as it is (RFC 5322 makes it case-sensitive); only the domain folds.
    A bare ``local@domain`` without brackets is accepted; anything else gives None.
    """
    if not value:
        return None
    text = " ".join(str(value).split())
    match = _ID.search(text)
    candidate = match.group(1) if match else text.strip()
    if not _BARE_ID.match(candidate) and "@" not in candidate:
        return None
    local, _, domain = candidate.rpartition("@")
    if not local or not domain:
        return None
    return f"{local}@{domain.lower()}"


# --- the identity of a raw message -------------------------------------------------------------

_MESSAGE_ID_HEADER = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message, up to and including the first empty line."""
    ends = [(raw.find(sep), len(sep)) for sep in (b"\r\n\r\n", b"\n\n")]
    found = [(position, size) for position, size in ends if position != -1]
    if not found:
        return raw
    position, size = min(found)
    return raw[: position + size]


def synthetic_message_id(raw: bytes) -> str:
    """A Message-ID for a message without one: the same bytes always give the same id."""
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()[:32]
    return f"{digest}@synthetic.invalid"


def message_key(raw: bytes) -> str:
    """A stable identity of a raw message for de-duplication: its Message-ID, or a digest of its bytes.

    The same message read twice (a re-read after UIDVALIDITY changed, the same message in two
    mailboxes) gives the same key. ``FetchedMessage.key`` and ``ParsedMessage.key`` are this.
    """
    match = _MESSAGE_ID_HEADER.search(header_block(raw))
    if match:
        found = normalise_message_id(match.group(1).decode("ascii", "replace"))
        if found:
            return found
    return synthetic_message_id(raw)


def message_ids(value: str | None) -> list[str]:
    """Every id in an In-Reply-To or References header, in order, without repeats."""
    if not value:
        return []
    found: list[str] = []
    for raw in _ID.findall(" ".join(str(value).split())) or re.split(r"[\s,;]+", str(value)):
        normalised = normalise_message_id(raw)
        if normalised and normalised not in found:
            found.append(normalised)
    return found


def reference_chain(in_reply_to: list[str], references: list[str]) -> list[str]:
    """The ids a reply points at, nearest first: In-Reply-To, then References from the last one back."""
    chain: list[str] = []
    for candidate in [*in_reply_to, *reversed(references)]:
        if candidate not in chain:
            chain.append(candidate)
    return chain


def reply_references(parent_id: str, parent_references: list[str]) -> list[str]:
    """The References of a reply to a message: its References plus its own id, trimmed (RFC 5322 3.6.4)."""
    chain = [r for r in parent_references if r != parent_id] + [parent_id]
    if len(chain) > _MAX_REFERENCES:
        chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
    return chain


def bracket(message_id: str) -> str:
    return f"<{message_id}>"


# --- our own Message-IDs ---------------------------------------------------------------------

OWN_PREFIX = "vt"


@dataclass(frozen=True)
class OwnId:
    """What one of our Message-IDs says: which request (and which of its messages) it belongs to."""

    request_id: int
    entry_id: int | None


def _signature(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:16]


def own_message_id(domain: str, key: bytes, request_id: int, entry_id: int | None = None) -> str:
    """A Message-ID of ours (without brackets): ``vt.<request>.<entry>.<nonce>.<signature>@<domain>``.

    The signature (HMAC with ``key``, a secret of the installation) lets ``parse_own_message_id``
    trust the request number it carries; the nonce makes every id unique.
    """
    nonce = secrets.token_hex(6)
    payload = f"{OWN_PREFIX}.{int(request_id)}.{'' if entry_id is None else int(entry_id)}.{nonce}"
    return f"{payload}.{_signature(key, payload)}@{domain.lower()}"


_OWN = re.compile(rf"^({OWN_PREFIX}\.(\d+)\.(\d*)\.([0-9a-f]+))\.([0-9a-f]{{16}})@(.+)$")


def parse_own_message_id(
    message_id: str, key: bytes, domains: tuple[str, ...] | list[str] | None = None
) -> OwnId | None:
    """The request an id of ours points to; None for anyone else's id or a forged one."""
    normalised = normalise_message_id(message_id)
    if not normalised:
        return None
    match = _OWN.match(normalised)
    if not match:
        return None
    payload, request, entry, _nonce, signature, domain = match.groups()
    if domains is not None and domain not in {d.lower() for d in domains}:
        return None
    if not hmac.compare_digest(signature, _signature(key, payload)):
        return None
    return OwnId(int(request), int(entry) if entry else None)


def is_own_domain(message_id: str | None, domains: tuple[str, ...] | list[str]) -> bool:
    """Does this Message-ID end in one of our domains (a message of ours coming back: a loop)?"""
    normalised = normalise_message_id(message_id)
    if not normalised:
        return False
    domain = normalised.rpartition("@")[2]
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in domains)


# --- the subject tag ---------------------------------------------------------------------------

DEFAULT_TAG_PREFIX = "REQ"
_TAG = re.compile(r"\[#\s*([A-Za-z][A-Za-z0-9]{0,15})-(\d{1,12})\s*\]")


@dataclass(frozen=True)
class SubjectTag:
    prefix: str
    number: int

    def __str__(self) -> str:
        return format_tag(self.prefix, self.number)


def format_tag(prefix: str, number: int) -> str:
    return f"[#{prefix.upper()}-{int(number)}]"


def find_tags(subject: str | None, prefix: str | None = None) -> list[SubjectTag]:
    """Every ``[#PREFIX-123]`` in a subject (only ``prefix``'s when given), in order."""
    if not subject:
        return []
    tags = [SubjectTag(p.upper(), int(n)) for p, n in _TAG.findall(subject)]
    if prefix is not None:
        tags = [t for t in tags if t.prefix == prefix.upper()]
    return list(dict.fromkeys(tags))


def tag_subject(subject: str, prefix: str, number: int) -> str:
    """``subject`` with the tag in front, unless it already carries that tag."""
    tag = format_tag(prefix, number)
    if any(t.prefix == prefix.upper() and t.number == int(number) for t in find_tags(subject)):
        return subject
    return f"{tag} {subject}".strip()


# Reply and forward prefixes in the languages our users write: Re, Fw, Fwd, RV (es), R, I, Rif (it),
# AW, WG (de), SV, VS (nordic), TR (fr), Antw — possibly with [n] or (n) counters and colons.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|rv|r|i|rif|aw|wg|sv|vs|tr|antw|réf|ref|enc|res)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+",
    re.IGNORECASE,
)


def base_subject(subject: str | None) -> str:
    """The subject without reply/forward prefixes and tags, whitespace folded, for comparison."""
    text = " ".join((subject or "").split())
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text)
        text = _TAG.sub("", text).strip()
    return text.casefold()
