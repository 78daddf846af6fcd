"""Who a holder is: codice fiscale, partita IVA and names, validated and normalised.

The codice fiscale is validated with python-stdnum (check character, the date it encodes; an
11-digit one is a company's, checked as a partita IVA) and decoded with python-codicefiscale for
what pre-fills the holder form: birth date, sex, birth comune and provincia (or the country of a
person born abroad). Omocodia — digits replaced by letters to tell apart two people who would have
the same code — is understood everywhere: such a code is a different person's, valid as it is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, ValidationError
from stdnum.it import codicefiscale as stdnum_cf
from stdnum.it import iva as stdnum_iva

from plugins.pec.comuni import comuni, fold
from plugins.pec.errors import PecError, PecErrors

# The positions (0-based) where omocodia may replace a digit with a letter, and the letters.
OMOCODIA_POSITIONS = (6, 7, 9, 10, 12, 13, 14)
OMOCODIA_LETTERS = "LMNPQRSTUV"
_FROM_OMOCODIA = str.maketrans(OMOCODIA_LETTERS, "0123456789")
MONTH_LETTERS = "ABCDEHLMPRST"

PERSON = "person"  # persona fisica
COMPANY = "company"  # persona giuridica (or any subject with a numeric codice fiscale)


def _compact(value: str) -> str:
    return re.sub(r"[\s\-.:/]", "", value or "").upper()


# --- codice fiscale ---------------------------------------------------------------------


def _cf_layout_problem(code: str):
    """Which part of a 16-character code is not written as a codice fiscale is, as a message."""
    digit = "0123456789" + OMOCODIA_LETTERS
    parts = (
        (slice(0, 6), str.isalpha, _l("the first six characters (from the surname and name) must be letters")),
        (slice(6, 8), lambda s: all(c in digit for c in s), _l("the 7th and 8th characters are the year of birth")),
        (
            slice(8, 9),
            lambda s: s in MONTH_LETTERS,
            _l("the 9th character is the month letter (A B C D E H L M P R S T)"),
        ),
        (slice(9, 11), lambda s: all(c in digit for c in s), _l("the 10th and 11th characters are the day of birth")),
        (slice(11, 12), str.isalpha, _l("the 12th character is the letter of the birthplace code")),
        (
            slice(12, 15),
            lambda s: all(c in digit for c in s),
            _l("the 13th to 15th characters are digits of the birthplace code"),
        ),
        (slice(15, 16), str.isalpha, _l("the last character is the check letter")),
    )
    for where, good, message in parts:
        if not good(code[where]):
            return message
    return None


def validate_codice_fiscale(value: str, field: str = "codice_fiscale") -> str:
    """The codice fiscale, normalised (upper case, no spaces), or a ``PecError`` saying what is wrong.

    16 characters: a person's (omocodia accepted). 11 digits: a company's, or a person's
    provisional one (checked as a partita IVA, whose format it shares).
    """
    code = _compact(value)
    if not code:
        raise PecError(_l("Enter the codice fiscale."), field=field, code="cf.required")
    if len(code) == 11 and code.isdigit():
        return _numeric_code(code, field, _l("codice fiscale"))
    if len(code) != 16:
        raise PecError(
            _l(
                "The codice fiscale %(value)s has %(n)s characters: a person's has 16, a company's 11 digits.",
                value=code,
                n=len(code),
            ),
            field=field,
            code="cf.length",
        )
    problem = _cf_layout_problem(code)
    if problem is not None:
        raise PecError(
            _l("The codice fiscale %(value)s is not written correctly: %(problem)s.", value=code, problem=problem),
            field=field,
            code="cf.format",
        )
    try:
        return stdnum_cf.validate(code)
    except InvalidChecksum as error:
        raise PecError(
            _l(
                "The codice fiscale %(value)s is not valid: its last (check) letter does not match the other"
                " characters. Look for a typing mistake.",
                value=code,
            ),
            field=field,
            code="cf.checksum",
        ) from error
    except ValidationError as error:
        raise PecError(
            _l("The codice fiscale %(value)s contains an impossible birth date.", value=code),
            field=field,
            code="cf.date",
        ) from error


def is_personal_code(code: str) -> bool:
    """Whether a (valid) codice fiscale is the 16-character one of a person."""
    return len(_compact(code)) == 16


def is_omocode(code: str) -> bool:
    """Whether a person's codice fiscale has digits replaced by letters (omocodia)."""
    code = _compact(code)
    return len(code) == 16 and any(code[i] in OMOCODIA_LETTERS for i in OMOCODIA_POSITIONS)


