"""A holder's address (INDIRIZZI DEL TITOLARE): street, comune, provincia, CAP, nazione and the
contact numbers that go with it. Every field is mandatory except fax and cellulare (seed).

In Italy the comune must exist and fit the provincia and the CAP (``plugins.pec.comuni``);
abroad, comune and postcode are free text and the provincia is ``EE``, as Italian registries
write it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from babel import Locale
from flask_babel import lazy_gettext as _l

from plugins.pec.comuni import comuni, fold
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.phones import FAX, MOBILE, PHONE, Phone, parse_optional_phone, parse_phone

ITALY = "IT"
ABROAD = "EE"


@functools.cache
def _country_names() -> dict[str, str]:
    """Folded country names (Italian, English, Spanish) and ISO codes → ISO 3166 alpha-2 code."""
    names: dict[str, str] = {}
    for language in ("en", "es", "it"):
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha() and code not in {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}:
                names[fold(name)] = code
                names[code.lower()] = code
    return names


def parse_country(value: str, field: str = "nazione") -> str:
    """``"Italia"``, ``"italy"``, ``"IT"`` → ``"IT"``; empty means Italy."""
    text = (value or "").strip()
    if not text:
        return ITALY
    code = _country_names().get(fold(text)) or _country_names().get(text.lower())
    if code is None:
        raise PecError(_l("%(value)s is not a country.", value=text), field=field, code="country.unknown")
    return code


@dataclass(frozen=True)
class Address:
    street: str
    cap: str
    comune: str
    provincia: str  # the sigla; EE abroad
    nazione: str  # ISO 3166 alpha-2
    codice_istat: str | None  # the comune's, in Italy
    phone: Phone
    mobile: Phone | None
    fax: Phone | None

    @property
    def one_line(self) -> str:
        if self.nazione == ITALY:
            return f"{self.street}, {self.cap} {self.comune} ({self.provincia})"
        return f"{self.street}, {self.cap} {self.comune}, {self.nazione}".replace(" , ", ", ")


def normalise_street(value: str, field: str = "street") -> str:
    street = " ".join((value or "").split())
    if not street:
        raise PecError(_l("Enter the address (street and number)."), field=field, code="street.required")
    if len(street) > 200:
        raise PecError(_l("At most %(n)s characters.", n=200), field=field, code="street.length")
    if len(re.findall(r"[^\W_]", street)) < 3:
        raise PecError(_l("Enter the address (street and number)."), field=field, code="street.short")
    return street


def validate_address(
    street: str,
    comune: str,
    provincia: str,
    cap: str,
    nazione: str = "",
    phone: str = "",
    mobile: str = "",
    fax: str = "",
) -> Address:
    """Every field of an address checked together; a ``PecErrors`` lists each problem with its field."""
    errors: list[PecError] = []

    def attempt(check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except PecError as error:
            errors.append(error)
            return None

    clean_street = attempt(normalise_street, street)
    country = attempt(parse_country, nazione) or ITALY
    region = country
    place = clean_cap = None
    comune_name = " ".join((comune or "").split())
    sigla = (provincia or "").strip().upper()
    if country == ITALY:
        place = attempt(comuni().get, comune_name, sigla or None)
        if place is not None:
            comune_name, sigla = place.name, place.sigla
            clean_cap = attempt(comuni().check_cap, place, cap)
        elif not (cap or "").strip():
            errors.append(PecError(_l("Enter the CAP."), field="cap", code="cap.required"))
    else:
        if not comune_name:
            errors.append(PecError(_l("Enter the town."), field="comune", code="comune.required"))
        sigla = ABROAD
        clean_cap = re.sub(r"\s+", " ", (cap or "").strip()).upper()
        if not clean_cap:
            errors.append(PecError(_l("Enter the postcode."), field="cap", code="cap.required"))
        elif not re.fullmatch(r"[A-Z0-9][A-Z0-9 \-]{1,9}", clean_cap):
            errors.append(PecError(_l("This is not a postcode."), field="cap", code="cap.format"))
    clean_phone = attempt(parse_phone, phone, PHONE, region)
    clean_mobile = attempt(parse_optional_phone, mobile, MOBILE, region)
    clean_fax = attempt(parse_optional_phone, fax, FAX, region)
    if errors:
        raise PecErrors(errors)
    return Address(
        street=clean_street,
        cap=clean_cap,
        comune=comune_name,
        provincia=sigla,
        nazione=country,
        codice_istat=place.codice_istat if place is not None else None,
        phone=clean_phone,
        mobile=clean_mobile,
        fax=clean_fax,
    )
