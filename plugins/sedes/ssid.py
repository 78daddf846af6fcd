"""Seguridad Social identifiers: the CCC (Código de Cuenta de Cotización, an employer's account) and
the NAF (Número de Afiliación, a person's), each checked with its mod-97 control digits.

Both are a two-digit province, a number and two control digits: the CCC's number has 7 digits
(11 in all), the NAF's 8 (12 in all). The control digits are ``base % 97`` where ``base`` is
``province * 10**7 + number`` when the number is below 10,000,000 (an 8-digit NAF number starting
with 0 is read as the old 7-digit one), else the province and the number written one after the
other. (python-stdnum's ``es.ccc`` is a bank account code, not this.)
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from core.api import DomainError

CCC_LENGTH = 11
NAF_LENGTH = 12
SEPARATORS = re.compile(r"[\s/.\-]")


def compact(value: str) -> str:
    """The digits of a code typed with spaces, slashes, dots or dashes."""
    return SEPARATORS.sub("", value or "")


def control_digits(province: str, number: str) -> str:
    """The two control digits of ``province`` (2 digits) and ``number`` (7 or 8 digits)."""
    value = int(number)
    base = int(province) * 10**7 + value if value < 10_000_000 else int(province + number)
    return f"{base % 97:02d}"


def _validate(value: str, length: int, what) -> str:
    digits = compact(value)
    if not digits.isdigit() or len(digits) != length:
        raise DomainError(_l("A %(what)s has %(length)s digits.", what=what, length=length))
    province, number, check = digits[:2], digits[2:-2], digits[-2:]
    if control_digits(province, number) != check:
        raise DomainError(_l("The control digits of this %(what)s are wrong: check the number.", what=what))
    return digits


def validate_ccc(value: str) -> str:
    """The CCC's 11 digits, or ``DomainError`` saying what is wrong."""
    return _validate(value, CCC_LENGTH, _l("CCC"))


def validate_naf(value: str) -> str:
    """The NAF's 12 digits, or ``DomainError`` saying what is wrong."""
    return _validate(value, NAF_LENGTH, _l("NAF"))


def is_valid_ccc(value: str) -> bool:
    try:
        validate_ccc(value)
    except DomainError:
        return False
    return True


def is_valid_naf(value: str) -> bool:
    try:
        validate_naf(value)
    except DomainError:
        return False
    return True


def format_code(digits: str) -> str:
    """A code as people write it: ``28 1234567 42`` (CCC), ``28/12345678/40`` (NAF)."""
    if len(digits) == CCC_LENGTH:
        return f"{digits[:2]} {digits[2:9]} {digits[9:]}"
    if len(digits) == NAF_LENGTH:
        return f"{digits[:2]}/{digits[2:10]}/{digits[10:]}"
    return digits
