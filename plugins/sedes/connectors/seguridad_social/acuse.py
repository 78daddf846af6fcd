"""The acuse de recibo of a Seguridad Social notification: the XML the service hands out
(solicitarAcuseNotificacion), signed by the notification's recipient with an enveloped XAdES
signature (signxml: XAdES-BES, RSA-SHA256, SHA-256 digests, the certificate in ``KeyInfo`` and in
``SigningCertificateV2``), and sent back (enviarAcuseNotificacion).

The connector signs only an acuse of acceptance of the very notification it asked about; the
simulator verifies the signature, that the certificate is the one that asked, and that the
content is what it handed out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography import x509
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, methods
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.xades import XAdESSignatureConfiguration, XAdESSigner, XAdESVerifier

from plugins.sedes.connectors.seguridad_social import messages as m

DS = "http://www.w3.org/2000/09/xmldsig#"

# SHA-2 only, as for the service's SOAP signatures.
ACCEPTED = XAdESSignatureConfiguration(
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
)

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class AcuseError(ValueError):
    """An acuse that cannot be signed (not what was asked) or whose signature does not verify."""


@dataclass(frozen=True)
class Acuse:
    """What an acuse says."""

    codigo: int
    tipo: str  # ACEPTACION or RECHAZO
    identificador: str  # the service's id of this acuse (used once)
    titular: str | None
    destinatario: str | None


def read(root: etree._Element) -> Acuse:
    if etree.QName(root).localname != "AcuseNotificacion" or etree.QName(root).namespace != m.ACUSE_NS:
        raise AcuseError(f"not an acuse: {root.tag}")
    codigo = m.text(root, "codigoNotificacion")
    if not codigo or not codigo.isdigit():
        raise AcuseError("acuse without codigoNotificacion")
    return Acuse(
        codigo=int(codigo),
        tipo=m.text(root, "tipoAcuse") or "",
        identificador=m.text(root, "identificadorAcuse") or "",
        titular=m.text(root, "titular"),
        destinatario=m.text(root, "destinatario"),
    )


def parse(xml: bytes) -> etree._Element:
    try:
        return etree.fromstring(xml, parser=PARSER)
    except etree.XMLSyntaxError as error:
        raise AcuseError(f"acuse not well-formed: {error}") from error


def build(
    *,
    codigo: int,
    tipo: str,
    identificador: str,
    titular: str,
    destinatario: str | None,
    procedimiento: str | None,
    made_available: str,
    issued: str,
) -> bytes:
    """The acuse the service hands out to be signed (the simulator's)."""
    q = lambda name: f"{{{m.ACUSE_NS}}}{name}"  # noqa: E731
    root = etree.Element(q("AcuseNotificacion"), nsmap={None: m.ACUSE_NS})
    for name, value in (
        ("codigoNotificacion", str(codigo)),
        ("tipoAcuse", tipo),
        ("identificadorAcuse", identificador),
        ("titular", titular),
        ("destinatario", destinatario),
        ("procedimiento", procedimiento),
        ("fechaPuestaDisposicion", made_available),
        ("fechaEmisionAcuse", issued),
    ):
        if value is not None:
            etree.SubElement(root, q(name)).text = value
    verb = "acepta" if tipo == m.ACUSE_ACEPTACION else "rechaza"
    etree.SubElement(root, q("texto")).text = (
        f"El firmante {verb} la notificación {codigo} puesta a su disposición en la Sede Electrónica "
        "de la Seguridad Social."
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def sign(xml: bytes, *, codigo: int, cert_pem: bytes, key) -> bytes:
    """Sign the acuse of acceptance of notification ``codigo`` (XAdES enveloped); refuses any other."""
    root = parse(xml)
    acuse = read(root)
    if acuse.codigo != codigo:
        raise AcuseError(f"the acuse is of notification {acuse.codigo}, not {codigo}")
    if acuse.tipo != m.ACUSE_ACEPTACION:
        raise AcuseError(f"the acuse is a {acuse.tipo or 'blank'}, not an acceptance")
    if root.find(f"{{{DS}}}Signature") is not None:
        raise AcuseError("the acuse arrived already signed")
    signer = XAdESSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
    )
    signed = signer.sign(root, key=key, cert=[cert_pem.decode()])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify(xml: bytes) -> tuple[Acuse, x509.Certificate]:
    """Check a signed acuse (the simulator's side): the XAdES signature over the whole acuse, made
    with the certificate it carries. Whether that certificate may sign is the caller's business."""
    root = parse(xml)
    certificates = root.findall(f"{{{DS}}}Signature/{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if len(certificates) != 1 or not (certificates[0].text or "").strip():
        raise AcuseError("the signature must carry exactly one certificate")
    try:
        der = base64.b64decode("".join(certificates[0].text.split()), validate=True)
        certificate = x509.load_der_x509_certificate(der)
        results = XAdESVerifier().verify(root, x509_cert=certificate, expect_config=ACCEPTED, parser=PARSER)
    except (InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, ValueError) as error:
        raise AcuseError(f"signature check failed: {error}") from error
    signed = next((r.signed_xml for r in results if r.signed_xml is not None and r.signed_xml.tag == root.tag), None)
    if signed is None:
        raise AcuseError("the signature does not cover the acuse")
    return read(signed), certificate
