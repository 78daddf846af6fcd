"""Contract tests: the HTTP provider client against the loopback gestore, over real sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
import requests

from plugins.pec.activation.contract import ActivationStatus, InvalidCallback, ProviderError
from plugins.pec.activation.http_api import HttpActivationProvider, is_retryable_status, parse_retry_after
from plugins.pec.activation.signing import EVENT_HEADER, SIGNATURE_HEADER, sign
from plugins.pec.lifecycle import expiry_date
from tests.plugins.pec.test_activation_contract import make_request


@pytest.fixture(autouse=True)
def _in_the_application(app):
    """Calls check the API's address against the operator's setting (the tests allow loopback)."""
    with app.app_context():
        yield


@pytest.fixture
def client(pec_provider):
    return HttpActivationProvider(pec_provider.url, "test-token", "test-secret", timeout=5)


def provider_error(call, *args) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call(*args)
    return caught.value


def test_an_accepted_box_is_activated_after_the_delay_and_called_back_signed(client, pec_provider, callback_receiver):
    request = make_request(years=2, callback_url=callback_receiver.url)
    accepted = client.submit(request)
    assert (accepted.request_id, accepted.status) == ("req-1", ActivationStatus.PENDING)
    assert accepted.reference.startswith("LP-")

    [delivery] = callback_receiver.wait_for(1)
    assert delivery.path == "/pec/callback"
    event = client.parse_callback(delivery.headers, delivery.body)
    result = event.result
    assert (result.request_id, result.status, result.reference) == (
        "req-1",
        ActivationStatus.ACTIVE,
        accepted.reference,
    )
    today = datetime.now(UTC).date()
    assert result.activated_at.tzinfo is not None and result.activated_at.date() == today
    assert result.expires_on == expiry_date(today, 2)
    assert len(event.event_id) == 32

    assert client.status("req-1") == result


def test_the_same_request_sent_twice_activates_one_box(client, pec_provider, callback_receiver):
    request = make_request(callback_url=callback_receiver.url)
    first = client.submit(request)
    again = client.submit(request)  # a retried job, or a timeout after the provider had accepted
    assert again == first
    callback_receiver.wait_for(1)
    with pytest.raises(AssertionError):
        callback_receiver.wait_for(2, timeout=0.6)
    # After activation the replay answers the final result.
    assert client.submit(request).status == ActivationStatus.ACTIVE


def test_one_key_for_two_different_requests_is_a_permanent_error(client, pec_provider):
    client.submit(make_request())
    error = provider_error(client.submit, make_request(years=3))
    assert (error.status_code, error.retryable) == (409, False)


def test_a_wrong_token_is_a_permanent_error(pec_provider):
    client = HttpActivationProvider(pec_provider.url, "wrong-token", "test-secret")
    error = provider_error(client.submit, make_request())
    assert (error.status_code, error.retryable) == (401, False)


def test_a_provider_that_is_busy_is_retried_with_the_same_key(client, pec_provider, callback_receiver):
    pec_provider.behaviour.fail_next = 2
    request = make_request(callback_url=callback_receiver.url)
    attempts = []
    while True:  # what the job's retries do, without the back-off
        try:
            result = client.submit(request)
            break
        except ProviderError as error:
            assert error.retryable and error.status_code == 503 and error.retry_after == 1.0
            attempts.append(error)
            assert len(attempts) <= 2
    assert len(attempts) == 2 and result.status == ActivationStatus.PENDING
    assert client.parse_callback(**_delivery(callback_receiver.wait_for(1)[0])).result.status == ActivationStatus.ACTIVE


def _delivery(received) -> dict:
    return {"headers": received.headers, "body": received.body}


def test_a_request_the_provider_rejects_is_a_permanent_error_with_its_reason(client, pec_provider):
    pec_provider.behaviour.reject = True
    error = provider_error(client.submit, make_request())
    assert (error.status_code, error.retryable) == (422, False)
    assert "rifiutata" in error.message


def test_an_invalid_address_or_one_taken_by_another_request_is_rejected(client, pec_provider):
    assert provider_error(client.submit, make_request(address="not an address")).status_code == 422
    client.submit(make_request("req-1"))
    error = provider_error(client.submit, make_request("req-2"))
    assert error.status_code == 422 and "esiste già" in error.message


def test_a_refused_activation_is_called_back_with_the_reason_and_frees_the_name(
    client, pec_provider, callback_receiver
):
    pec_provider.behaviour.outcome = "refuse"
    client.submit(make_request("req-1", callback_url=callback_receiver.url))
    result = client.parse_callback(**_delivery(callback_receiver.wait_for(1)[0])).result
    assert (result.status, result.message, result.activated_at) == (
        ActivationStatus.REFUSED,
        "Documentazione incompleta",
        None,
    )
    pec_provider.behaviour.outcome = "activate"
    assert client.submit(make_request("req-2")).status == ActivationStatus.PENDING


def test_a_callback_the_receiver_did_not_take_is_delivered_again_as_the_same_event(
    client, pec_provider, callback_receiver
):
    callback_receiver.fail_first = 1
    client.submit(make_request(callback_url=callback_receiver.url))
    first, second = callback_receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers[EVENT_HEADER] == second.headers[EVENT_HEADER]
    assert client.parse_callback(**_delivery(second)).result.status == ActivationStatus.ACTIVE
    assert [d.status_code for d in pec_provider.wait_for_deliveries(2)] == [500, 200]


def test_forged_and_replayed_callbacks_are_refused(client, pec_provider, callback_receiver):
    client.submit(make_request(callback_url=callback_receiver.url))
    delivery = callback_receiver.wait_for(1)[0]
    forged = dict(delivery.headers, **{SIGNATURE_HEADER: sign("not-the-secret", delivery.body)})
    with pytest.raises(InvalidCallback):
        client.parse_callback(forged, delivery.body)
    tampered = delivery.body.replace(b'"active"', b'"refused"')
    with pytest.raises(InvalidCallback):
        client.parse_callback(delivery.headers, tampered)
    later = HttpActivationProvider(pec_provider.url, "test-token", "test-secret", clock=lambda: time.time() + 600)
    with pytest.raises(InvalidCallback, match="too old"):
        later.parse_callback(delivery.headers, delivery.body)
    without_id = {k: v for k, v in delivery.headers.items() if k.lower() != EVENT_HEADER.lower()}
    with pytest.raises(InvalidCallback, match="event id"):
        client.parse_callback(without_id, delivery.body)


def test_a_signed_but_malformed_callback_is_refused(client):
    body = b'{"event": "activation.updated", "result": {"status": "active"}}'
    headers = {SIGNATURE_HEADER: sign("test-secret", body), EVENT_HEADER: "e1"}
    with pytest.raises(InvalidCallback, match="malformed"):
        client.parse_callback(headers, body)


def test_an_unknown_request_has_no_status(client):
    assert client.status("never-sent") is None


def test_a_provider_that_cannot_be_reached_is_a_transient_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpActivationProvider(f"http://127.0.0.1:{port}", "t", "s", timeout=2)
    error = provider_error(client.submit, make_request())
    assert error.retryable and error.status_code is None


def test_a_provider_that_does_not_answer_in_time_is_a_transient_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    accepting = threading.Thread(target=lambda: held.append(listener.accept()), daemon=True)
    accepting.start()
    try:
        client = HttpActivationProvider(f"http://127.0.0.1:{listener.getsockname()[1]}", "t", "s", timeout=0.3)
        error = provider_error(client.submit, make_request())
        assert error.retryable and "Timeout" in error.message
    finally:
        for connection, _ in held:
            connection.close()
        listener.close()


def test_an_answer_that_is_not_the_protocol_is_a_transient_error(callback_receiver):
    # Something that answers 200 with no JSON (a proxy's page): try again later.
    client = HttpActivationProvider(callback_receiver.url.rsplit("/pec", 1)[0], "t", "s")
    callback_receiver.status = 200
    error = provider_error(client.submit, make_request())
    assert error.retryable and "unreadable" in error.message


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (425, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
        (501, False),
    ],
)
def test_retry_classification_by_status(status, retryable):
    assert is_retryable_status(status) is retryable


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", clock=lambda: 1445412480.0) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", clock=lambda: 1445412480.0) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_the_provider_is_steered_over_http_too(pec_provider):
    response = requests.post(f"{pec_provider.url}/_control", json={"outcome": "refuse", "delay": 0.5}, timeout=5)
    assert response.status_code == 200
    assert (pec_provider.behaviour.outcome, pec_provider.behaviour.delay) == ("refuse", 0.5)
    assert requests.post(f"{pec_provider.url}/_control", json={"nonsense": 1}, timeout=5).status_code == 400
    assert requests.get(f"{pec_provider.url}/_control", timeout=5).json()["behaviour"]["outcome"] == "refuse"


def test_the_provider_runs_from_the_command_line(callback_receiver):
    process = subprocess.Popen(
        [sys.executable, "-m", "plugins.pec.test_provider", "--port", "0", "--delay", "0.1", "--token", "cli-token"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PEC test provider on http://127.0.0.1:")
        url = line.split()[4]
        client = HttpActivationProvider(url, "cli-token", "test-secret")
        client.submit(make_request(callback_url=callback_receiver.url))
        event = client.parse_callback(**_delivery(callback_receiver.wait_for(1)[0]))
        assert event.result.status == ActivationStatus.ACTIVE
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_command_line_refuses_to_listen_beyond_loopback():
    result = subprocess.run(
        [sys.executable, "-m", "plugins.pec.test_provider", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback only" in result.stderr


def test_the_request_on_the_wire_is_the_contract_s_json(pec_provider, client):
    request = make_request()
    client.submit(request)
    stored = pec_provider._activations["req-1"].request
    assert stored == request
    assert json.loads(json.dumps(request.to_dict()))["holder"]["birth_date"] == "1980-01-01"


def test_the_api_is_called_at_the_checked_address_only(app, monkeypatch, pec_provider):
    # In production loopback is refused: the token is never sent there, whatever the name says.
    client = HttpActivationProvider(pec_provider.url.replace("127.0.0.1", "localhost"), "test-token", "test-secret")
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_HOSTS", False)
    error = provider_error(client.submit, make_request())
    assert error.retryable and error.status_code is None
    assert pec_provider.requests_seen == 0