def base_code(code: str) -> str:
    """The code with omocodia undone (letters back to digits, check letter recomputed): the code the
    person would have had without a namesake. Equal to ``code`` when it is not an omocode."""
    code = _compact(code)
    chars = list(code)
    for i in OMOCODIA_POSITIONS:
        chars[i] = chars[i].translate(_FROM_OMOCODIA)
    body = "".join(chars[:15])
    return body + stdnum_cf.calc_check_digit(body)


@dataclass(frozen=True)
class CodiceFiscaleData:
    """What a person's codice fiscale says about them: the holder form's pre-filled fields."""

    code: str
    sex: str  # "M" or "F"
    birth_date: date
    birthplace_code: str  # the Belfiore code (a comune's codice catastale, or Z... for a country)
    born_abroad: bool
    birth_comune: str | None  # the comune (its name today when it still exists); None abroad or unknown
    birth_provincia: str | None  # its sigla; None abroad or unknown
    birth_country: str | None  # the country, for a person born abroad
    omocode: bool
    base_code: str


def _birth_date(code: str, today: date) -> date:
    year = int(code[6:8].translate(_FROM_OMOCODIA))
    month = MONTH_LETTERS.index(code[8]) + 1
    day = int(code[9:11].translate(_FROM_OMOCODIA)) % 40
    # Two digits of the year: the latest century that puts the birth on or before today.
    century = (today.year // 100) * 100
    for full in (century + year, century + year - 100):
        try:
            born = date(full, month, day)
        except ValueError:
            continue
        if born <= today:
            return born
    raise PecError(
        _l("The codice fiscale %(value)s contains an impossible birth date.", value=code),
        field="codice_fiscale",
        code="cf.date",
    )


def decode_codice_fiscale(value: str, today: date | None = None) -> CodiceFiscaleData:
    """Decode a person's codice fiscale (validated first). ``today`` decides the century of the year.

    The birthplace comes from python-codicefiscale's ANPR data (comuni past and present, foreign
    countries); a comune that still exists is named as ISTAT names it today, with its provincia.
    An unknown birthplace code leaves the birthplace empty rather than refusing a code that
    passes the official check.
    """
    from codicefiscale import codicefiscale as decoder

    field = "codice_fiscale"
    code = validate_codice_fiscale(value, field)
    if not is_personal_code(code):
        raise PecError(
            _l("The codice fiscale %(value)s is a company's (11 digits): it tells no birth data.", value=code),
            field=field,
            code="cf.not_personal",
        )
    today = today or date.today()
    birth_date = _birth_date(code, today)
    sex = "F" if int(code[9:11].translate(_FROM_OMOCODIA)) > 40 else "M"
    place_code = code[11] + code[12:15].translate(_FROM_OMOCODIA)
    born_abroad = place_code.startswith("Z")
    comune_name = provincia = country = None
    try:
        place = decoder.decode(code).get("birthplace") or {}
    except ValueError:
        place = {}
    if born_abroad:
        country = place.get("name") or None
    else:
        current = comuni().by_codice_catastale(place_code)
        if current is not None:
            comune_name, provincia = current.name, current.sigla
        elif place:
            comune_name, provincia = place.get("name") or None, place.get("province") or None
    return CodiceFiscaleData(
        code=code,
        sex=sex,
        birth_date=birth_date,
        birthplace_code=place_code,
        born_abroad=born_abroad,
        birth_comune=comune_name,
        birth_provincia=provincia,
        birth_country=country,
        omocode=is_omocode(code),
        base_code=base_code(code),
    )


def name_mismatches(code: str, last_name: str, first_name: str) -> list[str]:
    """The fields (``"last_name"``, ``"first_name"``) whose letters differ from those a person's
    codice fiscale encodes. A warning to show, not a refusal: a code keeps the letters of the name
    it was issued for (a later change of name, a transliteration)."""
    from codicefiscale import codicefiscale as encoder

    code = _compact(code)
    if len(code) != 16:
        return []
    wrong = []
    if last_name.strip() and encoder.encode_lastname(last_name) != code[0:3]:
        wrong.append("last_name")
    if first_name.strip() and encoder.encode_firstname(first_name) != code[3:6]:
        wrong.append("first_name")
    return wrong


# --- partita IVA ------------------------------------------------------------------------


def _numeric_code(code: str, field: str, kind) -> str:
    try:
        return stdnum_iva.validate(code)
    except InvalidChecksum as error:
        raise PecError(
            _l(
                "The %(kind)s %(value)s is not valid: its last (check) digit does not match the others."
                " Look for a typing mistake.",
                kind=kind,
                value=code,
            ),
            field=field,
            code="piva.checksum",
        ) from error
    except InvalidComponent as error:
        raise PecError(
            _l(
                "The %(kind)s %(value)s is not valid: its 8th to 10th digits are not the code of a tax office.",
                kind=kind,
                value=code,
            ),
            field=field,
            code="piva.office",
        ) from error
    except InvalidFormat as error:
        raise PecError(
            _l("The %(kind)s %(value)s is not valid: it cannot start with seven zeros.", kind=kind, value=code),
            field=field,
            code="piva.format",
        ) from error
    except ValidationError as error:  # pragma: no cover - lengths and digits are checked before
        raise PecError(_l("The %(kind)s %(value)s is not valid.", kind=kind, value=code), field=field) from error


def validate_partita_iva(value: str, field: str = "partita_iva") -> str:
    """The partita IVA as 11 digits (an ``IT`` in front is dropped), or a ``PecError``."""
    code = _compact(value)
    if code.startswith("IT"):
        code = code[2:]
    if not code:
        raise PecError(_l("Enter the partita IVA."), field=field, code="piva.required")
    if not code.isdigit():
        raise PecError(
            _l("The partita IVA %(value)s must have digits only.", value=code), field=field, code="piva.format"
        )
    if len(code) != 11:
        raise PecError(
            _l("The partita IVA %(value)s has %(n)s digits: it must have 11.", value=code, n=len(code)),
            field=field,
            code="piva.length",
        )
    return _numeric_code(code, field, _l("partita IVA"))


# --- names ------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PERSON_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]*)*$")


def _clean(value: str) -> str:
    value = unicodedata.normalize("NFC", value or "").translate(_APOSTROPHES)
    value = _CONTROL.sub(" ", value)
    return " ".join(value.split())


def _smart_title(value: str) -> str:
    # Capitalise each word, also after an apostrophe or a hyphen: d'angelo → D'Angelo.
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0)[0].upper() + m.group(0)[1:].lower(), value)


