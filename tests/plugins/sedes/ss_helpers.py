"""What the Seguridad Social tests share: valid CCCs and mailbox contexts for the WSCN simulator."""

from __future__ import annotations

from plugins.sedes import pki
from plugins.sedes.contract import CertificateKind, MailboxContext
from plugins.sedes.ssid import control_digits
from tests.plugins.sedes.dehu_helpers import credential

SEDE = "seg_social"


def ccc(number: int, province: str = "28") -> str:
    """A valid CCC (11 digits) of ``province``."""
    digits = f"{number:07d}"
    return province + digits + control_digits(province, digits)


def naf(number: int, province: str = "28") -> str:
    """A valid NAF (12 digits) of ``province``."""
    digits = f"{number:08d}"
    return province + digits + control_digits(province, digits)


def own_mailbox(
    simulator,
    nif: str,
    *,
    codes=None,
    issued: pki.Issued | None = None,
    enrol: bool = True,
    holder_nif: str | None = None,
    **options,
) -> MailboxContext:
    """A client's mailbox read with its own persona física certificate (rol propias), or with the
    certificate of ``holder_nif`` (someone else's)."""
    holder_nif = holder_nif or nif
    issued = issued or simulator.ca.persona_fisica(holder_nif)
    if enrol:
        simulator.ss_enrol(issued, nifs=[holder_nif])
    return _context(simulator, nif, credential(issued, holder_nif=holder_nif), codes, **options)


def office_mailbox(
    simulator, client_nif: str, office: pki.Issued, office_nif: str, *, codes=None, **options
) -> MailboxContext:
    """A client's mailbox read with the office's certificate, bajo perfil de apoderamiento."""
    return _context(
        simulator,
        client_nif,
        credential(office, kind=CertificateKind.PERSONA_FISICA, holder_nif=office_nif),
        codes,
        as_proxy=True,
        **options,
    )


def _context(simulator, nif, cred, codes, **options) -> MailboxContext:
    context = {"base_url": simulator.url, "ca_bundle": simulator.ca_bundle, "timeout_s": 5.0, **options}
    return MailboxContext(SEDE, nif, cred, ssid_codes=tuple(codes if codes is not None else [ccc(1234567)]), **context)
