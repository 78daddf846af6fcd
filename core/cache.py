"""Figures worth keeping between requests (the dashboard's counts), forgotten at every change.

Each tenant has a version number in Redis that every committed transaction that wrote for it
raises (a commit outside any tenant, which may have crossed tenants, raises the version every
tenant's figures also depend on). A transaction that only read, or whose writes were rolled back,
leaves the versions alone, and a savepoint's release waits for the commit. ``remember`` keeps a
computed value under the versions it was computed at: the next change of the tenant's data makes
it unreachable, and it also expires after ``ttl`` seconds whatever happens. A figure is then at
most one commit old, never stale.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from flask import has_app_context
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
_WROTE = "ventanilla_wrote"
_CONNECTIONS = "ventanilla_connections"

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


def remember(name: str, compute: Callable[[], object], *, ttl: int = 300) -> object:
    """``compute()`` for the tenant in context, or its value kept since the tenant's data last
    changed. ``name`` tells apart the figures and whatever they depend on besides the data (the
    user, whose groups decide what they see); the value must be JSON."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return compute()
    try:
        redis = get_redis()
        versions = redis.mget(f"{_VERSION}{tenant_id}", _GLOBAL)
        key = f"{_VALUE}{tenant_id}:{name}:" + ":".join((v or b"0").decode() for v in versions)
        kept = redis.get(key)
    except RedisError:
        log.warning("figures cannot be kept: Redis is unreachable", exc_info=True)
        return compute()
    if kept is not None:
        return json.loads(kept)
    value = compute()
    try:
        redis.set(key, json.dumps(value), ex=ttl)
    except RedisError:
        log.warning("figures cannot be kept: Redis is unreachable", exc_info=True)
    return value