def normalise_person_name(value: str, field: str = "last_name", max_length: int = 100) -> str:
    """A nome or cognome as it should be stored: single spaces, straight apostrophes, and — when it
    was typed all in capitals or all in small letters — capitalised word by word (``DE LUCA`` →
    ``De Luca``, ``d'angelo`` → ``D'Angelo``). Mixed case is kept as typed (``McDonald``)."""
    name = _clean(value)
    if not name:
        message = _l("Enter the surname.") if field == "last_name" else _l("Enter the name.")
        raise PecError(message, field=field, code="name.required")
    if len(name) > max_length:
        raise PecError(
            _l("At most %(n)s characters.", n=max_length),
            field=field,
            code="name.length",
        )
    if not _PERSON_NAME.match(name):
        raise PecError(
            _l("Use letters only (apostrophes, hyphens, dots and spaces between them are allowed)."),
            field=field,
            code="name.characters",
        )
    if name == name.upper() or name == name.lower():
        name = _smart_title(name)
    return name


def normalise_company_name(value: str, field: str = "company_name", max_length: int = 200) -> str:
    """A ragione sociale as it should be stored: single spaces, straight apostrophes; its case is
    the company's own (``ACME S.R.L.`` stays so)."""
    name = _clean(value)
    if not name:
        raise PecError(_l("Enter the ragione sociale."), field=field, code="company.required")
    if len(name) > max_length:
        raise PecError(_l("At most %(n)s characters.", n=max_length), field=field, code="company.length")
    if len(fold(name).replace(" ", "")) < 2:
        raise PecError(
            _l("The ragione sociale must have at least two letters or digits."), field=field, code="company.short"
        )
    return name


