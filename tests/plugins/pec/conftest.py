"""Fixtures of the pec plugin's tests. Outside systems are real local servers: the loopback
gestore (``pec_provider``), a callback receiver standing in for a gestore's client
(``callback_receiver``), an SMTP server (``smtp_server``, aiosmtpd) and the app itself on a real
HTTP server (``live_app``) for the provider to call back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plugins.pec.test_provider import running


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


# --- a reseller with the panel ------------------------------------------------------------

# Holders with real codici fiscali and partite IVA (check characters computed).
ROSSI_CF = "RSSMRA78D15H501U"  # Mario Rossi, born in Roma on 15 April 1978
BIANCHI_CF = "BNCLRA80A41F205G"  # Laura Bianchi, born in Milano on 1 January 1980
COMPANY_PIVA = "01234560157"


@dataclass(frozen=True)
class Reseller:
    """A tenant with the pec plugin: its administrator (who sees every box), an assistant (who sees
    only what they enter) and a second assistant, a domain activated by hand, and its ids."""

    tenant: object
    admin: int
    domain_id: int
    slug: str = "rivendita"


@pytest.fixture
def reseller(app, factory) -> Reseller:
    from core.api import db, tenant_context
    from plugins.pec.models import Domain

    # English pages: the assertions read the source texts (the browser journey reads Italian).
    tenant = factory.tenant("rivendita", name="Rivendita PEC Srl", language="en")
    admin = factory.user(tenant, "admin@rivendita.test", role_key="admin", name="Amministratore")
    with app.app_context(), tenant_context(tenant.id):
        domain = Domain(name="pec.rivendita.example", provider="manual")
        db.session.add(domain)
        db.session.commit()
        domain_id = domain.id
    return Reseller(tenant, admin, domain_id)


def in_tenant(app, tenant):
    """``with in_tenant(app, tenant):`` an app context inside the tenant (services need both)."""
    from contextlib import ExitStack

    from core.api import tenant_context

    stack = ExitStack()
    stack.enter_context(app.app_context())
    stack.enter_context(tenant_context(tenant.id))
    return stack


def tenant_row(tenant):
    from core.api import Tenant, db

    return db.session.get(Tenant, tenant.id)


def make_assistant(
    app, reseller: Reseller, email: str, *, package_mode: str = "consumo", password: str = "assistant-pass-1"
):
    """An assistant of the reseller (their account has the Asistente role): ``(assistant id, user id)``."""
    from core.api import db
    from plugins.pec import assistants

    with in_tenant(app, reseller.tenant):
        assistant, _ = assistants.create_assistant(
            tenant_row(reseller.tenant),
            assistants.AssistantData(
                first_name="Anna",
                last_name=email.split("@")[0].title(),
                email=email,
                domain_id=reseller.domain_id,
                package_mode=package_mode,
            ),
            password=password,
        )
        db.session.commit()
        return assistant.id, assistant.user_id


def make_holder(app, tenant, codice_fiscale: str = ROSSI_CF, *, email: str = "mario.rossi@cliente.test", user_id=None):
    """A holder (a core client) with one address in Roma: ``(client id, address id)``."""
    from core.api import User, db
    from plugins.pec import holders

    with in_tenant(app, tenant):
        user = db.session.get(User, user_id) if user_id else None
        kind = "person" if len(codice_fiscale) == 16 else "company"
        data = holders.HolderData(
            kind, codice_fiscale, "Mario", "Rossi", "Rossi Servizi S.r.l." if kind == "company" else "", email=email
        )
        client = holders.create_holder(data, user)
        address = holders.add_address(
            client, holders.AddressData("Via Appia Nuova 120", "Roma", "RM", "00183", "IT", "06 4857 3921")
        )
        db.session.commit()
        return client.id, address.id


def make_box(
    app, reseller: Reseller, name: str, client_id: int, address_id: int | None, *, user_id=None, domain_id=None
):
    """A box registered through the service (pending), its address set: the box id."""
    from core.api import Client, User, db
    from plugins.pec import boxes, holders

    with in_tenant(app, reseller.tenant):
        user = db.session.get(User, user_id or reseller.admin)
        client = db.session.get(Client, client_id)
        box = boxes.register_box(
            tenant_row(reseller.tenant),
            user,
            boxes.Registration(name, domain_id or reseller.domain_id, client.tax_id),
        )
        if address_id is not None:
            boxes.set_address(box, holders.address_of(client_id, address_id))
        db.session.commit()
        return box.id


def activate_box(app, reseller: Reseller, box_id: int) -> None:
    from core.api import db
    from plugins.pec.activation import service
    from plugins.pec.models import Box

    with in_tenant(app, reseller.tenant):
        service.activate(tenant_row(reseller.tenant), db.session.get(Box, box_id))
        db.session.commit()


def box_row(app, tenant, box_id: int) -> dict:
    from core.api import db
    from plugins.pec.models import Box

    with in_tenant(app, tenant):
        box = db.session.get(Box, box_id)
        return {
            "state": box.state,
            "address": box.address,
            "expires_on": box.expires_on,
            "agent_id": box.agent_id,
            "package_id": box.package_id,
            "holder_id": box.holder_id,
            "agent_requested": box.agent_requested,
            "created_by_id": box.created_by_id,
        }


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd), as core's mail tests use."""
    from tests.core.mail.conftest import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_app(app):
    """The session's app on a real HTTP server in a daemon thread (for a provider to call back)."""
    from werkzeug.serving import make_server

    from tests.e2e.conftest import QuietRequestHandler

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="pec-live-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
