"""A PKCS#12 file (.pfx/.p12) and its password → the contract's ``Credential``.

Parsed with ``cryptography`` (which reads the legacy RC2-40 and 3DES encodings of FNMT files and old
browser exports as well as today's AES). The holder's NIF comes from the subject's ``serialNumber``
(``IDCES-12345678Z``), the company's from its ``organizationIdentifier`` (``VATES-B12345678``), and
for older FNMT certificates from the FNMT attributes in the subject alternative name. The kind:
a company NIF alone (or equal to the person's) is a seal, a company and a person a representative,
a person alone a persona física. Every way a file can be refused has its own code and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID, ObjectIdentifier
from flask_babel import lazy_gettext as _l

from core.api import DomainError
from plugins.sedes.contract import CertificateKind, Credential

MAX_SIZE = 64 * 1024  # a PKCS#12 with a chain is a few kilobytes

FNMT_NOMBRE = ObjectIdentifier("1.3.6.1.4.1.5734.1.1")
FNMT_APELLIDO1 = ObjectIdentifier("1.3.6.1.4.1.5734.1.2")
FNMT_APELLIDO2 = ObjectIdentifier("1.3.6.1.4.1.5734.1.3")
FNMT_NIF = ObjectIdentifier("1.3.6.1.4.1.5734.1.4")
FNMT_RAZON_SOCIAL = ObjectIdentifier("1.3.6.1.4.1.5734.1.6")
FNMT_CIF = ObjectIdentifier("1.3.6.1.4.1.5734.1.7")

# ETSI EN 319 412-1: a type of identity (IDC national id, PAS passport, VAT tax number…), a
# country, a dash, the number.
SEMANTICS_PREFIX = re.compile(r"^(?:IDC|PAS|VAT|NTR|TIN|PNO|CPI)[A-Z]{2}[-:]")

# The DER start of a PKCS#12 PFX: SEQUENCE { INTEGER 3, ContentInfo SEQUENCE { OID pkcs7-data|signed
PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")
PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")


class CredentialError(DomainError):
    """A PKCS#12 that cannot be used; ``code`` says why (tests and logs), ``message`` to people."""

    def __init__(self, code: str, message, field: str = "file") -> None:
        super().__init__(message, field=field)
        self.code = code


@dataclass(frozen=True, repr=False)
class ParsedCertificate:
    """A credential and what the certificates table keeps beside it."""

    credential: Credential
    fingerprint: str  # SHA-256 of the certificate (DER), hex
    entity_name: str | None

    def __repr__(self) -> str:
        return f"ParsedCertificate({self.credential!r})"


def _der_length(data: bytes, at: int) -> tuple[int, int] | None:
    """The length of the DER element whose length octets start at ``at``, and where its content starts."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    if count == 0 or count > 4 or at + 1 + count > len(data):
        return None
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def looks_like_pkcs12(data: bytes) -> bool:
    """Whether ``data`` starts as a PKCS#12 file does (so a refusal means a wrong password)."""
    if len(data) < 20 or data[0] != 0x30:
        return False
    outer = _der_length(data, 1)
    if outer is None:
        return False
    _, at = outer
    if data[at : at + 3] != b"\x02\x01\x03" or data[at + 3] != 0x30:
        return False
    inner = _der_length(data, at + 4)
    if inner is None:
        return False
    oid = data[inner[1] : inner[1] + len(PKCS7_DATA)]
    return oid in (PKCS7_DATA, PKCS7_SIGNED)


def _passwords(password: str) -> list[bytes | None]:
    """How to try a password: UTF-8 (the standard), Latin-1 (some old Windows exports), and none at
    all (a file without protection opens whatever was typed)."""
    candidates: list[bytes | None] = [password.encode("utf-8")]
    try:
        latin = password.encode("latin-1")
    except UnicodeEncodeError:
        latin = None
    if latin is not None and latin not in candidates:
        candidates.append(latin)
    candidates.append(None)
    return candidates


def _load(data: bytes, password: str):
    if not data:
        raise CredentialError("empty", _l("The file is empty."))
    if len(data) > MAX_SIZE:
        raise CredentialError("too_large", _l("The file is too large to be a digital certificate."))
    if not looks_like_pkcs12(data):
        raise CredentialError(
            "not_pkcs12", _l("The file is not a digital certificate in PKCS#12 format (.pfx or .p12).")
        )
    for candidate in _passwords(password):
        try:
            return pkcs12.load_key_and_certificates(data, candidate)
        except ValueError:
            continue
    raise CredentialError("wrong_password", _l("The password does not open this certificate."), field="password")


