"""WS-Security for DEHú's SOAP 1.1 messages: the client signs, the simulator verifies.

The envelope's ``wsse:Security`` header holds a ``wsu:Timestamp``, the certificate as a
``wsse:BinarySecurityToken`` (X.509 v3, base64) and an XML signature (signxml) whose two references
are the Timestamp and the Body, each canonicalised with exclusive c14n, signed RSA-SHA256 with
SHA-256 digests; its ``KeyInfo`` points to the token through a ``wsse:SecurityTokenReference``.
SHA-1 is neither produced nor accepted (DEHú refuses it).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

TIMESTAMP_TTL = timedelta(minutes=5)

# What a message may be signed with: SHA-2 only.
ACCEPTED = SignatureConfiguration(
    location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/",
    expect_references=2,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
)

# A hardened parser: no DTDs, no entities, no network.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=False)


def xsd_utc(moment: datetime) -> str:
    """An instant as WS-Security writes it: UTC, seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def envelope(body_content: etree._Element) -> etree._Element:
    """A SOAP 1.1 envelope with ``body_content`` as the Body's only child (not yet signed)."""
    root = etree.Element(_q(SOAP, "Envelope"), nsmap={"soapenv": SOAP})
    etree.SubElement(root, _q(SOAP, "Header"))
    body = etree.SubElement(root, _q(SOAP, "Body"), nsmap={"wsu": WSU})
    body.append(body_content)
    return root


def load_key(key_pem: bytes):
    """The private key of a credential, for signing many messages. Its consistency was checked when
    the PKCS#12 was read (and OpenSSL checked it against the certificate for TLS): checking it again
    here would cost tens of milliseconds per message."""
    return serialization.load_pem_private_key(key_pem, password=None, unsafe_skip_rsa_key_validation=True)


