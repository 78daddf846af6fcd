"""Our messages: which outbound mailbox carries them, and storing them in core's outbox.

Resolution (a flow step's message configuration, or the flow's for staff replies):
*Específica* → the contract's *Bandeja de Salida* (when it is active) → the system's default
outbound mailbox (a Salida marked default) → core's own default (the tenant's SMTP server, else the
platform's, else an .eml file in the outbox folder): with nothing linked, mail keeps leaving.

A message is stored with ``transport="inboxes:<mailbox id>"`` (or none, for core's default) and the
mailbox's sender; core's ``mail``-queue job delivers it, asking ``transport_for`` (the
``mail_transport`` hook) for the SMTP server. A mailbox switched off or without its password meanwhile
answers None: the delivery fails visibly (in the request's thread and the outbox) and is retried with
back-off until the mailbox is fixed, never silently rerouted through another sender.

Every message carries our own Message-ID (``mail.threads.own_message_id``: signed, it names the
request) and the subject tag, so an answer threads back; automatic ones (flow steps) also carry
``Auto-Submitted``, ``X-Auto-Response-Suppress`` and our ``X-Loop``, and a person's reply
``Auto-Submitted: no``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import select

from core.api import SmtpSettings, current_tenant, db, send_composed_email
from plugins.inboxes.mail.outbound import (
    Automatic,
    OutboundDraft,
    ThreadContext,
    draft_message_id,
    draft_subject,
    extra_headers,
)
from plugins.inboxes.mail.threads import DEFAULT_TAG_PREFIX, bracket
from plugins.inboxes.mailboxes import default_outbound, message_domain, sender_of
from plugins.inboxes.models import (
    IN,
    OUT,
    OUTBOUND,
    SPECIFIC,
    Contract,
    Mailbox,
    Request,
    RequestMessage,
)

PLUGIN_TRANSPORT = "inboxes"
LOOP_TOKEN = "ventanilla-inboxes"
TAG_PREFIX = DEFAULT_TAG_PREFIX


def signing_key() -> bytes:
    """The key of our Message-IDs' signatures, derived from the application's secret key."""
    secret = current_app.secret_key or ""
    secret = secret.encode() if isinstance(secret, str) else bytes(secret)
    return hmac.new(secret, b"ventanilla.inboxes.message-id", hashlib.sha256).digest()


def transport_key(mailbox: Mailbox | None) -> str | None:
    return f"{PLUGIN_TRANSPORT}:{mailbox.id}" if mailbox is not None else None


def transport_for(key: str) -> SmtpSettings | None:
    """The ``mail_transport`` answer: the SMTP server of outbound mailbox ``key`` (its id), or None.

    ``source="inboxes"``: a server the tenant typed, which core's delivery connects to at its checked
    address (``checked_address``), verifying TLS against its name. The password goes only with its
    own host.
    """
    try:
        mailbox = db.session.get(Mailbox, int(key))
    except (TypeError, ValueError):
        return None
    if mailbox is None or mailbox.direction != OUTBOUND or not mailbox.active or not mailbox.host:
        return None
    if mailbox.use_auth and mailbox.password is None:
        return None
    return SmtpSettings(
        host=mailbox.host,
        port=int(mailbox.port),
        security=mailbox.security,
        username=mailbox.username if mailbox.use_auth else None,
        password=mailbox.password if mailbox.use_auth else None,
        from_address=sender_of(mailbox),
        source="inboxes",
    )


def resolve_mailbox(contract: Contract | None, mode: str) -> Mailbox | None:
    """The outbound mailbox a message leaves through; None means core's default transport."""
    if mode == SPECIFIC and contract is not None and contract.outbound_mailbox_id is not None:
        mailbox = contract.outbound_mailbox
        if mailbox is not None and mailbox.active:
            return mailbox
    return default_outbound()


def html_of(text: str) -> str:
    """The HTML alternative of a plain text: the same words, paragraphs and line breaks kept."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f'<div style="font-family:sans-serif;font-size:14px;line-height:1.5">{body}</div>'


def replying_to(request: Request) -> ThreadContext | None:
    """The message a new message of the request answers: the last one that came in."""
    last = db.session.scalar(
        select(RequestMessage)
        .where(RequestMessage.request_id == request.id, RequestMessage.direction == IN)
        .order_by(RequestMessage.id.desc())
        .limit(1)
    )
    if last is None:
        return None
    return ThreadContext(last.message_id, tuple(last.references or ()))


def send_request_message(
    request: Request,
    *,
    to: Sequence[str],
    subject: str,
    text: str,
    mode: str,
    origin: str,
    automatic: Automatic | None = None,
    cc: Sequence[str] = (),
    author_id: int | None = None,
    attachments: Sequence = (),
    locale: str = "",
) -> RequestMessage:
    """Store a message of ``request`` in core's outbox (not committed: the caller commits it together
    with what caused it) and in the request's thread."""
    tenant = current_tenant()
    mailbox = resolve_mailbox(request.contract, mode)
    thread = replying_to(request)
    draft = OutboundDraft(
        from_address=sender_of(mailbox) if mailbox else "",
        to=list(to),
        cc=list(cc),
        subject=subject,
        text=text,
        domain=message_domain(),
        request_id=request.id,
        signing_key=signing_key(),
        tag_prefix=TAG_PREFIX,
        request_number=request.id,
        replying_to=thread,
        automatic=automatic,
        loop_token=LOOP_TOKEN,
    )
    message_id = draft_message_id(draft)
    headers = dict(extra_headers(draft))
    if automatic is None:
        headers["Auto-Submitted"] = "no"  # a person wrote it (core's default is auto-generated)
    subject_line = draft_subject(draft)
    stored = send_composed_email(
        tenant,
        list(to),
        subject_line,
        text,
        html_of(text),
        attachments,
        locale=locale,
        cc=list(cc),
        sender=sender_of(mailbox) if mailbox else None,
        commit=False,
        transport=transport_key(mailbox),
        headers=headers,
        message_id=bracket(message_id),
    )
    entry = RequestMessage(
        request_id=request.id,
        direction=OUT,
        origin=origin,
        mailbox_id=mailbox.id if mailbox else None,
        message_key=message_id,
        message_id=message_id,
        in_reply_to=[thread.message_id] if thread else [],
        references=[r.strip("<>") for r in headers.get("References", "").split() if r],
        from_address=mailbox.sender_address if mailbox else "",
        from_name=mailbox.sender_name if mailbox else "",
        to_addresses=list(to),
        cc_addresses=list(cc),
        subject=subject_line,
        text_body=text,
        author_id=author_id,
        automation=str(automatic) if automatic else None,
        outbound_id=stored.id,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
