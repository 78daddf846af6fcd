"""Sending web push notifications (best effort; e-mail stays the guaranteed channel).

The VAPID key pair is created once per installation and kept encrypted. A subscription may only
point at a known push service (``PUSH_SERVICES``: the browsers' own), and an account keeps at most
``PUSH_MAX_SUBSCRIPTIONS`` of them. ``send_later`` sends from the ``push`` queue, so a slow push
service never holds up the mail. A push service that answers 404 or 410 has forgotten the
subscription: it is deleted (by endpoint, so that a subscription renewed meanwhile is not lost).
Pushes carry a TTL so that a phone that is off for a while still gets them.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask_babel import lazy_gettext as _l
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select

from core.errors import DomainError
from core.extensions import db, utcnow
from core.push.models import PushSubscription, VapidKey
from tenants.context import current_tenant_id, tenant_context

log = logging.getLogger(__name__)

DEFAULT_TTL = 24 * 3600
GONE = (404, 410)
# Seconds to wait for a push service.
PUSH_TIMEOUT = 10


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def vapid_key() -> VapidKey:
    """The installation's key pair, made on first use."""
    key = db.session.scalar(select(VapidKey).order_by(VapidKey.id))
    if key is None:
        vapid = Vapid02()
        vapid.generate_keys()
        public = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        key = VapidKey(private_pem=vapid.private_pem().decode("ascii"), public_key=_b64url(public))
        db.session.add(key)
        db.session.commit()
    return key


def public_key() -> str:
    return vapid_key().public_key


_B64URL = re.compile(r"^[A-Za-z0-9_\-]+={0,2}$")


def is_known_push_service(endpoint: str) -> bool:
    """Whether ``endpoint`` is an HTTPS URL of one of ``PUSH_SERVICES`` (host, or host:port)."""
    config = current_app.config
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    if not (parts.scheme == "https" or (parts.scheme == "http" and config.get("PUSH_ALLOW_HTTP_ENDPOINTS"))):
        return False
    if not parts.hostname or "@" in parts.netloc:
        return False
    netloc = parts.netloc.lower()
    for service in config["PUSH_SERVICES"]:
        service = service.lower()
        if netloc == service or (service.startswith(".") and netloc.endswith(service) and ":" not in netloc):
            return True
    return False


