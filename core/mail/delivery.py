"""Delivering outbox messages: claim the row, pick the transport, send, record the outcome.

Transport, first that applies: the tenant's own SMTP server, the platform's (``SMTP_HOST``), or
an ``.eml`` file written into ``OUTBOX_DIR`` (the embedded default).

A worker *claims* a message with one conditional UPDATE (``queued`` and due, or ``sending`` with
an expired lease → ``sending`` with a new lease), so two workers never send the same message and
a message already sent is never sent again. A failed attempt puts the message back to ``queued``
with ``next_attempt_at`` doubling from ``MAIL_RETRY_BASE_SECONDS``; after ``MAIL_MAX_ATTEMPTS``
(about two days), or at once on a permanent refusal (5xx), it is ``failed``. The ``core.mail_flush``
cron job re-enqueues what is due, so a lost Redis job or a dead worker loses no mail. The one
window that cannot be closed: a worker that dies after the server accepted the message but before
the row says ``sent`` leaves it to be sent again when its lease expires.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import socket
import ssl
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from flask import current_app
from flask_babel import lazy_gettext as _l
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import Session

from core.extensions import db, utcnow
from core.mail.models import (
    FAILED,
    QUEUED,
    SECURITY_SSL,
    SECURITY_STARTTLS,
    SENDING,
    SENT,
    SOURCE_FILE,
    SOURCE_SYSTEM,
    SOURCE_TENANT,
    OutboundMessage,
)
from core.mail.services import PENDING, SmtpSettings, message_domain, sender_for, tenant_settings
from core.netcheck import RefusedAddress, UnknownHost, smtp_client
from tenants.context import current_tenant_id, tenant_context

log = logging.getLogger(__name__)

FLUSH_BATCH = 500
_WAITING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


# --- enqueueing ----------------------------------------------------------------------------


def enqueue_delivery(tenant_id: int, message_id: int, attempts: int = 0) -> bool:
    """Put a delivery job on the ``mail`` queue, unless the same one is already waiting there.

    Never raises: a message whose job could not be enqueued is picked up by ``core.mail_flush``.
    """
    from core.jobs.services import get_queue

    job_id = f"mail-{tenant_id}-{message_id}-{attempts}"
    try:
        queue = get_queue("mail")
        try:
            if Job.fetch(job_id, connection=queue.connection).get_status() in _WAITING:
                return False
        except NoSuchJobError:
            pass
        queue.enqueue(
            "core.mail.delivery.deliver",
            tenant_id,
            message_id,
            job_id=job_id,
            job_timeout=current_app.config["MAIL_LEASE_SECONDS"],
            result_ttl=3600,
            description=f"mail message {message_id} (tenant {tenant_id})",
        )
    except Exception as exc:  # Redis away: the flush job will find the message later.
        log.warning("could not enqueue mail message %s of tenant %s: %s", message_id, tenant_id, exc)
        return False
    return True


@event.listens_for(Session, "after_commit")
def _enqueue_committed_messages(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    for tenant_id, message_id in pending:
        enqueue_delivery(tenant_id, message_id, attempts=0)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_messages(session: Session) -> None:
    session.info.pop(PENDING, None)


def _due(now):
    return or_(
        and_(
            OutboundMessage.status == QUEUED,
            or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now),
        ),
        and_(OutboundMessage.status == SENDING, OutboundMessage.claimed_until < now),
    )


def flush_due_messages(tenant_ids: list[int]) -> dict:
    """The ``core.mail_flush`` sweep (every minute, one run for every active tenant): enqueue what is due."""
    if not tenant_ids:
        return {"due": 0, "enqueued": 0}
    rows = db.session.execute(
        select(OutboundMessage.tenant_id, OutboundMessage.id, OutboundMessage.attempts)
        .where(_due(utcnow()), OutboundMessage.tenant_id.in_(tenant_ids))
        .order_by(OutboundMessage.next_attempt_at, OutboundMessage.id)
        .limit(FLUSH_BATCH)
    ).all()
    enqueued = sum(enqueue_delivery(tenant_id, message_id, attempts) for tenant_id, message_id, attempts in rows)
    return {"due": len(rows), "enqueued": enqueued}


# --- the job -------------------------------------------------------------------------------


def deliver(tenant_id: int, message_id: int) -> str:
    """The ``mail``-queue job: deliver one message of one tenant (safe to run any number of times)."""
    from core.jobs.runner import _fresh_connections_after_fork, job_application

    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        with tenant_context(tenant_id):
            return deliver_now(message_id)


def deliver_now(message_id: int) -> str:
    """Claim, send and record one message of the current tenant.

    Returns ``sent``, ``retry`` (queued again for later), ``failed`` (given up) or ``skipped``
    (not due, already sent or failed, or claimed by another worker).
    """
    config = current_app.config
    now = utcnow()
    claimed = db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id, _due(now))
        .values(
            status=SENDING,
            claimed_until=now + timedelta(seconds=config["MAIL_LEASE_SECONDS"]),
            attempts=OutboundMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return "skipped"
    message = db.session.get(OutboundMessage, message_id)
    try:
        transport = plugin_transport(message.transport) if message.transport else current_transport()
        sender = message.from_address or (transport.from_address if transport else config["MAIL_FROM"])
        # An outbox file has no envelope: it keeps the blind copies as a Bcc header.
        mime = build_mime(message, sender, with_bcc=transport is None)
        recipients = message.recipients
        # No transaction stays open while the server takes its time.
        db.session.commit()
        refused = transmit(mime, recipients, transport)
    except Exception as exc:
        return _record_failure(message_id, exc)
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id)
        .values(
            status=SENT,
            sent_at=utcnow(),
            smtp_source=transport.source if transport else SOURCE_FILE,
            from_address=sender,
            claimed_until=None,
            next_attempt_at=None,
            last_error=_refused_note(refused),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return "sent"


def _record_failure(message_id: int, exc: Exception) -> str:
    db.session.rollback()
    config = current_app.config
    message = db.session.get(OutboundMessage, message_id)
    message.last_error = describe_error(exc)[:2000]
    message.claimed_until = None
    if is_permanent(exc) or message.attempts >= config["MAIL_MAX_ATTEMPTS"]:
        message.status = FAILED
        message.next_attempt_at = None
        outcome = "failed"
    else:
        message.status = QUEUED
        message.next_attempt_at = utcnow() + retry_delay(message.attempts)
        outcome = "retry"
    db.session.commit()
    log.warning("mail message %s, attempt %s: %s (%s)", message_id, message.attempts, message.last_error, outcome)
    return outcome


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failure: base, 2 * base, 4 * base, ..."""
    base = current_app.config["MAIL_RETRY_BASE_SECONDS"]
    return timedelta(seconds=base * 2 ** max(0, attempts - 1))


