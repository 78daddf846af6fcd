"""A raw message turned into what a request needs — or into a quarantine result with the reason.

``parse_message(raw)`` never raises. It returns a ``ParsedMessage`` (subject, addresses, date,
threading keys, subject tags, text and sanitised HTML bodies, attachments and inline images within
the size limits, what the automation rules found, the delivery report if it is one) or, for a message
that cannot be read reliably (malformed MIME, no headers, nested too deep, anything that raised), a
``Quarantined`` with a reason code, a translatable message and the raw bytes to keep.

Headers are decoded here rather than by the email package's header objects, which raise on some
malformed values and replace raw 8-bit bytes with U+FFFD: encoded words are decoded with the charset
fallbacks of ``mail.charsets``, adjacent words of one charset are joined before decoding (mailers
split multi-byte characters across them), and raw 8-bit headers are read as UTF-8, else Windows-1252.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email
import email.errors
import email.utils
import hashlib
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message

from flask_babel import lazy_gettext as _l

from plugins.inboxes.mail import bounces, sanitize
from plugins.inboxes.mail.automation import Automation, Kind, classify
from plugins.inboxes.mail.charsets import decode_text
from plugins.inboxes.mail.threads import (
    SubjectTag,
    find_tags,
    message_ids,
    message_key,
    normalise_message_id,
    reference_chain,
    synthetic_message_id,
)

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_attachment_bytes: int = 10 * MIB  # one attachment
    max_total_attachment_bytes: int = 25 * MIB  # all of a message's attachments together
    max_attachments: int = 100
    max_parts: int = 500  # MIME parts in all: more is a MIME bomb
    max_depth: int = 20  # multipart nesting
    max_text_chars: int = 1_000_000  # text and HTML bodies are cut beyond this


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        """For people: ``Name <address>`` (not header-encoded)."""
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def header(self) -> str:
        """For a header: the name quoted or encoded as RFC 5322 needs."""
        return email.utils.formataddr((self.name, self.email)) if self.name else self.email

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # as declared; core's files decide the real type from the content
    data: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False  # an image the HTML body shows (``cid:``)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class SkippedAttachment:
    filename: str
    content_type: str
    size: int
    reason: str  # "too_large", "total_too_large", "too_many"

    @property
    def message(self):
        return SKIP_MESSAGES[self.reason]


SKIP_MESSAGES = {
    "too_large": _l("The attachment is larger than the limit and was not kept."),
    "total_too_large": _l("The message's attachments together exceed the limit; this one was not kept."),
    "too_many": _l("The message has more attachments than the limit; this one was not kept."),
}


@dataclass
class ParsedMessage:
    key: str  # de-duplication key: equal to connectors' FetchedMessage.key for the same bytes
    message_id: str  # normalised, no brackets; synthetic (stable) when the message had none
    synthetic_id: bool
    subject: str
    from_address: Address | None
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    date: dt.datetime | None  # aware; None when missing or unreadable (use the time it arrived)
    in_reply_to: list[str]
    references: list[str]
    tags: list[SubjectTag]
    text: str  # the plain text body (made from the HTML when there is no text part)
    html: str | None  # sanitised HTML, safe to show; None when the message has no HTML part
    attachments: list[Attachment]
    inline: list[Attachment]  # images the HTML shows, by Content-ID
    skipped: list[SkippedAttachment]
    automation: Automation
    bounce: bounces.Bounce | None
    size: int
    headers_only: bool = False  # parsed from the headers of a message too large to fetch whole
    defects: list[str] = field(default_factory=list)  # tolerated MIME problems
    notes: list[str] = field(default_factory=list)  # charset guesses, cut bodies

    @property
    def thread_ids(self) -> list[str]:
        """The ids this message answers, nearest first (In-Reply-To, then References backwards)."""
        return reference_chain(self.in_reply_to, self.references)

    @property
    def reply_address(self) -> Address | None:
        """Where an answer goes: Reply-To, else From."""
        return self.reply_to[0] if self.reply_to else self.from_address

    def inline_image(self, content_id: str) -> Attachment | None:
        wanted = content_id.strip("<>")
        return next((a for a in self.inline if a.content_id == wanted), None)


QUARANTINE_MESSAGES = {
    "unreadable": _l("The message could not be read."),
    "no_headers": _l("The message has no headers (no sender, date or subject)."),
    "no_boundary": _l("The message says it has several parts but does not say where they start."),
    "boundary_not_found": _l("The message's parts could not be found: its structure is broken."),
    "too_complex": _l("The message has too many parts or is nested too deeply."),
    "too_large": _l("The message is larger than the mailbox's limit."),
}


@dataclass
class Quarantined:
    key: str
    reason: str  # a key of QUARANTINE_MESSAGES
    detail: str  # technical, for the log and the operator
    raw: bytes = field(repr=False)
    subject: str = ""
    from_address: Address | None = None
    message_id: str | None = None

    @property
    def message(self):
        return QUARANTINE_MESSAGES[self.reason]


class _Quarantine(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# --- headers ---------------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", " ")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            data = payload.encode("ascii", "ignore")
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        data = payload.replace("_", " ").encode("ascii", "ignore")
        return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)
    except (binascii.Error, ValueError):
        return None


def decode_header_value(value: str | None) -> str:
    """A header's text: encoded words and raw 8-bit bytes decoded with fallbacks, unfolded, no controls."""
    if not value:
        return ""
    value = _unfold(str(value))
    pieces: list[tuple[bytes, str | None]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        literal = value[position : match.start()]
        previous_encoded = bool(pieces) and pieces[-1][1] is not None
        if literal and not (previous_encoded and literal.isspace()):
            pieces.append((literal.encode("utf-8", "surrogateescape"), None))
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            pieces.append((match.group(0).encode("ascii", "replace"), None))
        elif pieces and pieces[-1][1] == charset and (not literal or literal.isspace()):
            pieces[-1] = (pieces[-1][0] + data, charset)
        else:
            pieces.append((data, charset))
        position = match.end()
    tail = value[position:]
    if tail:
        pieces.append((tail.encode("utf-8", "surrogateescape"), None))
    text = "".join(decode_text(data, charset).text for data, charset in pieces)
    return _CONTROL.sub("", text)


class _Headers:
    """The raw header values of a message, by lower-case name (never through header objects)."""

    def __init__(self, message: Message) -> None:
        self.raw: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self.raw.setdefault(name.strip().lower(), []).append(str(value))

    def all_raw(self, name: str) -> list[str]:
        return self.raw.get(name.lower(), [])

    def first_raw(self, name: str) -> str | None:
        values = self.all_raw(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [decode_header_value(v) for v in self.all_raw(name)]

    def first(self, name: str) -> str:
        return decode_header_value(self.first_raw(name))

    def addresses(self, *names: str) -> list[Address]:
        values = [_unfold(v) for name in names for v in self.all_raw(name)]
        found: list[Address] = []
        for display, address in email.utils.getaddresses(values):
            address = decode_header_value(address).strip().strip("<>")
            if "@" not in address or any(ch.isspace() for ch in address):
                continue
            local, _, domain = address.rpartition("@")
            entry = Address(" ".join(decode_header_value(display).split()).strip("\"' "), f"{local}@{domain.lower()}")
            if entry not in found:
                found.append(entry)
        return found


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(_unfold(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


# --- parts ---------------------------------------------------------------------------------------

_FATAL_DEFECTS = {
    email.errors.NoBoundaryInMultipartDefect: "no_boundary",
    email.errors.StartBoundaryNotFoundDefect: "boundary_not_found",
}


def _walk(part: Message, depth: int, limits: Limits, counter: list[int]) -> Iterator[Message]:
    """Every leaf part, depth first, without entering attached messages (they are attachments)."""
    counter[0] += 1
    if counter[0] > limits.max_parts:
        raise _Quarantine("too_complex", f"more than {limits.max_parts} parts")
    if depth > limits.max_depth:
        raise _Quarantine("too_complex", f"nested deeper than {limits.max_depth}")
    for defect in part.defects:
        for cls, reason in _FATAL_DEFECTS.items():
            if isinstance(defect, cls):
                raise _Quarantine(reason, type(defect).__name__)
    payload = part.get_payload()
    if part.get_content_maintype() == "multipart":
        if not isinstance(payload, list):
            raise _Quarantine("boundary_not_found", "multipart without parts")
        for child in payload:
            yield from _walk(child, depth + 1, limits, counter)
        return
    yield part


def _charset(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
    except Exception:
        return None
    if isinstance(value, tuple):  # RFC 2231
        value = email.utils.collapse_rfc2231_value(value)
    return str(value) if value else None


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, list):  # message/rfc822: its own bytes
            return b"".join(p.as_bytes() for p in payload if isinstance(p, Message))
        return str(payload or "").encode("utf-8", "surrogateescape")
    return data


def _disposition(part: Message) -> str:
    value = part.get("Content-Disposition")
    return str(value).split(";", 1)[0].strip().lower() if value else ""


_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def _filename(part: Message, index: int, content_type: str) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:
        name = ""
    if isinstance(name, tuple):
        name = email.utils.collapse_rfc2231_value(name)
    name = decode_header_value(str(name))
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")[:200]
    if name:
        return name
    if content_type in ("message/rfc822", "message/global"):
        return f"message-{index}.eml"
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return f"attachment-{index}{extension}"


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if not value:
        return None
    cid = _unfold(str(value)).strip().strip("<>").strip()
    return cid or None


# Machine-readable parts of reports: what they say is in ``ParsedMessage.bounce``, they are not files.
_REPORT_PARTS = {
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "text/rfc822-headers",
    "message/global-headers",
}

# --- the parser ----------------------------------------------------------------------------------


def parse_message(
    raw: bytes,
    *,
    limits: Limits | None = None,
    own_domains: tuple[str, ...] = (),
    loop_token: str | None = None,
    tag_prefix: str | None = None,
    allow_remote_images: bool = False,
    headers_only: bool = False,
) -> ParsedMessage | Quarantined:
    """Parse ``raw``; never raises. ``headers_only``: ``raw`` is the header section of a message too large
    to fetch whole (its bodies and attachments are absent)."""
    limits = limits or Limits()
    key = message_key(raw)
    try:
        message = email.message_from_bytes(raw, policy=policy.compat32)
        headers = _Headers(message)
    except Exception as exc:  # the email package is lenient; anything that still raises is unreadable
        return Quarantined(key, "unreadable", type(exc).__name__, raw)
    try:
        return _parse(
            raw, key, message, headers, limits, own_domains, loop_token, tag_prefix, allow_remote_images, headers_only
        )
    except _Quarantine as problem:
        return _quarantined(raw, key, headers, problem.reason, problem.detail)
    except Exception as exc:
        return _quarantined(raw, key, headers, "unreadable", f"{type(exc).__name__}: {exc}"[:300])


def _quarantined(raw: bytes, key: str, headers: _Headers, reason: str, detail: str) -> Quarantined:
    try:
        subject = " ".join(headers.first("Subject").split())
        sender = next(iter(headers.addresses("From")), None)
        message_id = normalise_message_id(headers.first_raw("Message-ID"))
    except Exception:
        subject, sender, message_id = "", None, None
    return Quarantined(key, reason, detail, raw, subject, sender, message_id)


def _parse(raw, key, message, headers, limits, own_domains, loop_token, tag_prefix, allow_remote_images, headers_only):
    if not any(headers.all_raw(n) for n in ("from", "date", "subject", "message-id", "to")):
        raise _Quarantine("no_headers", ", ".join(type(d).__name__ for d in message.defects) or "no known header")

    subject = " ".join(headers.first("Subject").split())
    from_list = headers.addresses("From") or headers.addresses("Sender")
    from_address = from_list[0] if from_list else None
    message_id = normalise_message_id(headers.first_raw("Message-ID"))
    defects: list[str] = []
    notes: list[str] = []

    text_parts: list[str] = []
    html_parts: list[str] = []
    candidates: list[tuple[Message, str]] = []  # (part, content type) of would-be attachments
    if not headers_only:
        counter = [0]
        for part in _walk(message, 0, limits, counter):
            defects.extend(type(d).__name__ for d in part.defects)
            content_type = part.get_content_type()
            disposition = _disposition(part)
            named = bool(part.get_param("name") or part.get_param("filename", header="content-disposition"))
            if content_type in ("text/plain", "text/html") and disposition != "attachment" and not named:
                decoded = decode_text(_payload(part), _charset(part))
                if decoded.note:
                    notes.append(decoded.note)
                (text_parts if content_type == "text/plain" else html_parts).append(decoded.text)
            elif content_type in _REPORT_PARTS:
                continue  # read by the bounce parser, not a file for the request
            else:
                candidates.append((part, content_type))
        defects.extend(type(d).__name__ for d in message.defects if type(d).__name__ not in defects)

    text = "\n\n".join(t.strip("\r\n") for t in text_parts if t.strip())
    raw_html = "\n".join(html_parts)
    if len(raw_html) > limits.max_text_chars:
        raw_html = raw_html[: limits.max_text_chars]
        notes.append("HTML body cut at the size limit")
    html = sanitize.sanitize_html(raw_html, allow_remote_images=allow_remote_images) if raw_html.strip() else None
    if not text and raw_html.strip():
        text = sanitize.html_to_text(raw_html)
    if len(text) > limits.max_text_chars:
        text = text[: limits.max_text_chars]
        notes.append("text body cut at the size limit")

    referenced = sanitize.cid_references(html or "")
    attachments: list[Attachment] = []
    inline: list[Attachment] = []
    skipped: list[SkippedAttachment] = []
    total = 0
    for index, (part, content_type) in enumerate(candidates, start=1):
        data = _payload(part)
        name = _filename(part, index, content_type)
        content_id = _content_id(part)
        if len(data) > limits.max_attachment_bytes:
            skipped.append(SkippedAttachment(name, content_type, len(data), "too_large"))
            continue
        if len(attachments) + len(inline) >= limits.max_attachments:
            skipped.append(SkippedAttachment(name, content_type, len(data), "too_many"))
            continue
        if total + len(data) > limits.max_total_attachment_bytes:
            skipped.append(SkippedAttachment(name, content_type, len(data), "total_too_large"))
            continue
        total += len(data)
        is_inline = content_id is not None and content_id in referenced
        item = Attachment(name, content_type, data, content_id, is_inline)
        (inline if is_inline else attachments).append(item)

    automation = classify(
        headers.all,
        from_address=from_address.email if from_address else None,
        subject=subject,
        content_type=message.get_content_type(),
        report_type=message.get_param("report-type") if message.get_content_type() == "multipart/report" else None,
        own_domains=own_domains,
        loop_token=loop_token,
    )
    bounce = None
    if automation.kind == Kind.BOUNCE:
        bounce = bounces.parse_report(message) or bounces.guess_bounce(message, text)

    return ParsedMessage(
        key=key,
        message_id=message_id or synthetic_message_id(raw),
        synthetic_id=message_id is None,
        subject=subject,
        from_address=from_address,
        reply_to=headers.addresses("Reply-To"),
        to=headers.addresses("To"),
        cc=headers.addresses("Cc"),
        date=_date(headers.first_raw("Date")),
        in_reply_to=message_ids(headers.first_raw("In-Reply-To")),
        references=message_ids(" ".join(headers.all_raw("References"))),
        tags=find_tags(subject, tag_prefix),
        text=text,
        html=html,
        attachments=attachments,
        inline=inline,
        skipped=skipped,
        automation=automation,
        bounce=bounce,
        size=len(raw),
        headers_only=headers_only,
        defects=sorted(set(defects)),
        notes=list(dict.fromkeys(notes)),
    )


def parse_fetched(fetched, **options) -> ParsedMessage | Quarantined:
    """Parse a ``connectors`` ``FetchedMessage``. One too large to fetch whole is quarantined as such,
    with what its headers say (the caller may still tell the sender)."""
    if not fetched.too_large:
        return parse_message(fetched.raw, **options)
    headers = parse_message(fetched.raw, headers_only=True, **options)
    message_id = headers.message_id if isinstance(headers, ParsedMessage) and not headers.synthetic_id else None
    return Quarantined(
        message_key(fetched.raw),
        "too_large",
        f"{fetched.size} bytes",
        fetched.raw,
        headers.subject,
        headers.from_address,
        message_id,
    )
