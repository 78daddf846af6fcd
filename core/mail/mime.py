"""An outbox message as the bytes that go to the server (RFC 5322 headers, a MIME body), written in
one pass.

``email.message.EmailMessage`` with its default policy parses every header it is given and folds
them all again when flattened: about 3 ms a message on an idle core, more than the SMTP exchange
on loopback, and the largest cost of a delivery job (``bench/mail_volume.py``). Our messages have
one fixed shape, so they are written directly, to the same rules: headers folded at 78 columns,
non-ASCII words as RFC 2047 encoded words (raw UTF-8 only in a message that needs SMTPUTF8),
bodies as 7bit when ASCII with short lines and quoted-printable otherwise, attachments in base64
with RFC 2231 file names. Bodies and attachments are never 8-bit, so any server takes them
without 8BITMIME. A line break inside a header value, an address that does not parse or an extra
header that repeats one of ours raises ``ValueError``: the message fails for good, unsent.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
from dataclasses import dataclass
from email.charset import Charset
from email.header import Header
from email.utils import format_datetime, getaddresses
from urllib.parse import quote

LINE = 78
# RFC 5322's hard limit on a line, without its CRLF.
MAX_LINE = 998
_UTF8 = Charset("utf-8")
_HEADER_NAME = re.compile(r"[!-9;-~]+")
# A bare address, as most are: no need for the full parser (a fifth of a millisecond each).
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
# Headers written from the message's own fields: its extra headers may not set them again.
_OWN_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version"}


@dataclass(frozen=True)
class Outgoing:
    """A rendered message and its envelope."""

    data: bytes  # CRLF line ends
    envelope_from: str
    recipients: list[str]
    # An address is not ASCII: only a server that offers SMTPUTF8 may take it.
    smtputf8: bool

    def file_bytes(self) -> bytes:
        """The message as an ``.eml`` file: the platform's line ends."""
        return self.data.replace(b"\r\n", b"\n")


def render(message, sender: str, *, with_bcc: bool = False) -> Outgoing:
    """``message`` (an ``OutboundMessage``) from ``sender``; blind copies become a Bcc header only
    ``with_bcc`` (an outbox file, which has no envelope)."""
    fields = {
        "From": [sender],
        "To": list(message.to_addresses),
        "Cc": list(message.cc_addresses or ()),
        "Bcc": list(message.bcc_addresses or ()) if with_bcc else [],
        "Reply-To": [message.reply_to] if message.reply_to else [],
    }
    mailboxes = {name: _mailboxes(name, entries) for name, entries in fields.items() if entries}
    recipients = [addr for _display, addr in _mailboxes("envelope", list(message.recipients))]
    addresses = [addr for pairs in mailboxes.values() for _display, addr in pairs] + recipients
    utf8 = not all(address.isascii() for address in addresses)
    lines = [_address_header(name, pairs) for name, pairs in mailboxes.items()]
    lines.append(_unstructured("Subject", message.subject, utf8))
    lines.append(_plain("Date", format_datetime(message.created_at), utf8))
    lines.append(_plain("Message-ID", message.message_id, utf8))
    extra = dict(message.headers or {})
    lines.append(_unstructured("Auto-Submitted", extra.pop("Auto-Submitted", "auto-generated"), utf8))
    for name, value in extra.items():
        if not _HEADER_NAME.fullmatch(name) or name.lower() in _OWN_HEADERS or name.lower().startswith("content-"):
            raise ValueError(f"{name!r} cannot be an extra header")
        lines.append(_unstructured(name, value, utf8))
    if message.language:
        lines.append(_plain("Content-Language", message.language, utf8))
    lines.append("MIME-Version: 1.0")
    body = _text_part(message.text_body, "plain")
    if message.html_body:
        body = _multipart("alternative", [body, _text_part(message.html_body, "html")])
    if message.attachments:
        body = _multipart("mixed", [body, *map(_attachment_part, message.attachments)])
    head = "\r\n".join(lines).encode("utf-8" if utf8 else "ascii") + b"\r\n"
    return Outgoing(head + body, mailboxes["From"][0][1], recipients, utf8)


# --- headers -------------------------------------------------------------------------------


def _check(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"a line break in the {name} header")
    return value


