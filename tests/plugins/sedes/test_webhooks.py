"""Outgoing webhooks: the tenant administrator registers endpoints; a sync against the DEHú simulator,
an opening and a deadline alert become signed deliveries (one per hook and event, written with the
change), sent by real RQ workers to a real HTTP receiver on loopback, retried with back-off, logged;
private addresses are refused where the operator does not allow them; tenants never see each
other's hooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from sqlalchemy import func, select, text

from tests.conftest import login
from tests.plugins.sedes.sync_helpers import (
    company_certificate,
    in_tenant,
    make_mailbox,
    notifications_of,
    point_catalogue_at,
    store_certificate,
)

CIF = "B12345674"


class Receiver:
    """An integrator's endpoint on loopback: records each POST, checks its signature with the secret
    it is given, and answers the statuses queued in ``answers`` (then 200)."""

    def __init__(self, context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []
        self.server_names: list[str | None] = []
        self.answers: list[int] = []
        self.secret = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers["Host"],
                        "event": self.headers["X-Ventanilla-Event"],
                        "delivery": self.headers["X-Ventanilla-Delivery"],
                        "signed": receiver.verify(self.headers["X-Ventanilla-Signature"], body),
                        "signature": self.headers["X-Ventanilla-Signature"],
                        "raw": body,
                        "body": json.loads(body),
                    }
                )
                status = receiver.answers.pop(0) if receiver.answers else 200
                answer = b'{"ok": false, "why": "database down"}' if status >= 300 else b"thanks"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        scheme = "http"
        if context is not None:
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{host}:{self.port}/hooks/sedes?source=ventanilla"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify(self, header: str, body: bytes, secret: str | None = None) -> bool:
        """The recipe shown on the hook's page: any ``v1`` made with the secret signs it."""
        items = [item.split("=", 1) for item in header.split(",")]
        key = (secret if secret is not None else self.secret).encode()
        expected = hmac.new(key, dict(items)["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, value) for name, value in items if name == "v1")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def sweep(app) -> dict:
    """What the cron's one-minute tick runs (``core.jobs.runner.sweep``)."""
    from core.jobs.runner import sweep as run_sweep

    with app.app_context():
        return run_sweep("sedes.webhooks_sweep")


def admin_office(app, factory, simulator=None, slug="acme"):
    tenant = factory.tenant(slug, language="en")
    factory.user(tenant, f"admin@{slug}.test", role_key="admin", name="Admin")
    factory.user(tenant, f"jefa@{slug}.test", role_key="manager", name="Jefa")
    mailbox = client_id = None
    if simulator is not None:
        point_catalogue_at(app, simulator)
        client_id = factory.client(tenant, "Construcciones Levante SL", CIF)
        certificate = store_certificate(app, tenant, client_id, company_certificate(simulator, CIF))
        mailbox = make_mailbox(app, tenant, client_id, certificate)
    return tenant, client_id, mailbox


def add_hook(app, tenant, url, events=None, *, active=True) -> tuple[int, str]:
    from core.api import User, db
    from plugins.sedes import webhooks

    with in_tenant(app, tenant.id):
        admin = db.session.scalar(select(User).where(User.email.like("admin@%")))
        hook = webhooks.create_hook(
            admin, webhooks.WebhookData(url, "DMS", list(events or webhooks.EVENTS), active=active)
        )
        return hook.id, hook.secret


def deliveries(app, tenant, *columns) -> list[tuple]:
    from plugins.sedes.webhooks import Delivery

    columns = columns or ("hook_id", "event", "notification_id", "status")
    with in_tenant(app, tenant.id):
        from core.api import db

        stmt = select(*(getattr(Delivery, c) for c in columns)).order_by(Delivery.id)
        return [tuple(r) for r in db.session.execute(stmt)]


def sync_now(client, run_jobs, slug, mailbox):
    response = client.post(f"/{slug}/sedes/notifications/sync/mailbox/{mailbox}")
    assert response.status_code == 302
    run_jobs()


def test_the_administrator_registers_a_hook_and_sees_its_secret_encrypted_at_rest(
    app, factory, client, receiver, owner_engine
):
    admin_office(app, factory)
    login(client, "acme", "admin@acme.test")
    page = client.get("/acme/sedes/settings/webhooks/").get_data(as_text=True)
    assert "No webhook yet." in page
    response = client.post(
        "/acme/sedes/settings/webhooks/new",
        data={
            "url": receiver.url,
            "description": "Gestor documental",
            "events": ["notification.created"],
            "active": "y",
        },
    )
    assert response.status_code == 302
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    secret = re.search(r'<code class="user-select-all">([^<]+)</code>', shown).group(1)
    assert secret.startswith("whsec_") and len(secret) > 40
    assert "X-Ventanilla-Signature" in shown and "HMAC-SHA256" in shown
    with owner_engine.connect() as connection:
        stored = connection.execute(text("SELECT secret FROM sedes_webhooks")).scalar()
    assert secret not in stored, "the secret is encrypted at rest"

    hook_page = response.headers["Location"]
    client.post(f"{hook_page}/rotate")
    rotated = re.search(r'<code class="user-select-all">([^<]+)</code>', client.get(hook_page).get_data(as_text=True))
    assert rotated.group(1) != secret and rotated.group(1).startswith("whsec_")
    with owner_engine.connect() as connection:
        kept = connection.execute(text("SELECT previous_secret FROM sedes_webhooks")).scalar()
    assert kept and secret not in kept, "the previous secret, kept for its day, is encrypted at rest too"

    client.post(f"{hook_page}/pause")
    assert "Paused" in client.get(hook_page).get_data(as_text=True)
    client.post(f"{hook_page}/delete")
    assert "No webhook yet." in client.get("/acme/sedes/settings/webhooks/").get_data(as_text=True)


def test_a_sync_emits_one_delivery_per_hook_and_event_and_a_rerun_none(
    app, factory, client, dehu_simulator, run_jobs, receiver
):
    from plugins.sedes.webhooks import NEW, OPENED

    tenant, client_id, mailbox = admin_office(app, factory, dehu_simulator)
    first, first_secret = add_hook(app, tenant, receiver.url, [NEW])
    second, _ = add_hook(app, tenant, receiver.url, [NEW, OPENED])
    add_hook(app, tenant, receiver.url, [OPENED])  # wants no new notifications
    add_hook(app, tenant, receiver.url, [NEW], active=False)  # paused: records nothing
    dehu_simulator.add_notification(CIF, subject="Requerimiento IVA 2025", procedure="Gestión tributaria")
    dehu_simulator.add_notification(CIF, subject="Aviso de campaña", kind="comunicacion")
    login(client, "acme", "jefa@acme.test")
    sync_now(client, run_jobs, "acme", mailbox)

    ids = [nid for (nid,) in notifications_of(app, tenant, "id")]
    assert len(ids) == 2
    made = deliveries(app, tenant, "hook_id", "event", "notification_id", "status")
    assert sorted(made) == sorted((hook, NEW, nid, "pending") for hook in (first, second) for nid in ids)

    sync_now(client, run_jobs, "acme", mailbox)
    assert len(deliveries(app, tenant)) == 4, "a re-run of the sync records nothing new"

    receiver.secret = first_secret
    assert sweep(app) == {"deliveries": 4, "runs": 1}
    run_jobs()
    assert [status for (status,) in deliveries(app, tenant, "status")] == ["delivered"] * 4
    to_first = [r for r in receiver.requests if r["signed"]]
    assert len(receiver.requests) == 4 and len(to_first) == 2, "each hook signs with its own secret"
    request = next(r for r in to_first if r["body"]["notification"]["subject"] == "Requerimiento IVA 2025")
    assert request["event"] == NEW and request["path"] == "/hooks/sedes?source=ventanilla"
    assert request["host"] == f"127.0.0.1:{receiver.port}"
    body = request["body"]
    assert body["id"] == request["delivery"] and body["event"] == NEW and body["tenant"]["slug"] == "acme"
    notification = body["notification"]
    assert notification["client"] == {"id": client_id, "tax_id": CIF, "name": "Construcciones Levante SL"}
    assert notification["sede"]["code"] == "dehu" and notification["kind"] == "notificacion"
    assert notification["sede_state"] == "pendiente" and notification["deadline_on"]
    assert notification["link"] == f"http://ventanilla.test/acme/sedes/notifications/{notification['id']}"
    assert sweep(app) == {"deliveries": 0, "runs": 0}, "nothing is sent twice"


def test_opening_and_a_deadline_alert_are_events_too_each_once(app, factory, client, dehu_simulator, run_jobs):
    from core.api import Tenant, User, db
    from plugins.sedes import notifications
    from plugins.sedes.models import SedeNotification
    from plugins.sedes.webhooks import DEADLINE_NEAR, NEW, OPENED

    tenant, _client_id, mailbox = admin_office(app, factory, dehu_simulator)
    add_hook(app, tenant, "http://127.0.0.1:9/hook", [OPENED, DEADLINE_NEAR])
    dehu_simulator.add_notification(CIF, subject="Embargo de créditos")
    login(client, "acme", "jefa@acme.test")
    sync_now(client, run_jobs, "acme", mailbox)
    assert deliveries(app, tenant) == [], "this hook did not ask for new notifications"
    ((nid, deadline),) = notifications_of(app, tenant, "id", "deadline_on")

    with in_tenant(app, tenant.id):
        the_tenant = db.session.get(Tenant, tenant.id)
        notifications.send_deadline_alerts(the_tenant, deadline - timedelta(days=5))
        notifications.send_deadline_alerts(the_tenant, deadline - timedelta(days=5))
        notifications.send_deadline_alerts(the_tenant, deadline - timedelta(days=2))
    near = deliveries(app, tenant, "event", "notification_id", "occasion")
    assert near == [(DEADLINE_NEAR, nid, "5"), (DEADLINE_NEAR, nid, "2")]

    client.post(f"/acme/sedes/notifications/{nid}/open", data={"confirm": "yes"})
    with in_tenant(app, tenant.id):
        assert db.session.get(SedeNotification, nid).opened_at is not None
        user = db.session.scalar(select(User).where(User.email == "jefa@acme.test"))
        notifications.open_notification(
            db.session.get(Tenant, tenant.id), user, db.session.get(SedeNotification, nid), confirmed=True
        )
    opened = [row for row in deliveries(app, tenant, "event", "notification_id", "payload") if row[0] == OPENED]
    assert len(opened) == 1 and opened[0][2]["notification"]["opened_at"], "opened once, with its time"
    assert NEW not in {event for (event,) in deliveries(app, tenant, "event")}


def test_a_receiver_that_fails_is_tried_again_after_the_back_off_and_gets_it_once(
    app, factory, client, run_jobs, receiver
):
    from plugins.sedes.webhooks import PING

    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        admin_office(app, factory)
        login(client, "acme", "admin@acme.test")
        client.post(
            "/acme/sedes/settings/webhooks/new",
            data={"url": receiver.url, "events": ["notification.created"], "active": "y"},
        )
        receiver.answers = [500]
        page = client.get("/acme/sedes/settings/webhooks/").get_data(as_text=True)
        hook_url = re.search(r'href="(/acme/sedes/settings/webhooks/\d+)"', page).group(1)
        client.post(f"{hook_url}/ping")
        run_jobs()
        assert len(receiver.requests) == 1
        shown = client.get(hook_url).get_data(as_text=True)
        assert 'data-status="pending"' in shown and "HTTP 500" in shown

        assert sweep(app)["deliveries"] == 0, "not before its back-off"
        clock.shift(timedelta(seconds=59))
        assert sweep(app)["deliveries"] == 0
        clock.shift(timedelta(seconds=2))
        assert sweep(app)["deliveries"] == 1
        run_jobs()
        assert sweep(app)["deliveries"] == 0
        # Still in the clock's day: the signed-in session would lapse in a real one.
        detail = re.search(
            r'href="(/acme/sedes/settings/webhooks/\d+/deliveries/\d+)"', client.get(hook_url).get_data(as_text=True)
        )
        log = client.get(detail.group(1)).get_data(as_text=True)
        client.post(f"{detail.group(1)}/redeliver")
        run_jobs()
    assert [r["event"] for r in receiver.requests[:2]] == [PING, PING]
    assert receiver.requests[0]["delivery"] == receiver.requests[1]["delivery"], "the same delivery id"
    assert log.count("data-attempt=") == 2 and "HTTP 500" in log and "database down" in log and "HTTP 200" in log
    assert 'id="delivery-status">Delivered' in log
    assert len(receiver.requests) == 3 and receiver.requests[2]["delivery"] == receiver.requests[0]["delivery"]


def test_a_delivery_fails_for_good_after_the_last_attempt(app, factory, run_jobs):
    from core.api import db
    from plugins.sedes import webhooks
    from plugins.sedes.webhook_sender import Outcome

    tenant, _, _ = admin_office(app, factory)
    hook, _ = add_hook(app, tenant, "http://127.0.0.1:9/hook")
    with in_tenant(app, tenant.id):
        the_tenant = db.session.get(webhooks.Tenant, tenant.id)
        delivery = db.session.get(webhooks.Delivery, webhooks.ping_delivery(the_tenant, webhooks.get_hook(hook)))
        waits = []
        for _ in range(webhooks.MAX_ATTEMPTS):
            before = webhooks.utcnow()
            webhooks.record(delivery, Outcome(503, "busy", "http_status", "HTTP 503", 12))
            if delivery.next_attempt_at is not None:
                waits.append(round((delivery.next_attempt_at - before).total_seconds() / 60))
        assert delivery.status == webhooks.FAILED and delivery.attempts == webhooks.MAX_ATTEMPTS
        assert waits == [1, 5, 30, 120, 360, 720]
        db.session.rollback()


def test_a_delivery_held_by_a_worker_that_died_is_taken_again(app, factory, run_jobs, receiver):
    from core.api import db
    from plugins.sedes import webhooks

    tenant, _, _ = admin_office(app, factory)
    hook, receiver.secret = add_hook(app, tenant, receiver.url)
    with in_tenant(app, tenant.id):
        the_tenant = db.session.get(webhooks.Tenant, tenant.id)
        delivery = db.session.get(webhooks.Delivery, webhooks.ping_delivery(the_tenant, webhooks.get_hook(hook)))
        delivery.claimed_at = webhooks.utcnow() - timedelta(minutes=5)  # a run holds it now
        db.session.commit()
    assert sweep(app)["deliveries"] == 0, "a live claim is left to its run"
    with in_tenant(app, tenant.id):
        delivery = db.session.scalar(select(webhooks.Delivery))
        delivery.claimed_at = webhooks.utcnow() - webhooks.CLAIM_TTL - timedelta(minutes=1)
        db.session.commit()
    assert sweep(app)["deliveries"] == 1
    run_jobs()
    assert len(receiver.requests) == 1 and receiver.requests[0]["signed"]
    assert deliveries(app, tenant, "status") == [("delivered",)]


def test_private_and_loopback_addresses_are_refused_at_save_and_at_send(app, factory, client, run_jobs, receiver):
    tenant, _, _ = admin_office(app, factory)
    hook, _ = add_hook(app, tenant, receiver.url)  # saved while the operator allowed it
    login(client, "acme", "admin@acme.test")
    app.config["ALLOW_PRIVATE_HOSTS"] = False
    try:
        for url, refusal in (
            (f"https://127.0.0.1:{receiver.port}/hook", "is not a server on the internet"),
            ("https://169.254.169.254/latest/meta-data", "is not a server on the internet"),
            ("https://localhost/hook", "is not a server on the internet"),
            ("http://dms.example.com/hook", "must start with https://"),
            ("ftp://dms.example.com/hook", "Enter a full address"),
        ):
            page = client.post(
                "/acme/sedes/settings/webhooks/new", data={"url": url, "events": ["notification.created"]}
            ).get_data(as_text=True)
            assert refusal in page, url
        with in_tenant(app, tenant.id):
            from core.api import db
            from plugins.sedes import webhooks

            assert db.session.scalar(select(func.count()).select_from(webhooks.Webhook)) == 1
        client.post(f"/acme/sedes/settings/webhooks/{hook}/ping")
        run_jobs()
    finally:
        app.config["ALLOW_PRIVATE_HOSTS"] = True
    assert receiver.requests == [], "nothing reached the loopback receiver"
    assert deliveries(app, tenant, "status", "last_error") == [("failed", "refused")]
    page = client.get(f"/acme/sedes/settings/webhooks/{hook}").get_data(as_text=True)
    assert "not a server on the internet" in page


def test_tenants_never_see_nor_feed_each_others_hooks(app, factory, client, run_jobs, receiver):
    from core.api import Tenant, db
    from plugins.sedes import webhooks

    acme, _, _ = admin_office(app, factory)
    beta, _, _ = admin_office(app, factory, slug="beta")
    acme_hook, _ = add_hook(app, acme, receiver.url)
    with in_tenant(app, acme.id):
        webhooks.ping(db.session.get(Tenant, acme.id), _admin(acme), db.session.get(webhooks.Webhook, acme_hook))
    ((delivery_id,),) = deliveries(app, acme, "id")
    login(client, "beta", "admin@beta.test")
    for url in (
        f"/beta/sedes/settings/webhooks/{acme_hook}",
        f"/beta/sedes/settings/webhooks/{acme_hook}/edit",
        f"/beta/sedes/settings/webhooks/{acme_hook}/deliveries/{delivery_id}",
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/beta/sedes/settings/webhooks/{acme_hook}/ping",
        f"/beta/sedes/settings/webhooks/{acme_hook}/delete",
        f"/beta/sedes/settings/webhooks/{acme_hook}/deliveries/{delivery_id}/redeliver",
    ):
        assert client.post(url).status_code == 404, url
    assert receiver.url not in client.get("/beta/sedes/settings/webhooks/").get_data(as_text=True)
    assert deliveries(app, beta) == []
    with in_tenant(app, beta.id):
        assert webhooks.hooks() == []


def _admin(tenant):
    from core.api import User, db

    return db.session.scalar(select(User).where(User.email == f"admin@{tenant.slug}.test"))


def test_only_who_manages_webhooks_reaches_them(app, factory, client):
    tenant, _, _ = admin_office(app, factory)
    hook, _ = add_hook(app, tenant, "https://dms.example.com/hook")
    login(client, "acme", "jefa@acme.test")  # a manager: no sedes.webhooks:manage by default
    assert client.get("/acme/sedes/settings/webhooks/").status_code == 403
    assert client.post(f"/acme/sedes/settings/webhooks/{hook}/rotate").status_code == 403
    assert "/sedes/settings/webhooks" not in client.get("/acme/settings/").get_data(as_text=True)
    factory.user(tenant, "dms@acme.test", permissions=["sedes.webhooks:manage"])
    client.post("/acme/logout")
    login(client, "acme", "dms@acme.test")
    assert client.get("/acme/sedes/settings/webhooks/").status_code == 200


def _tls_receiver(tmp_path, ca, names: tuple[str, ...]) -> Receiver:
    cert_path, key_path = ca.server(names).write(tmp_path, names[0])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return Receiver(context, host="localhost")


def test_tls_is_verified_for_the_urls_name_while_the_socket_goes_to_the_checked_address(
    app, factory, run_jobs, tmp_path, monkeypatch
):
    from plugins.sedes.pki import CertificateAuthority

    ca = CertificateAuthority(name="Receptor Pruebas AC")
    monkeypatch.setenv("SSL_CERT_FILE", ca.write_bundle(tmp_path / "ca.pem"))  # the system's CAs, here
    tenant, _, _ = admin_office(app, factory)
    with _tls_receiver(tmp_path, ca, ("localhost",)) as good, _tls_receiver(tmp_path, ca, ("dms.example",)) as bad:
        good_hook, good.secret = add_hook(app, tenant, good.url)
        bad_hook, _ = add_hook(app, tenant, bad.url)
        with in_tenant(app, tenant.id):
            from core.api import Tenant, db
            from plugins.sedes import webhooks

            the_tenant = db.session.get(Tenant, tenant.id)
            for hook in (good_hook, bad_hook):
                webhooks.ping(the_tenant, _admin(tenant), webhooks.get_hook(hook))
        run_jobs()
    assert len(good.requests) == 1 and good.requests[0]["signed"]
    assert good.server_names == ["localhost"] and good.requests[0]["host"] == f"localhost:{good.port}"
    assert bad.requests == [], "a certificate for another name is refused"
    outcome = dict(
        ((hook, (status, error)) for hook, status, error in deliveries(app, tenant, "hook_id", "status", "last_error"))
    )
    assert outcome == {good_hook: ("delivered", None), bad_hook: ("pending", "tls")}


def test_recording_a_syncs_events_takes_the_same_statements_for_one_notification_or_many(
    app, factory, client, dehu_simulator, run_jobs
):
    from core.api.testing import count_queries
    from plugins.sedes.webhooks import NEW

    tenant, _client_id, mailbox = admin_office(app, factory, dehu_simulator)
    add_hook(app, tenant, "https://dms.example.com/a", [NEW])
    add_hook(app, tenant, "https://dms.example.com/b", [NEW])
    login(client, "acme", "jefa@acme.test")
    statements = []
    for count in (1, 6):
        for number in range(count):
            dehu_simulator.add_notification(CIF, subject=f"Requerimiento {count}-{number}")
        with count_queries(app) as seen:
            sync_now(client, run_jobs, "acme", mailbox)
        statements.append([s for s in seen if "sedes_webhook" in s])
    assert len(deliveries(app, tenant)) == 2 * 7
    assert len(statements[0]) == len(statements[1]) <= 4, statements[1]


def test_the_deliveries_log_pages_newest_first(app, factory, client):
    from core.api import Tenant, db
    from plugins.sedes import webhooks

    tenant, _, _ = admin_office(app, factory)
    hook, _ = add_hook(app, tenant, "https://dms.example.com/hook")
    with in_tenant(app, tenant.id):
        the_tenant, the_hook = db.session.get(Tenant, tenant.id), webhooks.get_hook(hook)
        made = [webhooks.ping_delivery(the_tenant, the_hook) for _ in range(webhooks.PER_PAGE + 5)]
        db.session.commit()
    login(client, "acme", "admin@acme.test")
    page = client.get(f"/acme/sedes/settings/webhooks/{hook}").get_data(as_text=True)
    first = [int(i) for i in re.findall(r'data-delivery="(\d+)"', page)]
    following = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    second = [int(i) for i in re.findall(r'data-delivery="(\d+)"', client.get(following).get_data(as_text=True))]
    assert first + second == sorted(made, reverse=True) and len(first) == webhooks.PER_PAGE


def test_a_sweep_queues_a_bounded_number_of_a_tenants_deliveries_and_the_rest_at_the_next_tick(app, factory):
    from core.api import Tenant, db
    from plugins.sedes import webhooks

    tenant, _, _ = admin_office(app, factory)
    hook, _ = add_hook(app, tenant, "https://dms.example.com/hook")
    with in_tenant(app, tenant.id):
        the_tenant, the_hook = db.session.get(Tenant, tenant.id), webhooks.get_hook(hook)
        for _ in range(webhooks.SWEEP_LIMIT + 5):
            webhooks.ping_delivery(the_tenant, the_hook)
        db.session.commit()
    runs = -(-webhooks.SWEEP_LIMIT // webhooks.RUN_SIZE)
    assert sweep(app) == {"deliveries": webhooks.SWEEP_LIMIT, "runs": runs}
    assert sweep(app) == {"deliveries": 5, "runs": 1}
    assert sweep(app) == {"deliveries": 0, "runs": 0}


def test_ended_deliveries_go_after_the_retention_with_their_attempts_and_pending_ones_stay(app, factory, run_jobs):
    from datetime import timedelta

    from sqlalchemy import func
    from sqlalchemy import update as sql_update

    from core.api import Tenant, db, enqueue
    from plugins.sedes import webhooks
    from plugins.sedes.webhook_sender import Outcome

    tenant, _, _ = admin_office(app, factory)
    other, _, _ = admin_office(app, factory, slug="other")
    hook, _ = add_hook(app, tenant, "https://dms.example.com/hook")
    other_hook, _ = add_hook(app, other, "https://dms.example.com/hook")
    old = webhooks.utcnow() - timedelta(days=webhooks.RETENTION_DAYS + 1)
    with in_tenant(app, tenant.id):
        the_tenant, the_hook = db.session.get(Tenant, tenant.id), webhooks.get_hook(hook)
        ids = [webhooks.ping_delivery(the_tenant, the_hook) for _ in range(4)]
        delivered_old, failed_old, _pending_old, delivered_new = (db.session.get(webhooks.Delivery, i) for i in ids)
        webhooks.record(delivered_old, Outcome(200, "ok", None, "", 5))
        webhooks.record(delivered_new, Outcome(200, "ok", None, "", 5))
        for _ in range(webhooks.MAX_ATTEMPTS):
            webhooks.record(failed_old, Outcome(503, "busy", "http_status", "HTTP 503", 5))
        db.session.commit()
        db.session.execute(
            sql_update(webhooks.Delivery).where(webhooks.Delivery.id.in_(ids[:3])).values(created_at=old),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()
    with in_tenant(app, other.id):
        kept = webhooks.ping_delivery(db.session.get(Tenant, other.id), webhooks.get_hook(other_hook))
        db.session.execute(
            sql_update(webhooks.Delivery)
            .where(webhooks.Delivery.id == kept)
            .values(created_at=old, status="delivered"),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()

    with app.app_context():
        run = enqueue(db.session.get(Tenant, tenant.id), webhooks.PURGE_JOB)
    run_jobs()
    with in_tenant(app, tenant.id):
        finished = db.session.get(type(run), run.id)
        assert finished.status == "finished"
        assert finished.result == {"deliveries_removed": 2, "attempts_removed": 1 + webhooks.MAX_ATTEMPTS}
        assert sorted(r[0] for r in db.session.execute(select(webhooks.Delivery.id))) == sorted(ids[2:])
        assert db.session.scalar(select(func.count()).select_from(webhooks.Attempt)) == 1
        assert webhooks.purge_old_deliveries() == {"deliveries_removed": 0, "attempts_removed": 0}
    assert [r[0] for r in deliveries(app, other, "id")] == [kept], "another tenant's rows are its own business"


def test_after_a_rotation_the_old_secret_signs_too_for_a_day_unless_stopped_at_once(
    app, factory, client, run_jobs, receiver
):
    def ping_and_read(hook_page: str) -> dict:
        client.post(f"{hook_page}/ping")
        run_jobs()
        return receiver.requests[-1]

    def signs(request: dict, secret: str) -> bool:
        return receiver.verify(request["signature"], request["raw"], secret)

    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        tenant, _, _ = admin_office(app, factory)
        hook, first = add_hook(app, tenant, receiver.url)
        hook_page = f"/acme/sedes/settings/webhooks/{hook}"
        login(client, "acme", "admin@acme.test")
        assert ping_and_read(hook_page)["signature"].count("v1=") == 1

        client.post(f"{hook_page}/rotate")
        shown = client.get(hook_page).get_data(as_text=True)
        second = re.search(r'<code class="user-select-all">([^<]+)</code>', shown).group(1)
        assert 'id="previous-secret"' in shown
        during = ping_and_read(hook_page)
        assert during["signature"].count("v1=") == 2
        assert signs(during, second) and signs(during, first), "a receiver with either secret accepts it"

        clock.shift(timedelta(hours=24, seconds=1))
        login(client, "acme", "admin@acme.test")
        after = ping_and_read(hook_page)
        assert signs(after, second) and not signs(after, first)
        assert 'id="previous-secret"' not in client.get(hook_page).get_data(as_text=True)

        client.post(f"{hook_page}/rotate")
        client.post(f"{hook_page}/rotate", data={"at_once": "1"})
        third = re.search(
            r'<code class="user-select-all">([^<]+)</code>', client.get(hook_page).get_data(as_text=True)
        ).group(1)
        leaked = ping_and_read(hook_page)
        assert leaked["signature"].count("v1=") == 1 and signs(leaked, third) and not signs(leaked, second)
