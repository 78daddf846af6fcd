"""Reading the ``.eml`` files of the outbox folder for the operator console."""

from __future__ import annotations

import email
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

import nh3
from flask import current_app

NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,200}\.eml$")
SHOWN_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID", "Content-Language")
# Sanitised HTML keeps text, structure and links; no images (they could call home), styles or scripts.
HTML_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}


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


def _folder() -> Path:
    return Path(current_app.config["OUTBOX_DIR"])


def _summary(path: Path) -> OutboxFile:
    stat = path.stat()
    with path.open("rb") as handle:
        parsed = BytesHeaderParser(policy=policy.default).parse(handle)
    headers = {name: str(parsed.get(name, "")) for name in ("To", "Subject", "Date")}
    return OutboxFile(path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC), headers)


def list_files(after: str | None = None, per_page: int = 50) -> tuple[list[OutboxFile], str | None]:
    """A page of outbox files, newest first (their names start with the UTC time they were written)."""
    folder = _folder()
    if not folder.is_dir():
        return [], None
    names = sorted((e.name for e in os.scandir(folder) if e.is_file() and NAME.match(e.name)), reverse=True)
    if after:
        names = [name for name in names if name < after]
    page = names[:per_page]
    next_cursor = page[-1] if len(names) > per_page else None
    return [_summary(folder / name) for name in page], next_cursor


def read_file(name: str) -> OutboxMessage | None:
    """One outbox file, parsed; None for a name that is not an outbox file."""
    if not NAME.match(name):
        return None
    path = _folder() / name
    if not path.is_file():
        return None
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    headers = [(h, str(message[h])) for h in SHOWN_HEADERS if message[h] is not None]
    text = _content(message.get_body(("plain",)))
    html = _content(message.get_body(("html",)))
    attachments = [
        (part.get_filename() or "", part.get_content_type(), len(part.get_payload(decode=True) or b""))
        for part in message.iter_attachments()
    ]
    return OutboxMessage(
        _summary(path),
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
