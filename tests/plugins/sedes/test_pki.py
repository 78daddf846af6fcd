"""The throwaway PKI makes the certificates and PKCS#12 files a gestoría meets."""

from __future__ import annotations

import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from stdnum.es import nif as stdnum_nif

from plugins.sedes import pki

PASSWORD = "contraseña"


@pytest.fixture(scope="module")
def ca():
    return pki.CertificateAuthority()


def _subject(cert, oid):
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


def test_dni_and_cif_are_valid_nifs():
    assert pki.dni(12345678) == "12345678Z"
    assert pki.cif(1234567) == "B12345674"
    for value in (pki.dni(1), pki.cif(7654321, "A"), pki.cif(1234567, "Q"), pki.cif(2, "P")):
        assert stdnum_nif.is_valid(value), value


def test_persona_fisica_has_the_nif_in_serial_number(ca):
    issued = ca.persona_fisica("12345678Z", "MARÍA", "GARCÍA LÓPEZ")
    assert _subject(issued.cert, NameOID.SERIAL_NUMBER) == ["IDCES-12345678Z"]
    assert _subject(issued.cert, NameOID.GIVEN_NAME) == ["MARÍA"]
    assert _subject(issued.cert, NameOID.ORGANIZATION_IDENTIFIER) == []
    assert issued.cert.issuer == ca.cert.subject
    issued.cert.verify_directly_issued_by(ca.cert)


def test_representante_has_person_and_company(ca):
    issued = ca.representante("12345678Z", "B12345674", "ACME SL")
    assert _subject(issued.cert, NameOID.SERIAL_NUMBER) == ["IDCES-12345678Z"]
    assert _subject(issued.cert, NameOID.ORGANIZATION_IDENTIFIER) == ["VATES-B12345674"]
    assert _subject(issued.cert, NameOID.ORGANIZATION_NAME) == ["ACME SL"]


def test_sello_has_only_the_company(ca):
    issued = ca.sello("B12345674", "ACME SL")
    assert _subject(issued.cert, NameOID.ORGANIZATION_IDENTIFIER) == ["VATES-B12345674"]
    assert _subject(issued.cert, NameOID.SERIAL_NUMBER) == []
    assert _subject(issued.cert, NameOID.GIVEN_NAME) == []


def test_legacy_fnmt_certificate_keeps_the_nif_in_the_alternative_name(ca):
    issued = ca.representante("12345678Z", "B12345674", "ACME SL", legacy_fnmt=True)
    assert _subject(issued.cert, NameOID.SERIAL_NUMBER) == []
    assert _subject(issued.cert, NameOID.ORGANIZATION_IDENTIFIER) == []
    san = issued.cert.extensions.get_extension_for_class(pki.x509.SubjectAlternativeName).value
    (directory,) = san.get_values_for_type(pki.x509.DirectoryName)
    assert [a.value for a in directory.get_attributes_for_oid(pki.FNMT_NIF)] == ["12345678Z"]
    assert [a.value for a in directory.get_attributes_for_oid(pki.FNMT_CIF)] == ["VATES-B12345674"]
    assert [a.value for a in directory.get_attributes_for_oid(pki.FNMT_RAZON_SOCIAL)] == ["ACME SL"]


def test_expired_and_not_yet_valid(ca):
    now = datetime.now(UTC)
    assert ca.expired("12345678Z").cert.not_valid_after_utc < now
    assert ca.not_yet_valid("12345678Z").cert.not_valid_before_utc > now


def test_foreign_ca_is_another_ca(ca):
    foreign = pki.CertificateAuthority("Otra AC")
    issued = foreign.persona_fisica("12345678Z")
    assert issued.cert.issuer != ca.cert.subject
    assert issued.chain == (foreign.cert,)


@pytest.mark.parametrize("encoding", list(pki.Encoding))
def test_pkcs12_opens_with_its_password_in_every_encoding(ca, encoding):
    issued = ca.persona_fisica("12345678Z")
    data = issued.pkcs12(PASSWORD, encoding=encoding)
    password = None if encoding is pki.Encoding.NONE else PASSWORD.encode()
    loaded = pkcs12.load_pkcs12(data, password)
    assert loaded.cert.certificate == issued.cert
    assert loaded.key.private_numbers() == issued.key.private_numbers()
    assert [c.certificate for c in loaded.additional_certs] == [ca.cert]


@pytest.mark.parametrize("encoding", [pki.Encoding.AES, pki.Encoding.TRIPLE_DES, pki.Encoding.RC2_40])
def test_pkcs12_refuses_a_wrong_password(ca, encoding):
    data = ca.persona_fisica("12345678Z").pkcs12(PASSWORD, encoding=encoding)
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, b"wrong")


def test_legacy_encodings_are_really_legacy(ca):
    issued = ca.persona_fisica("12345678Z")
    # pbeWithSHAAnd40BitRC2-CBC and pbeWithSHAAnd3-KeyTripleDES-CBC, DER-encoded OIDs
    rc2_40 = bytes.fromhex("2a864886f70d010c0106")
    triple_des = bytes.fromhex("2a864886f70d010c0103")
    legacy = issued.pkcs12(PASSWORD, encoding=pki.Encoding.RC2_40)
    assert rc2_40 in legacy and triple_des in legacy
    older = issued.pkcs12(PASSWORD, encoding=pki.Encoding.TRIPLE_DES)
    assert triple_des in older and rc2_40 not in older
    assert rc2_40 not in issued.pkcs12(PASSWORD) and triple_des not in issued.pkcs12(PASSWORD)


@pytest.mark.parametrize("encoding", [pki.Encoding.AES, pki.Encoding.RC2_40])
def test_pkcs12_without_key(ca, encoding):
    issued = ca.persona_fisica("12345678Z")
    loaded = pkcs12.load_pkcs12(issued.pkcs12(PASSWORD, encoding=encoding, with_key=False), PASSWORD.encode())
    assert loaded.key is None and loaded.cert is None
    assert issued.cert in [c.certificate for c in loaded.additional_certs]


def test_server_certificate_serves_tls_trusted_by_the_ca_bundle(ca, tmp_path):
    server = ca.server()
    cert_path, key_path = server.write(tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=ca.write_bundle(tmp_path / "ca.pem"))
    left, right = socket.socketpair()
    with left, right, ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(lambda: context.wrap_socket(left, server_side=True))
        with client.wrap_socket(right, server_hostname="localhost") as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        accepted.result().close()
    names = server.cert.extensions.get_extension_for_class(pki.x509.SubjectAlternativeName).value
    assert names.get_values_for_type(pki.x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(pki.x509.IPAddress)] == ["127.0.0.1"]
    assert oct((tmp_path / "server.key").stat().st_mode & 0o777) == "0o600"


def test_reused_keys_make_distinct_certificates():
    fast = pki.CertificateAuthority(reuse_keys=True)
    one, two = fast.persona_fisica(pki.dni(1)), fast.persona_fisica(pki.dni(2))
    assert one.key is two.key and one.serial != two.serial