def sign(
    root: etree._Element,
    cert_pem: bytes,
    key,
    *,
    now: datetime | None = None,
    signature_method: SignatureMethod = SignatureMethod.RSA_SHA256,
    digest: DigestAlgorithm = DigestAlgorithm.SHA256,
) -> bytes:
    """Add the WS-Security header to an ``envelope`` and sign it with ``key`` (PEM, or ``load_key``'s);
    the message's bytes."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cert = x509.load_pem_x509_certificate(cert_pem)
    if isinstance(key, bytes):
        key = serialization.load_pem_private_key(key, password=None)
    ids = uuid.uuid4().hex
    timestamp_id, body_id, token_id = f"TS-{ids}", f"id-{ids}", f"X509-{ids}"

    header = root.find(_q(SOAP, "Header"))
    body = root.find(_q(SOAP, "Body"))
    body.set(_q(WSU, "Id"), body_id)
    security = etree.SubElement(header, _q(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(_q(SOAP, "mustUnderstand"), "1")
    timestamp = etree.SubElement(security, _q(WSU, "Timestamp"))
    timestamp.set(_q(WSU, "Id"), timestamp_id)
    etree.SubElement(timestamp, _q(WSU, "Created")).text = xsd_utc(now)
    etree.SubElement(timestamp, _q(WSU, "Expires")).text = xsd_utc(now + TIMESTAMP_TTL)
    token = etree.SubElement(security, _q(WSSE, "BinarySecurityToken"), EncodingType=BASE64, ValueType=X509V3)
    token.set(_q(WSU, "Id"), token_id)
    token.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    key_info = etree.Element(_q(DS, "KeyInfo"), nsmap={"ds": DS})
    etree.SubElement(
        etree.SubElement(key_info, _q(WSSE, "SecurityTokenReference"), nsmap={"wsse": WSSE}),
        _q(WSSE, "Reference"),
        URI=f"#{token_id}",
        ValueType=X509V3,
    )
    signer = XMLSigner(
        method=methods.detached,
        signature_algorithm=signature_method,
        digest_algorithm=digest,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signature = signer.sign(root, key=key, reference_uri=[timestamp_id, body_id], key_info=key_info)
    security.append(signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class SecurityFault(Exception):
    """A message whose security header cannot be trusted. ``code`` is the WS-Security fault code."""

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class Verified:
    """What a verified message says, read only from what its signature covers."""

    certificate: x509.Certificate
    created: datetime
    expires: datetime
    operation: etree._Element  # the Body's child, from the signed bytes


def _instant(text: str | None) -> datetime:
    if not text:
        raise SecurityFault("wsse:InvalidSecurity", "Timestamp without Created or Expires")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise SecurityFault("wsse:InvalidSecurity", "Timestamp not an xsd:dateTime") from error
    if moment.tzinfo is None:
        raise SecurityFault("wsse:InvalidSecurity", "Timestamp without a time zone")
    return moment


def verify(message: bytes, *, now: datetime | None = None, skew: timedelta = timedelta(minutes=5)) -> Verified:
    """Check a signed message: the token, the signature over exactly Timestamp and Body, the time window.

    Raises ``SecurityFault`` (``wsse:InvalidSecurity``, ``wsse:FailedCheck``,
    ``wsse:MessageExpired``, ``wsse:InvalidSecurityToken``); whether the certificate may use the
    service is the caller's business.
    """
    now = now or datetime.now(UTC)
    try:
        root = etree.fromstring(message, parser=PARSER)
    except etree.XMLSyntaxError as error:
        raise SecurityFault("soapenv:Client", "Not well-formed XML") from error
    security = root.find(f"{_q(SOAP, 'Header')}/{_q(WSSE, 'Security')}")
    body = root.find(_q(SOAP, "Body"))
    if security is None or body is None:
        raise SecurityFault("wsse:InvalidSecurity", "No wsse:Security header")
    tokens = security.findall(_q(WSSE, "BinarySecurityToken"))
    if len(tokens) != 1 or tokens[0].get("ValueType") != X509V3:
        raise SecurityFault("wsse:InvalidSecurityToken", "Expected one X.509 v3 BinarySecurityToken")
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(tokens[0].text or "", validate=True))
    except ValueError as error:
        raise SecurityFault("wsse:InvalidSecurityToken", "The token is not an X.509 certificate") from error
    token_id = tokens[0].get(_q(WSU, "Id"))
    pointer = security.find(
        f"{_q(DS, 'Signature')}/{_q(DS, 'KeyInfo')}/{_q(WSSE, 'SecurityTokenReference')}/{_q(WSSE, 'Reference')}"
    )
    if pointer is None or pointer.get("URI") != f"#{token_id}":
        raise SecurityFault("wsse:InvalidSecurityToken", "The signature does not name the token")
    try:
        results = XMLVerifier().verify(
            root,
            x509_cert=certificate,
            expect_config=ACCEPTED,
            parser=PARSER,
        )
    except InvalidCertificate as error:
        raise SecurityFault("wsse:InvalidSecurityToken", f"Certificate not valid: {error}") from error
    except (InvalidSignature, InvalidDigest, InvalidInput, etree.DocumentInvalid) as error:
        raise SecurityFault("wsse:FailedCheck", f"Signature check failed: {error}") from error

    signed = {result.signed_xml.tag: result.signed_xml for result in results if result.signed_xml is not None}
    timestamp, signed_body = signed.get(_q(WSU, "Timestamp")), signed.get(_q(SOAP, "Body"))
    if timestamp is None or signed_body is None or len(signed) != 2:
        raise SecurityFault("wsse:FailedCheck", "The signature must cover the Timestamp and the Body")
    if signed_body.get(_q(WSU, "Id")) != body.get(_q(WSU, "Id")):
        raise SecurityFault("wsse:FailedCheck", "The signed Body is not the message's Body")
    created = _instant(timestamp.findtext(_q(WSU, "Created")))
    expires = _instant(timestamp.findtext(_q(WSU, "Expires")))
    if created > now + skew or expires < now - skew or expires <= created:
        raise SecurityFault("wsse:MessageExpired", "The message's Timestamp is outside the accepted window")
    children = [child for child in signed_body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise SecurityFault("soapenv:Client", "The Body must hold exactly one operation")
    return Verified(certificate=certificate, created=created, expires=expires, operation=children[0])
