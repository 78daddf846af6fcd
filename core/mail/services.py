"""Outbound e-mail: rendered in the recipient's language, stored in the outbox, delivered by a job.

``send_email`` renders the message and adds an ``OutboundMessage`` row to the caller's
transaction; once that transaction commits, a ``mail``-queue job delivers it (see
``core.mail.delivery``). Nothing is sent for a transaction that rolls back, and nothing is lost
when Redis forgets the job: the ``core.mail_flush`` cron job re-enqueues every message that is due.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import select

from core.extensions import db
from core.mail.models import (
    PRIORITIES,
    SECURITY_CHOICES,
    OutboundAttachment,
    OutboundMessage,
    TenantMailSettings,
)
from tenants.context import current_tenant_id, tenant_context

log = logging.getLogger(__name__)

# (tenant id, transport, priority) of the messages stored in a session's transaction:
# core.mail.delivery enqueues a delivery job for each once it commits, and forgets them if it
# rolls back.
PENDING = "ventanilla_mail_pending"


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str | None = None

    @property
    def mime_type(self) -> str:
        return self.content_type or mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


def _attachment(item) -> Attachment:
    if isinstance(item, Attachment):
        return item
    if isinstance(item, tuple | list) and len(item) in (2, 3):
        # (filename, data) or (filename, data, content_type)
        return Attachment(str(item[0]), bytes(item[1]), item[2] if len(item) == 3 else None)
    raise TypeError(f"an attachment is an Attachment or (filename, data[, content_type]), not {item!r}")


def _addresses(value: str | Iterable[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = [value]
    return [str(address).strip() for address in value if str(address).strip()]


def message_domain() -> str:
    """The domain of our Message-IDs: the public host name, else a local one."""
    host = urlsplit(current_app.config.get("PUBLIC_URL") or "").hostname
    return host or "ventanilla.localhost"


def render_bodies(subject, template: str, locale: str, **context) -> tuple[str, str, str]:
    """Subject, text and HTML of ``templates/mail/<template>.txt|.html`` rendered in ``locale``.

    A plugin names its own template with its folder: ``<plugin>/mail/<name>``.
    """
    path = template if "/" in template else f"mail/{template}"
    with force_locale(locale):
        subject_text = str(subject)
        text = render_template(f"{path}.txt", subject=subject_text, **context)
        html = render_template(f"{path}.html", subject=subject_text, **context)
    return subject_text, text, html


def render_message(to: str, subject, template: str, locale: str, **context) -> EmailMessage:
    """A text + HTML message from ``templates/mail/<template>.txt|.html`` in ``locale`` (not stored)."""
    subject_text, text, html = render_bodies(subject, template, locale, **context)
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject_text
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=message_domain())
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    # After the body: set_content() drops every Content-* header already present.
    message["Content-Language"] = locale
    return message


def send_email(
    tenant,
    to: str | Sequence[str],
    subject,
    template: str,
    locale: str,
    attachments: Sequence = (),
    *,
    cc: str | Sequence[str] = (),
    bcc: str | Sequence[str] = (),
    reply_to: str | None = None,
    sender: str | None = None,
    commit: bool = True,
    transport: str | None = None,
    headers: dict | None = None,
    priority: str = "normal",
    **context,
) -> OutboundMessage:
    """Store a message for ``tenant`` in the outbox; it is delivered once the transaction commits.

    ``subject`` may be a lazy string: it is rendered in ``locale`` with the bodies
    (``templates/mail/<template>.txt`` and ``.html``, which receive ``context``; ``organisation``
    defaults to the tenant's name). ``attachments`` are ``Attachment`` objects or
    ``(filename, data[, content_type])`` tuples. ``sender`` overrides the From of the transport.
    ``transport`` (``"<plugin>:<key>"``) lets a plugin say which SMTP server carries it (the
    ``mail_transport`` hook); ``headers`` adds headers (``In-Reply-To``, ``References``;
    ``Auto-Submitted`` replaces the default ``auto-generated``). ``priority``: ``"urgent"`` for
    what a person is waiting for (a password reset, a login link: it goes ahead of every backlog),
    ``"normal"``, or ``"bulk"`` for what batch work causes (notices after an import: it waits
    behind the rest).

    The row joins the caller's transaction: with ``commit=True`` (the default) this call commits
    it, together with whatever the caller has pending; with ``commit=False`` the caller commits,
    and the delivery job is only enqueued if it does.
    """
    recipients = _addresses(to)
    if not recipients:
        raise ValueError("send_email needs at least one recipient")
    tenant_id = getattr(tenant, "id", tenant)
    if hasattr(tenant, "name"):
        context.setdefault("organisation", tenant.name)
    subject_text, text, html = render_bodies(subject, template, locale, **context)
    return _store(
        tenant_id,
        recipients,
        subject_text,
        text,
        html,
        locale,
        template,
        attachments,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        sender=sender,
        commit=commit,
        transport=transport,
        headers=headers,
        priority=priority,
    )


def send_composed_email(
    tenant,
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence = (),
    *,
    locale: str = "",
    cc: str | Sequence[str] = (),
    bcc: str | Sequence[str] = (),
    reply_to: str | None = None,
    sender: str | None = None,
    commit: bool = True,
    transport: str | None = None,
    headers: dict | None = None,
    message_id: str | None = None,
    priority: str = "normal",
) -> OutboundMessage:
    """Store a message a person wrote (a reply to a request): its own text and HTML, no template.
    Otherwise as ``send_email``; ``message_id`` (``<...@...>``) is kept when given, so that a
    caller can thread before the message is sent."""
    recipients = _addresses(to)
    if not recipients:
        raise ValueError("send_composed_email needs at least one recipient")
    return _store(
        getattr(tenant, "id", tenant),
        recipients,
        subject,
        text,
        html,
        locale,
        "",
        attachments,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        sender=sender,
        commit=commit,
        transport=transport,
        headers=headers,
        message_id=message_id,
        priority=priority,
    )


def new_message_id() -> str:
    """A Message-ID of ours (``<...@public host>``)."""
    return make_msgid(domain=message_domain())


def _store(
    tenant_id: int,
    recipients: list[str],
    subject_text: str,
    text: str,
    html: str | None,
    locale: str,
    template: str,
    attachments: Sequence,
    *,
    cc,
    bcc,
    reply_to,
    sender,
    commit: bool,
    transport: str | None,
    headers: dict | None,
    message_id: str | None = None,
    priority: str = "normal",
) -> OutboundMessage:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r} (one of {', '.join(PRIORITIES)})")
    subject_text = " ".join(str(subject_text).split())  # one line: no header folding tricks
    clean_headers = {str(k): " ".join(str(v).split()) for k, v in (headers or {}).items() if v is not None}
    with _acting_for(tenant_id):
        message = OutboundMessage(
            to_addresses=recipients,
            cc_addresses=_addresses(cc),
            bcc_addresses=_addresses(bcc),
            from_address=sender,
            reply_to=reply_to,
            subject=subject_text,
            text_body=text,
            html_body=html,
            language=locale,
            template=template,
            message_id=message_id or new_message_id(),
            transport=transport,
            headers=clean_headers,
            priority=PRIORITIES[priority],
            attachments=[
                OutboundAttachment(filename=a.filename, content_type=a.mime_type, data=a.data)
                for a in map(_attachment, attachments)
            ],
        )
        db.session.add(message)
        db.session.flush()
        db.session.info.setdefault(PENDING, set()).add((tenant_id, transport, PRIORITIES[priority]))
        if commit:
            db.session.commit()
    return message


def record_bounce(message_id: str, reason: str) -> OutboundMessage | None:
    """A delivery report says our message ``message_id`` (``<...>``) did not arrive: mark it failed
    with ``reason`` (in the current tenant; None when it is not one of its messages). The caller commits."""
    from core.mail.models import FAILED

    message = db.session.scalar(select(OutboundMessage).where(OutboundMessage.message_id == message_id.strip()))
    if message is not None:
        message.status = FAILED
        message.next_attempt_at = None
        message.last_error = reason[:2000]
    return message


def _acting_for(tenant_id: int):
    """The tenant's context, unless the caller is in it already (then nothing changes)."""
    from contextlib import nullcontext

    return nullcontext() if current_tenant_id() == tenant_id else tenant_context(tenant_id)


# --- the tenant's SMTP settings -----------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    """One SMTP server to deliver through (the tenant's or the platform's)."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    from_address: str
    source: str

    def __repr__(self) -> str:  # never the password, not even in a traceback
        return f"SmtpSettings({self.source}: {self.username or '-'}@{self.host}:{self.port}/{self.security})"


def tenant_settings() -> TenantMailSettings | None:
    """The current tenant's SMTP settings row, if it has one."""
    return db.session.scalar(select(TenantMailSettings))


def save_tenant_settings(
    tenant,
    host: str | None,
    port: int,
    security: str,
    username: str | None,
    password: str | None,
    from_address: str | None,
    rate_per_minute: int | str | None = None,
) -> TenantMailSettings:
    """Save the tenant's SMTP server and its rate (messages a minute; None: the platform's default,
    ``MAIL_RATE_PER_MINUTE``; never above ``MAIL_RATE_MAX_PER_MINUTE``). An empty ``password``
    keeps the stored one, unless the host or the user name changes (the stored password then goes:
    it was given for another server or user); no username drops it.

    An empty ``host`` means "no server of our own": mail then goes through the platform's. A host
    that is (or resolves to) a private address is refused (``core.netcheck``).
    """
    from core.mail.validation import check_from_address, check_host, check_port, check_rate
    from core.netcheck import check_host_now

    host = check_host(host) if host else None
    port = check_port(port)
    if host:
        check_host_now(host, port)
    if security not in SECURITY_CHOICES:
        raise ValueError(f"unknown security {security!r}")
    from_address = check_from_address(from_address, required=bool(host))
    rate_per_minute = check_rate(rate_per_minute, current_app.config["MAIL_RATE_MAX_PER_MINUTE"])
    with _acting_for(getattr(tenant, "id", tenant)):
        settings = tenant_settings()
        if settings is None:
            settings = TenantMailSettings()
            db.session.add(settings)
        username = (username or "").strip() or None
        keeps_password = same_server(settings, host, username)
        settings.host = host
        settings.port = port
        settings.security = security
        settings.username = username
        if password and username:
            settings.password = password
        elif not (username and keeps_password):
            settings.password = None
        settings.from_address = from_address
        settings.rate_per_minute = rate_per_minute
        db.session.commit()
        return settings


def same_server(stored: TenantMailSettings | None, host: str | None, username: str | None) -> bool:
    """Whether ``host`` and ``username`` are those the stored password was given for."""
    return (
        stored is not None
        and stored.password is not None
        and bool(host)
        and (stored.host or "").lower() == (host or "").lower()
        and (stored.username or "") == (username or "")
    )


def sender_for(name: str, address: str) -> str:
    """``"Name" <address>`` with the display name quoted as needed."""
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError):
        return address
