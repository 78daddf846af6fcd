"""The DEHú simulator checks what DEHú checks, answers as DEHú answers, and runs as a process."""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner

from plugins.sedes import pki
from plugins.sedes.connectors.dehu import DehuConnector, mime, wsse
from plugins.sedes.connectors.dehu import messages as m
from plugins.sedes.connectors.dehu.transport import Session, client_context
from plugins.sedes.contract import MailboxContext
from plugins.sedes.simulator import DehuSimulator
from tests.plugins.sedes.dehu_helpers import credential, mailbox

NIF = pki.dni(12345678)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def in_app(app):
    with app.app_context():
        yield


@pytest.fixture
def enrolled(dehu_simulator):
    issued = dehu_simulator.ca.persona_fisica(NIF)
    dehu_simulator.enrol(issued, [NIF])
    return issued


def _localiza(**fields) -> etree._Element:
    since = datetime.now(UTC) - timedelta(days=1)
    values = {"nifTitular": NIF, "fechaDesde": m.madrid(since), "fechaHasta": m.madrid(datetime.now(UTC)), **fields}
    order = ["nifTitular", "nifDestinatario", "fechaDesde", "fechaHasta", "tipoEnvio"]
    return m.request(m.LOCALIZA, [(name, values.get(name)) for name in order])


def _post(simulator, tls: pki.Issued, message: bytes, operation: str = m.LOCALIZA):
    """POST raw bytes to the simulator over TLS with ``tls`` as the client certificate."""
    context = client_context(tls.cert_pem, tls.key_pem, tls.chain_pem, simulator.ca_bundle)
    with Session(simulator.url, context, 5.0) as session:
        response = session.post(
            m.path_for(operation),
            message,
            {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{m.soap_action(operation)}"'},
        )
    root_bytes, attachments = mime.split(response.body, response.content_type)
    body = etree.fromstring(root_bytes).find(f"{{{wsse.SOAP}}}Body")
    return response, body[0], attachments


def _fault(answer) -> tuple[str, str]:
    assert etree.QName(answer).localname == "Fault"
    return m.text(answer, "faultcode"), m.text(answer, "faultstring")


def _signed(issued: pki.Issued, operation: etree._Element, **options) -> bytes:
    return wsse.sign(wsse.envelope(operation), issued.cert_pem, issued.key_pem, **options)


def test_a_well_signed_localiza_is_answered(in_app, dehu_simulator, enrolled):
    dehu_simulator.add_notification(
        NIF, subject="Providencia", made_available_at=datetime.now(UTC) - timedelta(hours=1)
    )

    response, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza()))

    assert response.status == 200
    assert answer.tag == f"{{{m.answer_namespace(m.LOCALIZA)}}}RespuestaLocaliza"
    assert m.text(answer, "codigoRespuesta") == "000"
    assert m.text(answer, "hayMasResultados") == "false"
    (envio,) = m.read_envios(answer)
    assert envio.concepto == "Providencia" and envio.titular_nif == NIF
    assert dehu_simulator.requests_served == 1


def test_a_tampered_body_fails_the_signature(in_app, dehu_simulator, enrolled):
    message = _signed(enrolled, _localiza()).replace(NIF.encode(), pki.dni(1).encode())

    response, answer, _ = _post(dehu_simulator, enrolled, message)

    assert response.status == 500
    assert _fault(answer)[0] == "wsse:FailedCheck"


def test_a_signature_by_another_key_fails(in_app, dehu_simulator, enrolled):
    other = dehu_simulator.ca.persona_fisica(NIF)
    message = wsse.sign(wsse.envelope(_localiza()), enrolled.cert_pem, other.key_pem)

    _, answer, _ = _post(dehu_simulator, enrolled, message)

    assert _fault(answer)[0] == "wsse:FailedCheck"


class _Sha1Signer(XMLSigner):
    def check_deprecated_methods(self):
        """An old client's signer: SHA-1 allowed."""