def _attribute(name: x509.Name, oid: ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value).strip() if values else None


def _fnmt_attributes(cert: x509.Certificate) -> dict[ObjectIdentifier, str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    found: dict[ObjectIdentifier, str] = {}
    for directory in san.get_values_for_type(x509.DirectoryName):
        for attribute in directory:
            found.setdefault(attribute.oid, str(attribute.value).strip())
    return found


def strip_semantics(value: str | None) -> str | None:
    """``IDCES-12345678Z`` → ``12345678Z``; ``VATES-B12345678`` → ``B12345678``."""
    if not value:
        return None
    return SEMANTICS_PREFIX.sub("", value.strip()).upper() or None


def _issuer(cert: x509.Certificate) -> str:
    return (
        _attribute(cert.issuer, NameOID.COMMON_NAME)
        or _attribute(cert.issuer, NameOID.ORGANIZATION_NAME)
        or cert.issuer.rfc4514_string()
    )


def _person_name(cert: x509.Certificate, fnmt: dict) -> str | None:
    given = _attribute(cert.subject, NameOID.GIVEN_NAME) or fnmt.get(FNMT_NOMBRE)
    surname = _attribute(cert.subject, NameOID.SURNAME) or " ".join(
        part for part in (fnmt.get(FNMT_APELLIDO1), fnmt.get(FNMT_APELLIDO2)) if part
    )
    return " ".join(part for part in (given, surname) if part) or None


def describe(cert: x509.Certificate) -> tuple[CertificateKind, str, str | None, str | None, str | None]:
    """The kind, holder's name, person's NIF, company's NIF and company's name of a certificate."""
    fnmt = _fnmt_attributes(cert)
    holder_nif = strip_semantics(_attribute(cert.subject, NameOID.SERIAL_NUMBER) or fnmt.get(FNMT_NIF))
    entity_nif = strip_semantics(_attribute(cert.subject, NameOID.ORGANIZATION_IDENTIFIER) or fnmt.get(FNMT_CIF))
    entity_name = fnmt.get(FNMT_RAZON_SOCIAL) or (
        _attribute(cert.subject, NameOID.ORGANIZATION_NAME) if entity_nif else None
    )
    common_name = _attribute(cert.subject, NameOID.COMMON_NAME) or cert.subject.rfc4514_string()
    if entity_nif and (not holder_nif or holder_nif == entity_nif):
        return CertificateKind.SELLO, entity_name or common_name, None, entity_nif, entity_name
    person = _person_name(cert, fnmt) or common_name
    if entity_nif:
        return CertificateKind.REPRESENTANTE, person, holder_nif, entity_nif, entity_name
    return CertificateKind.PERSONA_FISICA, person, holder_nif, None, None


def parse(data: bytes, password: str) -> ParsedCertificate:
    """Open a PKCS#12 and read it; ``CredentialError`` with its own code for each way it fails.
    Validity dates are read, not judged: ``check_validity`` does that."""
    key, cert, extra = _load(data, password or "")
    if cert is None and not extra:
        raise CredentialError("no_certificate", _l("The file holds no certificate."))
    if key is None or cert is None:
        # Without a key, OpenSSL cannot tell the holder's certificate from the chain's.
        raise CredentialError(
            "no_key",
            _l("The file holds the certificate without its private key: export it again with the private key."),
        )
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != cert.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise CredentialError("key_mismatch", _l("The private key in the file is not the certificate's."))
    kind, holder_name, holder_nif, entity_nif, entity_name = describe(cert)
    if not (holder_nif or entity_nif):
        raise CredentialError("no_nif", _l("The certificate names no Spanish NIF: it cannot read a sede's mailbox."))
    credential = Credential(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in extra or ()),
        kind=kind,
        holder_name=holder_name,
        holder_nif=holder_nif,
        entity_nif=entity_nif,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "x"),
        issuer=_issuer(cert),
    )
    return ParsedCertificate(credential, cert.fingerprint(hashes.SHA256()).hex(), entity_name)


def check_validity(credential: Credential, now: datetime | None = None) -> None:
    """Refuse a certificate that has expired or is not valid yet, each with its own message."""
    now = now or datetime.now(UTC)
    if credential.not_after <= now:
        raise CredentialError("expired", _l("The certificate has expired."))
    if credential.not_before > now:
        raise CredentialError("not_yet_valid", _l("The certificate is not valid yet."))
