"""Figures worth keeping between requests (the dashboard's counts), forgotten at every change.

Each tenant has a version number in Redis that every committed transaction that wrote for it
raises (a commit outside any tenant, which may have crossed tenants, raises the version every
tenant's figures also depend on). A transaction that only read, or whose writes were rolled back,
leaves the versions alone, and a savepoint's release waits for the commit. ``remember`` keeps a
computed value under the versions it was computed at: the next change of the tenant's data makes
it unreachable, and it also expires after ``ttl`` seconds whatever happens. A figure is then at
most one commit old, never stale. A transaction that has written and not committed neither
reads nor keeps figures: it would keep what it may yet roll back.

A request reads the versions once (its own commits make it read them again), and each process
also keeps the figures it has seen, under the same keys, until their time in Redis is up: a page
then asks Redis one thing for all its figures. The keys carry the epoch of Redis's data too, so
a Redis that lost its data and counts from 0 again never meets a figure kept before.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable

from flask import has_app_context, has_request_context, request
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.redis_connection import get_redis
from tenants.context import crossing_tenants, current_tenant_id

log = logging.getLogger(__name__)

_VERSION = "ventanilla:data-version:"
_GLOBAL = _VERSION + "all"
_VALUE = "ventanilla:remembered:"
_EPOCH = "ventanilla:data-epoch"
_WROTE = "ventanilla_wrote"
_CONNECTIONS = "ventanilla_connections"
_REQUEST_VERSIONS = "ventanilla.data-versions"
# Figures this process keeps as well, by key: (when they expire, their JSON).
_HERE: dict[str, tuple[float, bytes]] = {}
_HERE_MOST = 4096

# At the cursor, where every write passes whatever built it: ORM flushes, set-based statements,
# textual SQL and statements run on the session's connection itself.
_WRITE = re.compile(
    r"\s*(?:insert|update|delete|merge|truncate|copy)\b|\s*with\b.*\b(?:insert|update|delete)\b", re.I | re.S
)


def _note_write(connection, cursor, statement, parameters, context, executemany) -> None:
    if _WRITE.match(statement):
        connection.info[_WROTE] = True


def _forget_writes(connection) -> None:
    connection.info.pop(_WROTE, None)


def _note_connection(session: Session, transaction, connection) -> None:
    session.info.setdefault(_CONNECTIONS, []).append(connection)


def _forget_connections(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTIONS, None)


def _data_changed(session: Session) -> None:
    # After the commit, not before: a reader between the two would keep old figures under the new version.
    # A savepoint's release is no commit: the writes wait for the transaction's.
    if session.in_nested_transaction():
        return
    connections = session.info.pop(_CONNECTIONS, ())
    wrote = [connection.info.pop(_WROTE, False) for connection in connections]
    if not any(wrote) or not has_app_context():
        return
    tenant_id = current_tenant_id()
    if has_request_context():
        request.environ.pop(_REQUEST_VERSIONS, None)
    try:
        get_redis().incr(_GLOBAL if tenant_id is None or crossing_tenants() else f"{_VERSION}{tenant_id}")
    except RedisError:
        # The commit stands; the figures kept for this tenant expire by their ttl.
        log.warning("could not mark tenant %s's data as changed", tenant_id, exc_info=True)


def init_app() -> None:
    """Every process that commits (web, workers, commands) raises the versions: ``create_app`` calls this."""
    if event.contains(Session, "after_commit", _data_changed):
        return
    event.listen(Engine, "before_cursor_execute", _note_write)
    event.listen(Engine, "rollback", _forget_writes)
    event.listen(Session, "after_begin", _note_connection)
    event.listen(Session, "after_commit", _data_changed)
    event.listen(Session, "after_transaction_end", _forget_connections)


def _writing() -> bool:
    """Whether the request's (or job's) transaction has written and not yet committed."""
    from core.extensions import db

    return any(connection.info.get(_WROTE) for connection in db.session().info.get(_CONNECTIONS, ()))


def _versions(redis, tenant_id: int) -> str:
    """The versions the tenant's figures are kept under, with the epoch of the Redis data (a Redis
    that lost its data starts again from version 0, and a figure this process kept under the old
    numbers must not match). Read once per request: the request's own commits forget them."""
    kept = request.environ.setdefault(_REQUEST_VERSIONS, {}) if has_request_context() else {}
    if tenant_id not in kept:
        tenant, every, epoch = redis.mget(f"{_VERSION}{tenant_id}", _GLOBAL, _EPOCH)
        if epoch is None:
            redis.set(_EPOCH, secrets.token_hex(8), nx=True)
            epoch = redis.get(_EPOCH)
        kept[tenant_id] = ":".join(v.decode() for v in (tenant or b"0", every or b"0", epoch))
    return kept[tenant_id]


def data_versions(tenant_id: int) -> str | None:
    """The versions of the tenant's data now, as ``remember`` keys its figures (read once per
    request): what this process keeps about the tenant is current while they are the same. None
    when Redis cannot tell, and then nothing kept may be trusted."""
    try:
        return _versions(get_redis(), tenant_id)
    except RedisError:
        log.warning("data versions unknown: Redis is unreachable", exc_info=True)
        return None


def _kept_here(key: str) -> bytes | None:
    found = _HERE.get(key)
    if found is None or found[0] < time.monotonic():
        return None
    return found[1]


def _keep_here(key: str, kept: bytes, ttl: int) -> None:
    if len(_HERE) >= _HERE_MOST:
        # Whole: the keys of old versions are never asked for again, and the live ones come back from Redis.
        _HERE.clear()
    _HERE[key] = (time.monotonic() + ttl, kept)


def remember(name: str, compute: Callable[[], object], *, ttl: int = 300) -> object:
    """``compute()`` for the tenant in context, or its value kept since the tenant's data last
    changed. ``name`` tells apart the figures and whatever they depend on besides the data (the
    user, whose groups decide what they see); the value must be JSON.

    Kept in Redis, for every process, and in this process too: a page asks for a few figures,
    and with the versions read once a request it then makes one round trip to Redis, not one
    per figure."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return compute()
    if _writing():
        # It would see writes not yet committed, which may yet be rolled back.
        return compute()
    try:
        redis = get_redis()
        key = f"{_VALUE}{tenant_id}:{name}:{_versions(redis, tenant_id)}"
        kept = _kept_here(key)
        if kept is None:
            pipe = redis.pipeline(transaction=False)
            kept, left = pipe.get(key).ttl(key).execute()
            if kept is not None and left > 0:
                _keep_here(key, kept, min(ttl, left))
    except RedisError:
        log.warning("figures cannot be kept: Redis is unreachable", exc_info=True)
        return compute()
    if kept is not None:
        return json.loads(kept)
    value = compute()
    encoded = json.dumps(value).encode()
    try:
        redis.set(key, encoded, ex=ttl)
    except RedisError:
        log.warning("figures cannot be kept: Redis is unreachable", exc_info=True)
        return value
    _keep_here(key, encoded, ttl)
    return value
