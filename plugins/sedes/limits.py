"""The per-sede concurrency limit: at most ``Sede.max_concurrency`` mailboxes read at one sede at the
same time, by every thread of every worker on every machine, of every tenant (a sede is never
hammered, whoever asks it).

A counting semaphore in Redis: one sorted set per sede whose members are the holders and whose
scores are when each holder expires. Taking a slot is one script (drop the expired holders, count,
add) so two machines never both take the last one. While a process holds slots, a thread of its own
pushes their expiry forward every third of ``SLOT_TTL``, however long a read lasts; a process that
dies (its worker killed) stops renewing, and its slots are free again within ``SLOT_TTL``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator

from flask import current_app

from core.api import get_redis

log = logging.getLogger(__name__)

SLOT_TTL = 30.0  # seconds
WAIT_STEP = 0.02  # seconds between two attempts to take a slot (plus up to as much again, at random)

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    return 1
end
return 0
"""

# The slots this process holds (holder -> its sede's key), renewed by one thread per process.
_held: dict[str, str] = {}
_held_lock = threading.Lock()
_renewer: dict[str, object] = {"pid": None, "connection": None}


def slot_key(sede_code: str) -> str:
    return f"{current_app.config.get('QUEUE_PREFIX', '')}ventanilla:sedes:slots:{sede_code}"


def take_slot(sede_code: str, limit: int, holder: str) -> bool:
    """Take one of the sede's ``limit`` slots for ``holder`` if one is free; returns whether it did."""
    now = time.time()
    script = get_redis().register_script(_TAKE)
    arguments = [holder, now, now + SLOT_TTL, max(1, limit), int(SLOT_TTL) + 1]
    return bool(script(keys=[slot_key(sede_code)], args=arguments))


def release_slot(sede_code: str, holder: str) -> None:
    get_redis().zrem(slot_key(sede_code), holder)


def holders(sede_code: str) -> int:
    """How many live holders the sede has now."""
    return get_redis().zcount(slot_key(sede_code), time.time(), "+inf")


def renew_held(connection=None) -> int:
    """Push forward the expiry of every slot this process holds (never bring back one already
    expired and dropped); returns how many were renewed."""
    connection = connection or get_redis()
    with _held_lock:
        held = list(_held.items())
    expiry = time.time() + SLOT_TTL
    renewed = 0
    for holder, key in held:
        renewed += connection.zadd(key, {holder: expiry}, xx=True, ch=True)
    return renewed


def _renew_forever() -> None:
    while True:
        time.sleep(SLOT_TTL / 3)
        try:
            renew_held(_renewer["connection"])
        except Exception:
            log.exception("renewing the sede slots of this process failed")


def _ensure_renewer() -> None:
    # One thread per process; a forked work-horse starts its own (threads do not survive a fork).
    with _held_lock:
        if _renewer["pid"] == os.getpid():
            return
        _renewer["pid"] = os.getpid()
        _renewer["connection"] = get_redis()
    threading.Thread(target=_renew_forever, name="sedes-slots", daemon=True).start()


@contextlib.contextmanager
def sede_slot(sede_code: str, limit: int) -> Iterator[None]:
    """Wait for a free slot of the sede, hold it for the block, give it back."""
    _ensure_renewer()
    holder = uuid.uuid4().hex
    key = slot_key(sede_code)
    while not take_slot(sede_code, limit, holder):
        time.sleep(WAIT_STEP + random.random() * WAIT_STEP)
    with _held_lock:
        _held[holder] = key
    try:
        yield
    finally:
        with _held_lock:
            _held.pop(holder, None)
        release_slot(sede_code, holder)
