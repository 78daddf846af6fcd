"""Delivery reports: which of our messages could not be delivered, to whom, and why.

A standard report (RFC 3464: ``multipart/report; report-type=delivery-status``) carries a
``message/delivery-status`` part — per recipient: Final-Recipient, Action, Status (``5.1.1``),
Diagnostic-Code — and the original message or its headers, whose Message-ID says which outbound
message failed. Older mailers send a plain mail from MAILER-DAEMON quoting the original: then the
attached or quoted headers are searched for the Message-ID (``standard=False``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from plugins.inboxes.mail.threads import normalise_message_id


class Action(enum.StrEnum):
    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str  # the address (the "rfc822;" type removed)
    action: Action
    status: str | None  # "5.1.1"
    diagnostic: str | None  # the remote server's words: show to staff as data, never as our message

    @property
    def permanent(self) -> bool:
        return self.action == Action.FAILED or (self.status or "").startswith("5")


@dataclass(frozen=True)
class Bounce:
    original_message_id: str | None  # normalised, no brackets
    recipients: tuple[RecipientStatus, ...] = field(default_factory=tuple)
    standard: bool = True  # a RFC 3464 report, not a guess from a mailer-daemon's prose
    reporting_mta: str | None = None

    @property
    def failed(self) -> bool:
        """Did delivery fail for good (to at least one recipient)? Delays are not failures."""
        if not self.recipients:
            return not self.standard  # a mailer-daemon's prose message: a failure
        return any(r.permanent for r in self.recipients)

    @property
    def status(self) -> str | None:
        return next((r.status for r in self.recipients if r.status), None)


_TYPE_PREFIX = re.compile(r"^\s*[a-z0-9-]+\s*;\s*", re.IGNORECASE)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_QUOTED_ID = re.compile(r"^\s*>?\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _field(block: Message, name: str) -> str | None:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else None


def _status_blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (the email package parses them as messages)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # Some mailers send it base64-encoded or as text: parse the blocks ourselves.
    text = part.get_payload(decode=True) or b""
    blocks = re.split(r"\r?\n\s*\r?\n", text.decode("utf-8", "replace"))
    return [HeaderParser().parsestr(block.strip() + "\n") for block in blocks if block.strip()]


def _original_headers(part: Message) -> Message | None:
    content_type = part.get_content_type()
    if content_type in ("message/rfc822", "message/global"):
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        data = part.get_payload(decode=True) or b""
        return HeaderParser().parsestr(data.decode("utf-8", "replace"))
    if content_type in ("text/rfc822-headers", "message/global-headers"):
        data = part.get_payload(decode=True) or b""
        return HeaderParser().parsestr(data.decode("utf-8", "replace"))
    return None


def parse_report(message: Message) -> Bounce | None:
    """A RFC 3464 delivery report's findings; None when ``message`` is not one."""
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipients: list[RecipientStatus] = []
    reporting_mta = None
    original: str | None = None
    for part in message.get_payload() if isinstance(message.get_payload(), list) else []:
        content_type = part.get_content_type()
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            blocks = _status_blocks(part)
            for index, block in enumerate(blocks):
                if index == 0 and block.get("Final-Recipient") is None:
                    reporting_mta = _TYPE_PREFIX.sub("", _field(block, "Reporting-MTA") or "") or None
                    continue
                recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient") or ""
                action = (_field(block, "Action") or "").lower()
                status = _STATUS.search(_field(block, "Status") or "")
                recipients.append(
                    RecipientStatus(
                        recipient=_TYPE_PREFIX.sub("", recipient).strip("<> ").lower(),
                        action=Action(action) if action in Action.__members__.values() else Action.UNKNOWN,
                        status=status.group(1) if status else None,
                        diagnostic=_TYPE_PREFIX.sub("", _field(block, "Diagnostic-Code") or "") or None,
                    )
                )
        else:
            headers = _original_headers(part)
            if headers is not None and original is None:
                original = normalise_message_id(headers.get("Message-ID"))
    return Bounce(original, tuple(recipients), standard=True, reporting_mta=reporting_mta)


def guess_bounce(message: Message, body_text: str) -> Bounce:
    """A non-standard bounce (from a mailer-daemon): the original's Message-ID from an attached copy or the text."""
    original = None
    for part in message.walk():
        headers = _original_headers(part) if part is not message else None
        if headers is not None and headers.get("Message-ID"):
            original = normalise_message_id(headers.get("Message-ID"))
            break
    if original is None:
        match = _QUOTED_ID.search(body_text or "")
        if match:
            original = normalise_message_id(match.group(1))
    status = _STATUS.search(body_text or "")
    recipients = ()
    if status:
        recipients = (
            RecipientStatus("", Action.FAILED if status.group(1)[0] == "5" else Action.DELAYED, status.group(1), None),
        )
    return Bounce(original, recipients, standard=False)
