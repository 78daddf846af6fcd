"""Delivering outbox messages in batches: claim some, pick the transport, send them over one
connection, record each outcome.

Transport, first that applies: the plugin's server named by the message (``"<plugin>:<key>"``),
the tenant's own SMTP server, the platform's (``SMTP_HOST``), or an ``.eml`` file written into
the outbox store (``OUTBOX_STORE``: a folder by default, or a bucket; ``write_outbox_file``).

A delivery job serves one tenant, one transport and one priority (``deliver_batch``). It *claims*
up to ``MAIL_CLAIM_SIZE`` due messages with one conditional UPDATE (``queued`` and due, or
``sending`` with an expired lease → ``sending`` with a new lease), urgent ones first, so two
workers never send the same message and a message already sent is never sent again; it sends
them over one connection (a new one if the server closes it), records each outcome, and claims
again until ``MAIL_BATCH_SIZE`` messages or ``MAIL_BATCH_SECONDS`` have gone by. Then it gives the
worker back to the other queues and, if more is due, enqueues itself again at the back of the
queue, behind other tenants' jobs. An urgent message (``priority="urgent"``: a person waits for
it) has a job of its own at the front of the queue. Each tenant's mail goes at most at its rate
(``rate_per_minute``, else ``MAIL_RATE_PER_MINUTE``, never above ``MAIL_RATE_MAX_PER_MINUTE``),
counted in Redis across every worker and machine, whatever carries it (a server or the outbox
file) and however it goes (a batch job, or one message delivered now: ``deliver_now``).

A failed attempt puts the message back to ``queued`` with ``next_attempt_at`` doubling from
``MAIL_RETRY_BASE_SECONDS``; after ``MAIL_MAX_ATTEMPTS`` (about two days), or at once on a
permanent refusal (5xx), it is ``failed``. A server that cannot be reached fails the attempt of
every message of the claim. The ``core.mail_flush`` cron job enqueues what is due, so a lost
Redis job or a dead worker loses no mail. The one window that cannot be closed: a worker that
dies after the server accepted messages but before their rows say ``sent`` (the outcomes of a
claim are written together) leaves them to be sent again when their lease expires — at most
``MAIL_CLAIM_SIZE`` messages.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import socket
import ssl
import time
import uuid
from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, event, func, literal, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from core.extensions import db, utcnow
from core.mail.mime import Outgoing, render
from core.mail.models import (
    BULK,
    FAILED,
    NORMAL,
    QUEUED,
    SECURITY_SSL,
    SECURITY_STARTTLS,
    SENDING,
    SENT,
    SOURCE_FILE,
    SOURCE_SYSTEM,
    SOURCE_TENANT,
    URGENT,
    OutboundMessage,
)
from core.mail.services import PENDING, SmtpSettings, message_domain, sender_for, tenant_settings
from core.netcheck import RefusedAddress, UnknownHost, smtp_client
from tenants.context import current_tenant_id, tenant_context

log = logging.getLogger(__name__)

# A rate-limited job sleeps for its next message only this long; longer, it gives the worker back
# and comes back when the rate allows.
RATE_SLEEP_SECONDS = 0.25


# --- enqueueing ----------------------------------------------------------------------------


def _waiting_key(tenant_id: int, transport: str | None, priority: int) -> str:
    """Redis key set while a delivery job of this tenant, transport and priority waits to start."""
    return f"{current_app.config['QUEUE_PREFIX']}mail-waiting:{tenant_id}:{priority}:{transport or ''}"


def enqueue_delivery(tenant_id: int, transport: str | None = None, priority: int = NORMAL, *, delay: float = 0) -> bool:
    """Put a delivery job for the tenant's due messages of ``transport`` (of ``priority`` or more
    urgent) on the ``mail`` queue, unless one is already waiting to start: that one will claim
    them. An urgent job goes to the front of the queue; ``delay`` (seconds) holds it back.

    Never raises: messages whose job could not be enqueued are picked up by ``core.mail_flush``.
    """
    from core.jobs.services import get_queue

    try:
        queue = get_queue("mail")
        lease = current_app.config["MAIL_LEASE_SECONDS"]
        key = _waiting_key(tenant_id, transport, priority)
        # Expires in case the job is lost: a later message or the flush then enqueues another.
        if not queue.connection.set(key, "1", nx=True, ex=int(delay) + lease):
            return False
        options = {
            "job_id": f"mail-{tenant_id}-{uuid.uuid4().hex[:12]}",
            "job_timeout": lease,
            "result_ttl": 600,
            "description": f"mail of tenant {tenant_id} ({transport or 'its server'}, priority {priority})",
        }
        try:
            if delay > 0:
                queue.enqueue_in(timedelta(seconds=delay), deliver_batch, tenant_id, transport, priority, **options)
            else:
                queue.enqueue(deliver_batch, tenant_id, transport, priority, at_front=priority == URGENT, **options)
        except Exception:
            queue.connection.delete(key)
            raise
    except Exception as exc:  # Redis away: the flush job will find the messages later.
        log.warning("could not enqueue the mail of tenant %s: %s", tenant_id, exc)
        return False
    return True


@event.listens_for(Session, "after_commit")
def _enqueue_committed_messages(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    for tenant_id, transport, priority in sorted(pending, key=lambda item: item[2]):
        enqueue_delivery(tenant_id, transport, priority)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_messages(session: Session) -> None:
    session.info.pop(PENDING, None)


def _due(now, rows=OutboundMessage):
    return and_(
        # Literal values, the very predicate of the partial index ix_core_outbound_messages_pending:
        # neither PostgreSQL (in a generic plan) nor SQLite matches an index predicate to parameters.
        rows.status.in_([literal(QUEUED, literal_execute=True), literal(SENDING, literal_execute=True)]),
        or_(
            and_(rows.status == QUEUED, or_(rows.next_attempt_at.is_(None), rows.next_attempt_at <= now)),
            and_(rows.status == SENDING, rows.claimed_until < now),
        ),
    )


def flush_due_messages(tenant_ids: list[int]) -> dict:
    """The ``core.mail_flush`` sweep (every minute, one run for every active tenant): a delivery
    job for every tenant and transport with mail due."""
    if not tenant_ids:
        return {"due": 0, "enqueued": 0}
    rows = db.session.execute(
        select(OutboundMessage.tenant_id, OutboundMessage.transport, func.count(), func.min(OutboundMessage.priority))
        .where(_due(utcnow()), OutboundMessage.tenant_id.in_(tenant_ids))
        .group_by(OutboundMessage.tenant_id, OutboundMessage.transport)
    ).all()
    db.session.commit()
    # A bulk job claims every priority, the most urgent first.
    enqueued = sum(enqueue_delivery(tenant_id, transport, BULK) for tenant_id, transport, _count, _first in rows)
    return {"due": sum(row[2] for row in rows), "enqueued": enqueued}


# --- the jobs ------------------------------------------------------------------------------


def deliver_batch(tenant_id: int, transport: str | None = None, priority: int = BULK) -> dict:
    """The ``mail``-queue job: deliver a batch of the tenant's due messages of ``transport``, of
    ``priority`` or more urgent, the most urgent first (safe to run any number of times)."""
    from core.jobs.runner import _fresh_connections_after_fork, job_application
    from core.redis_connection import get_redis

    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        # From now on a new message needs a new job: this one may have claimed its last batch.
        get_redis().delete(_waiting_key(tenant_id, transport, priority))
        with tenant_context(tenant_id):
            return send_batch(transport, priority)


def deliver(tenant_id: int, message_id: int) -> str:
    """Deliver one message of one tenant (the job of earlier versions, still found in queues)."""
    from core.jobs.runner import _fresh_connections_after_fork, job_application

    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        with tenant_context(tenant_id):
            return deliver_now(message_id)


def deliver_now(message_id: int) -> str:
    """Claim, send and record one message of the current tenant, within the tenant's rate.

    Returns ``sent``, ``retry`` (queued again for later), ``failed`` (given up), ``skipped``
    (not due, already sent or failed, or claimed by another worker) or ``held`` (the rate lets
    none go now: it stays queued, and a delivery job comes back for it when the rate allows).
    """
    due = db.session.execute(
        select(OutboundMessage.transport, OutboundMessage.priority).where(
            OutboundMessage.id == message_id, _due(utcnow())
        )
    ).first()
    db.session.commit()
    if due is None:
        return "skipped"
    key, priority = due
    with Courier(key) as courier:
        bucket = courier.rate_bucket(current_tenant_id())
        if bucket is not None:
            granted, wait = _allowance(bucket, 1)
            if not granted:
                enqueue_delivery(current_tenant_id(), key, priority, delay=wait)
                return "held"
        claimed = _claim(1, only_id=message_id)
        if not claimed:
            return "skipped"
        return courier.deliver(claimed)[message_id]


def send_batch(transport: str | None, priority: int = BULK) -> dict:
    """Deliver due messages of the current tenant through ``transport`` until the batch's count or
    time is up, then enqueue the rest. Returns how many messages had each outcome."""
    config = current_app.config
    tenant_id = current_tenant_id()
    deadline = time.monotonic() + config["MAIL_BATCH_SECONDS"]
    left = config["MAIL_BATCH_SIZE"]
    outcomes = {"sent": 0, "retry": 0, "failed": 0}
    more, delay = True, 0.0
    with Courier(transport) as courier:
        bucket = courier.rate_bucket(tenant_id)
        while left > 0 and time.monotonic() < deadline and not courier.unreachable:
            want = min(config["MAIL_CLAIM_SIZE"], left)
            if bucket is not None:
                want, delay = _allowance(bucket, want)
                if not want:
                    break
            # Unused tokens of a short last claim are not given back: a few, once per backlog.
            claimed = _claim(want, transport=transport, priority=priority)
            if not claimed:
                more = False
                break
            for outcome in courier.deliver(claimed).values():
                outcomes[outcome] += 1
            left -= len(claimed)
    if courier.unreachable:
        # Every message of the claim waits for its retry; the flush brings the rest when they are due.
        more = False
    if more:
        enqueue_delivery(tenant_id, transport, priority, delay=delay)
    return outcomes


def _allowance(bucket: RateBucket, want: int) -> tuple[int, float]:
    """How many of ``want`` messages the tenant's rate lets go now, after sleeping through a short
    wait; none, and the seconds until one may, when the wait is longer."""
    while True:
        granted, wait = bucket.take(want)
        if granted or wait > RATE_SLEEP_SECONDS:
            return granted, wait
        time.sleep(wait)


def _claim(limit: int, *, transport: str | None = None, priority: int = BULK, only_id: int | None = None) -> list[int]:
    """Claim up to ``limit`` due messages of the current tenant (one statement); their ids."""
    config = current_app.config
    now = utcnow()
    # An alias: the subquery must not be correlated with the table the UPDATE changes.
    rows = aliased(OutboundMessage)
    due = select(rows.id).where(_due(now, rows), rows.tenant_id == current_tenant_id())
    if only_id is not None:
        due = due.where(rows.id == only_id)
    else:
        due = due.where(
            rows.transport.is_(None) if transport is None else rows.transport == transport,
            rows.priority <= priority,
        )
    # Rows another worker is claiming are skipped, not waited for (PostgreSQL). A materialized
    # CTE: as a plain subquery PostgreSQL may run it again per row, and each run skips the rows
    # this very UPDATE has locked and takes the next ones, past the limit. The UPDATE does not
    # test them again: FOR UPDATE has locked each row and tested its newest version (SQLite runs
    # the statement alone), and a second test made PostgreSQL scan every due row of the tenant to
    # join them to the CTE, rather than fetch these few by primary key.
    due = (
        due.order_by(rows.priority, rows.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    claimed = db.session.scalars(
        update(OutboundMessage)
        .add_cte(due)
        .where(OutboundMessage.id.in_(select(due.c.id)))
        .values(
            status=SENDING,
            claimed_until=now + timedelta(seconds=config["MAIL_LEASE_SECONDS"]),
            attempts=OutboundMessage.attempts + 1,
        )
        .returning(OutboundMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return list(claimed)


class ServerUnavailable(Exception):
    """The transport's server could not be reached or refused the session (wraps the cause)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _connection_lost(exc: Exception) -> bool:
    """Whether ``exc`` means the connection is gone (not that this message was refused)."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421  # the server closes the channel
    if isinstance(exc, smtplib.SMTPException):
        return False
    return isinstance(exc, OSError)


class Courier:
    """Carries messages of the current tenant through one transport, over one connection that it
    opens at the first message and keeps until closed."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.error: Exception | None = None
        self.transport: SmtpSettings | None = None
        self.client: smtplib.SMTP | None = None
        self.unreachable = False
        try:
            self.transport = plugin_transport(key) if key else current_transport()
        except Exception as exc:  # every message of this transport fails its attempt with it
            db.session.rollback()
            self.error = exc

    def __enter__(self) -> Courier:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def rate_bucket(self, tenant_id: int) -> RateBucket | None:
        """The tenant's rate for this transport (None: no limit). The outbox file counts as a
        server: the rate is the organisation's pace of mail whatever carries it, and a platform
        without a server (``make run``, a staging copy) paces its mail as it will with one."""
        per_minute = tenant_rate(tenant_settings())
        db.session.commit()
        if not per_minute:
            return None
        return RateBucket(f"{current_app.config['QUEUE_PREFIX']}mail-rate:{tenant_id}:{self.key or ''}", per_minute)

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()
            self.client = None

    def _connect(self) -> smtplib.SMTP:
        return _session(self.transport)

    def send(self, outgoing: Outgoing) -> dict:
        """Send one message; returns the refused recipients. ``ServerUnavailable`` when no
        connection can be had: the message was not sent."""
        if self.transport is None:
            write_outbox_file(outgoing)
            return {}
        for again in (False, True):
            if self.client is None:
                try:
                    self.client = self._connect()
                except Exception as exc:
                    self.unreachable = True
                    raise ServerUnavailable(exc) from exc
            try:
                return _submit(self.client, outgoing)
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
                self.client.close()
                self.client = None
                # The server closed the connection (its limit per connection, an idle timeout):
                # once more on a new one; twice in a row, it is away.
                if again:
                    self.unreachable = True
                    raise ServerUnavailable(exc) from exc
                log.info("mail server closed the connection (%s); connecting again", describe_error(exc))
        raise AssertionError("unreachable")

    def deliver(self, ids: list[int]) -> dict[int, str]:
        """Send the claimed messages ``ids`` and record each outcome; ``{id: outcome}``."""
        config = current_app.config
        if self.error is not None:
            return {message_id: _record_failure(message_id, self.error) for message_id in ids}
        default_sender = self.transport.from_address if self.transport else config["MAIL_FROM"]
        rows = db.session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.id.in_(ids))
            .options(selectinload(OutboundMessage.attachments))
            .order_by(OutboundMessage.priority, OutboundMessage.id)
        ).all()
        prepared, failures = [], {}
        for message in rows:
            try:
                # An outbox file has no envelope: it keeps the blind copies as a Bcc header.
                outgoing = render(message, message.from_address or default_sender, with_bcc=self.transport is None)
                prepared.append((message.id, outgoing))
            except Exception as exc:
                failures[message.id] = exc
        # No transaction stays open while the server takes its time.
        db.session.commit()
        sent, notes = [], {}
        for position, (message_id, outgoing) in enumerate(prepared):
            try:
                refused = self.send(outgoing)
            except ServerUnavailable as exc:
                for later_id, _outgoing in prepared[position:]:
                    failures[later_id] = exc.cause
                break
            except Exception as exc:
                failures[message_id] = exc
            else:
                sent.append(message_id)
                if refused:
                    notes[message_id] = _refused_note(refused)
        outcomes = dict.fromkeys(sent, "sent")
        if sent:
            # One statement for the lot; a partly refused message keeps its note.
            db.session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(sent))
                .values(
                    status=SENT,
                    sent_at=utcnow(),
                    smtp_source=self.transport.source if self.transport else SOURCE_FILE,
                    from_address=func.coalesce(OutboundMessage.from_address, default_sender),
                    claimed_until=None,
                    next_attempt_at=None,
                    last_error=case(notes, value=OutboundMessage.id, else_=None) if notes else None,
                )
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
        for message_id, exc in failures.items():
            outcomes[message_id] = _record_failure(message_id, exc)
        return outcomes


