"""Web push: the installation's VAPID key, browsers' subscriptions, and delivery to a real push service.

The push service is a local HTTP server that records what it receives and answers the status
a test chooses; the subscriber's keys are real, so the test decrypts what was sent.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import select, text

from tests.conftest import login
from tests.workers import IDLE_SECONDS, running_worker, wait_for, worker_environment

SUBSCRIPTIONS = "/acme/portal/push/subscriptions"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class Receiver:
    """A browser's side of a subscription: its P-256 key pair and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self) -> dict:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


class PushService:
    """A push service on 127.0.0.1 over plain HTTP: records each request, answers ``status``."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 201
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.received.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def push_service(app, monkeypatch):
    """A push service the platform accepts: plain HTTP on loopback, added to the known services."""
    service = PushService()
    monkeypatch.setitem(app.config, "PUSH_ALLOW_HTTP_ENDPOINTS", True)
    monkeypatch.setitem(app.config, "PUSH_SERVICES", [*app.config["PUSH_SERVICES"], service.origin.split("//")[1]])
    yield service
    service.close()


@pytest.fixture
def portal(app, factory, client):
    """Tenant acme with a client's portal account, signed in on ``client``."""
    tenant = factory.tenant("acme", language="en")
    client_id = factory.client(tenant, "Bodega Luna SL", email="luna@client.test")
    user_id = factory.portal_user(tenant, client_id, "portal@acme.test")
    login(client, "acme", "portal@acme.test")
    return {"tenant": tenant, "user_id": user_id}


def post_json(client, url: str, payload: dict):
    return client.post(url, json=payload, without_csrf=True, headers={"X-CSRFToken": client.csrf_token()})


def stored(app, tenant_id: int) -> list[tuple]:
    from core.extensions import db
    from core.push.models import PushSubscription
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        rows = db.session.scalars(select(PushSubscription).order_by(PushSubscription.id))
        return [(r.user_id, r.endpoint, r.p256dh, r.auth, r.last_sent_at is not None) for r in rows]


def send(app, tenant_id: int, user_id: int, payload: dict):
    from core.push.services import send_to_user
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        return send_to_user(user_id, payload)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the VAPID key ----------------------------------------------------------------------


def test_the_vapid_key_is_made_once_and_its_private_half_is_stored_encrypted(app, owner_engine, client, portal):
    from core.push.services import public_key, vapid_key

    with app.app_context():
        first = public_key()
    with app.app_context():
        assert public_key() == first
        private_pem = vapid_key().private_pem
    served = client.get("/acme/portal/push/key")
    assert served.status_code == 200 and served.get_json()["publicKey"] == first
    point = unb64url(first)
    assert len(point) == 65 and point[0] == 4, "an uncompressed P-256 point, as PushManager.subscribe() takes"

    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    with owner_engine.connect() as conn:
        rows = conn.execute(text("SELECT private_pem, public_key FROM core_vapid_keys")).all()
    assert len(rows) == 1
    raw, public = rows[0]
    assert public == first
    assert "PRIVATE KEY" not in raw and private_pem not in raw
    assert b64url(point) == first


# --- subscriptions ----------------------------------------------------------------------


def test_a_subscription_is_stored_and_the_same_endpoint_again_updates_it(app, client, portal):
    first = Receiver("https://fcm.googleapis.com/fcm/send/abc")
    response = post_json(client, SUBSCRIPTIONS, first.subscription())
    assert response.status_code == 201 and response.get_json() == {"ok": True}
    keys = first.subscription()["keys"]
    assert stored(app, portal["tenant"].id) == [
        (portal["user_id"], "https://fcm.googleapis.com/fcm/send/abc", keys["p256dh"], keys["auth"], False)
    ]

    renewed = Receiver("https://fcm.googleapis.com/fcm/send/abc")
    assert post_json(client, SUBSCRIPTIONS, renewed.subscription()).status_code == 201
    keys = renewed.subscription()["keys"]
    assert stored(app, portal["tenant"].id) == [
        (portal["user_id"], "https://fcm.googleapis.com/fcm/send/abc", keys["p256dh"], keys["auth"], False)
    ]


