"""The DEHú connector's contract when things go wrong: every fault, outages, timeouts, clocks,
certificates, and a sync that reads only part of what there is."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from plugins.sedes import pki
from plugins.sedes.connectors import UnknownConnector, connector_for
from plugins.sedes.connectors.dehu import DehuConnector
from plugins.sedes.connectors.dehu.messages import MADRID
from plugins.sedes.contract import (
    AuthError,
    CertificateExpired,
    CertificateKind,
    CertificateMismatch,
    CertificateNotYetValid,
    InvalidRequest,
    Link,
    ProtocolError,
    RateLimited,
    SedeError,
    SedeState,
    SedeUnavailable,
)
from tests.plugins.sedes.dehu_helpers import credential, mailbox

NIF = pki.dni(12345678)


@pytest.fixture
def connector(app):
    with app.app_context():
        yield DehuConnector()


def _ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def test_a_certificate_not_enrolled_is_refused_with_4102(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF, enrol=False)

    with pytest.raises(AuthError) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "4102" and not raised.value.retryable
    assert "4102" in str(raised.value.message) and "Gran Destinatario" in str(raised.value.message)
    assert dehu_simulator.requests[-1].fault == "4102"


@pytest.mark.parametrize(
    ("code", "error", "retryable"),
    [
        ("4102", AuthError, False),
        ("4103", AuthError, False),
        ("4202", InvalidRequest, False),
        ("4207", InvalidRequest, False),
        ("2001", SedeUnavailable, True),
    ],
)
def test_every_fault_has_its_error(connector, dehu_simulator, code, error, retryable):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.inject_fault(code, operation="Localiza")

    with pytest.raises(error) as raised:
        connector.list(ctx, _ago(days=1))

    assert type(raised.value) is error
    assert raised.value.code == code and raised.value.retryable is retryable
    assert code in raised.value.detail and "Localiza" in raised.value.detail
    # The server's own words stay in the log's detail; people read our message.
    assert "decodificación" not in str(raised.value.message)
    dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=1))
    assert len(connector.list(ctx, _ago(days=1)).records) == 1  # the fault was for one request


def test_a_fault_while_opening_leaves_the_notification_pending(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    sent = dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=1))
    (record,) = connector.list(ctx, _ago(days=1)).records
    dehu_simulator.inject_fault("2001", operation="PeticionAcceso")

    with pytest.raises(SedeUnavailable):
        connector.open(ctx, record, confirmed=True)
    assert dehu_simulator.notification(sent.identificador).state == "PENDIENTE"

    # Trying again works, and opening twice is harmless (the same documents come back).
    first = connector.open(ctx, record, confirmed=True)
    again = connector.open(ctx, record, confirmed=True)
    assert first.documents == again.documents and first.record.state_at == again.record.state_at


def test_503_with_retry_after_is_rate_limited(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.unavailable(retry_after=30)

    with pytest.raises(RateLimited) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.retryable and raised.value.retry_after == 30
    assert dehu_simulator.requests[-1].status == 503


def test_503_without_retry_after_is_unavailable(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.unavailable(times=2)

    for _ in range(2):
        with pytest.raises(SedeUnavailable) as raised:
            connector.list(ctx, _ago(days=1))
        assert type(raised.value) is SedeUnavailable and raised.value.retry_after is None
    assert connector.list(ctx, _ago(days=1)).complete


def test_a_slow_sede_times_out_and_may_be_retried(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF, timeout_s=0.3)
    dehu_simulator.delay(1.5)

    with pytest.raises(SedeUnavailable) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.retryable and raised.value.code == "network"


def test_a_clock_out_of_the_window_is_4207(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.clock_offset = timedelta(minutes=-20)

    with pytest.raises(InvalidRequest) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "MessageExpired" and "clock" in str(raised.value.message)
    assert dehu_simulator.requests[-1].fault == "wsse:MessageExpired"
    dehu_simulator.clock_offset = timedelta(minutes=2)  # within the window: accepted
    assert connector.list(ctx, _ago(days=1)).complete


def test_dates_go_in_madrid_wall_time_without_milliseconds(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    since = datetime(2026, 7, 1, 10, 30, 15, 123456, tzinfo=UTC)  # summer: Madrid is UTC+2

    connector.list(ctx, since)

    fields = dehu_simulator.requests[-1].fields
    assert fields["fechaDesde"] == "2026-07-01T12:30:15"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", fields["fechaHasta"])
    until = datetime.fromisoformat(fields["fechaHasta"]).replace(tzinfo=MADRID)
    assert abs(until - datetime.now(UTC)) < timedelta(seconds=30)
    assert fields["nifTitular"] == NIF


def test_a_certificate_of_another_ca_is_refused_by_tls(connector, dehu_simulator):
    foreign = pki.CertificateAuthority("Otra AC").persona_fisica(NIF)
    ctx = mailbox(dehu_simulator, NIF, foreign)

    with pytest.raises(AuthError) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "tls" and not raised.value.retryable
    assert dehu_simulator.requests_served == 0


def test_an_untrusted_sede_is_refused(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF, ca_bundle=None)  # the system's CAs do not know the simulator

    with pytest.raises(AuthError) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "tls"
    assert dehu_simulator.requests_served == 0


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda ca: ca.expired(NIF), CertificateExpired),
        (lambda ca: ca.not_yet_valid(NIF), CertificateNotYetValid),
    ],
)
def test_certificates_out_of_validity_never_reach_the_sede(connector, dehu_simulator, make, error):
    ctx = mailbox(dehu_simulator, NIF, make(dehu_simulator.ca))

    with pytest.raises(error):
        connector.check_credential(ctx)
    with pytest.raises(error):
        connector.list(ctx, _ago(days=1))
    assert dehu_simulator.requests_served == 0


def test_a_certificate_of_someone_else_is_refused_unless_apoderado(connector, dehu_simulator):
    client_nif, proxy_nif = pki.cif(1234567), pki.dni(87654321)
    issued = dehu_simulator.ca.persona_fisica(proxy_nif)
    ctx = mailbox(dehu_simulator, client_nif, issued, enrol=False)
    ctx = ctx.__class__(**{**ctx.__dict__, "credential": credential(issued, holder_nif=proxy_nif)})

    with pytest.raises(CertificateMismatch):
        connector.list(ctx, _ago(days=1))
    assert dehu_simulator.requests_served == 0

    proxy = ctx.__class__(**{**ctx.__dict__, "as_proxy": True})
    dehu_simulator.enrol(issued, [proxy_nif])
    with pytest.raises(AuthError) as raised:  # DEHú does not know the apoderamiento yet
        connector.list(proxy, _ago(days=1))
    assert raised.value.code == "4102"

    dehu_simulator.enrol(issued, [client_nif])
    dehu_simulator.add_notification(client_nif, made_available_at=_ago(hours=1), vinculo="3")
    (record,) = connector.list(proxy, _ago(days=1)).records
    assert record.titular_nif == client_nif and record.link is Link.APODERADO
    opened = connector.open(proxy, record, confirmed=True)
    assert opened.record.state is SedeState.ACEPTADA
    assert dehu_simulator.requests[-2].fields["nifReceptor"] == proxy_nif  # the acuse asks for the receptor


def test_a_representative_reads_the_company_mailbox(connector, dehu_simulator):
    company, person = pki.cif(7654321, "A"), pki.dni(11111111)
    issued = dehu_simulator.ca.representante(person, company, "ACME SA")
    dehu_simulator.enrol(issued, [company])
    ctx = mailbox(dehu_simulator, company, issued, enrol=False)
    ctx = ctx.__class__(
        **{
            **ctx.__dict__,
            "credential": credential(issued, kind=CertificateKind.REPRESENTANTE, holder_nif=person, entity_nif=company),
        }
    )
    sent = dehu_simulator.add_notification(company, made_available_at=_ago(hours=1))

    (record,) = connector.list(ctx, _ago(days=1)).records
    connector.open(ctx, record, confirmed=True)

    assert dehu_simulator.notification(sent.identificador).receptor_nif == person


def test_a_sync_that_runs_out_of_its_budget_says_where_to_go_on(connector, dehu_simulator):
    dehu_simulator.state.page_size = 2
    ctx = mailbox(dehu_simulator, NIF)
    sent = [dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=2 * i + 1)) for i in range(12)]
    sent = {notification.external_id for notification in sent}
    connector.request_budget = 3
    since = _ago(days=2)

    first = connector.list(ctx, since)

    assert not first.complete
    assert since < first.next_since < datetime.now(UTC)
    assert first.records and {r.external_id for r in first.records} < sent
    # What was read is everything before next_since: nothing older is missing.
    older = {n.external_id for n in dehu_simulator.notifications if n.made_available_at < first.next_since}
    assert older <= {r.external_id for r in first.records}

    connector.request_budget = 100
    rest = connector.list(ctx, first.next_since)
    assert rest.complete
    assert {r.external_id for r in first.records} | {r.external_id for r in rest.records} == sent


def test_a_truncated_answer_is_a_protocol_error(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.damage("truncated")

    with pytest.raises(ProtocolError) as raised:
        connector.list(ctx, _ago(days=1))

    assert not raised.value.retryable and "Localiza" in raised.value.detail


def test_a_document_that_does_not_match_its_hash_is_refused(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=1))
    (record,) = connector.list(ctx, _ago(days=1)).records
    dehu_simulator.damage("attachment", operation="PeticionAcceso")

    with pytest.raises(ProtocolError) as raised:
        connector.open(ctx, record, confirmed=True)

    assert raised.value.code == "hash"
    assert len(connector.open(ctx, record, confirmed=True).documents) == 1  # the next answer is whole


def test_a_key_that_is_not_the_certificates_never_reaches_the_sede(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    other = dehu_simulator.ca.persona_fisica(NIF)
    wrong = ctx.__class__(**{**ctx.__dict__, "credential": replace(ctx.credential, key_pem=other.key_pem)})
    keyless = ctx.__class__(**{**ctx.__dict__, "credential": replace(ctx.credential, key_pem=b"")})

    with pytest.raises(AuthError) as raised:
        connector.list(wrong, _ago(days=1))
    assert raised.value.code == "credential"
    with pytest.raises(AuthError) as raised:
        connector.check_credential(keyless)
    assert raised.value.code == "no_key" and "private key" in str(raised.value.message)
    assert dehu_simulator.requests_served == 0


def test_an_unknown_connector_code_is_refused(app):
    with app.app_context(), pytest.raises(UnknownConnector):
        connector_for("no-such-sede")


def test_private_addresses_are_refused_unless_the_operator_allows_them(app, connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    app.config["ALLOW_PRIVATE_HOSTS"] = False
    try:
        with pytest.raises(SedeError) as raised:
            connector.list(ctx, _ago(days=1))
    finally:
        app.config["ALLOW_PRIVATE_HOSTS"] = True
    assert raised.value.code == "address" and not raised.value.retryable
    assert "127.0.0.1" in str(raised.value.message)
    assert dehu_simulator.requests_served == 0


def test_a_sede_address_must_be_https(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF, base_url=dehu_simulator.url.replace("https:", "http:"))

    with pytest.raises(InvalidRequest) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "url" and "https://" in str(raised.value.message)


@pytest.mark.parametrize(
    ("since", "sent"),
    [
        (datetime(2026, 1, 15, 8, 0, 1, tzinfo=UTC), "2026-01-15T09:00:01"),  # winter: UTC+1
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "2026-03-29T03:30:00"),  # the spring-forward morning
    ],
)
def test_dates_follow_madrid_through_the_year(connector, dehu_simulator, since, sent):
    connector.list(mailbox(dehu_simulator, NIF), since)

    assert dehu_simulator.requests[-1].fields["fechaDesde"] == sent


def test_realised_pages_beyond_the_budget_are_read_by_the_next_sync(connector, dehu_simulator):
    dehu_simulator.state.page_size = 2
    ctx = mailbox(dehu_simulator, NIF)
    realised = [
        dehu_simulator.add_notification(
            NIF, made_available_at=_ago(days=5), state="RECHAZADA", state_at=_ago(hours=10 - i).replace(microsecond=0)
        )
        for i in range(5)
    ]
    connector.request_budget = 2

    first = connector.list_realized(ctx, _ago(days=1))

    assert not first.complete and len(first.records) == 4
    assert first.next_since == realised[3].state_at
    assert {r.state for r in first.records} == {SedeState.RECHAZADA}
    rest = connector.list_realized(ctx, first.next_since)
    assert rest.complete
    assert {r.external_id for r in [*first.records, *rest.records]} == {n.external_id for n in realised}
