"""Fixtures of the pec plugin's core-independent engine: no app, no database, no Redis.

The engine's tests need none of the suite's services, so the suite-wide ``_clean_state`` (which
brings up the app to empty its tables) is replaced here by one that does nothing. Outside
systems are real local servers: the loopback gestore (``pec_provider``) and a callback receiver
standing in for the plugin's callback view (``callback_receiver``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plugins.pec.test_provider import running


@pytest.fixture(autouse=True)
def _clean_state():
    """These tests touch no table, Redis database or outbox: nothing to clean."""
    yield


@pytest.fixture
def pec_provider():
    """The loopback gestore on a free port: token ``test-token``, callbacks signed with
    ``test-secret``, activation 0.2 s after a request (change ``pec_provider.behaviour``)."""
    with running(token="test-token", secret="test-secret", delay=0.2, callback_backoff=0.05) as provider:
        yield provider


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    """A loopback HTTP server that records what is POSTed to it: it answers 500 to the first
    ``fail_first`` requests, then ``status`` (200)."""

    url: str = ""
    status: int = 200
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` requests arrived (or fail after ``timeout`` seconds)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} callbacks arrived in {timeout}s")
            return list(self.received)


@pytest.fixture
def callback_receiver():
    receiver = CallbackReceiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.arrived:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                status = 500 if len(receiver.received) <= receiver.fail_first else receiver.status
                receiver.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/pec/callback"
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
