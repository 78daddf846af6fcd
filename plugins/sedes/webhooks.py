"""Outgoing webhooks (issue 14, point 4): the office's document manager hears of its notifications.

A tenant administrator (``sedes.webhooks:manage``) registers endpoints: a URL, the events it wants
(a new notification, one opened, a deadline near) and whether it is active. Each hook has its own
secret (``secrets.token_urlsafe``), encrypted at rest and rotated on demand, with which every
delivery is signed.

**An outbox.** The services that cause an event call ``emit`` (or ``notifications_found`` for a
sync's batch) inside their own transaction: one delivery row per hook and event is written with
the change, or neither is. Each delivery has its own id (a UUID), sent in the body and a header, so
a receiver recognises a delivery it has already had when it comes again. A delivery is
at-least-once: a worker that dies after sending and before recording sends it again later, with the
same id.

"Opened" is the comparecencia (``open_notification``): the legal act at the sede, once per
notification. An office user reading it on our pages (``mark_read``) changes only the office's own
workflow state, which is no news for a document manager.

**Sending.** ``sedes.webhooks_sweep`` (every minute, one run for the platform) claims the due
deliveries of active hooks (``claimed_at``, a conditional UPDATE) and queues ``sedes.webhooks_deliver``
runs for them on the ``default`` queue; the test ping and "Deliver again" queue theirs at once. A
claim older than ``CLAIM_TTL`` (longer than a run may last) belonged to a worker that died: the next
sweep takes the delivery again, so nothing is lost. A 2xx answer delivers; anything else is tried
again after ``RETRY_DELAYS`` and is failed after ``MAX_ATTEMPTS``; every attempt is logged with its
status, an excerpt of the answer, the error and the duration. How the request is made and signed:
``webhook_sender``.

**Retention.** ``sedes.webhooks_purge`` (daily, per tenant) removes delivered and failed deliveries,
with their attempts, ``RETENTION_DAYS`` after they were recorded; pending ones stay until they end.
"""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.api import (
    Audited,
    Client,
    DomainError,
    EncryptedText,
    Page,
    Tenant,
    TenantScoped,
    all_tenants,
    checked_address,
    db,
    enqueue,
    external_url,
    has_permission,
    keyset_page,
    tenant_context,
    tenant_today,
    utcnow,
)
from plugins.sedes.models import Sede, SedeNotification

# --- events, states and their words ---------------------------------------------------------------

NEW = "notification.created"
OPENED = "notification.opened"
DEADLINE_NEAR = "notification.deadline_near"
PING = "ping"
EVENTS = {
    NEW: _l("New notification"),
    OPENED: _l("Notification opened (comparecencia)"),
    DEADLINE_NEAR: _l("Deadline near (5, 2 and 1 days before)"),
}
EVENT_NAMES = {**EVENTS, PING: _l("Test event")}

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = {PENDING: _l("Pending"), DELIVERED: _l("Delivered"), FAILED: _l("Failed")}

# What went wrong with an attempt, in words (stored as the key: shown in the reader's language).
ERRORS = {
    "http_status": _l("The receiver did not answer with a 2xx status."),
    "timeout": _l("The receiver did not answer in time."),
    "connection": _l("The receiver could not be reached."),
    "tls": _l("The receiver's TLS certificate could not be verified for its name."),
    "unknown_host": _l("The receiver's name could not be found."),
    "refused": _l("The address is not a server on the internet: it is refused."),
    "protocol": _l("The receiver's answer was not valid HTTP."),
}

PERMISSION = "sedes.webhooks:manage"
SWEEP_JOB = "sedes.webhooks_sweep"
DELIVER_JOB = "sedes.webhooks_deliver"
PURGE_JOB = "sedes.webhooks_purge"
RETENTION_DAYS = 90
SWEEP_CRON = "* * * * *"
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RUN_SIZE = 20  # deliveries per run: 20 slow receivers at the timeout still end well within the run's
DELIVER_TIMEOUT = 900  # seconds a deliver run may last (RQ's job timeout)
CLAIM_TTL = timedelta(seconds=DELIVER_TIMEOUT) + timedelta(minutes=5)
SECRET_BYTES = 32
SECRET_GRACE = timedelta(hours=24)
PER_PAGE = 30
# Deliveries one tenant's sweep queues per minute: a receiver down for a day must not fill the
# default queue with runs that would delay every other tenant's jobs; the rest wait for the next tick.
SWEEP_LIMIT = 200


