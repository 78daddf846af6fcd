"""A PKCS#12 and its password become a credential: holder, NIFs, kind, issuer, validity — or a
refusal that says exactly what is wrong. The files are made at test time by a throwaway CA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask_babel import force_locale

from plugins.sedes.contract import CertificateKind
from plugins.sedes.credentials import CredentialError, check_validity, looks_like_pkcs12, parse
from plugins.sedes.pki import CertificateAuthority, Encoding, cif, dni

PERSON = dni(12345678)
OTHER_PERSON = dni(87654321)
COMPANY = cif(1234567)


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority()


def _refusal(data: bytes, password: str, app) -> CredentialError:
    with pytest.raises(CredentialError) as refused:
        parse(data, password)
    with app.test_request_context():
        str(refused.value.message)  # it renders
    return refused.value


def test_a_persona_fisica_certificate_names_the_person_and_their_nif(ca):
    issued = ca.persona_fisica(PERSON, "MARÍA", "GARCÍA LÓPEZ")
    parsed = parse(issued.pkcs12("1234"), "1234")
    credential = parsed.credential
    assert credential.kind is CertificateKind.PERSONA_FISICA
    assert credential.holder_name == "MARÍA GARCÍA LÓPEZ"
    assert credential.holder_nif == PERSON
    assert credential.entity_nif is None
    assert credential.titular_nif == PERSON
    assert credential.issuer == "Ventanilla Pruebas AC"
    assert credential.serial == issued.serial
    assert parsed.fingerprint == issued.fingerprint
    assert credential.not_after == issued.cert.not_valid_after_utc
    assert credential.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert ca.cert_pem in credential.chain_pem
    assert "PRIVATE" not in repr(parsed) and PERSON in repr(parsed)


def test_a_representative_certificate_reads_for_the_company(ca):
    parsed = parse(ca.representante(PERSON, COMPANY, "TALLERES PÉREZ SL").pkcs12("clave"), "clave")
    credential = parsed.credential
    assert credential.kind is CertificateKind.REPRESENTANTE
    assert credential.holder_nif == PERSON
    assert credential.entity_nif == COMPANY
    assert credential.titular_nif == COMPANY
    assert credential.holder_name == "JUAN ESPAÑOL ESPAÑOL"
    assert parsed.entity_name == "TALLERES PÉREZ SL"


def test_a_seal_certificate_is_the_company_alone(ca):
    parsed = parse(ca.sello(COMPANY, "TALLERES PÉREZ SL").pkcs12("1234"), "1234")
    assert parsed.credential.kind is CertificateKind.SELLO
    assert parsed.credential.holder_nif is None
    assert parsed.credential.entity_nif == COMPANY
    assert parsed.credential.holder_name == "TALLERES PÉREZ SL"


def test_legacy_fnmt_certificates_carry_the_nif_in_the_alternative_name(ca):
    person = parse(ca.persona_fisica(PERSON, "ANA", "RUIZ MARTÍN", legacy_fnmt=True).pkcs12("1234"), "1234")
    assert person.credential.kind is CertificateKind.PERSONA_FISICA
    assert person.credential.holder_nif == PERSON
    assert person.credential.holder_name == "ANA RUIZ MARTÍN"
    representative = parse(ca.representante(OTHER_PERSON, COMPANY, "OBRAS SA", legacy_fnmt=True).pkcs12("1234"), "1234")
    assert representative.credential.kind is CertificateKind.REPRESENTANTE
    assert representative.credential.holder_nif == OTHER_PERSON
    assert representative.credential.entity_nif == COMPANY
    assert representative.entity_name == "OBRAS SA"


@pytest.mark.parametrize("encoding", [Encoding.AES, Encoding.TRIPLE_DES, Encoding.RC2_40])
def test_every_encoding_found_in_the_wild_opens(ca, encoding):
    issued = ca.persona_fisica(PERSON)
    data = issued.pkcs12("contraseña", encoding=encoding)
    assert looks_like_pkcs12(data)
    assert parse(data, "contraseña").fingerprint == issued.fingerprint


def test_a_file_without_protection_opens_whatever_password_was_typed(ca):
    issued = ca.persona_fisica(PERSON)
    assert parse(issued.pkcs12(None, encoding=Encoding.NONE), "anything").fingerprint == issued.fingerprint


def test_a_wrong_password_is_said_to_be_the_password(app, ca):
    refusal = _refusal(ca.persona_fisica(PERSON).pkcs12("1234"), "4321", app)
    assert refusal.code == "wrong_password"
    assert refusal.field == "password"


@pytest.mark.parametrize(
    "data",
    [b"", b"not a certificate at all, just text", b"-----BEGIN CERTIFICATE-----\nMIIB\n", b"\x30\x03\x02\x01\x05"],
)
def test_a_file_that_is_not_pkcs12_is_said_to_be_the_wrong_kind_of_file(app, data):
    refusal = _refusal(data, "1234", app)
    assert refusal.code in {"not_pkcs12", "empty"}
    assert refusal.field == "file"


def test_a_pem_certificate_is_not_a_pkcs12(app, ca):
    assert _refusal(ca.persona_fisica(PERSON).cert_pem, "1234", app).code == "not_pkcs12"


def test_a_certificate_without_its_private_key_is_refused(app, ca):
    for encoding in (Encoding.AES, Encoding.RC2_40):
        data = ca.persona_fisica(PERSON).pkcs12("1234", encoding=encoding, with_key=False)
        assert _refusal(data, "1234", app).code == "no_key"


def test_a_certificate_without_a_nif_cannot_read_a_mailbox(app, ca):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    issued = ca.issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test")]))
    assert _refusal(issued.pkcs12("1234"), "1234", app).code == "no_nif"


def test_expired_and_not_yet_valid_certificates_each_have_their_own_refusal(app, ca):
    expired = parse(ca.expired(PERSON).pkcs12("1234"), "1234").credential
    early = parse(ca.not_yet_valid(PERSON).pkcs12("1234"), "1234").credential
    with pytest.raises(CredentialError) as refused:
        check_validity(expired)
    assert refused.value.code == "expired"
    with pytest.raises(CredentialError) as refused:
        check_validity(early)
    assert refused.value.code == "not_yet_valid"
    with app.test_request_context(), force_locale("en"):
        assert str(refused.value.message) == "The certificate is not valid yet."
    check_validity(early, now=datetime.now(UTC) + timedelta(days=11))


def test_a_certificate_from_another_authority_is_read_the_same(ca):
    foreign = CertificateAuthority(name="Otra AC")
    parsed = parse(foreign.persona_fisica(PERSON).pkcs12("1234"), "1234")
    assert parsed.credential.issuer == "Otra AC"
    assert parsed.credential.holder_nif == PERSON