def _plain(name: str, value: str, utf8: bool) -> str:
    """A header that is one token (a date, a Message-ID, a language): written as it is."""
    _check(name, value)
    if not (utf8 or value.isascii()):
        raise ValueError(f"the {name} header is not ASCII")
    return f"{name}: {value}"


def _fold(name: str, words: list[str], separator: str) -> str | None:
    """``name: words`` joined by ``separator``, a new line before a word that would pass column 78;
    None when a word alone is too long for a line."""
    lines, line = [], f"{name}:"
    for position, word in enumerate(words):
        piece = (separator if position else " ") + word
        if position and len(line) + len(piece) > LINE:
            lines.append(line + separator.rstrip())
            line = " " + word
        else:
            line += piece
        if len(line) > MAX_LINE:
            return None
    lines.append(line)
    return "\r\n".join(lines)


def _unstructured(name: str, value: str, utf8: bool) -> str:
    """Free text (a subject): folded between words; encoded words when it is not ASCII, or when it
    looks like one (so that a reader shows what was written, not its decoding)."""
    _check(name, value)
    if (utf8 or value.isascii()) and "=?" not in value:
        folded = _fold(name, value.split(" "), " ")
        if folded is not None:
            return folded
    return f"{name}: " + Header(value, _UTF8, header_name=name).encode(linesep="\r\n")


def _mailboxes(name: str, entries: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for entry in entries:
        _check(name, entry)
        if _BARE_ADDRESS.fullmatch(entry):
            pairs.append(("", entry))
            continue
        parsed = _parse(entry)
        if not parsed:
            raise ValueError(f"not an e-mail address in the {name} header: {entry!r}")
        pairs += parsed
    return pairs


@functools.lru_cache(maxsize=256)
def _parse(entry: str) -> tuple[tuple[str, str], ...]:
    """The mailboxes of ``entry``, none if any does not parse. Cached: the sender, with its name,
    is the same for every message of a batch."""
    pairs = tuple(getaddresses([entry]))
    return pairs if all(addr and "@" in addr for _display, addr in pairs) else ()


def _mailbox(display: str, addr: str) -> str:
    """As ``email.utils.formataddr``, which refuses an address that is not ASCII (SMTPUTF8)."""
    if not display:
        return addr
    if not display.isascii():
        display = _UTF8.header_encode(display)
    elif _SPECIALS.search(display):
        display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{display} <{addr}>"


def _address_header(name: str, pairs: list[tuple[str, str]]) -> str:
    folded = _fold(name, [_mailbox(display, addr) for display, addr in pairs], ", ")
    if folded is None:
        raise ValueError(f"an address too long for one line in the {name} header")
    return folded


# --- body ----------------------------------------------------------------------------------


def _text_part(text: str, subtype: str) -> bytes:
    # Line ends normalised and a final one added, as EmailMessage.set_content() does.
    lines = text.encode("utf-8").splitlines()
    data = b"\n".join(lines) + b"\n"
    if data.isascii() and max(map(len, lines), default=0) <= LINE:
        encoding = "7bit"
    else:
        encoding, data = "quoted-printable", binascii.b2a_qp(data, istext=True)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode("ascii") + data.replace(b"\n", b"\r\n")


def _filename(name: str) -> str:
    name = " ".join(name.split()) or "attachment"
    if name.isascii() and name.isprintable():
        return 'filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "filename*=utf-8''" + quote(name, safe="")


def _attachment_part(attachment) -> bytes:
    content_type = (attachment.content_type or "").split(";")[0].strip()
    if not _CONTENT_TYPE.fullmatch(content_type):
        content_type = "application/octet-stream"
    head = (
        f"Content-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment;\r\n {_filename(attachment.filename)}\r\n\r\n"
    )
    return head.encode("ascii") + base64.encodebytes(bytes(attachment.data)).replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    # "=_" cannot occur in quoted-printable or base64 text, and 7bit parts would need the 128
    # random bits too.
    boundary = ("=_" + secrets.token_hex(16)).encode("ascii")
    out = [b"Content-Type: multipart/" + subtype.encode("ascii") + b';\r\n boundary="' + boundary + b'"\r\n\r\n']
    for part in parts:
        out += [b"--", boundary, b"\r\n", part, b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)
