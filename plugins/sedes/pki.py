"""A throwaway certificate authority and the certificates a gestoría meets, made with ``cryptography``.

Used by the tests, by the DEHú simulator (its own CA, its server certificate) and by the demo (the
demo clients' certificates). The shapes follow the Spanish qualified certificates:

- persona física: subject ``serialNumber`` ``IDCES-<DNI>``, given name, surname, a CN with the NIF;
- representante: the person as above plus the company's ``organizationIdentifier`` ``VATES-<CIF>``
  and ``O``;
- sello (seal of a company): ``organizationIdentifier`` and ``O`` only;
- legacy FNMT certificates: the NIF and names only in the subject alternative name's directory name,
  under the FNMT attributes ``1.3.6.1.4.1.5734.1.*``.

PKCS#12 files come in the encodings found in the wild: AES-256 (current), 3DES (older exports)
and RC2-40 for the certificates with 3DES for the key (the FNMT's and old browsers' "legacy"
files). ``cryptography`` writes the first two; it cannot write RC2-40, so that file is made by the
``openssl`` command (OpenSSL 3 with ``-legacy``).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from stdnum.es import cif as stdnum_cif
from stdnum.es import dni as stdnum_dni

# The FNMT's own attributes, used in the subject alternative name of older certificates.
FNMT_NOMBRE = ObjectIdentifier("1.3.6.1.4.1.5734.1.1")
FNMT_APELLIDO1 = ObjectIdentifier("1.3.6.1.4.1.5734.1.2")
FNMT_APELLIDO2 = ObjectIdentifier("1.3.6.1.4.1.5734.1.3")
FNMT_NIF = ObjectIdentifier("1.3.6.1.4.1.5734.1.4")
FNMT_RAZON_SOCIAL = ObjectIdentifier("1.3.6.1.4.1.5734.1.6")
FNMT_CIF = ObjectIdentifier("1.3.6.1.4.1.5734.1.7")

DEFAULT_PASSWORD = "1234"


class Encoding(StrEnum):
    """How a PKCS#12 file is protected."""

    AES = "aes"  # PBES2, PBKDF2-SHA256, AES-256-CBC, HMAC-SHA256: what current tools write
    TRIPLE_DES = "3des"  # PBES1 SHA-1 and 3-key 3DES for key and certificates, HMAC-SHA1
    RC2_40 = "rc2-40"  # certificates under PBES1 SHA-1 and 40-bit RC2, key under 3DES, HMAC-SHA1
    NONE = "none"  # no encryption at all (a password still opens it: none is asked)


def dni(number: int) -> str:
    """A valid DNI (NIF of a person) for an 8-digit number: ``dni(12345678)`` is ``12345678Z``."""
    digits = f"{number:08d}"
    return digits + stdnum_dni.calc_check_digit(digits)


