"""Tax identifiers: normalised and validated with python-stdnum, with messages a person understands."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from babel import Locale
from flask_babel import lazy_gettext as _l
from stdnum import get_cc_module
from stdnum.es import cif, dni, nie, nif
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidLength, ValidationError
from stdnum.it import codicefiscale, iva

from core.clients.models import COMPANY, ES_CIF, ES_NIE, ES_NIF, IT_CF, IT_PIVA, OTHER, PERSON
from core.errors import DomainError

TYPE_NAMES = {
    ES_NIF: "DNI",
    ES_NIE: "NIE",
    ES_CIF: "CIF",
    IT_CF: "codice fiscale",
    IT_PIVA: "partita IVA",
    OTHER: _l("tax id"),
}

# ISO 3166 countries as CLDR knows them, without its regions and placeholders (EU, UN, ZZ...).
COUNTRIES = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}
)


@dataclass(frozen=True)
class TaxId:
    value: str
    type: str
    # What the identifier says about the holder; None when it does not tell.
    kind: str | None


def _problem(error: ValidationError, type_name, value: str) -> DomainError:
    if isinstance(error, InvalidChecksum):
        message = _l("The %(type)s %(value)s is not valid: its check character is wrong.", type=type_name, value=value)
    elif isinstance(error, InvalidLength):
        message = _l("The %(type)s %(value)s has the wrong length.", type=type_name, value=value)
    elif isinstance(error, InvalidComponent):
        message = _l("The %(type)s %(value)s contains an impossible part.", type=type_name, value=value)
    else:
        message = _l("The %(type)s %(value)s has the wrong format.", type=type_name, value=value)
    return DomainError(message, field="tax_id")


def _check(module, value: str, type_code: str, type_name: str | None = None) -> str:
    try:
        return module.validate(value)
    except ValidationError as error:
        raise _problem(error, type_name or TYPE_NAMES[type_code], value) from error


def _spanish(value: str) -> TaxId:
    compact = dni.compact(value)
    if not compact:
        raise DomainError(_l("The tax id is required."), field="tax_id")
    if compact[0] in "XYZ":
        return TaxId(_check(nie, compact, ES_NIE), ES_NIE, PERSON)
    if compact[0].isdigit():
        return TaxId(_check(dni, compact, ES_NIF), ES_NIF, PERSON)
    if compact[0] in "KLM":
        # Special NIFs of people without a DNI (minors, non-residents): a DNI-style check letter,
        # but the holder has no DNI, so the message names it NIF.
        return TaxId(_check(nif, compact, ES_NIF, "NIF"), ES_NIF, PERSON)
    return TaxId(_check(cif, compact, ES_CIF), ES_CIF, COMPANY)


def _italian(value: str) -> TaxId:
    compact = codicefiscale.compact(value)
    if compact.startswith("IT") and len(compact) == 13 and compact[2:].isdigit():
        # A partita IVA written as a VAT number, with the country in front.
        compact = compact[2:]
    if not compact:
        raise DomainError(_l("The tax id is required."), field="tax_id")
    if len(compact) == 11 and compact.isdigit():
        return TaxId(_check(iva, compact, IT_PIVA), IT_PIVA, COMPANY)
    return TaxId(_check(codicefiscale, compact, IT_CF), IT_CF, PERSON)


_OTHER_PATTERN = re.compile(r"^[A-Z0-9]{3,32}$")


def _other(country: str, value: str) -> TaxId:
    compact = re.sub(r"[\s.\-/]", "", value).upper()
    if not _OTHER_PATTERN.match(compact):
        raise DomainError(
            _l("The tax id must have 3 to 32 letters and digits (spaces, dots and dashes are ignored)."),
            field="tax_id",
        )
    vat = get_cc_module(country.lower(), "vat") if compact.startswith(country) else None
    if vat is not None:
        # Written with the country in front it is that country's VAT number, which has a checksum.
        try:
            vat.validate(compact)
        except ValidationError as error:
            raise _problem(error, _l("VAT number"), compact) from error
    return TaxId(compact, OTHER, None)


# What people and spreadsheets put between the characters of a tax id (12.345.678-Z, B-12 345 674,
# a non-breaking space): never part of it.
_SEPARATORS = re.compile(r"[\s.\-]+")


def compact(value: str) -> str:
    """``value`` without spaces, dots and hyphens, in capitals: the form a tax id is stored in."""
    return _SEPARATORS.sub("", value or "").upper()


# An import checks each row's tax id twice (to find the client it names, then with the rest of
# the row): the second time is a lookup. Only valid ids are kept (an error is raised anew).
@functools.lru_cache(maxsize=32768)
def parse_tax_id(country: str, value: str) -> TaxId:
    """Validate ``value`` as a tax id of ``country`` (ISO 3166 alpha-2) and return it normalised:
    spaces, dots and hyphens anywhere are accepted and dropped, letters are capitals."""
    country = (country or "").upper()
    value = compact(value)
    if not value:
        raise DomainError(_l("The tax id is required."), field="tax_id")
    if country == "ES":
        return _spanish(value)
    if country == "IT":
        return _italian(value)
    if country not in COUNTRIES:
        raise DomainError(_l("Choose the country of the tax id."), field="country")
    return _other(country, value)