# Legal forms as people write them, folded, and one canonical spelling for matching.
_LEGAL_FORMS = {
    "srl": "srl",
    "s r l": "srl",
    "srls": "srls",
    "s r l s": "srls",
    "spa": "spa",
    "s p a": "spa",
    "sas": "sas",
    "s a s": "sas",
    "snc": "snc",
    "s n c": "snc",
    "sapa": "sapa",
    "s a p a": "sapa",
    "soc coop": "coop",
    "societa cooperativa": "coop",
    "scarl": "scarl",
    "s c a r l": "scarl",
    "ss": "ss",
    "s s": "ss",
}


def company_key(name: str) -> str:
    """A key to find the same company however its name is written: ``"Acme S.r.l."``, ``"ACME SRL"``
    and ``"acme srl"`` share one."""
    key = fold(name)
    for written in sorted(_LEGAL_FORMS, key=len, reverse=True):
        if key.endswith(" " + written) or key == written:
            key = key[: len(key) - len(written)].strip() + " " + _LEGAL_FORMS[written]
            break
    return key.strip()


# --- a holder's identity ----------------------------------------------------------------


@dataclass(frozen=True)
class HolderIdentity:
    kind: str  # PERSON or COMPANY
    codice_fiscale: str
    partita_iva: str | None
    first_name: str | None
    last_name: str | None
    company_name: str | None

    @property
    def tax_ids(self) -> frozenset[str]:
        """Every identifier of the holder: a deleted box's name is reserved for any of them."""
        return frozenset(x for x in (self.codice_fiscale, self.partita_iva) if x)

    @property
    def display_name(self) -> str:
        if self.kind == COMPANY:
            return self.company_name or ""
        return f"{self.last_name} {self.first_name}"


def validate_holder_identity(
    kind: str,
    codice_fiscale: str,
    partita_iva: str = "",
    first_name: str = "",
    last_name: str = "",
    company_name: str = "",
) -> HolderIdentity:
    """Every identity field of a holder checked together; a ``PecErrors`` lists every problem.

    A person (persona fisica) has a 16-character codice fiscale (or an 11-digit provisional one),
    a name and a surname, and a partita IVA when they run a business; a company (persona
    giuridica) has an 11-digit codice fiscale and a ragione sociale, and a partita IVA unless it
    has none (an association). A company whose codice fiscale and partita IVA are one number may
    give it once.
    """
    errors: list[PecError] = []

    def attempt(check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except PecError as error:
            errors.append(error)
            return None

    if kind not in (PERSON, COMPANY):
        raise PecErrors([PecError(_l("Choose persona fisica or persona giuridica."), field="kind", code="kind")])
    cf = attempt(validate_codice_fiscale, codice_fiscale)
    piva = attempt(validate_partita_iva, partita_iva) if (partita_iva or "").strip() else None
    first = last = company = None
    if kind == PERSON:
        last = attempt(normalise_person_name, last_name, "last_name")
        first = attempt(normalise_person_name, first_name, "first_name")
    else:
        company = attempt(normalise_company_name, company_name)
        if cf is not None and is_personal_code(cf):
            errors.append(
                PecError(
                    _l("A company's codice fiscale has 11 digits; %(value)s is a person's.", value=cf),
                    field="codice_fiscale",
                    code="cf.company_personal",
                )
            )
    if errors:
        raise PecErrors(errors)
    return HolderIdentity(kind, cf, piva, first, last, company)