# --- transports ----------------------------------------------------------------------------


def system_transport() -> SmtpSettings | None:
    config = current_app.config
    if not config.get("SMTP_HOST"):
        return None
    return SmtpSettings(
        host=config["SMTP_HOST"],
        port=int(config["SMTP_PORT"]),
        security=config["SMTP_SECURITY"],
        username=config.get("SMTP_USERNAME"),
        password=config.get("SMTP_PASSWORD"),
        from_address=config["MAIL_FROM"],
        source=SOURCE_SYSTEM,
    )


def tenant_transport(settings, tenant_name: str) -> SmtpSettings:
    return SmtpSettings(
        host=settings.host,
        port=int(settings.port),
        security=settings.security,
        username=settings.username,
        password=settings.password,
        from_address=sender_for(tenant_name, settings.from_address)
        if settings.from_address
        else current_app.config["MAIL_FROM"],
        source=SOURCE_TENANT,
    )


def current_transport() -> SmtpSettings | None:
    """The current tenant's server, else the platform's, else None (write an .eml file)."""
    from tenants.models import Tenant

    settings = tenant_settings()
    if settings is not None and settings.configured:
        tenant = db.session.get(Tenant, current_tenant_id())
        return tenant_transport(settings, tenant.name)
    return system_transport()


class TransportUnavailable(RuntimeError):
    """The plugin that should carry a message cannot now (switched off, its server not set)."""


def plugin_transport(key: str) -> SmtpSettings:
    """The SMTP server a plugin gives for ``"<plugin>:<key>"`` (the ``mail_transport`` hook)."""
    from core.plugins import host
    from tenants.licensing import is_enabled
    from tenants.models import Tenant

    plugin, _, rest = key.partition(":")
    tenant = db.session.get(Tenant, current_tenant_id())
    if not is_enabled(tenant, plugin):
        raise TransportUnavailable(f"the plugin {plugin} that sends this message is not enabled")
    answers = host().call_one(plugin, "mail_transport", tenant=tenant, key=rest)
    if not answers or answers[0] is None:
        raise TransportUnavailable(f"{plugin} has no mail server for {rest}")
    return answers[0]