# --- models ---------------------------------------------------------------------------------------


class SedeWebhook(TenantScoped, Audited, db.Model):
    """An endpoint of an integrator: where, which events, and the secret that signs its deliveries."""

    __tablename__ = "sedes_webhooks"
    __audit_type__ = "sedes_webhook"
    __audit_title__ = _l("Webhook")
    __audit_exclude__ = frozenset(
        {"secret", "previous_secret", "previous_secret_until", "created_at", "updated_at", "created_by_id"}
    )
    __audit_fields__ = {
        "url": _l("URL"),
        "description": _l("Description"),
        "events": _l("Events"),
        "active": _l("Active"),
        "secret_rotated_at": _l("Secret rotated at"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(EncryptedText)
    secret_rotated_at: Mapped[datetime | None] = mapped_column()
    # After a rotation the old secret signs too, until then, so a receiver can change without a gap.
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText)
    previous_secret_until: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def audit_label(self) -> str:
        return self.url


class SedeWebhookDelivery(TenantScoped, db.Model):
    """One event for one hook: its body (as it was when the event happened) and how sending it goes.

    At most one per hook, event, notification and ``occasion`` (the days left of a deadline alert).
    """

    __tablename__ = "sedes_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("uuid"),
        UniqueConstraint(
            "tenant_id", "hook_id", "event", "notification_id", "occasion", name="uq_sedes_webhook_deliveries_once"
        ),
        Index("ix_sedes_webhook_deliveries_due", "tenant_id", "status", "next_attempt_at"),
        Index("ix_sedes_webhook_deliveries_hook", "tenant_id", "hook_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))
    hook_id: Mapped[int] = mapped_column(ForeignKey("sedes_webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("sedes_notifications.id", ondelete="SET NULL"), index=True
    )
    occasion: Mapped[str] = mapped_column(String(16), default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(16))
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    hook = relationship("SedeWebhook")


class SedeWebhookAttempt(TenantScoped, db.Model):
    """One try at sending a delivery: what the receiver answered (or what failed), and how long it took."""

    __tablename__ = "sedes_webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("sedes_webhook_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


Webhook = SedeWebhook
Delivery = SedeWebhookDelivery
Attempt = SedeWebhookAttempt


# --- managing hooks -------------------------------------------------------------------------------


@dataclass
class WebhookData:
    url: str
    description: str
    events: list[str]
    active: bool = True


def _need(user) -> None:
    if not has_permission(user, PERMISSION):
        raise DomainError(_l("Your role does not allow managing webhooks."))


def _resolves(host: str, port: int) -> bool:
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return True


def check_url(value: str) -> str:
    """An https URL of a server on the internet (http too, and private addresses, only where the
    operator allows private hosts, as in tests and the demo). A name that does not resolve now is
    accepted: it is checked again at every delivery."""
    url = (value or "").strip()
    allow_private = bool(current_app.config.get("ALLOW_PRIVATE_HOSTS"))
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise DomainError(_l("Enter a full address, such as https://dms.example.com/hooks/sedes."), "url") from error
    if parts.scheme not in ("https", "http") or not parts.hostname or any(ch.isspace() for ch in url):
        raise DomainError(_l("Enter a full address, such as https://dms.example.com/hooks/sedes."), "url")
    if parts.scheme == "http" and not allow_private:
        raise DomainError(_l("The address must start with https://: deliveries carry your clients' data."), "url")
    if parts.username or parts.password:
        raise DomainError(_l("Leave the user and password out of the address."), "url")
    if len(url) > 500:
        raise DomainError(_l("The address is too long (500 characters at most)."), "url")
    if _resolves(parts.hostname, port):
        try:
            checked_address(parts.hostname, port)
        except DomainError as error:
            raise DomainError(error.message, "url") from error
    return url


def _check(data: WebhookData) -> WebhookData:
    url = check_url(data.url)
    events = [event for event in EVENTS if event in set(data.events or ())]
    if not events:
        raise DomainError(_l("Choose at least one event."), "events")
    return WebhookData(url, (data.description or "").strip()[:200], events, bool(data.active))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(SECRET_BYTES)


def create_hook(user, data: WebhookData) -> Webhook:
    _need(user)
    data = _check(data)
    hook = Webhook(
        url=data.url,
        description=data.description,
        events=data.events,
        active=data.active,
        secret=new_secret(),
        created_by_id=user.id,
    )
    db.session.add(hook)
    db.session.commit()
    return hook


def update_hook(user, hook: Webhook, data: WebhookData) -> Webhook:
    _need(user)
    data = _check(data)
    hook.url, hook.description, hook.events, hook.active = data.url, data.description, data.events, data.active
    db.session.commit()
    return hook


def set_active(user, hook: Webhook, active: bool) -> None:
    """Pause (nothing is recorded or sent for it) or resume (what was pending goes out)."""
    _need(user)
    hook.active = active
    db.session.commit()


def rotate_secret(user, hook: Webhook, *, keep_previous: bool = True) -> str:
    """A new secret at once. With ``keep_previous`` the old one signs every delivery beside it for
    ``SECRET_GRACE`` (a second ``v1``), so the receiver can change without refusing any; without it
    (the old secret leaked) the old one stops at once."""
    _need(user)
    now = utcnow()
    if keep_previous:
        hook.previous_secret, hook.previous_secret_until = hook.secret, now + SECRET_GRACE
    else:
        hook.previous_secret = hook.previous_secret_until = None
    hook.secret = new_secret()
    hook.secret_rotated_at = now
    db.session.commit()
    return hook.secret


def previous_secret_valid(hook: Webhook, now: datetime | None = None) -> bool:
    until = hook.previous_secret_until
    return bool(hook.previous_secret and until is not None and _aware(until) > (now or utcnow()))


def signing_secrets(hook: Webhook, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one in its grace."""
    return [hook.secret, hook.previous_secret] if previous_secret_valid(hook, now) else [hook.secret]


def delete_hook(user, hook: Webhook) -> None:
    _need(user)
    db.session.delete(hook)
    db.session.commit()


def hooks() -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).order_by(Webhook.id)))


def get_hook(hook_id: int) -> Webhook | None:
    return db.session.get(Webhook, hook_id)


def get_delivery(hook: Webhook, delivery_id: int) -> Delivery | None:
    return db.session.scalar(select(Delivery).where(Delivery.id == delivery_id, Delivery.hook_id == hook.id))


def deliveries_page(hook: Webhook, cursor: str | None, per_page: int = PER_PAGE) -> Page:
    """The hook's deliveries, newest first."""
    stmt = select(Delivery).where(Delivery.hook_id == hook.id)
    return keyset_page(db.session, stmt, [Delivery.id], cursor, per_page=per_page, descending=True)


def attempts_of(delivery: Delivery) -> list[Attempt]:
    return list(
        db.session.scalars(select(Attempt).where(Attempt.delivery_id == delivery.id).order_by(Attempt.id.desc()))
    )


def delivery_counts(hook_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per hook, how many deliveries are pending, delivered and failed (one grouped query)."""
    counts: dict[int, dict[str, int]] = {hook_id: {} for hook_id in hook_ids}
    if hook_ids:
        rows = db.session.execute(
            select(Delivery.hook_id, Delivery.status, func.count())
            .where(Delivery.hook_id.in_(hook_ids))
            .group_by(Delivery.hook_id, Delivery.status)
        )
        for hook_id, status, count in rows:
            counts[hook_id][status] = count
    return counts


# --- events: the outbox ---------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _aware(value).astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _notification_bodies(tenant: Tenant, notification_ids: list[int]) -> dict[int, dict]:
    """What a delivery says of each notification, read in one query per 500."""
    bodies = {}
    for first in range(0, len(notification_ids), 500):
        chunk = notification_ids[first : first + 500]
        rows = db.session.execute(
            select(SedeNotification, Client.tax_id, Client.name, Sede.name)
            .join(Client, Client.id == SedeNotification.client_id)
            .join(Sede, Sede.code == SedeNotification.sede_code)
            .where(SedeNotification.id.in_(chunk))
        )
        for notification, tax_id, client_name, sede_name in rows:
            n = notification
            bodies[n.id] = {
                "id": n.id,
                "sede": {"code": n.sede_code, "name": sede_name},
                "external_id": n.external_id,
                "kind": n.kind,
                "client": {"id": n.client_id, "tax_id": tax_id, "name": client_name},
                "titular": {"nif": n.titular_nif, "name": n.titular_name},
                "subject": n.subject,
                "procedure": n.procedure,
                "issuer": {"code": n.issuer_code, "name": n.issuer_name},
                "made_available_at": _iso(n.made_available_at),
                "deadline_on": _iso(n.deadline_on),
                "sede_state": n.sede_state,
                "workflow_state": n.workflow_state,
                "opened_at": _iso(n.opened_at),
                "link": external_url("sedes_notifications.show", tenant=tenant.slug, notification_id=n.id),
            }
    return bodies


def _subscribed(event: str) -> list[int]:
    """The active hooks of the current tenant that want ``event`` (few per tenant: filtered here,
    as a JSON list is searched differently on each database)."""
    rows = db.session.execute(select(Webhook.id, Webhook.events).where(Webhook.active.is_(True)))
    return [hook_id for hook_id, events in rows if event in (events or ())]


def emit(tenant: Tenant, event: str, notification_ids: Iterable[int], *, today: date | None = None) -> int:
    """Record ``event`` of these notifications for every active hook that wants it, in the caller's
    transaction (committed with the change that caused it). A deadline alert is one event per day
    left; any other event, once per notification. Returns how many deliveries were written."""
    ids = sorted({int(i) for i in notification_ids})
    hook_ids = _subscribed(event) if ids else []
    return _emit(tenant, event, ids, hook_ids, today) if hook_ids else 0


def _emit(tenant: Tenant, event: str, ids: list[int], hook_ids: list[int], today: date | None) -> int:
    bodies = _notification_bodies(tenant, ids)
    occasions: dict[int, str] = {}
    if event == DEADLINE_NEAR:
        today = today or tenant_today(tenant)
        for nid, body in bodies.items():
            left = (date.fromisoformat(body["deadline_on"]) - today).days if body["deadline_on"] else None
            body["days_left"] = left
            occasions[nid] = "" if left is None else str(left)
    done = set()
    for first in range(0, len(ids), 500):
        done.update(
            db.session.execute(
                select(Delivery.hook_id, Delivery.notification_id, Delivery.occasion).where(
                    Delivery.event == event,
                    Delivery.hook_id.in_(hook_ids),
                    Delivery.notification_id.in_(ids[first : first + 500]),
                )
            ).all()
        )
    now = utcnow()
    rows = []
    for nid in ids:
        body = bodies.get(nid)
        if body is None:
            continue
        occasion = occasions.get(nid, "")
        for hook_id in hook_ids:
            if (hook_id, nid, occasion) in done:
                continue
            rows.append(_delivery_row(tenant, hook_id, event, {"notification": body}, now, nid, occasion))
    if rows:
        db.session.execute(insert(Delivery), rows)
    return len(rows)


def notifications_found(tenant: Tenant, new_rows: list[dict]) -> int:
    """``emit`` of ``NEW`` for notifications a sync has just inserted (its rows name them by sede
    and external id): one query finds their ids."""
    hook_ids = _subscribed(NEW) if new_rows else []
    if not hook_ids:
        return 0
    keys = [(row["sede_code"], row["external_id"]) for row in new_rows]
    ids: list[int] = []
    for first in range(0, len(keys), 500):
        ids += db.session.scalars(
            select(SedeNotification.id).where(
                tuple_(SedeNotification.sede_code, SedeNotification.external_id).in_(keys[first : first + 500])
            )
        )
    return _emit(tenant, NEW, sorted(ids), hook_ids, None)


def _delivery_row(tenant, hook_id, event, payload, now, notification_id=None, occasion="") -> dict:
    return {
        "tenant_id": tenant.id,
        "uuid": str(uuid.uuid4()),
        "hook_id": hook_id,
        "event": event,
        "notification_id": notification_id,
        "occasion": occasion,
        "payload": {"tenant": {"slug": tenant.slug, "name": tenant.name}, **payload},
        "occurred_at": now,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def body_of(delivery: Delivery) -> bytes:
    """The JSON body, the same bytes at every attempt (the signature covers them)."""
    document = {
        "id": delivery.uuid,
        "event": delivery.event,
        "occurred_at": _iso(delivery.occurred_at),
        **(delivery.payload or {}),
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# --- sending --------------------------------------------------------------------------------------


def ping(tenant: Tenant, user, hook: Webhook):
    """ "Send a test event": a ``ping`` delivery to this hook, queued at once (paused hooks too)."""
    _need(user)
    delivery_id = ping_delivery(tenant, hook)
    db.session.commit()
    return start(tenant, [delivery_id], user=user)


def ping_delivery(tenant: Tenant, hook: Webhook) -> int:
    """A ``ping`` delivery to ``hook``, due now, in the caller's transaction; returns its id."""
    row = _delivery_row(tenant, hook.id, PING, {"hook": {"id": hook.id, "description": hook.description}}, utcnow())
    db.session.execute(insert(Delivery), [row])
    return db.session.scalar(select(Delivery.id).where(Delivery.uuid == row["uuid"]))


def redeliver(tenant: Tenant, user, delivery: Delivery):
    """ "Deliver again": the same delivery (same id: the receiver may already have it), with a fresh
    round of attempts, queued at once."""
    _need(user)
    now = utcnow()
    if delivery.status == PENDING and delivery.claimed_at is not None and _aware(delivery.claimed_at) > now - CLAIM_TTL:
        raise DomainError(_l("This delivery is being sent right now."))
    delivery.status = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.claimed_at = None
    db.session.commit()
    return start(tenant, [delivery.id], user=user)


def _free(now: datetime):
    return or_(Delivery.claimed_at.is_(None), Delivery.claimed_at < now - CLAIM_TTL)


def _claim(ids: list[int], now: datetime) -> list[int]:
    """Mark these deliveries as taken by a run unless one holds them; returns those claimed here."""
    if not ids:
        return []
    conditions = [Delivery.id.in_(ids), Delivery.status == PENDING, _free(now)]
    db.session.execute(
        sql_update(Delivery).where(*conditions).values(claimed_at=now).execution_options(synchronize_session=False)
    )
    db.session.commit()
    return list(db.session.scalars(select(Delivery.id).where(Delivery.id.in_(ids), Delivery.claimed_at == now)))


def start(tenant: Tenant, delivery_ids: list[int], *, user=None) -> list:
    """Claim these deliveries and queue runs to send them (``RUN_SIZE`` per run)."""
    claimed = _claim(sorted(set(delivery_ids)), utcnow())
    runs = []
    for first in range(0, len(claimed), RUN_SIZE):
        chunk = claimed[first : first + RUN_SIZE]
        try:
            runs.append(enqueue(tenant, DELIVER_JOB, {"delivery_ids": chunk}, started_by=user, scheduled=user is None))
        except Exception:
            db.session.rollback()
            db.session.execute(
                sql_update(Delivery)
                .where(Delivery.id.in_(chunk))
                .values(claimed_at=None)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            raise
    return runs


def due_ids(now: datetime) -> list[int]:
    """The current tenant's deliveries to send now (the ``SWEEP_LIMIT`` longest due): pending, due, of an
    active hook, not held by a run."""
    stmt = (
        select(Delivery.id)
        .join(Webhook, Webhook.id == Delivery.hook_id)
        .where(
            Delivery.status == PENDING,
            Delivery.next_attempt_at <= now,
            Webhook.active.is_(True),
            _free(now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(SWEEP_LIMIT)
    )
    return list(db.session.scalars(stmt))


def sweep(tenant_ids: list[int]) -> dict:
    """The ``sedes.webhooks_sweep`` cron job: queue runs for every tenant's due deliveries.

    One query over every tenant finds which have any; only those are entered."""
    now = utcnow()
    if not tenant_ids:
        return {"deliveries": 0, "runs": 0}
    with all_tenants():
        busy = set(
            db.session.scalars(
                select(Delivery.tenant_id)
                .join(Webhook, Webhook.id == Delivery.hook_id)
                .where(
                    Delivery.tenant_id.in_(tenant_ids),
                    Webhook.active.is_(True),
                    Delivery.status == PENDING,
                    Delivery.next_attempt_at <= now,
                    _free(now),
                )
                .distinct()
            )
        )
    deliveries = runs = 0
    for tenant_id in sorted(busy):
        with tenant_context(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            started = start(tenant, due_ids(now))
            runs += len(started)
            deliveries += sum(len(run.arguments["delivery_ids"]) for run in started)
    return {"deliveries": deliveries, "runs": runs}


def run_deliver(ctx, delivery_ids: list[int]) -> dict:
    """The ``sedes.webhooks_deliver`` job: send each claimed delivery once, recording the outcome
    after each (a worker that dies loses at most the one in flight, which is claimed again later)."""
    from plugins.sedes.webhook_sender import send

    summary = {"delivered": 0, "retrying": 0, "failed": 0}
    for delivery_id in delivery_ids:
        delivery = db.session.scalar(
            select(Delivery).where(
                Delivery.id == delivery_id, Delivery.status == PENDING, Delivery.claimed_at.is_not(None)
            )
        )
        if delivery is None:  # sent meanwhile, or its hook was deleted
            continue
        hook = delivery.hook
        outcome = send(hook.url, signing_secrets(hook), delivery.event, delivery.uuid, body_of(delivery))
        record(delivery, outcome)
        db.session.commit()
        summary[{DELIVERED: "delivered", FAILED: "failed"}.get(delivery.status, "retrying")] += 1
        ctx.progress(sum(summary.values()), len(delivery_ids))
    return summary


def record(delivery: Delivery, outcome) -> None:
    """The attempt in the log, and what comes next for the delivery: done, a retry, or failed."""
    now = utcnow()
    db.session.add(
        Attempt(
            delivery_id=delivery.id,
            at=now,
            status_code=outcome.status,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
            detail=outcome.detail,
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.claimed_at = None
    delivery.last_status_code = outcome.status
    delivery.last_error = outcome.error
    if outcome.error is None:
        delivery.status = DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif outcome.final or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]


def purge_old_deliveries() -> dict:
    """The current tenant's delivered and failed deliveries older than ``RETENTION_DAYS``, and
    their attempts, removed in two statements."""
    cutoff = utcnow() - timedelta(days=RETENTION_DAYS)
    ended = select(Delivery.id).where(Delivery.status.in_((DELIVERED, FAILED)), Delivery.created_at < cutoff)
    attempts = db.session.execute(
        delete(Attempt).where(Attempt.delivery_id.in_(ended)),
        execution_options={"synchronize_session": False},
    ).rowcount
    deliveries = db.session.execute(
        delete(Delivery).where(Delivery.id.in_(ended)), execution_options={"synchronize_session": False}
    ).rowcount
    db.session.commit()
    return {"deliveries_removed": deliveries, "attempts_removed": attempts}


def run_purge(ctx) -> dict:
    return purge_old_deliveries()


def register_jobs(jobs) -> None:
    """What the plugin's ``register_jobs`` hook adds for webhooks (all on the ``default`` queue)."""
    jobs.add(
        SWEEP_JOB,
        sweep,
        queue="default",
        title=_l("Queue the due webhook deliveries"),
        cron=SWEEP_CRON,
        per_tenant=False,
        timeout=300,
    )
    jobs.add(DELIVER_JOB, run_deliver, queue="default", title=_l("Send webhook deliveries"), timeout=DELIVER_TIMEOUT)
    jobs.add(
        PURGE_JOB,
        run_purge,
        queue="default",
        title=_l("Remove webhook deliveries older than 90 days"),
        cron="41 3 * * *",
        timeout=600,
    )
