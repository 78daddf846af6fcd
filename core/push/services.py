"""Sending web push notifications (best effort; e-mail stays the guaranteed channel).

The VAPID key pair is created once per installation and kept encrypted. A push service that
answers 404 or 410 has forgotten the subscription: it is deleted (by endpoint, so that a
subscription renewed meanwhile is not lost). Pushes carry a TTL so that a phone that is off
for a while still gets them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
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

log = logging.getLogger(__name__)

DEFAULT_TTL = 24 * 3600
GONE = (404, 410)


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


def subscribe(user, subscription: dict, user_agent: str = "", replaces: str = "") -> PushSubscription:
    """Keep a browser's subscription (the JSON of ``PushSubscription.toJSON()``) for ``user``;
    ``replaces``: the endpoint of the user's subscription that this one renews, which goes."""
    endpoint = str(subscription.get("endpoint") or "")
    keys = subscription.get("keys") or {}
    p256dh, auth = str(keys.get("p256dh") or ""), str(keys.get("auth") or "")
    parts = urlsplit(endpoint)
    valid_endpoint = parts.scheme == "https" or (
        parts.scheme == "http" and current_app.config.get("PUSH_ALLOW_HTTP_ENDPOINTS")
    )
    if not (valid_endpoint and parts.netloc and _B64URL.match(p256dh) and _B64URL.match(auth)):
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
                timeout=10,
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