def subscribe(user, subscription: dict, user_agent: str = "", replaces: str = "") -> PushSubscription:
    """Keep a browser's subscription (the JSON of ``PushSubscription.toJSON()``) for ``user``;
    ``replaces``: the endpoint of the user's subscription that this one renews, which goes.

    The endpoint must be on a known push service. Beyond ``PUSH_MAX_SUBSCRIPTIONS`` browsers, the
    account's oldest subscriptions go.
    """
    endpoint = str(subscription.get("endpoint") or "")
    keys = subscription.get("keys") or {}
    p256dh, auth = str(keys.get("p256dh") or ""), str(keys.get("auth") or "")
    if not (is_known_push_service(endpoint) and _B64URL.match(p256dh) and _B64URL.match(auth)):
        raise DomainError(_l("This browser sent an unusable push subscription."))
    row = db.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    if row is None:
        row = PushSubscription(endpoint=endpoint)
        db.session.add(row)
    row.user_id, row.p256dh, row.auth, row.user_agent = user.id, p256dh, auth, user_agent[:255]
    if replaces and replaces != endpoint:
        db.session.execute(
            delete(PushSubscription).where(PushSubscription.user_id == user.id, PushSubscription.endpoint == replaces)
        )
    db.session.flush()
    keep = current_app.config["PUSH_MAX_SUBSCRIPTIONS"]
    newest = (
        select(PushSubscription.id)
        .where(PushSubscription.user_id == user.id)
        .order_by(PushSubscription.id.desc())
        .limit(keep)
    )
    db.session.execute(
        delete(PushSubscription)
        .where(PushSubscription.user_id == user.id, PushSubscription.id.not_in(list(db.session.scalars(newest))))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return row


def unsubscribe(user, endpoint: str) -> None:
    db.session.execute(
        delete(PushSubscription).where(PushSubscription.user_id == user.id, PushSubscription.endpoint == endpoint)
    )
    db.session.commit()


@dataclass
class PushResult:
    delivered: int = 0
    removed: int = 0
    failed: int = 0


def send_to_user(user_id: int, payload: dict, *, ttl: int = DEFAULT_TTL, session=None) -> PushResult:
    """Push ``payload`` (JSON) to every browser of ``user_id`` in the current tenant. Never raises."""
    from core.auth.models import User

    result = PushResult()
    subscriptions = db.session.scalars(
        select(PushSubscription)
        .join(User, User.id == PushSubscription.user_id)
        .where(PushSubscription.user_id == user_id, User.active.is_(True))
    ).all()
    if not subscriptions:
        return result
    key = vapid_key()
    vapid = Vapid02.from_pem(key.private_pem.encode("ascii"))
    sender = current_app.config["MAIL_FROM"]
    match = re.search(r"[\w.+-]+@[\w.-]+", sender)
    claims_sub = f"mailto:{match.group(0) if match else 'push@ventanilla.localhost'}"
    data = json.dumps(payload, ensure_ascii=False)
    for subscription in subscriptions:
        endpoint = subscription.endpoint
        try:
            webpush(
                {"endpoint": endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
                data,
                vapid_private_key=vapid,
                vapid_claims={"sub": claims_sub},
                ttl=ttl,
                timeout=PUSH_TIMEOUT,
                requests_session=session,
            )
        except WebPushException as error:
            status = getattr(error.response, "status_code", None)
            if status in GONE:
                db.session.execute(delete(PushSubscription).where(PushSubscription.endpoint == endpoint))
                result.removed += 1
            else:
                log.warning("push to %s failed: %s", urlsplit(endpoint).netloc, error)
                result.failed += 1
            continue
        except Exception as error:  # a push service that cannot be reached: e-mail has it covered
            log.warning("push to %s failed: %s", urlsplit(endpoint).netloc, error)
            result.failed += 1
            continue
        subscription.last_sent_at = utcnow()
        result.delivered += 1
    db.session.commit()
    return result


# --- from the push queue ----------------------------------------------------------------------

# Pushes per job: a job ends in minutes even when every push service takes its full timeout.
PUSH_BATCH = 50


@dataclass(frozen=True)
class Push:
    """One push to every browser of ``user_id``. ``key`` (a JSON value) is handed back to the
    caller's ``on_delivered`` when a browser got it."""

    user_id: int
    payload: dict
    key: object = None


def send_later(pushes: Sequence[Push], *, ttl: int = DEFAULT_TTL, on_delivered: str | None = None) -> int:
    """Send ``pushes`` (users of the current tenant) from the ``push`` queue; returns how many were queued.

    Pushes to users without any subscription are dropped at once (one query). ``on_delivered``
    names a function (``"package.module:function"``) that the job calls, in the tenant's context,
    with the keys of the pushes that reached at least one browser; the job then commits. Call it
    once what that function reads is committed. Never raises: a push is best effort.
    """
    from core.jobs.services import get_queue

    if not pushes:
        return 0
    tenant_id = current_tenant_id()
    subscribed = set(
        db.session.scalars(
            select(PushSubscription.user_id)
            .where(PushSubscription.user_id.in_({push.user_id for push in pushes}))
            .distinct()
        )
    )
    wanted = [push for push in pushes if push.user_id in subscribed]
    queued = 0
    for start in range(0, len(wanted), PUSH_BATCH):
        batch = [
            {"user_id": push.user_id, "payload": push.payload, "key": push.key}
            for push in wanted[start : start + PUSH_BATCH]
        ]
        try:
            get_queue("push").enqueue(
                "core.push.services.deliver",
                tenant_id,
                batch,
                ttl,
                on_delivered,
                job_timeout=PUSH_BATCH * (PUSH_TIMEOUT + 5),
                result_ttl=3600,
                description=f"{len(batch)} pushes (tenant {tenant_id})",
            )
        except Exception as error:  # Redis away: e-mail has it covered
            log.warning("could not queue %s pushes of tenant %s: %s", len(batch), tenant_id, error)
            continue
        queued += len(batch)
    return queued


def deliver(tenant_id: int, batch: list[dict], ttl: int, on_delivered: str | None) -> dict:
    """The ``push``-queue job: send a batch queued by ``send_later``."""
    from core.jobs.runner import _fresh_connections_after_fork, job_application

    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        with tenant_context(tenant_id):
            delivered_keys, total = [], PushResult()
            for push in batch:
                result = send_to_user(push["user_id"], push["payload"], ttl=ttl)
                total.delivered += result.delivered
                total.removed += result.removed
                total.failed += result.failed
                if result.delivered:
                    delivered_keys.append(push["key"])
            if on_delivered and delivered_keys:
                module, _, function = on_delivered.partition(":")
                getattr(importlib.import_module(module), function)(delivered_keys)
                db.session.commit()
            return {"delivered": total.delivered, "removed": total.removed, "failed": total.failed}
