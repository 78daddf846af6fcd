"""Our own messages, built so that replies thread back and robots do not answer them.

``build_message(draft)`` makes the MIME message of an ``OutboundDraft``: our Message-ID on the
installation's domain (signed with ``threads.own_message_id`` when it belongs to a request), the
subject tag, In-Reply-To/References when it answers a message, and on automatic messages
``Auto-Submitted`` (RFC 3834) plus ``X-Auto-Response-Suppress`` and our ``X-Loop`` token, which other
systems (Exchange, Zammad, osTicket...) and our own ``automation`` rules honour. ``extra_headers`` gives
the same headers as pairs, for an outbox that builds the MIME itself.
"""

from __future__ import annotations

import datetime as dt
import enum
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from plugins.inboxes.mail.threads import bracket, normalise_message_id, own_message_id, reply_references, tag_subject


class Automatic(enum.StrEnum):
    AUTO_REPLIED = "auto-replied"  # an automatic answer to a message (acknowledgement of a new request)
    AUTO_GENERATED = "auto-generated"  # started by the system (a workflow step's notice)


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None = None

    @property
    def mime_type(self) -> str:
        return self.content_type or mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


@dataclass(frozen=True)
class ThreadContext:
    """The message being answered: its id and its References."""

    message_id: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundDraft:
    from_address: str  # "Name <addr>" or an address: the mailbox's sender
    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    cc: Sequence[str] = ()
    reply_to: str | None = None
    message_id: str | None = None  # without brackets; made on ``domain`` when None
    domain: str = "ventanilla.localhost"
    request_id: int | None = None  # with ``signing_key``: our id carries the request (threads back)
    entry_id: int | None = None
    signing_key: bytes | None = None
    tag_prefix: str | None = None  # with ``request_number``: the subject tag [#PREFIX-number]
    request_number: int | None = None
    replying_to: ThreadContext | None = None
    automatic: Automatic | None = None
    loop_token: str | None = None  # our X-Loop value (recognised by ``automation`` as a loop)
    language: str | None = None
    attachments: Sequence[OutboundAttachment] = ()
    date: dt.datetime | None = None


def draft_message_id(draft: OutboundDraft) -> str:
    """The Message-ID (without brackets) the draft will carry."""
    if draft.message_id:
        return normalise_message_id(draft.message_id) or draft.message_id.strip("<>")
    if draft.request_id is not None and draft.signing_key:
        return own_message_id(draft.domain, draft.signing_key, draft.request_id, draft.entry_id)
    return make_msgid(domain=draft.domain).strip("<>")


def draft_subject(draft: OutboundDraft) -> str:
    subject = " ".join(draft.subject.split())
    if draft.tag_prefix and draft.request_number is not None:
        subject = tag_subject(subject, draft.tag_prefix, draft.request_number)
    return subject


def extra_headers(draft: OutboundDraft) -> list[tuple[str, str]]:
    """Threading and automation headers of the draft, as (name, value) pairs."""
    found: list[tuple[str, str]] = []
    if draft.replying_to is not None:
        parent = normalise_message_id(draft.replying_to.message_id) or draft.replying_to.message_id.strip("<>")
        found.append(("In-Reply-To", bracket(parent)))
        chain = reply_references(parent, [r for r in draft.replying_to.references if r])
        found.append(("References", " ".join(bracket(r) for r in chain)))
    if draft.automatic is not None:
        found.append(("Auto-Submitted", str(draft.automatic)))
        found.append(("X-Auto-Response-Suppress", "All"))
        if draft.loop_token:
            found.append(("X-Loop", draft.loop_token))
    return found


def build_message(draft: OutboundDraft) -> EmailMessage:
    """The MIME message of ``draft`` (text, optional HTML alternative, attachments)."""
    if not draft.to and not draft.cc:
        raise ValueError("a message needs at least one recipient")
    message = EmailMessage()
    message["From"] = draft.from_address
    if draft.to:
        message["To"] = ", ".join(draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    if draft.reply_to:
        message["Reply-To"] = draft.reply_to
    message["Subject"] = draft_subject(draft)
    message["Date"] = format_datetime(draft.date or dt.datetime.now(dt.UTC))
    message["Message-ID"] = bracket(draft_message_id(draft))
    for name, value in extra_headers(draft):
        message[name] = value
    message.set_content(draft.text)
    if draft.html:
        message.add_alternative(draft.html, subtype="html")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    if draft.language:
        message["Content-Language"] = draft.language  # last: set_content() reorders Content-* headers
    return message
