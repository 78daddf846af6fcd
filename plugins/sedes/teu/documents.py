"""Spanish document numbers (DNI, NIE, NIF of companies) as an edict's text shows them.

An edict identifies the person notified by the full number of their document and never by name
(LOPDGDD, disposición adicional 7ª), but it writes it in many ways: ``12345678Z``, ``12.345.678-Z``,
``12345678 Z``, ``X-1234567-L``, without the check letter (``12345678``), split over two lines of a
narrow table cell (``123456`` / ``78Z``), with the ``ES`` of a VAT number. ``numbers_in(text)``
finds them all and gives each in its one normal form (``12345678Z``), so that a client matches by
equality and nothing else:

- a form with its check character counts only when that character is right (``12345678A`` is
  somebody's typo or somebody else, not the client ``12345678Z``);
- a form without it counts only when no letter follows it (``12345678 A``: a wrong letter again),
  and only as a number of its own: never a piece of a longer number (``112345678``,
  ``2024/12345678``, ``1.12.345.678``), nor pieces joined across a plain space (two cells of a
  table), only across a line break or the dots of thousands;
- masked numbers (``***4567**``) and partial ones never make a full number.
"""

from __future__ import annotations

import re
import unicodedata

from stdnum.es import cif, dni, nie, nif

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
MAX_PARTS = 5  # the pieces one number may come in (12.345.678-Z is four)

_TOKEN = re.compile(r"[A-Z0-9]+")
_GLUE = re.compile(r"^[ \t\r\n.\-]{1,3}$")  # what may stand between the pieces of one number
_TIGHT = {".", "-", "/"}  # what joins a number to a longer one it belongs to
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212\u00ad"), "-")

_WITH_LETTER_DNI = re.compile(r"^\d{7,8}[A-Z]$")
_WITH_LETTER_NIE = re.compile(r"^[XYZ]\d{7}[A-Z]$")
_WITH_LETTER_KLM = re.compile(r"^[KLM]\d{7}[A-Z]$")
_COMPANY = re.compile(r"^[ABCDEFGHJNPQRSUVW]\d{7}[0-9A-J]$")
_BARE_DNI = re.compile(r"^\d{8}$")
_BARE_NIE = re.compile(r"^[XYZ]\d{7}$")


def _dni_letter(number: int) -> str:
    return DNI_LETTERS[number % 23]


def normal(value: str) -> str | None:
    """The normal form of one document number with its check character (``12.345.678-z`` →
    ``12345678Z``; a DNI of seven digits gets its leading zero); None when it is not a valid one."""
    compact = re.sub(r"[\s.\-]", "", (value or "").translate(_DASHES)).upper()
    if compact.startswith("ES") and len(compact) > 9:
        compact = compact[2:]
    if _WITH_LETTER_DNI.match(compact):
        compact = compact.zfill(9)
        return compact if dni.is_valid(compact) else None
    if _WITH_LETTER_NIE.match(compact):
        return compact if nie.is_valid(compact) else None
    if _WITH_LETTER_KLM.match(compact):
        return compact if nif.is_valid(compact) else None
    if _COMPANY.match(compact):
        return compact if cif.is_valid(compact) else None
    return None


def _completed(bare: str) -> str:
    """A number without its letter, with the letter it must have."""
    if bare[0] in "XYZ":
        return bare + _dni_letter(int(str("XYZ".index(bare[0])) + bare[1:]))
    return bare + _dni_letter(int(bare))


def _prepared(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").translate(_DASHES).upper()


def numbers_in(text: str) -> set[str]:
    """Every document number the text names in full, in normal form (see the module's rules)."""
    text = _prepared(text)
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    spans: list[tuple[int, int, str]] = []  # (first piece, last piece, number)
    for first in range(len(tokens)):
        before = text[tokens[first - 1][2] : tokens[first][1]] if first else " "
        if before in _TIGHT and tokens[first - 1][0][-1].isdigit():
            continue  # a piece of a longer number
        joined = ""
        bare_glue = True  # every joint is a line break or a dot of thousands
        for last in range(first, min(first + MAX_PARTS, len(tokens))):
            if last > first:
                glue = text[tokens[last - 1][2] : tokens[last][1]]
                if not _GLUE.match(glue):
                    break
                bare_glue = bare_glue and (glue == "." or "\n" in glue)
            joined += tokens[last][0]
            if len(joined) > 11:
                break
            after = text[tokens[last][2] : tokens[last + 1][1]] if last + 1 < len(tokens) else " "
            following = tokens[last + 1][0] if last + 1 < len(tokens) else ""
            if after in _TIGHT and following[:1].isdigit():
                continue  # the number goes on
            number = normal(joined) if joined[-1].isalpha() or _COMPANY.match(joined) else None
            if number:
                spans.append((first, last, number))
            elif bare_glue and (_BARE_DNI.match(joined) or _BARE_NIE.match(joined)):
                lettered = len(following) == 1 and following.isalpha() and _GLUE.match(after)
                if not lettered:
                    spans.append((first, last, _completed(joined)))
    # A number inside a longer one found at the same place is not a number of its own: the
    # 1234567L of X-1234567-L, the 12345674 of B-12345674.
    return {
        number
        for first, last, number in spans
        if not any(start <= first and last <= end and (start, end) != (first, last) for start, end, _ in spans)
    }


def client_number(tax_id: str) -> str | None:
    """A client's tax id in the same normal form (None for one that is not Spanish)."""
    return normal(tax_id)
