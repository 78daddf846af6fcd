"""The DEHú wire format: attachments (swaRef, MTOM, inline), dates, the WS-Security header."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import pytest
from lxml import etree

from plugins.sedes import pki
from plugins.sedes.connectors.dehu import messages as m
from plugins.sedes.connectors.dehu import mime, wsse


@pytest.mark.parametrize("mtom", [False, True])
def test_attachments_survive_the_round_trip_byte_for_byte(mtom):
    binary = os.urandom(4096) + b"\r\n--uuid:not-a-boundary\r\n\r\n" + os.urandom(64)
    body, content_type = mime.related(b"<root/>", {"doc@x": binary, "second": b"%PDF-1.4\r\n"}, mtom=mtom)

    root, attachments = mime.split(body, content_type)

    assert root == b"<root/>"
    assert attachments == {"doc@x": binary, "second": b"%PDF-1.4\r\n"}
    assert ("application/xop+xml" in content_type) is mtom


def test_content_is_read_from_swaref_xop_or_inline_base64():
    attachments = {"a@b": b"swaref", "c@d": b"mtom"}
    swaref = etree.fromstring(b'<contenido href="cid:a@b"/>')
    xop = etree.fromstring(f'<contenido><xop:Include xmlns:xop="{m.XOP}" href="cid:c%40d"/></contenido>'.encode())
    inline = etree.fromstring(f"<documento><contenido>{base64.b64encode(b'inline').decode()}</contenido></documento>")

    assert mime.content(swaref, attachments) == b"swaref"
    assert mime.content(xop, attachments) == b"mtom"
    assert mime.content(inline, attachments) == b"inline"
    with pytest.raises(mime.MimeError):
        mime.content(etree.fromstring(b'<contenido href="cid:missing"/>'), attachments)
    with pytest.raises(mime.MimeError):
        mime.content(etree.fromstring(b"<contenido>not base64!</contenido>"), attachments)


def test_a_plain_answer_has_no_attachments():
    assert mime.split(b"<x/>", "text/xml; charset=UTF-8") == (b"<x/>", {})


@pytest.mark.parametrize(
    ("instant", "wall"),
    [
        (datetime(2026, 1, 10, 12, 0, 0, 999999, tzinfo=UTC), "2026-01-10T13:00:00"),
        (datetime(2026, 8, 10, 12, 0, 0, tzinfo=UTC), "2026-08-10T14:00:00"),
        (datetime(2026, 10, 25, 0, 30, 0, tzinfo=UTC), "2026-10-25T02:30:00"),  # before falling back
    ],
)
def test_dates_are_madrid_wall_time_and_read_back(instant, wall):
    assert m.madrid(instant) == wall
    # (in UTC: an aware time in the repeated autumn hour never equals one of another zone)
    assert m.parse_date(wall).astimezone(UTC) == instant.replace(microsecond=0)


def test_dates_with_an_offset_are_read_as_given():
    assert m.parse_date("2026-08-10T12:00:00Z") == datetime(2026, 8, 10, 12, tzinfo=UTC)
    with pytest.raises(m.DateError) as raised:
        m.parse_date("2026-08-10T12:00:00.5")
    assert raised.value.decoding


def test_the_security_header_has_timestamp_token_and_a_signature_of_both():
    issued = pki.CertificateAuthority().persona_fisica(pki.dni(1))
    now = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)
    message = wsse.sign(
        wsse.envelope(m.request(m.LOCALIZA, [("nifTitular", "X")])), issued.cert_pem, issued.key_pem, now=now
    )
    root = etree.fromstring(message)
    security = root.find(f"{{{wsse.SOAP}}}Header/{{{wsse.WSSE}}}Security")
    ns = {"wsu": wsse.WSU, "wsse": wsse.WSSE, "ds": wsse.DS}

    assert security.get(f"{{{wsse.SOAP}}}mustUnderstand") == "1"
    assert security.findtext("wsu:Timestamp/wsu:Created", namespaces=ns) == "2026-12-04T10:00:00Z"
    assert security.findtext("wsu:Timestamp/wsu:Expires", namespaces=ns) == "2026-12-04T10:05:00Z"
    token = security.find("wsse:BinarySecurityToken", namespaces=ns)
    assert token.get("ValueType").endswith("#X509v3")
    assert base64.b64decode(token.text) == issued.cert.public_bytes(pki.serialization.Encoding.DER)
    signed = [r.get("URI") for r in security.findall("ds:Signature/ds:SignedInfo/ds:Reference", namespaces=ns)]
    timestamp_id = security.find("wsu:Timestamp", namespaces=ns).get(f"{{{wsse.WSU}}}Id")
    body_id = root.find(f"{{{wsse.SOAP}}}Body").get(f"{{{wsse.WSU}}}Id")
    assert signed == [f"#{timestamp_id}", f"#{body_id}"]
    algorithms = {e.get("Algorithm") for e in security.iter() if e.get("Algorithm")}
    assert algorithms == {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmlenc#sha256",
    }
    reference = security.find("ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", namespaces=ns)
    assert reference.get("URI") == f"#{token.get(f'{{{wsse.WSU}}}Id')}"
    assert wsse.verify(message, now=now).operation.tag == f"{{{m.namespace(m.LOCALIZA)}}}Localiza"


def test_request_elements_keep_the_wsdl_order_and_skip_empty_ones():
    request = m.request(m.LOCALIZA, [("nifTitular", "A"), ("nifDestinatario", None), ("fechaDesde", "D")])

    assert request.tag == "{http://administracion.gob.es/punto-unico-notificaciones/localiza}Localiza"
    assert [etree.QName(e).localname for e in request] == ["nifTitular", "fechaDesde"]
