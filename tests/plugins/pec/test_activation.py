"""Activation through the provider contract: the manual gestore in the operator console (across
resellers), and a gestore's HTTP API that activates after a delay and calls back — the reseller
sees the box become ATTIVA without anyone clicking. On activation the reseller and the holder are
told by e-mail."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import login, login_operator
from tests.plugins.pec.conftest import box_row, in_tenant, make_box, make_holder, tenant_row


def test_the_gestore_activates_in_the_console_and_the_reseller_and_the_holder_are_emailed(
    app, factory, client, reseller, smtp_server, run_jobs
):
    from tests.core.mail.conftest import use_smtp

    use_smtp(app, reseller.tenant, smtp_server)
    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "mario.rossi", rossi, address)
    # Another reseller's box waits in the same queue.
    other = factory.tenant("altra", name="Altra Rivendita", language="it")
    factory.user(other, "admin@altra.test", role_key="admin")
    with in_tenant(app, other):
        from core.api import db
        from plugins.pec.models import Domain

        db.session.add(Domain(name="pec.altra.example"))
        db.session.commit()
    factory.operator()
    login_operator(client)

    queue = client.get("/operator/pec/").get_data(as_text=True)
    assert "mario.rossi@pec.rivendita.example" in queue and "Rivendita PEC Srl" in queue
    response = client.post(f"/operator/pec/boxes/{box}/activate")
    assert response.status_code == 302
    row = box_row(app, reseller.tenant, box)
    assert row["state"] == "active" and row["expires_on"] is not None
    assert 'data-box="mario.rossi@pec.rivendita.example"' not in client.get("/operator/pec/").get_data(as_text=True)

    run_jobs()
    received = {tuple(m.rcpt_tos): m.message for m in smtp_server.received}
    assert set(received) == {("admin@rivendita.test",), ("mario.rossi@cliente.test",)}
    holder_mail = received[("mario.rossi@cliente.test",)]
    reseller_mail = received[("admin@rivendita.test",)]
    assert "mario.rossi@pec.rivendita.example" in holder_mail["Subject"]
    assert holder_mail["Content-Language"] == "en"  # the holder's language is the reseller's
    assert "Mario Rossi" in reseller_mail.get_body(("plain",)).get_content()

    # Activating twice changes nothing and sends nothing more.
    client.post(f"/operator/pec/boxes/{box}/activate")
    run_jobs()
    assert len(smtp_server.received) == 2


def test_the_gestore_refuses_with_a_reason_the_reseller_reads(app, client, factory, reseller, outbox):
    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "rifiutata", rossi, address)
    factory.operator()
    login_operator(client)
    assert client.post(f"/operator/pec/boxes/{box}/refuse", data={"reason": ""}).status_code == 302
    assert box_row(app, reseller.tenant, box)["state"] == "pending"
    client.post(f"/operator/pec/boxes/{box}/refuse", data={"reason": "Documento illeggibile"})
    assert box_row(app, reseller.tenant, box)["state"] == "refused"
    mails = outbox()
    assert [m.to for m in mails] == ["admin@rivendita.test"]
    assert "Documento illeggibile" in mails[0].text


def test_a_staff_user_cannot_reach_the_gestore_console(app, client, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "casella", rossi, address)
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(f"/operator/pec/boxes/{box}/activate")
    assert response.status_code == 302 and "/operator/login" in response.location
    assert box_row(app, reseller.tenant, box)["state"] == "pending"


# --- the gestore's HTTP API ----------------------------------------------------------------


@pytest.fixture
def http_domain(app, reseller, pec_provider, live_app, monkeypatch):
    """The reseller's domain activated through the loopback gestore, which calls back the app on
    its live server (links and callback addresses are built from the public URL)."""
    from core.api import db
    from plugins.pec.activation import service
    from plugins.pec.models import Domain

    monkeypatch.setitem(app.config, "PUBLIC_URL", live_app)
    with in_tenant(app, reseller.tenant):
        db.session.get(Domain, reseller.domain_id).provider = "http"
        service.save_config(
            "http", {"base_url": pec_provider.url, "api_token": "test-token", "webhook_secret": "test-secret"}
        )
        db.session.commit()
    return reseller.domain_id


def wait_for_state(app, tenant, box_id, state, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if box_row(app, tenant, box_id)["state"] == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"box {box_id} is {box_row(app, tenant, box_id)['state']}, not {state}")


def test_the_http_gestore_activates_after_a_delay_and_calls_back(
    app, client, reseller, http_domain, pec_provider, run_jobs, outbox
):
    _rossi, address = make_holder(app, reseller.tenant)
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(
        "/rivendita/pec/boxes/new",
        data={
            "local_part": "automatica",
            "domain_id": http_domain,
            "codice_fiscale": "RSSMRA78D15H501U",
            "action": "save",
        },
    )
    client.post(response.location, data={"choose-address_id": address, "action": "choose"})
    box = int(response.location.split("/boxes/")[1].split("/")[0])
    assert box_row(app, reseller.tenant, box)["state"] == "pending"

    run_jobs()  # the sync job asks the gestore; it answers 202 and activates 0.2 s later
    deliveries = pec_provider.wait_for_deliveries(1)
    assert deliveries[0].status_code == 200
    wait_for_state(app, reseller.tenant, box, "active")
    state = client.get(f"/rivendita/pec/boxes/{box}/state").get_json()
    assert state["state"] == "active" and state["expires_on"]
    assert sorted(m.to for m in outbox()) == ["admin@rivendita.test", "mario.rossi@cliente.test"]

    # The request carried the box, the holder and the address as the contract says.
    request = next(iter(pec_provider._activations.values())).request
    assert request.address == "automatica@pec.rivendita.example"
    assert request.holder.codice_fiscale == "RSSMRA78D15H501U" and request.holder.sex == "M"
    assert request.holder_address.comune == "Roma" and request.callback_url.startswith(app.config["PUBLIC_URL"])

    # The same callback again (a retry of the gestore) is applied once: no further e-mail.
    from plugins.pec.activation.signing import EVENT_HEADER, SIGNATURE_HEADER, sign

    result = pec_provider.result(request.request_id)
    body = json.dumps({"event": "activation.updated", "result": result.to_dict()}, sort_keys=True).encode()
    headers = {EVENT_HEADER: deliveries[0].event_id, SIGNATURE_HEADER: sign("test-secret", body)}
    again = client.post("/rivendita/pec/activation/callback", data=body, headers=headers, without_csrf=True)
    assert again.status_code == 200 and again.get_json()["result"] == "already applied"
    assert len(outbox()) == 2


def test_a_callback_with_a_wrong_signature_changes_nothing(app, client, reseller, http_domain, pec_provider):
    from plugins.pec.activation.signing import EVENT_HEADER, SIGNATURE_HEADER, sign

    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "falsa", rossi, address)
    with in_tenant(app, reseller.tenant):
        from core.api import db
        from plugins.pec.models import Box

        request_id = db.session.get(Box, box).request_id
    body = json.dumps(
        {"event": "activation.updated", "result": {"request_id": request_id, "status": "active"}}
    ).encode()
    for signature in (None, sign("another-secret", body), "t=1,v1=00"):
        headers = {EVENT_HEADER: "evt-1"} | ({SIGNATURE_HEADER: signature} if signature else {})
        response = client.post("/rivendita/pec/activation/callback", data=body, headers=headers, without_csrf=True)
        assert response.status_code == 400
    assert box_row(app, reseller.tenant, box)["state"] == "pending"
    # Signed right, it is believed.
    good = client.post(
        "/rivendita/pec/activation/callback",
        data=body,
        headers={EVENT_HEADER: "evt-2", SIGNATURE_HEADER: sign("test-secret", body)},
        without_csrf=True,
    )
    assert good.status_code == 200
    assert box_row(app, reseller.tenant, box)["state"] == "active"


def test_a_refusal_of_the_http_gestore_reaches_the_reseller(app, reseller, http_domain, pec_provider, run_jobs):
    from core.api import db
    from plugins.pec.activation import service
    from plugins.pec.models import Box

    pec_provider.behaviour.outcome = "refuse"
    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "rifiuto", rossi, address)
    with in_tenant(app, reseller.tenant):
        service.request_activation(tenant_row(reseller.tenant), db.session.get(Box, box))
    run_jobs()
    pec_provider.wait_for_deliveries(1)
    wait_for_state(app, reseller.tenant, box, "refused")


def test_an_unreachable_gestore_is_retried_then_left_to_the_manual_queue(app, reseller, run_jobs):
    from core.api import JobRun, db
    from plugins.pec.activation import service
    from plugins.pec.models import Box, Domain

    with in_tenant(app, reseller.tenant):
        db.session.get(Domain, reseller.domain_id).provider = "http"
        service.save_config("http", {"base_url": "http://127.0.0.1:9", "api_token": "t", "webhook_secret": "s"})
        db.session.commit()
    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "irraggiungibile", rossi, address)
    with in_tenant(app, reseller.tenant):
        service.request_activation(tenant_row(reseller.tenant), db.session.get(Box, box))
    run_jobs()
    with in_tenant(app, reseller.tenant):
        run = db.session.scalar(db.select(JobRun).where(JobRun.name == "pec.submit_activation"))
        assert run.attempts >= 2  # connection refused is transient: retried with back-off
    assert box_row(app, reseller.tenant, box)["state"] == "pending"


def test_the_provider_settings_keep_a_secret_only_for_the_host_it_was_saved_for(app, reseller):
    from core.api import db
    from plugins.pec.activation import service
    from plugins.pec.errors import PecErrors

    with in_tenant(app, reseller.tenant):
        service.save_config(
            "http", {"base_url": "http://127.0.0.1:8000/v1", "api_token": "tok", "webhook_secret": "sec"}
        )
        service.save_config("http", {"base_url": "http://127.0.0.1:8000/v2", "api_token": "", "webhook_secret": ""})
        assert service.settings_of("http")["api_token"] == "tok"
        with pytest.raises(PecErrors) as refused:
            service.save_config("http", {"base_url": "http://localhost:8001/v1", "api_token": "", "webhook_secret": ""})
        assert {e.field for e in refused.value.errors} == {"api_token", "webhook_secret"}
        db.session.commit()


def test_the_gestore_credentials_are_encrypted_at_rest(app, reseller, owner_engine):
    from sqlalchemy import text

    from core.api import db
    from plugins.pec.activation import service

    token, secret = "tok-5e1f0c9a-never-in-clear", "sec-77aa21c4-never-in-clear"
    with in_tenant(app, reseller.tenant):
        service.save_config("http", {"base_url": "http://127.0.0.1:8000", "api_token": token, "webhook_secret": secret})
        db.session.commit()
    with in_tenant(app, reseller.tenant):
        assert service.settings_of("http")["api_token"] == token  # the application reads it back
    with owner_engine.connect() as connection:
        (raw,) = connection.execute(text("SELECT settings FROM pec_provider_configs")).one()
    raw = raw if isinstance(raw, str) else raw.decode()
    assert raw.startswith("gAAAAA") and token not in raw and secret not in raw and "127.0.0.1" not in raw