def test_sha1_is_refused(in_app, dehu_simulator, enrolled, monkeypatch):
    monkeypatch.setattr(wsse, "XMLSigner", _Sha1Signer)
    message = _signed(enrolled, _localiza(), signature_method=SignatureMethod.RSA_SHA1, digest=DigestAlgorithm.SHA1)
    assert b"rsa-sha1" in message

    _, answer, _ = _post(dehu_simulator, enrolled, message)

    code, reason = _fault(answer)
    assert code == "wsse:FailedCheck" and "SHA1" in reason.upper().replace("-", "")


class _BodyOnlySigner(XMLSigner):
    def sign(self, data, **kwargs):
        kwargs["reference_uri"] = kwargs["reference_uri"][1:]
        return super().sign(data, **kwargs)


def test_the_signature_must_cover_timestamp_and_body(in_app, dehu_simulator, enrolled, monkeypatch):
    monkeypatch.setattr(wsse, "XMLSigner", _BodyOnlySigner)

    _, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza()))

    assert _fault(answer)[0] == "wsse:FailedCheck"


def test_an_unsigned_message_is_refused(in_app, dehu_simulator, enrolled):
    message = etree.tostring(wsse.envelope(_localiza()))

    _, answer, _ = _post(dehu_simulator, enrolled, message)

    assert _fault(answer)[0] == "wsse:InvalidSecurity"


def test_the_token_must_be_the_tls_certificate(in_app, dehu_simulator, enrolled):
    other = dehu_simulator.ca.persona_fisica(NIF)
    dehu_simulator.enrol(other, [NIF])

    _, answer, _ = _post(dehu_simulator, enrolled, _signed(other, _localiza()))

    assert _fault(answer)[0] == "wsse:InvalidSecurityToken"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_a_timestamp_out_of_the_window_is_refused(in_app, dehu_simulator, enrolled, minutes):
    message = _signed(enrolled, _localiza(), now=datetime.now(UTC) + timedelta(minutes=minutes))

    _, answer, _ = _post(dehu_simulator, enrolled, message)

    assert _fault(answer)[0] == "wsse:MessageExpired"


def test_localiza_without_a_nif_is_4202(in_app, dehu_simulator, enrolled):
    _, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza(nifTitular=None)))

    _, reason = _fault(answer)
    assert reason.startswith("4202") and m.text(m.child(answer, "detail"), "codigoError") == "4202"


def test_dates_with_milliseconds_are_a_decoding_error_2001(in_app, dehu_simulator, enrolled):
    _, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza(fechaDesde="2026-12-01T10:00:00.000")))

    assert _fault(answer) == (
        "soapenv:Server",
        "2001 Error en la decodificación del mensaje: fractional seconds in '2026-12-01T10:00:00.000'",
    )


def test_dates_beyond_now_are_out_of_margin_4207(in_app, dehu_simulator, enrolled):
    tomorrow = m.madrid(datetime.now(UTC) + timedelta(days=1))

    _, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza(fechaHasta=tomorrow)))

    assert _fault(answer)[1].startswith("4207")


def test_another_nif_than_the_enrolled_ones_is_4102(in_app, dehu_simulator, enrolled):
    _, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza(nifTitular=pki.dni(5))))

    assert _fault(answer)[1].startswith("4102")


def test_operation_and_soap_action_must_agree(in_app, dehu_simulator, enrolled):
    _, answer, _ = _post(dehu_simulator, enrolled, _signed(enrolled, _localiza()), operation=m.LOCALIZA_REALIZADAS)

    assert _fault(answer)[0] == "soapenv:Client"


def test_tls_without_a_client_certificate_is_refused(dehu_simulator):
    context = ssl.create_default_context(cafile=dehu_simulator.ca_bundle)
    with (
        socket.create_connection(("127.0.0.1", dehu_simulator.port), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)),
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"POST /ws/v2/lema HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        tls.recv(100)
    assert dehu_simulator.requests_served == 0


