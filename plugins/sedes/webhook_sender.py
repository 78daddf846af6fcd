"""One signed POST of a webhook delivery, to the address checked for the hook's host.

The host is resolved once and checked (``core.api.checked_address``: no loopback, private, link-local
or other non-public address unless the operator allows private hosts); the socket is opened to that
address, while the request's ``Host`` header, TLS's SNI and the certificate check keep the URL's name.
A second lookup, which a rebinding DNS could answer differently, never happens. Redirects are not
followed (a 3xx is an answer that is not 2xx). The timeout is ``TIMEOUT`` seconds per step.

**The signature** (what an integrator verifies, as with Stripe's): the header
``X-Ventanilla-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is HMAC-SHA256, keyed by the hook's
secret, of ``"<t>." + body`` (the raw bytes of the body). The receiver recomputes it with its copy of
the secret, compares in constant time, and refuses a ``t`` too far from its clock (replays). For a
day after the secret is rotated the header carries a second ``v1``, made with the previous secret,
so a receiver still holding it keeps accepting deliveries (accept when any ``v1`` matches).
``X-Ventanilla-Event`` names the event and ``X-Ventanilla-Delivery`` the delivery's id, the same at
every attempt of it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.api import DomainError, pinned_http_connection

TIMEOUT = 10.0
EXCERPT = 1000  # characters of the receiver's answer kept in the log
READ_LIMIT = 16 * 1024  # bytes of the answer read at most
USER_AGENT = "Ventanilla-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """How an attempt went: ``error`` None is delivered (a 2xx); ``final`` errors are not retried."""

    status: int | None
    excerpt: str
    error: str | None
    detail: str
    duration_ms: int
    final: bool = False


def signature(secrets: str | Sequence[str], timestamp: int, body: bytes) -> str:
    """The ``X-Ventanilla-Signature`` value for ``body`` sent at ``timestamp``: one ``v1`` per secret,
    the current one first."""
    signed = f"{timestamp}.".encode() + body
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    macs = (hmac.new(key.encode(), signed, hashlib.sha256).hexdigest() for key in keys)
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def _resolves(host: str, port: int) -> bool:
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return True


def send(
    url: str, secrets: str | Sequence[str], event: str, delivery_id: str, body: bytes, *, timeout: float = TIMEOUT
) -> Outcome:
    """POST ``body`` to ``url``, signed with each of ``secrets``; never raises for what the receiver does."""
    started = time.monotonic()

    def outcome(status=None, excerpt="", error=None, detail="", final=False) -> Outcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(status, excerpt[:EXCERPT], error, detail[:1000], elapsed, final)

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        connection = pinned_http_connection(parts.scheme, host, port, timeout=timeout)
    except DomainError as error:
        if _resolves(host, port):  # it resolves, so it was refused: waiting will not change that
            return outcome(error="refused", detail=str(error.message), final=True)
        return outcome(error="unknown_host", detail=f"{host} does not resolve")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Ventanilla-Event": event,
        "X-Ventanilla-Delivery": delivery_id,
        "X-Ventanilla-Signature": signature(secrets, int(time.time()), body),
    }
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read(READ_LIMIT)
    except ssl.SSLCertVerificationError as error:
        return outcome(error="tls", detail=str(error))
    except TimeoutError as error:
        return outcome(error="timeout", detail=f"no answer within {timeout:g} s: {error}")
    except ssl.SSLError as error:
        return outcome(error="tls", detail=str(error))
    except http.client.HTTPException as error:
        return outcome(error="protocol", detail=f"{type(error).__name__}: {error}")
    except OSError as error:
        return outcome(error="connection", detail=f"{type(error).__name__}: {error}")
    finally:
        connection.close()
    text = data.decode("utf-8", errors="replace")
    if 200 <= answer.status < 300:
        return outcome(answer.status, text)
    return outcome(answer.status, text, error="http_status", detail=f"HTTP {answer.status} {answer.reason}")