class RateBucket:
    """At most ``per_minute`` messages a minute, shared by every worker through Redis (a token
    bucket holding one second's worth, kept as the time its last token was spent)."""

    SCRIPT = """
    local clock = redis.call('TIME')
    local now = clock[1] * 1000 + clock[2] / 1000
    local interval = tonumber(ARGV[1])
    local burst = tonumber(ARGV[2])
    local want = tonumber(ARGV[3])
    local tat = tonumber(redis.call('GET', KEYS[1]) or now)
    if tat < now then tat = now end
    local granted = math.min(want, math.floor((now + burst * interval - tat) / interval))
    if granted > 0 then
        tat = tat + granted * interval
        redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
        return {granted, 0}
    end
    return {0, math.ceil(tat + interval - burst * interval - now)}
    """

    def __init__(self, key: str, per_minute: int) -> None:
        from core.redis_connection import get_redis

        self.key = key
        self.interval_ms = 60_000 / per_minute
        self.burst = max(1, per_minute // 60)
        self.script = get_redis().register_script(self.SCRIPT)

    def take(self, want: int) -> tuple[int, float]:
        """Up to ``want`` messages may go now: how many, and else the seconds to wait for one."""
        granted, wait_ms = self.script(keys=[self.key], args=[self.interval_ms, self.burst, want])
        return int(granted), max(0, int(wait_ms)) / 1000


def tenant_rate(settings) -> int:
    """Messages a minute the tenant's servers get: its own setting, else the operator's default,
    never above the operator's ceiling (0: no limit)."""
    config = current_app.config
    rate = (settings.rate_per_minute if settings is not None else None) or config["MAIL_RATE_PER_MINUTE"]
    ceiling = config["MAIL_RATE_MAX_PER_MINUTE"]
    if ceiling and (not rate or rate > ceiling):
        return ceiling
    return rate


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


def transmit(outgoing: Outgoing, transport: SmtpSettings | None) -> dict:
    """Send through ``transport``, or write the outbox file when there is none. Returns refused recipients."""
    if transport is None:
        write_outbox_file(outgoing)
        return {}
    return smtp_send(transport, outgoing)


def _open_smtp(transport: SmtpSettings, context: ssl.SSLContext | None) -> smtplib.SMTP:
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


def _session(transport: SmtpSettings) -> smtplib.SMTP:
    """A connection to the transport's server, secured and logged in as its settings say."""
    # Loading the system's certificates takes milliseconds: only for a connection that uses TLS.
    context = ssl.create_default_context() if transport.security in (SECURITY_STARTTLS, SECURITY_SSL) else None
    client = _open_smtp(transport, context)
    try:
        if transport.security == SECURITY_STARTTLS:
            client.starttls(context=context)
        if transport.username:
            client.login(transport.username, transport.password or "")
    except BaseException:
        client.close()
        raise
    return client


class NoSmtpUtf8(smtplib.SMTPNotSupportedError):
    """An address is not ASCII and the server does not offer SMTPUTF8: retried, as a server may
    get it (or the settings change to one that has it)."""


def _submit(client: smtplib.SMTP, outgoing: Outgoing) -> dict:
    """One message over an open connection; returns the refused recipients."""
    options = ()
    if outgoing.smtputf8:
        client.ehlo_or_helo_if_needed()
        if not client.has_extn("smtputf8"):
            raise NoSmtpUtf8("an address is not ASCII and the server does not offer SMTPUTF8")
        options = ("SMTPUTF8", "BODY=8BITMIME")
    return client.sendmail(outgoing.envelope_from, outgoing.recipients, outgoing.data, options)


def smtp_send(transport: SmtpSettings, outgoing: Outgoing) -> dict:
    with _session(transport) as client:
        return _submit(client, outgoing)


def write_outbox_file(outgoing: Outgoing) -> str:
    """Write the message into the outbox store (``OUTBOX_STORE``: a folder, or a bucket that web
    and workers on other machines share) as ``<UTC timestamp>-<random>.eml``, a name that sorts by
    time; returns the name."""
    from core.files.store import get_named_store

    name = f"{utcnow():%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
    get_named_store("outbox").put(name, outgoing.file_bytes())
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
    if isinstance(exc, NoSmtpUtf8):
        return _l("An address is not ASCII, and the server does not take such addresses (SMTPUTF8).")
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
    transmit(render(draft, sender), transport)
    return transport.source if transport else SOURCE_FILE