def test_a_renewed_subscription_replaces_the_one_it_renews(app, client, portal):
    """What the service worker does on ``pushsubscriptionchange``: it has no page to read a CSRF
    token from, so it takes one from the key endpoint, and names the endpoint being renewed."""
    kept = Receiver("https://fcm.googleapis.com/fcm/send/other-phone")
    old = Receiver("https://fcm.googleapis.com/fcm/send/old")
    post_json(client, SUBSCRIPTIONS, kept.subscription())
    post_json(client, SUBSCRIPTIONS, old.subscription())

    key = client.get("/acme/portal/push/key").get_json()
    renewed = Receiver("https://fcm.googleapis.com/fcm/send/new")
    response = client.post(
        SUBSCRIPTIONS,
        json={**renewed.subscription(), "replaces": old.endpoint},
        without_csrf=True,
        headers={"X-CSRFToken": key["csrfToken"]},
    )
    assert response.status_code == 201
    assert sorted(row[1] for row in stored(app, portal["tenant"].id)) == [renewed.endpoint, kept.endpoint]


def test_a_renewal_cannot_remove_the_subscription_of_someone_else(app, factory, client, portal):
    mine = Receiver("https://fcm.googleapis.com/fcm/send/mine")
    post_json(client, SUBSCRIPTIONS, mine.subscription())
    tenant = portal["tenant"]
    factory.portal_user(tenant, factory.client(tenant, "Otra SA", email="o@c.test"), "other@acme.test")
    other = app.test_client()
    login(other, "acme", "other@acme.test")
    theirs = Receiver("https://fcm.googleapis.com/fcm/send/theirs")
    assert post_json(other, SUBSCRIPTIONS, {**theirs.subscription(), "replaces": mine.endpoint}).status_code == 201
    assert sorted(row[1] for row in stored(app, tenant.id)) == [mine.endpoint, theirs.endpoint]


@pytest.mark.parametrize(
    "subscription",
    [
        {"endpoint": "https://fcm.googleapis.com/fcm/send/abc"},
        {"endpoint": "https://push.example.test/send/abc", "keys": {"p256dh": "BAAA", "auth": "c2VjcmV0"}},
        {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "", "auth": "c2VjcmV0"}},
        {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "not base64!", "auth": "c2VjcmV0"}},
        {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "BAAA", "auth": "a/b+c"}},
        {"endpoint": "http://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "BAAA", "auth": "c2VjcmV0"}},
        {"endpoint": "javascript:alert(1)", "keys": {"p256dh": "BAAA", "auth": "c2VjcmV0"}},
        {"endpoint": "", "keys": {"p256dh": "BAAA", "auth": "c2VjcmV0"}},
        {},
    ],
)
def test_an_unusable_subscription_is_refused_with_a_message(app, client, portal, subscription):
    assert app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] is False
    response = post_json(client, SUBSCRIPTIONS, subscription)
    assert response.status_code == 400
    assert response.get_json() == {"error": "This browser sent an unusable push subscription."}
    assert stored(app, portal["tenant"].id) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/dGVzdA",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
        "https://wns2-by3p.notify.windows.com/w/?token=BQYAAAB",
        "https://web.push.apple.com/QGuQyavXutnMH",
    ],
)
def test_the_browsers_push_services_are_accepted(app, client, portal, endpoint):
    assert post_json(client, SUBSCRIPTIONS, Receiver(endpoint).subscription()).status_code == 201
    assert [row[1] for row in stored(app, portal["tenant"].id)] == [endpoint]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://attacker.example/collect",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/x",
        "https://fcm.googleapis.com.attacker.example/fcm/send/x",
        "https://attacker-fcm.googleapis.com.example/x",
        "https://fcm.googleapis.com:8443/fcm/send/x",
        "https://user@fcm.googleapis.com/fcm/send/x",
        "https://notify.windows.com.attacker.example/w",
        "https://fcm.googleapis.com:notaport/x",
    ],
)
def test_an_endpoint_that_is_not_a_known_push_service_is_refused(app, client, portal, endpoint):
    response = post_json(client, SUBSCRIPTIONS, Receiver(endpoint).subscription())
    assert response.status_code == 400
    assert response.get_json() == {"error": "This browser sent an unusable push subscription."}
    assert stored(app, portal["tenant"].id) == []


