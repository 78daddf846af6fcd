"""HMAC-SHA256 signatures of callbacks, with a timestamp against replays.

The sender puts ``X-Pec-Signature: t=<unix seconds>,v1=<hex>`` on the request, where ``<hex>`` is
HMAC-SHA256(secret, ``"<t>." + body``). The receiver recomputes it over the raw body with each
secret it accepts (two during a rotation), compares in constant time, and refuses a timestamp
more than ``tolerance`` seconds from its clock, so a captured callback cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

from plugins.pec.activation.contract import InvalidCallback

SIGNATURE_HEADER = "X-Pec-Signature"
EVENT_HEADER = "X-Pec-Event-Id"
DEFAULT_TOLERANCE = 300  # seconds


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the signature header for ``body``."""
    if not secret:
        raise ValueError("an empty secret signs nothing")
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
) -> int:
    """The signed timestamp when ``header`` signs ``body`` with one of ``secrets`` recently enough;
    raises ``InvalidCallback`` otherwise."""
    if not header:
        raise InvalidCallback("the callback is not signed")
    timestamp = None
    signatures = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidCallback("the signature header is malformed")
    if abs(clock() - timestamp) > tolerance:
        raise InvalidCallback("the signature is too old or from the future")
    for secret in secrets:
        if not secret:
            continue
        expected = _digest(secret, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return timestamp
    raise InvalidCallback("the signature does not match")