def build_mime(message: OutboundMessage, sender: str, *, with_bcc: bool = False) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = ", ".join(message.to_addresses)
    if message.cc_addresses:
        mime["Cc"] = ", ".join(message.cc_addresses)
    if with_bcc and message.bcc_addresses:
        mime["Bcc"] = ", ".join(message.bcc_addresses)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(message.created_at)
    mime["Message-ID"] = message.message_id
    headers = dict(message.headers or {})
    mime["Auto-Submitted"] = headers.pop("Auto-Submitted", "auto-generated")
    for name, value in headers.items():
        mime[name] = value
    mime.set_content(message.text_body)
    if message.html_body:
        mime.add_alternative(message.html_body, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(
            bytes(attachment.data),
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    # Last: set_content() and add_attachment() move or drop the Content-* headers before them.
    mime["Content-Language"] = message.language
    return mime


def transmit(mime: EmailMessage, recipients: list[str], transport: SmtpSettings | None) -> dict:
    """Send through ``transport``, or write the outbox file when there is none. Returns refused recipients."""
    if transport is None:
        write_outbox_file(mime)
        return {}
    return smtp_send(transport, mime, recipients)


def _open_smtp(transport: SmtpSettings, context: ssl.SSLContext) -> smtplib.SMTP:
    """A connection to the transport's server. Every server but the platform's own (the operator's)
    is one a tenant typed, its own or a plugin's (a contract's mailbox): it goes to the checked
    public address of its name (``core.netcheck``)."""
    timeout = current_app.config["SMTP_TIMEOUT"]
    helo = message_domain()
    implicit_tls = transport.security == SECURITY_SSL
    if transport.source != SOURCE_SYSTEM:
        return smtp_client(
            transport.host,
            transport.port,
            implicit_tls=implicit_tls,
            context=context,
            timeout=timeout,
            local_hostname=helo,
        )
    if implicit_tls:
        return smtplib.SMTP_SSL(transport.host, transport.port, local_hostname=helo, timeout=timeout, context=context)
    return smtplib.SMTP(transport.host, transport.port, local_hostname=helo, timeout=timeout)


def smtp_send(transport: SmtpSettings, mime: EmailMessage, recipients: list[str]) -> dict:
    context = ssl.create_default_context()
    client = _open_smtp(transport, context)
    with client:
        if transport.security == SECURITY_STARTTLS:
            client.starttls(context=context)
        if transport.username:
            client.login(transport.username, transport.password or "")
        envelope_from = parseaddr(str(mime["From"]))[1]
        return client.send_message(mime, from_addr=envelope_from, to_addrs=recipients)


def write_outbox_file(mime: EmailMessage) -> str:
    """Write the message into the outbox store (``OUTBOX_STORE``: a folder, or a bucket that web
    and workers on other machines share) as ``<UTC timestamp>-<random>.eml``, a name that sorts by
    time; returns the name."""
    from core.files.store import get_named_store

    name = f"{utcnow():%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
    get_named_store("outbox").put(name, mime.as_bytes())
    return name


# --- errors --------------------------------------------------------------------------------

_AUTH_CODES = {530, 534, 535, 538}


def is_permanent(exc: Exception) -> bool:
    """A refusal that waiting will not change: a 5xx answer to the sender, the recipients or the
    data, or a server on an address that is not allowed."""
    if isinstance(exc, RefusedAddress):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return exc.smtp_code >= 500 and exc.smtp_code not in _AUTH_CODES
    return isinstance(exc, ValueError | TypeError | UnicodeError)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe_error(exc: Exception) -> str:
    """What went wrong, technically, for the operator and the administrator (never a password)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + "; ".join(
            f"{address}: {code} {_text(text)}" for address, (code, text) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def classify_error(exc: Exception) -> str:
    """What went wrong, for the tenant's administrator: the kind of error and the SMTP codes, never
    the text the other end sent (whatever answered on that host and port could say anything)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"{type(exc).__name__}: " + ", ".join(sorted({str(code) for code, _ in exc.recipients.values()}))
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code}"
    return type(exc).__name__


def explain_error(exc: Exception):
    """A sentence for the administrator saying what to check."""
    if isinstance(exc, UnknownHost | RefusedAddress):
        return exc.message
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _l("The server refused the user name or the password.")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return _l("The server does not offer what these settings ask for (STARTTLS or login). Check the security.")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _l("The server refused the recipient.")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _l("The server refused the sender. Check the from address.")
    if isinstance(exc, ssl.SSLError):
        return _l("The secure connection failed. Check the security setting, the port and the server's certificate.")
    if isinstance(exc, socket.gaierror):
        return _l("The server name could not be found. Check the host.")
    if isinstance(exc, ConnectionRefusedError):
        return _l("The server refused the connection. Check the host and the port.")
    if isinstance(exc, TimeoutError | socket.timeout):
        return _l("The server did not answer in time. Check the host, the port and the security.")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _l("The server closed the connection. Check the port and the security.")
    return _l("The message could not be sent.")


def _refused_note(refused: dict) -> str | None:
    if not refused:
        return None
    return "some recipients refused: " + "; ".join(
        f"{address}: {code} {_text(text)}" for address, (code, text) in refused.items()
    )


# --- the administrator's test --------------------------------------------------------------


def send_test_message(tenant, user, transport: SmtpSettings | None) -> str:
    """Send a short message to ``user`` right now through ``transport`` (None: the outbox file).

    Nothing is stored and nothing is retried: whatever the server answers is raised to the caller.
    Returns the source that carried it (``tenant``, ``system`` or ``file``).
    """
    from email.utils import make_msgid

    from core.mail.services import render_bodies

    locale = user.language_in(tenant)
    host = transport.host if transport else ""
    subject, text, html = render_bodies(
        _l("Test message from %(organisation)s", organisation=tenant.name),
        "test_message",
        locale,
        organisation=tenant.name,
        user=user,
        host=host,
    )
    draft = OutboundMessage(
        to_addresses=[user.email],
        cc_addresses=[],
        bcc_addresses=[],
        subject=subject,
        text_body=text,
        html_body=html,
        language=locale,
        message_id=make_msgid(domain=message_domain()),
        created_at=utcnow(),
    )
    sender = transport.from_address if transport else current_app.config["MAIL_FROM"]
    transmit(build_mime(draft, sender), [user.email], transport)
    return transport.source if transport else SOURCE_FILE