def test_an_account_keeps_a_few_browsers_and_a_new_one_replaces_the_oldest(app, client, portal):
    limit = app.config["PUSH_MAX_SUBSCRIPTIONS"]
    endpoints = [f"https://fcm.googleapis.com/fcm/send/device-{n}" for n in range(limit + 3)]
    for endpoint in endpoints:
        assert post_json(client, SUBSCRIPTIONS, Receiver(endpoint).subscription()).status_code == 201
    assert [row[1] for row in stored(app, portal["tenant"].id)] == endpoints[-limit:]


def test_a_body_that_is_not_json_is_refused_with_a_message(app, client, portal):
    response = client.post(
        SUBSCRIPTIONS, data="{not json", content_type="application/json", headers={"X-CSRFToken": client.csrf_token()}
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "This browser sent an unusable push subscription."}


def test_unsubscribing_deletes_the_subscription(app, client, portal):
    kept = Receiver("https://fcm.googleapis.com/fcm/send/kept")
    gone = Receiver("https://fcm.googleapis.com/fcm/send/gone")
    post_json(client, SUBSCRIPTIONS, kept.subscription())
    post_json(client, SUBSCRIPTIONS, gone.subscription())
    response = post_json(client, f"{SUBSCRIPTIONS}/delete", {"endpoint": gone.endpoint})
    assert response.status_code == 200
    assert [row[1] for row in stored(app, portal["tenant"].id)] == [kept.endpoint]


def test_a_portal_user_cannot_remove_the_subscription_of_someone_else(app, factory, client, portal):
    mine = Receiver("https://fcm.googleapis.com/fcm/send/mine")
    post_json(client, SUBSCRIPTIONS, mine.subscription())

    tenant = portal["tenant"]
    neighbour = factory.portal_user(tenant, factory.client(tenant, "Otra SA", email="o@c.test"), "other@acme.test")
    other = app.test_client()
    login(other, "acme", "other@acme.test")
    assert post_json(other, f"{SUBSCRIPTIONS}/delete", {"endpoint": mine.endpoint}).status_code == 200
    assert [row[:2] for row in stored(app, tenant.id)] == [(portal["user_id"], mine.endpoint)]

    beta = factory.tenant("beta")
    factory.portal_user(beta, factory.client(beta, "Beta SL", email="b@c.test"), "portal@beta.test")
    foreign = app.test_client()
    login(foreign, "beta", "portal@beta.test")
    post_json(foreign, "/beta/portal/push/subscriptions/delete", {"endpoint": mine.endpoint})
    assert post_json(foreign, "/beta/portal/push/subscriptions", mine.subscription()).status_code == 201
    assert [row[:2] for row in stored(app, tenant.id)] == [(portal["user_id"], mine.endpoint)], "A's row untouched"
    assert neighbour


# --- delivery ---------------------------------------------------------------------------


def _jwt(authorization: str) -> tuple[dict, str, bytes, str]:
    """The claims, signed part and signature of ``vapid t=<jwt>,k=<key>``, and the key."""
    assert authorization.startswith("vapid t=")
    params = dict(part.strip().split("=", 1) for part in authorization[len("vapid ") :].split(","))
    header, claims, signature = params["t"].split(".")
    return json.loads(unb64url(claims)), f"{header}.{claims}", unb64url(signature), params["k"]


