"""A gestore reached over an HTTP API: the client, and the protocol it speaks.

The protocol (``plugins.pec.test_provider`` serves it on loopback for the tests):

``POST {base_url}/activations``
    Headers ``Authorization: Bearer <api_token>``, ``Idempotency-Key: <request_id>``, JSON body
    ``ActivationRequest.to_dict()``. Answers ``202`` with a pending ``ActivationResult`` (or ``200``
    when it was activated at once); the same key with the same body answers the first result
    again, with another body ``409``. ``422`` refuses the request itself (its ``message`` says
    why); ``401``/``403`` a credential; ``429``/``503`` (with ``Retry-After``) ask to come back.

``GET {base_url}/activations/<request_id>``
    The ``ActivationResult`` of an earlier request, ``404`` when unknown.

Callback ``POST <callback_url>``
    JSON ``{"event": "activation.updated", "result": ActivationResult.to_dict()}`` with headers
    ``X-Pec-Event-Id`` and ``X-Pec-Signature`` (``plugins.pec.activation.signing``); any 2xx
    acknowledges it, otherwise the provider delivers it again.

Retry classification: connection errors, timeouts, 408, 425, 429, 500, 502, 503, 504 and an
unreadable answer are transient (``ProviderError.retryable``); any other status is not. A
timeout is safe to retry because the request id is the idempotency key.

Every call goes to the address checked for the API's host at that moment
(``core.api.pinned_http_connection``): the bearer token never follows a name that has come to
resolve somewhere private since the settings were saved.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

from flask_babel import lazy_gettext as _l

from core.api import DomainError, pinned_http_connection
from plugins.pec.activation.contract import (
    ActivationProvider,
    ActivationRequest,
    ActivationResult,
    CallbackEvent,
    InvalidCallback,
    ProviderError,
    ProviderSetting,
)
from plugins.pec.activation.signing import EVENT_HEADER, SIGNATURE_HEADER, verify

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "Ventanilla-PEC/1"
MAX_ANSWER = 1024 * 1024  # an activation's answer is a small JSON document


@dataclass(frozen=True)
class Answer:
    """What the gestore answered: status, headers (names in any case) and body."""

    status_code: int
    headers: Message
    body: bytes

    def json(self):
        return json.loads(self.body)


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUS


def parse_retry_after(value: str | None, clock: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - clock())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


class HttpActivationProvider(ActivationProvider):
    code = "http"
    title = _l("Gestore's HTTP API")
    calls_back = True
    settings = (
        ProviderSetting("base_url", _l("API address"), help=_l("For example https://api.gestore.example/v1")),
        ProviderSetting("api_token", _l("API token"), secret=True),
        ProviderSetting("webhook_secret", _l("Callback signing secret"), secret=True),
        ProviderSetting(
            "previous_webhook_secret", _l("Previous callback secret (during a change)"), secret=True, required=False
        ),
    )

    def __init__(
        self,
        base_url: str,
        api_token: str,
        webhook_secret: str,
        previous_webhook_secret: str | None = None,
        *,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) address: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.api_token = api_token
        self.webhook_secrets = tuple(s for s in (webhook_secret, previous_webhook_secret) if s)
        self.timeout = timeout
        self.clock = clock

    # --- outbound ---

    def _call(self, method: str, path: str, *, data: bytes | None = None, headers: dict | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.api_token}", "User-Agent": USER_AGENT, **(headers or {})}
        try:
            connection = pinned_http_connection(self.scheme, self.host, self.port, timeout=self.timeout)
        except DomainError as error:
            # Checked on saving and before the call: a name that stopped resolving, or now resolves
            # somewhere refused. Another attempt checks again.
            raise ProviderError(f"{method} {path}: {error.message}", retryable=True) from error
        try:
            connection.request(method, self.prefix + path, body=data, headers=headers)
            answer = connection.getresponse()
            body = answer.read(MAX_ANSWER)
        except (TimeoutError, OSError) as error:
            raise ProviderError(f"{method} {path}: {error.__class__.__name__}", retryable=True) from error
        except http.client.HTTPException as error:
            raise ProviderError(f"{method} {path}: {error.__class__.__name__}: {error}", retryable=True) from error
        finally:
            connection.close()
        return Answer(answer.status, answer.msg, body)

    def _fail(self, response: Answer, what: str) -> ProviderError:
        try:
            payload = response.json()
            detail = payload.get("message") or payload.get("error")
        except (ValueError, AttributeError):
            detail = None
        return ProviderError(
            f"{what}: HTTP {response.status_code}" + (f" ({detail})" if detail else ""),
            retryable=is_retryable_status(response.status_code),
            status_code=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After"), self.clock),
        )

    def _result(self, response: Answer, what: str) -> ActivationResult:
        try:
            return ActivationResult.from_dict(response.json())
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderError(
                f"{what}: unreadable answer (HTTP {response.status_code})",
                retryable=True,
                status_code=response.status_code,
            ) from error

    def submit(self, request: ActivationRequest) -> ActivationResult:
        body = json.dumps(request.to_dict(), sort_keys=True).encode()
        response = self._call(
            "POST",
            "/activations",
            data=body,
            headers={"Idempotency-Key": request.request_id, "Content-Type": "application/json"},
        )
        if response.status_code not in (200, 201, 202):
            raise self._fail(response, "activation request")
        result = self._result(response, "activation request")
        if result.request_id != request.request_id:
            raise ProviderError("activation request: the answer is about another request", retryable=False)
        return result

    def status(self, request_id: str) -> ActivationResult | None:
        response = self._call("GET", f"/activations/{quote(request_id, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, "activation status")
        return self._result(response, "activation status")

    # --- inbound ---

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        verify(_header(headers, SIGNATURE_HEADER), body, self.webhook_secrets, clock=self.clock)
        event_id = _header(headers, EVENT_HEADER)
        if not event_id:
            raise InvalidCallback("the callback has no event id")
        try:
            data = json.loads(body)
            result = ActivationResult.from_dict(data["result"])
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidCallback(f"the callback body is malformed: {error}") from error
        return CallbackEvent(event_id=event_id, result=result)