def cif(number: int, letter: str = "B") -> str:
    """A valid CIF (NIF of a company) for a 7-digit number: ``cif(1234567)`` is ``B12345674``."""
    base = f"{letter}{number:07d}"
    checks = stdnum_cif.calc_check_digits(base)
    # Letters that take a letter check (P, Q, S, …) use the second form; the rest the digit.
    return base + (checks[1] if letter in "KPQS" else checks[0])


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, repr=False)
class Issued:
    """A certificate with its private key and the chain of the CA that issued it."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]
    name: str = "certificate"

    def __repr__(self) -> str:
        return f"Issued({self.cert.subject.rfc4514_string()})"

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def chain_pem(self) -> bytes:
        return b"".join(_pem(c) for c in self.chain)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "x")

    def pkcs12(
        self,
        password: str | None = DEFAULT_PASSWORD,
        *,
        encoding: Encoding | str = Encoding.AES,
        with_key: bool = True,
    ) -> bytes:
        """The certificate as a PKCS#12 file; ``with_key=False`` leaves the private key out."""
        encoding = Encoding(encoding)
        key = self.key if with_key else None
        name = self.name.encode()
        if encoding is Encoding.RC2_40:
            return self._legacy_pkcs12(password or "", with_key=with_key)
        if encoding is Encoding.NONE or not password:
            protection = serialization.NoEncryption()
        elif encoding is Encoding.TRIPLE_DES:
            protection = (
                serialization.PrivateFormat.PKCS12.encryption_builder()
                .kdf_rounds(2048)
                .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                .hmac_hash(hashes.SHA1())
                .build(password.encode())
            )
        else:
            protection = (
                serialization.PrivateFormat.PKCS12.encryption_builder()
                .kdf_rounds(2048)
                .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                .hmac_hash(hashes.SHA256())
                .build(password.encode())
            )
        return pkcs12.serialize_key_and_certificates(name, key, self.cert, list(self.chain) or None, protection)

    def _legacy_pkcs12(self, password: str, *, with_key: bool) -> bytes:
        with tempfile.TemporaryDirectory(prefix="pki-") as tmp:
            _, key_path = self.write(tmp, "leaf")
            cert_path = Path(tmp, "cert.pem")
            cert_path.write_bytes(self.cert_pem)
            chain_path = Path(tmp, "chain.pem")
            chain_path.write_bytes(self.chain_pem)
            out = Path(tmp, "out.p12")
            command = ["openssl", "pkcs12", "-export", "-legacy", "-in", str(cert_path), "-out", str(out)]
            command += ["-name", self.name, "-passout", "env:PKI_PKCS12_PASSWORD"]
            command += ["-certpbe", "PBE-SHA1-RC2-40", "-macalg", "sha1"]
            if self.chain:
                command += ["-certfile", str(chain_path)]
            command += ["-inkey", key_path, "-keypbe", "PBE-SHA1-3DES"] if with_key else ["-nokeys"]
            env = {**os.environ, "PKI_PKCS12_PASSWORD": password}
            subprocess.run(command, check=True, env=env, capture_output=True)
            return out.read_bytes()

    def write(self, directory: str | os.PathLike, stem: str) -> tuple[str, str]:
        """Write ``<stem>.pem`` (certificate and chain) and ``<stem>.key`` (mode 0600); their paths."""
        directory = Path(directory)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem + self.chain_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)
        return str(cert_path), str(key_path)


