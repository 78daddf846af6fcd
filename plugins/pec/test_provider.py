"""A loopback gestore that speaks the HTTP activation protocol (``plugins.pec.activation.http_api``).

For tests, demos and the browser journey: it accepts activation requests, activates each after a
configurable delay and calls back the request's callback URL with a signed result, as a real
gestore's API would. It can be told to refuse activations, to reject requests outright, or to
answer 503 a number of times first (to exercise retries) — from Python (``server.behaviour``) or
over HTTP (``POST /_control`` with the same fields as JSON).

Run it::

    python -m plugins.pec.test_provider --port 8765 --token test-token --secret test-secret --delay 5

or, in pytest, through ``running()`` (the ``pec_provider`` fixture in tests/plugins/pec).
It listens on loopback only, keeps everything in memory and is not for production.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import requests

from plugins.pec.activation.contract import ActivationRequest, ActivationResult, ActivationStatus
from plugins.pec.activation.signing import EVENT_HEADER, SIGNATURE_HEADER, sign
from plugins.pec.errors import PecError
from plugins.pec.lifecycle import expiry_date
from plugins.pec.mailboxes import split_address


@dataclass
class Behaviour:
    """How the provider answers; change it while it runs."""

    delay: float = 1.0  # seconds between accepting a request and activating it
    outcome: str = "activate"  # "activate" or "refuse": what happens after the delay
    refusal_message: str = "Documentazione incompleta"
    reject: bool = False  # answer 422 to new requests at once
    fail_next: int = 0  # answer 503 (Retry-After: 1) to this many next POSTs
    callback_attempts: int = 3
    callback_backoff: float = 0.2  # seconds before the second delivery, doubled each time

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise KeyError(key)
            setattr(self, key, type(getattr(self, key))(value))


@dataclass
class Delivery:
    """One attempt at calling back."""

    url: str
    event_id: str
    status_code: int | None
    error: str | None = None


@dataclass
class _Activation:
    request: ActivationRequest
    fingerprint: str
    result: ActivationResult
    timer: threading.Timer | None = None


@dataclass
class LoopbackProvider:
    token: str = "test-token"
    secret: str = "test-secret"
    host: str = "127.0.0.1"
    port: int = 0
    behaviour: Behaviour = field(default_factory=Behaviour)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._activations: dict[str, _Activation] = {}
        self._addresses: dict[str, str] = {}  # address -> request id holding it
        self.deliveries: list[Delivery] = []
        self._delivered = threading.Condition()
        self.requests_seen = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    # --- running ---

    @property
    def url(self) -> str:
        assert self._server is not None, "the provider is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="pec-test-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        with self._lock:
            for activation in self._activations.values():
                if activation.timer is not None:
                    activation.timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- what it knows ---

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until ``count`` callback attempts were made (answered or not); fail after ``timeout``."""
        with self._delivered:
            if not self._delivered.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise TimeoutError(f"{len(self.deliveries)} of {count} callback attempts in {timeout}s")
            return list(self.deliveries)

    def _record(self, delivery: Delivery) -> None:
        with self._delivered:
            self.deliveries.append(delivery)
            self._delivered.notify_all()

    def result(self, request_id: str) -> ActivationResult | None:
        with self._lock:
            activation = self._activations.get(request_id)
            return activation.result if activation else None

    # --- the protocol ---

    def _accept(self, key: str, raw: bytes) -> tuple[int, dict]:
        try:
            data = json.loads(raw)
            request = ActivationRequest.from_dict(data)
        except (ValueError, KeyError, TypeError) as error:
            return 422, {"error": "invalid", "message": f"malformed request: {error}"}
        if request.request_id != key:
            return 422, {"error": "invalid", "message": "Idempotency-Key differs from request_id"}
        fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        with self._lock:
            known = self._activations.get(key)
            if known is not None:
                if known.fingerprint != fingerprint:
                    return 409, {"error": "idempotency_conflict", "message": "this key was used for another request"}
                return 200, known.result.to_dict()
            if self.behaviour.reject:
                return 422, {"error": "invalid", "message": "richiesta rifiutata dal gestore"}
            try:
                split_address(request.address)
            except PecError as error:
                return 422, {"error": "invalid", "message": str(error)}
            holder = self._addresses.get(request.address)
            if holder is not None and holder != key:
                return 422, {"error": "address_taken", "message": f"{request.address} esiste già"}
            self._addresses[request.address] = key
            result = ActivationResult(
                request_id=key, status=ActivationStatus.PENDING, reference=f"LP-{uuid.uuid4().hex[:12]}"
            )
            activation = _Activation(request, fingerprint, result)
            self._activations[key] = activation
            activation.timer = threading.Timer(self.behaviour.delay, self._complete, args=(key,))
            activation.timer.daemon = True
            activation.timer.start()
        return 202, result.to_dict()

    def _complete(self, key: str) -> None:
        if self._closing.is_set():
            return
        with self._lock:
            activation = self._activations[key]
            request = activation.request
            if self.behaviour.outcome == "refuse":
                result = ActivationResult(
                    request_id=key,
                    status=ActivationStatus.REFUSED,
                    reference=activation.result.reference,
                    message=self.behaviour.refusal_message,
                )
                self._addresses.pop(request.address, None)
            else:
                now = datetime.now(UTC)
                result = ActivationResult(
                    request_id=key,
                    status=ActivationStatus.ACTIVE,
                    reference=activation.result.reference,
                    activated_at=now.replace(microsecond=0),
                    expires_on=expiry_date(now.date(), request.years),
                )
            activation.result = result
        if request.callback_url:
            self._call_back(request.callback_url, result)

    def _call_back(self, url: str, result: ActivationResult) -> None:
        body = json.dumps({"event": "activation.updated", "result": result.to_dict()}, sort_keys=True).encode()
        # The same content is the same event: a receiver applies it once however often it comes.
        event_id = hashlib.sha256(body).hexdigest()[:32]
        wait = self.behaviour.callback_backoff
        for attempt in range(self.behaviour.callback_attempts):
            if attempt and self._closing.wait(wait):
                return
            if attempt:
                wait *= 2
            headers = {
                "Content-Type": "application/json",
                EVENT_HEADER: event_id,
                SIGNATURE_HEADER: sign(self.secret, body),
            }
            try:
                response = requests.post(url, data=body, headers=headers, timeout=5, allow_redirects=False)
            except requests.RequestException as error:
                self._record(Delivery(url, event_id, None, error.__class__.__name__))
                continue
            self._record(Delivery(url, event_id, response.status_code))
            if 200 <= response.status_code < 300:
                return


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackProvider
    server_version = "PecLoopbackProvider/1"

    def log_message(self, format, *args) -> None:  # quiet: tests read results, not logs
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.owner.token}":
            return True
        self._send(401, {"error": "unauthorised"})
        return False

    def do_GET(self) -> None:
        if self.path == "/_control":
            self._send(200, {"behaviour": asdict(self.owner.behaviour), "deliveries": len(self.owner.deliveries)})
            return
        if not self._authorised():
            return
        prefix = "/activations/"
        if not self.path.startswith(prefix):
            self._send(404, {"error": "not_found"})
            return
        result = self.owner.result(unquote(self.path[len(prefix) :]))
        if result is None:
            self._send(404, {"error": "not_found"})
        else:
            self._send(200, result.to_dict())

    def do_POST(self) -> None:
        raw = self._body()
        if self.path == "/_control":
            try:
                self.owner.behaviour.update(json.loads(raw or b"{}"))
            except (ValueError, KeyError, TypeError) as error:
                self._send(400, {"error": "invalid", "message": str(error)})
                return
            self._send(200, {"behaviour": asdict(self.owner.behaviour)})
            return
        if self.path != "/activations":
            self._send(404, {"error": "not_found"})
            return
        if not self._authorised():
            return
        with self.owner._lock:
            self.owner.requests_seen += 1
            failing = self.owner.behaviour.fail_next > 0
            if failing:
                self.owner.behaviour.fail_next -= 1
        if failing:
            self._send(503, {"error": "unavailable"}, {"Retry-After": "1"})
            return
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._send(400, {"error": "invalid", "message": "Idempotency-Key is required"})
            return
        status, payload = self.owner._accept(key, raw)
        self._send(status, payload)


@contextlib.contextmanager
def running(**kwargs) -> Iterator[LoopbackProvider]:
    """A started provider (on a free loopback port unless ``port`` is given), stopped afterwards."""
    behaviour = kwargs.pop("behaviour", None) or Behaviour(
        **{k: kwargs.pop(k) for k in list(kwargs) if k in Behaviour.__dataclass_fields__}
    )
    provider = LoopbackProvider(behaviour=behaviour, **kwargs).start()
    try:
        yield provider
    finally:
        provider.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plugins.pec.test_provider", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="test-token", help="the API token clients must send")
    parser.add_argument("--secret", default="test-secret", help="the secret that signs callbacks")
    parser.add_argument("--delay", type=float, default=5.0, help="seconds before an accepted request is activated")
    parser.add_argument("--refuse", action="store_true", help="refuse every activation after the delay")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the test provider listens on loopback only")
    behaviour = Behaviour(delay=args.delay, outcome="refuse" if args.refuse else "activate")
    provider = LoopbackProvider(
        token=args.token, secret=args.secret, host=args.host, port=args.port, behaviour=behaviour
    )
    provider.start()
    print(f"PEC test provider on {provider.url} (token {args.token!r}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()


if __name__ == "__main__":
    main()
