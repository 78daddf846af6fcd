"""Phone, cellulare and fax numbers of a holder: real numbers only, stored in E.164.

phonenumbers (Google's libphonenumber data, Italy the default region) decides whether a number
can exist and what kind it is; on top of it, a rule refuses what people type to get past a
mandatory field — ``0000000000``, all-same digits, a subscriber number of one repeated digit,
ascending or descending runs such as ``0123456789`` — several of which libphonenumber accepts
(``3333333333``, ``0611111111``, ``0612345678``).

The seed: the telephone is mandatory, fax and cellulare are optional; a cellulare must be a
mobile number and a fax a fixed line.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import phonenumbers
from flask_babel import lazy_gettext as _l
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from plugins.pec.errors import PecError

DEFAULT_REGION = "IT"

PHONE = "phone"  # telefono comunicazioni: mandatory, any number a person answers
MOBILE = "mobile"  # cellulare: optional, a mobile number
FAX = "fax"  # optional, a fixed line

# The kinds of number each field accepts (libphonenumber's types).
_REACHABLE = {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.VOIP,
    PhoneNumberType.UAN,
    PhoneNumberType.TOLL_FREE,
}
ACCEPTED_TYPES = {
    PHONE: _REACHABLE,
    MOBILE: {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    FAX: {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP, PhoneNumberType.UAN},
}
FIELD_NAMES = {PHONE: "phone", MOBILE: "mobile", FAX: "fax"}

MIN_RUN = 5  # the shortest subscriber number the ascending/descending rule looks at


@dataclass(frozen=True)
class Phone:
    e164: str  # what is stored: +390612345678
    international: str  # +39 06 1234 5678
    national: str  # 06 1234 5678
    type: int  # a phonenumbers.PhoneNumberType value

    @property
    def is_mobile(self) -> bool:
        return self.type == PhoneNumberType.MOBILE

    def display(self, region: str = DEFAULT_REGION) -> str:
        """National format for a number of ``region``, international otherwise."""
        number = phonenumbers.parse(self.e164)
        if phonenumbers.region_code_for_number(number) == region:
            return self.national
        return self.international


def _is_run(digits: str) -> bool:
    """All one digit, or each digit one more (or one less) than the one before, 9→0 and 0→9 wrapping."""
    if len(digits) < 2:
        return False
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({0}, {1}, {9})


def fake_reason(number: phonenumbers.PhoneNumber) -> str | None:
    """Why a number is one people make up, or None. Looks at the whole national number and at the
    subscriber part after the area code or mobile prefix."""
    national = phonenumbers.national_significant_number(number)
    if len(set(national)) == 1:
        return "same_digits"
    if len(national) >= 6 and _is_run(national):
        return "sequence"
    prefix = phonenumbers.length_of_national_destination_code(number)
    subscriber = national[prefix:] if 0 < prefix < len(national) else ""
    if len(subscriber) >= 4 and len(set(subscriber)) == 1:
        return "same_digits"
    if len(subscriber) >= MIN_RUN and _is_run(subscriber):
        return "sequence"
    return None


def parse_phone(value: str, kind: str = PHONE, region: str = DEFAULT_REGION, field: str | None = None) -> Phone:
    """A real number of the ``kind`` the field asks for, or a ``PecError`` that says what is wrong.

    ``+39``/``0039`` or another country's prefix may be written; without one, the number is
    Italian (or ``region``'s). Spaces, dots, dashes, slashes and brackets are ignored; anything
    else (letters, an extension) is refused, as E.164 could not keep it.
    """
    field = field or FIELD_NAMES[kind]
    text = (value or "").strip()
    if not text:
        raise PecError(_l("Enter the telephone number."), field=field, code="phone.required")
    if re.search(r"[^\d\s+().\-/]", text):
        raise PecError(
            _l("A phone number has digits only (and a + in front of the country code)."),
            field=field,
            code="phone.format",
        )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise PecError(_l("%(value)s is not a phone number.", value=text), field=field, code="phone.format") from error
    reason = fake_reason(number)
    if reason is not None:
        raise PecError(
            _l("%(value)s is not a real phone number: enter the number you can be reached on.", value=text),
            field=field,
            code=f"phone.fake.{reason}",
        )
    if not phonenumbers.is_valid_number(number):
        raise PecError(
            _l("%(value)s is not a valid phone number: check the prefix and the number of digits.", value=text),
            field=field,
            code="phone.invalid",
        )
    number_type = phonenumbers.number_type(number)
    if number_type not in ACCEPTED_TYPES[kind]:
        if kind == MOBILE:
            message = _l("%(value)s is not a mobile number.", value=text)
        elif kind == FAX:
            message = _l("%(value)s is not a fixed-line number, as a fax number is.", value=text)
        else:
            message = _l(
                "%(value)s is a premium-rate or service number: enter a personal or office number.", value=text
            )
        raise PecError(message, field=field, code="phone.type")
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        international=phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        type=number_type,
    )


def parse_optional_phone(value: str, kind: str, region: str = DEFAULT_REGION, field: str | None = None) -> Phone | None:
    """``parse_phone`` for an optional field (fax, cellulare): empty gives None."""
    if not (value or "").strip():
        return None
    return parse_phone(value, kind, region, field)