def test_realizadas_pages_and_mtom(in_app, dehu_simulator, enrolled):
    dehu_simulator.state.page_size = 2
    now = datetime.now(UTC)
    accepted = [
        dehu_simulator.add_notification(
            NIF,
            made_available_at=now - timedelta(days=3),
            state="ACEPTADA",
            state_at=now - timedelta(hours=i + 1),
            document=f"%PDF-1.4 document {i}".encode(),
        )
        for i in range(5)
    ]
    dehu_simulator.add_notification(NIF, made_available_at=now - timedelta(hours=2))  # pending: not realised
    ctx = mailbox(dehu_simulator, NIF, enrolled, enrol=False)
    connector = DehuConnector()

    result = connector.list_realized(ctx, now - timedelta(days=1))

    assert result.complete
    assert dehu_simulator.operations() == ["LocalizaRealizadas"] * 3
    assert {r.external_id for r in result.records} == {n.external_id for n in accepted}
    record = next(r for r in result.records if r.external_id == accepted[0].external_id)
    assert record.state.value == "aceptada" and record.state_at is not None
    document = connector.fetch_document(ctx, record, record.documents[0])
    assert document.content == b"%PDF-1.4 document 0"
    assert dehu_simulator.operations()[-1] == "ConsultaRealizadas"

    # The Realizadas service answers documents as MTOM/XOP.
    message = _signed(
        enrolled,
        m.request(
            m.CONSULTA_REALIZADAS,
            [
                ("identificador", accepted[1].identificador),
                ("codigoOrigen", accepted[1].codigo_origen),
                ("nifPeticion", NIF),
            ],
        ),
    )
    response, answer, attachments = _post(dehu_simulator, enrolled, message, m.CONSULTA_REALIZADAS)
    assert "application/xop+xml" in response.content_type
    include = answer.find(f".//{{{m.XOP}}}Include")
    assert include is not None and attachments[include.get("href")[4:]] == b"%PDF-1.4 document 1"


def test_state_survives_a_restart(in_app, tmp_path):
    with DehuSimulator(state_dir=tmp_path) as first:
        issued = first.ca.persona_fisica(NIF)
        first.enrol(issued, [NIF])
        sent = first.add_notification(NIF, made_available_at=datetime.now(UTC) - timedelta(hours=1))
        ctx = mailbox(first, NIF, issued, enrol=False)
        (record,) = DehuConnector().list(ctx, datetime.now(UTC) - timedelta(days=1)).records
        DehuConnector().open(ctx, record, confirmed=True)

    with DehuSimulator(state_dir=tmp_path) as second:
        assert second.ca.cert == first.ca.cert
        assert second.notification(sent.identificador).state == "ACEPTADA"
        ctx = mailbox(second, NIF, issued, enrol=False)
        assert DehuConnector().list(ctx, datetime.now(UTC) - timedelta(days=1)).records == []


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            return process.stdout.readline()
        if process.poll() is not None:
            break
    raise AssertionError(f"the simulator printed nothing: {process.stderr.read() if process.poll() else ''}")


def test_runs_as_a_process_for_the_demo(in_app, tmp_path):
    # The demo makes its clients' certificates with the simulator's CA before starting it.
    issued = DehuSimulator.authority(tmp_path).persona_fisica(NIF)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plugins.sedes.simulator",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--demo-notifications",
            "4",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = _read_line(process, 60)
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("https://127.0.0.1:")
        ctx = MailboxContext(
            "dehu", NIF, credential(issued, holder_nif=NIF), base_url=url, ca_bundle=str(tmp_path / "ca-bundle.pem")
        )
        records = DehuConnector().list(ctx, datetime.now(UTC) - timedelta(days=30)).records
        assert len(records) == 4  # enrolled on first use, with the demo's notifications
        assert {r.titular_nif for r in records} == {NIF}
    finally:
        process.terminate()
        process.wait(10)
    assert process.returncode == 0


def test_a_silent_client_does_not_hold_up_the_others(in_app, dehu_simulator, enrolled):
    with socket.create_connection(("127.0.0.1", dehu_simulator.port), timeout=5):
        ctx = mailbox(dehu_simulator, NIF, enrolled, enrol=False, timeout_s=3.0)
        assert DehuConnector().list(ctx, datetime.now(UTC) - timedelta(days=1)).complete
