"""The per-sede concurrency limit: at most ``Sede.max_concurrency`` mailboxes read at one sede at the
same time, by every thread of every worker on every machine, of every tenant (a sede is never
hammered, whoever asks it).

A counting semaphore in Redis: one sorted set per sede whose members are the holders and whose
scores are when each holder expires. Taking a slot is one script (drop the expired holders, count,
add) so two machines never both take the last one. A holder that dies (its worker killed) frees its
slot when it expires, ``SLOT_TTL`` after it was taken: longer than reading one mailbox lasts (a few
requests, each with the connector's timeout).
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator

from flask import current_app

from core.api import get_redis

SLOT_TTL = 300.0  # seconds
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


def slot_key(sede_code: str) -> str:
    return f"{current_app.config.get('QUEUE_PREFIX', '')}ventanilla:sedes:slots:{sede_code}"


def take_slot(sede_code: str, limit: int, holder: str) -> bool:
    """Take one of the sede's ``limit`` slots for ``holder`` if one is free; returns whether it did."""
    now = time.time()
    script = get_redis().register_script(_TAKE)
    return bool(
        script(keys=[slot_key(sede_code)], args=[holder, now, now + SLOT_TTL, max(1, limit), int(SLOT_TTL) + 1])
    )


def release_slot(sede_code: str, holder: str) -> None:
    get_redis().zrem(slot_key(sede_code), holder)


def holders(sede_code: str) -> int:
    """How many live holders the sede has now."""
    key = slot_key(sede_code)
    return get_redis().zcount(key, time.time(), "+inf")


@contextlib.contextmanager
def sede_slot(sede_code: str, limit: int) -> Iterator[None]:
    """Wait for a free slot of the sede, hold it for the block, give it back."""
    holder = uuid.uuid4().hex
    while not take_slot(sede_code, limit, holder):
        time.sleep(WAIT_STEP + random.random() * WAIT_STEP)
    try:
        yield
    finally:
        release_slot(sede_code, holder)