@dataclass
class CertificateAuthority:
    """A CA made on the spot; each instance is a different, unrelated CA (a "foreign CA" is just another)."""

    name: str = "Ventanilla Pruebas AC"
    key_size: int = 2048
    reuse_keys: bool = False  # one key for every certificate issued: fast, for benchmarks and demos
    cert: x509.Certificate | None = None  # given with ``key``: an existing CA (``stored``)
    key: rsa.RSAPrivateKey | None = None
    _leaf_key: rsa.RSAPrivateKey | None = field(init=False, default=None)

    @classmethod
    def stored(cls, directory: str | os.PathLike, name: str = "Ventanilla Pruebas AC") -> CertificateAuthority:
        """The CA kept in ``directory`` (``ca.pem``, ``ca.key`` mode 0600), made there the first time."""
        directory = Path(directory)
        cert_path, key_path = directory / "ca.pem", directory / "ca.key"
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            return cls(name=name, cert=cert, key=key)
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(name=name)
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            ca.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_path.write_bytes(ca.cert_pem)
        return ca

    def __post_init__(self) -> None:
        if self.cert is not None and self.key is not None:
            return
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ventanilla Pruebas"),
                x509.NameAttribute(NameOID.COMMON_NAME, self.name),
            ]
        )
        now = _now()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    def write_bundle(self, path: str | os.PathLike) -> str:
        """Write the CA certificate as a PEM bundle to trust; its path."""
        Path(path).write_bytes(self.cert_pem)
        return str(path)

    def _new_key(self) -> rsa.RSAPrivateKey:
        if not self.reuse_keys:
            return rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)
        if self._leaf_key is None:
            self._leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)
        return self._leaf_key

    def issue(
        self,
        subject: x509.Name,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        san: list[x509.GeneralName] | None = None,
        usages: tuple[ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION),
        name: str = "certificate",
    ) -> Issued:
        """Any certificate under this CA (valid from yesterday for two years unless told)."""
        now = _now()
        not_before = not_before or now - timedelta(days=1)
        not_after = not_after or not_before + timedelta(days=730)
        key = self._new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert=cert, key=key, chain=(self.cert,), name=name)

    def persona_fisica(
        self,
        nif: str,
        given_name: str = "JUAN",
        surname: str = "ESPAÑOL ESPAÑOL",
        *,
        legacy_fnmt: bool = False,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        """A citizen's certificate (FNMT "Persona Física" shape)."""
        common_name = f"{surname} {given_name} - {nif}"
        if legacy_fnmt:
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FNMT"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "FNMT Clase 2 CA"),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"NOMBRE {surname} {given_name} - NIF {nif}"),
                ]
            )
            first, _, second = surname.partition(" ")
            san = [self._fnmt_directory(given_name=given_name, surname1=first, surname2=second, nif=nif)]
            return self.issue(subject, not_before=not_before, not_after=not_after, san=san, name=common_name)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IDCES-{nif}"),
                x509.NameAttribute(NameOID.SURNAME, surname),
                x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        return self.issue(subject, not_before=not_before, not_after=not_after, name=common_name)

    def representante(
        self,
        nif: str,
        entity_nif: str,
        entity_name: str = "EMPRESA DE PRUEBAS SL",
        given_name: str = "JUAN",
        surname: str = "ESPAÑOL ESPAÑOL",
        *,
        legacy_fnmt: bool = False,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        """A company's representative (FNMT "Representante de Persona Jurídica" shape)."""
        common_name = f"{nif} {given_name} {surname} (R: {entity_nif})"
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"VATES-{entity_nif}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, entity_name),
        ]
        san = None
        if legacy_fnmt:
            first, _, second = surname.partition(" ")
            san = [
                self._fnmt_directory(
                    given_name=given_name,
                    surname1=first,
                    surname2=second,
                    nif=nif,
                    entity_name=entity_name,
                    entity_nif=entity_nif,
                )
            ]
            attributes = attributes[:1] + attributes[2:]
        else:
            attributes += [
                x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IDCES-{nif}"),
                x509.NameAttribute(NameOID.SURNAME, surname),
                x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
            ]
        subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return self.issue(subject, not_before=not_before, not_after=not_after, san=san, name=common_name)

    def sello(
        self,
        entity_nif: str,
        entity_name: str = "EMPRESA DE PRUEBAS SL",
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        """A company's electronic seal (no person in it)."""
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"VATES-{entity_nif}"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, entity_name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"SELLO {entity_name}"),
            ]
        )
        return self.issue(subject, not_before=not_before, not_after=not_after, name=entity_name)

    def expired(self, nif: str, **names: str) -> Issued:
        """A persona física certificate that expired ten days ago."""
        now = _now()
        return self.persona_fisica(
            nif, **names, not_before=now - timedelta(days=740), not_after=now - timedelta(days=10)
        )

    def not_yet_valid(self, nif: str, **names: str) -> Issued:
        """A persona física certificate valid from ten days ahead."""
        now = _now()
        return self.persona_fisica(
            nif, **names, not_before=now + timedelta(days=10), not_after=now + timedelta(days=740)
        )

    def server(self, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Issued:
        """A TLS server certificate for the given host names and IP addresses."""
        san: list[x509.GeneralName] = []
        for host in hosts:
            try:
                san.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                san.append(x509.DNSName(host))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        return self.issue(subject, san=san, usages=(ExtendedKeyUsageOID.SERVER_AUTH,), name=hosts[0])

    @staticmethod
    def _fnmt_directory(
        *,
        given_name: str,
        surname1: str,
        surname2: str,
        nif: str,
        entity_name: str | None = None,
        entity_nif: str | None = None,
    ) -> x509.DirectoryName:
        attributes = [
            x509.NameAttribute(FNMT_NOMBRE, given_name),
            x509.NameAttribute(FNMT_APELLIDO1, surname1),
        ]
        if surname2:
            attributes.append(x509.NameAttribute(FNMT_APELLIDO2, surname2))
        attributes.append(x509.NameAttribute(FNMT_NIF, nif))
        if entity_name:
            attributes.append(x509.NameAttribute(FNMT_RAZON_SOCIAL, entity_name))
        if entity_nif:
            attributes.append(x509.NameAttribute(FNMT_CIF, f"VATES-{entity_nif}"))
        return x509.DirectoryName(x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes]))
