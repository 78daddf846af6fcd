"""What the DEHú tests share: a connector's view of a certificate made by the simulator's CA."""

from __future__ import annotations

from plugins.sedes import pki
from plugins.sedes.contract import CertificateKind, Credential, MailboxContext


def credential(
    issued: pki.Issued,
    *,
    kind: CertificateKind = CertificateKind.PERSONA_FISICA,
    holder_nif: str | None = None,
    entity_nif: str | None = None,
    holder_name: str = "JUAN ESPAÑOL ESPAÑOL",
) -> Credential:
    cert = issued.cert
    return Credential(
        cert_pem=issued.cert_pem,
        key_pem=issued.key_pem,
        chain_pem=issued.chain_pem,
        kind=kind,
        holder_name=holder_name,
        holder_nif=holder_nif,
        entity_nif=entity_nif,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=issued.serial,
        issuer=cert.issuer.rfc4514_string(),
    )


def mailbox(simulator, nif: str, issued: pki.Issued | None = None, *, enrol: bool = True, **options) -> MailboxContext:
    """A mailbox of ``nif`` read with a persona física certificate of ``nif`` (made unless given)."""
    issued = issued or simulator.ca.persona_fisica(nif)
    if enrol:
        simulator.enrol(issued, [nif])
    context = {"base_url": simulator.url, "ca_bundle": simulator.ca_bundle, "timeout_s": 5.0, **options}
    return MailboxContext("dehu", nif, credential(issued, holder_nif=nif), **context)
