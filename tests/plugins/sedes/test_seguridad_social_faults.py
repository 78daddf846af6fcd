"""The Seguridad Social connector when things go wrong: every fault of the WSCN simulator has its
error, the service checks the signatures of requests and of the acuse, and nothing is accepted
unless the acuse signed is the one handed out, by the certificate that asked."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from plugins.sedes import pki
from plugins.sedes.connectors.dehu import wsse
from plugins.sedes.connectors.seguridad_social import SeguridadSocialConnector
from plugins.sedes.connectors.seguridad_social import acuse as acuses
from plugins.sedes.connectors.seguridad_social import messages as m
from plugins.sedes.contract import (
    AuthError,
    InvalidRequest,
    ProtocolError,
    RateLimited,
    SedeUnavailable,
)
from tests.plugins.sedes.ss_helpers import ccc, office_mailbox, own_mailbox

NIF = pki.dni(12345678)
OFFICE = pki.dni(34567890)
CCC = ccc(1234567)


@pytest.fixture
def connector(app):
    with app.app_context():
        yield SeguridadSocialConnector()


def _ago(**delta) -> datetime:
    return (datetime.now(UTC) - timedelta(**delta)).replace(microsecond=0)


def test_a_certificate_without_access_to_the_service_is_refused(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF, enrol=False)

    with pytest.raises(AuthError) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == m.E_NOT_AUTHORISED and not raised.value.retryable
    assert "web services" in str(raised.value.message)


def test_an_office_with_neither_apoderamiento_nor_red_is_refused(connector, dehu_simulator):
    office = dehu_simulator.ca.persona_fisica(OFFICE)
    dehu_simulator.ss_enrol(office, nifs=[OFFICE])

    with pytest.raises(AuthError) as raised:
        connector.list(office_mailbox(dehu_simulator, NIF, office, OFFICE), _ago(days=1))

    assert raised.value.code == m.E_NO_POWER and "apoderamiento" in str(raised.value.message)


@pytest.mark.parametrize(
    ("code", "error", "retryable"),
    [
        (m.E_NOT_AUTHORISED, AuthError, False),
        (m.E_BAD_REQUEST, InvalidRequest, False),
        (m.E_NO_NOTIFICATION, InvalidRequest, False),
        (m.E_SYSTEM, SedeUnavailable, True),
    ],
)
def test_every_fault_has_its_error(connector, dehu_simulator, code, error, retryable):
    ctx = own_mailbox(dehu_simulator, NIF)
    dehu_simulator.inject_fault(code, operation=m.CONSULTAR_LISTADO)

    with pytest.raises(error) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == code and raised.value.retryable is retryable
    assert raised.value.sede == "seg_social" and m.DESCRIPTIONS[code] not in str(raised.value.message)


def test_503_with_retry_after_is_rate_limited_and_without_it_unavailable(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    dehu_simulator.unavailable(retry_after=30)
    with pytest.raises(RateLimited) as raised:
        connector.list(ctx, _ago(days=1))
    assert raised.value.retry_after == 30 and raised.value.retryable

    dehu_simulator.unavailable()
    with pytest.raises(SedeUnavailable) as raised:
        connector.list(ctx, _ago(days=1))
    assert type(raised.value) is SedeUnavailable


def test_a_request_signed_out_of_the_time_window_is_refused(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    dehu_simulator.clock_offset = timedelta(minutes=20)

    with pytest.raises(InvalidRequest) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "MessageExpired" and "clock" in str(raised.value.message)


def test_a_certificate_of_another_ca_is_refused_by_tls(connector, dehu_simulator):
    stranger = pki.CertificateAuthority("Otra AC").persona_fisica(NIF)
    ctx = own_mailbox(dehu_simulator, NIF, issued=stranger)

    with pytest.raises(AuthError) as raised:
        connector.list(ctx, _ago(days=1))

    assert raised.value.code == "tls" and dehu_simulator.requests_served == 0


def test_a_damaged_answer_is_a_protocol_error(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    dehu_simulator.ss_add_notification(NIF, CCC)
    dehu_simulator.damage("truncated", operation=m.CONSULTAR_LISTADO)

    with pytest.raises(ProtocolError):
        connector.list(ctx, _ago(days=1))


def test_a_notification_accepted_elsewhere_cannot_be_opened_again(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    dehu_simulator.ss_add_notification(NIF, CCC)
    [record] = connector.list(ctx, _ago(days=1)).records
    connector.open(ctx, record, confirmed=True)

    with pytest.raises(InvalidRequest) as raised:
        connector.open(ctx, record, confirmed=True)

    assert raised.value.code == m.E_NOT_PENDING and "no longer pending" in str(raised.value.message)


def test_a_failure_while_accepting_leaves_the_notification_pending(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    sent = dehu_simulator.ss_add_notification(NIF, CCC)
    [record] = connector.list(ctx, _ago(days=1)).records
    dehu_simulator.inject_fault(m.E_SYSTEM, operation=m.ENVIAR_ACUSE)

    with pytest.raises(SedeUnavailable):
        connector.open(ctx, record, confirmed=True)
    assert dehu_simulator.ss_notification(sent.codigo).estado == m.ESTADO_PENDIENTE

    assert connector.open(ctx, record, confirmed=True).record.state.value == "aceptada"


# --- the acuse: only the one handed out, signed by who asked, unchanged --------------------------


def _hand_out(connector, session, ctx, codigo: int) -> bytes:
    answer = connector._call(
        session, ctx, m.SOLICITAR_ACUSE, [("rol", 1), ("codigoNotificacion", codigo), ("esDeAceptacion", True)]
    )
    return base64.b64decode(m.text(m.child(answer, "acuseNotificacion"), "XML"))


def _send(connector, session, ctx, signed: bytes):
    return connector._call(session, ctx, m.ENVIAR_ACUSE, [("rol", 1), ("xmlAcuseFirmado", signed)])


def _refused(connector, session, ctx, signed: bytes, error=AuthError) -> str:
    with pytest.raises(error) as raised:
        connector._object(ctx, _send(connector, session, ctx, signed), "notificacionRecuperada")
    return raised.value.code


def test_the_service_checks_the_acuse_signature_signer_and_content(connector, dehu_simulator):
    issued = dehu_simulator.ca.persona_fisica(NIF)
    ctx = own_mailbox(dehu_simulator, NIF, issued=issued)
    sent = dehu_simulator.ss_add_notification(NIF, CCC)
    with connector._session(ctx) as session:
        xml = _hand_out(connector, session, ctx, sent.codigo)
        signed = acuses.sign(xml, codigo=sent.codigo, cert_pem=issued.cert_pem, key=session.key)

        altered = signed.replace(b"acepta la", b"rechaza la")
        assert altered != signed
        assert _refused(connector, session, ctx, altered) == m.E_BAD_SIGNATURE

        someone = dehu_simulator.ca.persona_fisica(NIF)
        by_someone = acuses.sign(xml, codigo=sent.codigo, cert_pem=someone.cert_pem, key=wsse.load_key(someone.key_pem))
        assert _refused(connector, session, ctx, by_someone) == m.E_BAD_SIGNATURE

        forged = xml.replace(b"<identificadorAcuse>", b"<identificadorAcuse>X")
        resigned = acuses.sign(forged, codigo=sent.codigo, cert_pem=issued.cert_pem, key=session.key)
        assert _refused(connector, session, ctx, resigned, InvalidRequest) == m.E_WRONG_ACUSE

        assert dehu_simulator.ss_notification(sent.codigo).estado == m.ESTADO_PENDIENTE

        answer = _send(connector, session, ctx, signed)
        assert connector._object(ctx, answer, "notificacionRecuperada") is not None
        assert dehu_simulator.ss_notification(sent.codigo).estado == m.ESTADO_ACEPTADA
        assert _refused(connector, session, ctx, signed, InvalidRequest) == m.E_WRONG_ACUSE


def test_the_connector_signs_only_the_acceptance_of_the_notification_it_asked_about(dehu_simulator):
    issued = dehu_simulator.ca.persona_fisica(NIF)
    key = wsse.load_key(issued.key_pem)
    common = {
        "identificador": "A1",
        "titular": NIF,
        "destinatario": CCC,
        "procedimiento": "P",
        "made_available": "01/12/2026 10:00:00",
        "issued": "04/12/2026 10:00:00",
    }
    rechazo = acuses.build(codigo=7, tipo=m.ACUSE_RECHAZO, **common)
    aceptacion = acuses.build(codigo=7, tipo=m.ACUSE_ACEPTACION, **common)

    with pytest.raises(acuses.AcuseError):
        acuses.sign(rechazo, codigo=7, cert_pem=issued.cert_pem, key=key)
    with pytest.raises(acuses.AcuseError):
        acuses.sign(aceptacion, codigo=8, cert_pem=issued.cert_pem, key=key)
    signed = acuses.sign(aceptacion, codigo=7, cert_pem=issued.cert_pem, key=key)
    with pytest.raises(acuses.AcuseError):
        acuses.sign(signed, codigo=7, cert_pem=issued.cert_pem, key=key)
    assert acuses.verify(signed)[1] == issued.cert


def test_an_acuse_of_another_notification_is_never_signed(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    sent = dehu_simulator.ss_add_notification(NIF, CCC)
    dehu_simulator.ss_add_notification(NIF, CCC)
    [record, _] = sorted(connector.list(ctx, _ago(days=1)).records, key=lambda r: int(r.external_id))
    dehu_simulator.damage("acuse", operation=m.SOLICITAR_ACUSE)

    with pytest.raises(ProtocolError) as raised:
        connector.open(ctx, record, confirmed=True)

    assert raised.value.code == "acuse" and dehu_simulator.operations()[-1] == m.SOLICITAR_ACUSE
    assert all(n.estado == m.ESTADO_PENDIENTE for n in dehu_simulator.wscn.notifications.values())
    assert record.external_id == str(sent.codigo)