def test_a_push_reaches_the_push_service_signed_encrypted_and_with_a_ttl(app, client, portal, push_service):
    from core.push.services import public_key

    receiver = Receiver(f"{push_service.origin}/wpush/v2/abc-123")
    assert post_json(client, SUBSCRIPTIONS, receiver.subscription()).status_code == 201
    payload = {"title": "Certificado listo", "body": "Ya puedes descargarlo ✓", "url": "/acme/portal/", "id": 7}

    result = send(app, portal["tenant"].id, portal["user_id"], payload)

    assert (result.delivered, result.removed, result.failed) == (1, 0, 0)
    (request,) = push_service.received
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert request["method"] == "POST" and request["path"] == "/wpush/v2/abc-123"
    assert int(headers["ttl"]) > 0
    assert headers["content-encoding"] == "aes128gcm"
    claims, signed, signature, key = _jwt(headers["authorization"])
    assert claims["aud"] == push_service.origin
    assert claims["sub"].startswith("mailto:")
    with app.app_context():
        assert key == public_key()
    vapid_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    vapid_public.verify(der, signed.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    assert receiver.decrypt(request["body"]) == payload
    assert stored(app, portal["tenant"].id)[0][4] is True, "the time of the last push is kept"


def test_a_push_goes_to_every_browser_of_the_user_only(app, factory, client, portal, push_service):
    phone = Receiver(f"{push_service.origin}/phone")
    laptop = Receiver(f"{push_service.origin}/laptop")
    post_json(client, SUBSCRIPTIONS, phone.subscription())
    post_json(client, SUBSCRIPTIONS, laptop.subscription())
    tenant = portal["tenant"]
    factory.portal_user(tenant, factory.client(tenant, "Otra SA", email="o@c.test"), "other@acme.test")
    other = app.test_client()
    login(other, "acme", "other@acme.test")
    post_json(other, SUBSCRIPTIONS, Receiver(f"{push_service.origin}/neighbour").subscription())

    result = send(app, tenant.id, portal["user_id"], {"title": "Hola"})

    assert result.delivered == 2
    assert sorted(r["path"] for r in push_service.received) == ["/laptop", "/phone"]
    by_path = {r["path"]: r["body"] for r in push_service.received}
    assert phone.decrypt(by_path["/phone"]) == {"title": "Hola"}
    assert laptop.decrypt(by_path["/laptop"]) == {"title": "Hola"}


@pytest.mark.parametrize("status", [410, 404])
def test_a_push_service_that_forgot_the_subscription_gets_it_deleted(app, client, portal, push_service, status):
    receiver = Receiver(f"{push_service.origin}/gone")
    post_json(client, SUBSCRIPTIONS, receiver.subscription())
    push_service.status = status

    result = send(app, portal["tenant"].id, portal["user_id"], {"title": "Hola"})

    assert (result.delivered, result.removed, result.failed) == (0, 1, 0)
    assert len(push_service.received) == 1
    assert stored(app, portal["tenant"].id) == []


def test_a_failing_push_service_keeps_the_subscription_and_counts_a_failure(app, client, portal, push_service):
    receiver = Receiver(f"{push_service.origin}/busy")
    post_json(client, SUBSCRIPTIONS, receiver.subscription())
    push_service.status = 500

    result = send(app, portal["tenant"].id, portal["user_id"], {"title": "Hola"})

    assert (result.delivered, result.removed, result.failed) == (0, 0, 1)
    assert len(push_service.received) == 1
    assert [row[1] for row in stored(app, portal["tenant"].id)] == [receiver.endpoint]


def test_an_unreachable_push_service_does_not_raise(app, client, portal, push_service):
    port = closed_port()
    app.config["PUSH_SERVICES"].append(f"127.0.0.1:{port}")  # a known service that is down
    down = Receiver(f"http://127.0.0.1:{port}/down")
    up = Receiver(f"{push_service.origin}/up")
    post_json(client, SUBSCRIPTIONS, down.subscription())
    post_json(client, SUBSCRIPTIONS, up.subscription())

    result = send(app, portal["tenant"].id, portal["user_id"], {"title": "Hola"})

    assert (result.delivered, result.removed, result.failed) == (1, 0, 1)
    assert up.decrypt(push_service.received[0]["body"]) == {"title": "Hola"}
    assert len(stored(app, portal["tenant"].id)) == 2


def test_a_user_without_subscriptions_is_sent_nothing(app, portal, push_service):
    result = send(app, portal["tenant"].id, portal["user_id"], {"title": "Hola"})
    assert (result.delivered, result.removed, result.failed) == (0, 0, 0)
    assert push_service.received == []


def test_a_revoked_portal_account_gets_no_more_pushes(app, factory, client, portal, push_service):
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    receiver = Receiver(f"{push_service.origin}/phone")
    post_json(client, SUBSCRIPTIONS, receiver.subscription())
    tenant = portal["tenant"]
    factory.user(tenant, "admin@acme.test", role_key="admin")
    staff = app.test_client()
    login(staff, "acme", "admin@acme.test")
    with app.app_context(), tenant_context(tenant.id):
        client_id = db.session.get(User, portal["user_id"]).client_id
    assert staff.post(f"/acme/clients/{client_id}/portal/revoke").status_code == 302

    result = send(app, tenant.id, portal["user_id"], {"title": "Hola"})

    assert (result.delivered, result.removed, result.failed) == (0, 0, 0)
    assert push_service.received == []
    assert stored(app, tenant.id) == []


def test_pushes_sent_later_go_through_their_own_queue_and_report_what_arrived(
    app, client, portal, push_service, run_jobs
):
    from rq import Queue

    from core.jobs.services import queue_name
    from core.push.services import Push, send_later
    from core.redis_connection import get_redis
    from tenants.context import tenant_context

    phone = Receiver(f"{push_service.origin}/phone")
    post_json(client, SUBSCRIPTIONS, phone.subscription())
    tenant = portal["tenant"]
    with app.app_context(), tenant_context(tenant.id):
        queued = send_later(
            [Push(portal["user_id"], {"title": "Hola"}, key=7), Push(987654, {"title": "nobody"}, key=8)],
            on_delivered="tests.core.test_push:_delivered",
        )
        assert queued == 1, "a user with no browser is not queued at all"
        assert Queue(queue_name("push"), connection=get_redis()).count == 1
        assert Queue(queue_name("mail"), connection=get_redis()).count == 0, "pushes never wait on the mail queue"
    assert push_service.received == [], "nothing is sent in the caller's request"
    delivered_keys.clear()
    run_jobs()
    assert [phone.decrypt(r["body"]) for r in push_service.received] == [{"title": "Hola"}]
    assert delivered_keys == [(tenant.id, [7])]


delivered_keys: list = []


def _delivered(keys: list) -> None:
    from tenants.context import current_tenant_id

    delivered_keys.append((current_tenant_id(), keys))


def test_an_idle_push_worker_delivers_a_push_sent_later(app, client, portal, push_service, tmp_path):
    from core.push.services import Push, send_later
    from tenants.context import tenant_context

    phone = Receiver(f"{push_service.origin}/phone")
    post_json(client, SUBSCRIPTIONS, phone.subscription())
    env = worker_environment(
        app,
        VENTANILLA_PUSH_ALLOW_HTTP="1",
        VENTANILLA_PUSH_SERVICES=",".join(app.config["PUSH_SERVICES"]),
        VENTANILLA_ALLOW_PRIVATE_HOSTS="1",
    )
    log = tmp_path / "push.log"
    with running_worker(env, log, "--queues", "push", "--no-cron"):
        time.sleep(IDLE_SECONDS)
        with app.app_context(), tenant_context(portal["tenant"].id):
            assert send_later([Push(portal["user_id"], {"title": "Hola"}, key=1)]) == 1
        wait_for(lambda: push_service.received, 30, "the push to reach the push service", log)
    assert [phone.decrypt(r["body"]) for r in push_service.received] == [{"title": "Hola"}]
