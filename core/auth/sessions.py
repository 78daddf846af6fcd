"""Server-side records of signed-in browsers, so that logging out ends a session for good.

Flask's session is a signed cookie: on its own, a copy of it taken before logging out would keep
working until it expires. Each login now also writes a record in Redis under a random id kept in
the cookie; a request is signed in only while its record exists (each request extends it by the
session's lifetime), and logging out deletes it. The account's session nonce still ends every
session of the account at once (a password change, a deactivation).
"""

from __future__ import annotations

import secrets

from flask import current_app, session

from core.redis_connection import get_redis

SESSION_ID = "_sid"
_PREFIX = "ventanilla:session:"


def _lifetime() -> int:
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    return int(lifetime.total_seconds() if hasattr(lifetime, "total_seconds") else lifetime)


def _owner(identity: str) -> str:
    """Whom a record belongs to: the login identity without its nonce (``t:<tenant>:<user>``)."""
    return identity.rsplit(":", 1)[0]


def open_session(identity: str) -> None:
    """Record the browser that has just logged in as ``identity`` (call after ``login_user``)."""
    close_session()
    session_id = secrets.token_urlsafe(32)
    get_redis().set(_PREFIX + session_id, _owner(identity), ex=_lifetime())
    session[SESSION_ID] = session_id


def is_live(identity: str) -> bool:
    """Whether this request's browser has a record for ``identity``; extends it when it has."""
    session_id = session.get(SESSION_ID)
    if not session_id:
        return False
    owner = get_redis().getex(_PREFIX + session_id, ex=_lifetime())
    return owner is not None and owner.decode() == _owner(identity)


def close_session() -> None:
    """Forget this browser's record (logging out): the cookie, wherever it was copied, stops working."""
    session_id = session.pop(SESSION_ID, None)
    if session_id:
        get_redis().delete(_PREFIX + session_id)
