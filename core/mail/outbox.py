"""Reading the ``.eml`` files of the outbox for the operator console. They live in the named store
``outbox`` (``core.files.store``): a folder on one machine, a bucket when web and workers run on
several; names start with the UTC time they were written, so the store lists them newest first."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser

import nh3

from core.files.store import NamedStore, ObjectInfo, get_named_store

NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,200}\.eml$")
SHOWN_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID", "Content-Language")
# Sanitised HTML keeps text, structure and links; no images (they could call home), styles or scripts.
HTML_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}
# A list shows a few headers of each file: they are read from its first bytes only.
HEAD_BYTES = 64 * 1024


@dataclass
class OutboxFile:
    name: str
    size: int
    modified: datetime
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class OutboxMessage:
    file: OutboxFile
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    attachments: list[tuple[str, str, int]]


def store() -> NamedStore:
    return get_named_store("outbox")


def _summary(info: ObjectInfo, head: bytes) -> OutboxFile:
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(head)
    headers = {name: str(parsed.get(name, "")) for name in ("To", "Subject", "Date")}
    return OutboxFile(info.name, info.size, info.modified, headers)


def list_files(after: str | None = None, per_page: int = 50) -> tuple[list[OutboxFile], str | None]:
    """A page of outbox files, newest first, after the cursor ``after`` (a file name)."""
    objects, next_cursor = store().list(after if after and NAME.match(after) else None, per_page)
    objects = [info for info in objects if NAME.match(info.name)]
    heads = store().heads([info.name for info in objects], HEAD_BYTES)
    return [_summary(info, heads[info.name]) for info in objects if info.name in heads], next_cursor


def read_file(name: str) -> OutboxMessage | None:
    """One outbox file, parsed; None for a name that is not an outbox file."""
    if not NAME.match(name):
        return None
    try:
        info, data = store().get(name)
    except FileNotFoundError:
        return None
    message = email.message_from_bytes(data, policy=policy.default)
    headers = [(h, str(message[h])) for h in SHOWN_HEADERS if message[h] is not None]
    text = _content(message.get_body(("plain",)))
    html = _content(message.get_body(("html",)))
    attachments = [
        (part.get_filename() or "", part.get_content_type(), len(part.get_payload(decode=True) or b""))
        for part in message.iter_attachments()
    ]
    return OutboxMessage(
        _summary(info, data[:HEAD_BYTES]),
        headers,
        text,
        sanitise_html(html) if html is not None else None,
        attachments,
    )


def _content(part) -> str | None:
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, UnicodeError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=HTML_TAGS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
