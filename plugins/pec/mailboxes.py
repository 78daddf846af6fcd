"""The name of a box (casella): its syntax, whether it is free on its domain, and who may take back
a deleted one.

An address is ``<casella>@<dominio PEC>``. The gestori follow RFC 5321/5322 with restrictions of
their own; the rule here (research/pec.md §4) is a lowercase local part of letters, digits and
``. _ -``, starting and ending with a letter or digit, no two punctuation marks in a row, at
most 64 characters; a few names (postmaster, abuse...) belong to the domain. A name is unique on
its domain; the name of a deleted box stays reserved for its previous holder (same codice fiscale
or partita IVA, the AgID rule), for ever unless the gestore's policy says how long.

The rules are pure functions over the data they need: the database layer fetches the boxes with
the same name on the same domain (an indexed lookup) and passes them in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import lazy_gettext as _l

from plugins.pec.errors import PecError
from plugins.pec.lifecycle import BoxState

# RFC 2142 role addresses and the like: they belong to whoever runs the domain.
RESERVED_NAMES = frozenset(
    {
        "postmaster",
        "abuse",
        "hostmaster",
        "webmaster",
        "mailer-daemon",
        "root",
        "noc",
        "security",
        "noreply",
        "no-reply",
    }
)
_ALLOWED = re.compile(r"^[a-z0-9._-]+$")
_PUNCTUATION = "._-"
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class NamePolicy:
    """The gestore's rules for box names."""

    min_length: int = 1
    max_length: int = 64
    reserved: frozenset[str] = field(default=RESERVED_NAMES)
    # Days a deleted box's name stays reserved for its previous holder; None: for ever.
    reservation_days: int | None = None


DEFAULT_NAME_POLICY = NamePolicy()


def _ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def suggest_local_part(text: str) -> str:
    """What a name typed freely could be as a box name: accents dropped, lower case, spaces and
    other marks turned into dots, no leading, trailing or doubled punctuation. May be empty."""
    text = _ascii_fold(text or "").lower()
    text = re.sub(r"[^a-z0-9._-]+", ".", text)
    text = re.sub(r"[._-]{2,}", lambda m: m.group(0)[0], text)
    return text.strip(_PUNCTUATION)[:64].strip(_PUNCTUATION)


def normalise_local_part(value: str, policy: NamePolicy = DEFAULT_NAME_POLICY, field: str = "name") -> str:
    """The box name in its stored form (lower case), or a ``PecError`` that says what to change."""
    name = (value or "").strip().lower()
    if not name:
        raise PecError(_l("Enter the name of the box (the part before @)."), field=field, code="name.required")
    if "@" in name:
        raise PecError(
            _l("Enter only the part before @: the domain is chosen separately."), field=field, code="name.at"
        )
    if not _ALLOWED.match(name):
        suggestion = suggest_local_part(name)
        if suggestion and suggestion != name:
            message = _l(
                "A box name may have only letters without accents, digits and . _ - (for example %(suggestion)s).",
                suggestion=suggestion,
            )
        else:
            message = _l("A box name may have only letters without accents, digits and . _ -")
        raise PecError(message, field=field, code="name.characters")
    if len(name) < policy.min_length:
        raise PecError(
            _l("A box name has at least %(n)s characters.", n=policy.min_length), field=field, code="name.short"
        )
    if len(name) > policy.max_length:
        raise PecError(
            _l("A box name has at most %(n)s characters.", n=policy.max_length), field=field, code="name.long"
        )
    if name[0] in _PUNCTUATION or name[-1] in _PUNCTUATION:
        raise PecError(_l("A box name starts and ends with a letter or a digit."), field=field, code="name.edges")
    if re.search(r"[._-]{2}", name):
        raise PecError(_l("A box name cannot have two of . _ - in a row."), field=field, code="name.punctuation")
    if name in policy.reserved:
        raise PecError(
            _l("%(name)s is reserved for the administration of the domain.", name=name),
            field=field,
            code="name.reserved",
        )
    return name


def normalise_domain(value: str, field: str = "domain") -> str:
    """A domain name in lower case ASCII (an internationalised one in its ``xn--`` form)."""
    text = (value or "").strip().rstrip(".").lower()
    if text.startswith("@"):
        text = text[1:]
    if not text:
        raise PecError(_l("Choose the domain."), field=field, code="domain.required")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise PecError(_l("%(value)s is not a domain name.", value=value), field=field, code="domain.format") from error
    labels = text.split(".")
    if (
        len(text) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or not re.match(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]+)$", labels[-1])
    ):
        raise PecError(_l("%(value)s is not a domain name.", value=value), field=field, code="domain.format")
    return text


def full_address(local_part: str, domain: str) -> str:
    """``local@domain`` from already normalised parts; an address has at most 254 characters."""
    address = f"{local_part}@{domain}"
    if len(address) > 254:
        raise PecError(_l("The address is longer than 254 characters."), field="name", code="name.long")
    return address


def split_address(value: str, policy: NamePolicy = DEFAULT_NAME_POLICY, field: str = "address") -> tuple[str, str]:
    """``"Mario.Rossi@PEC.it"`` → ``("mario.rossi", "pec.it")``, each part checked."""
    text = (value or "").strip()
    if text.count("@") != 1:
        raise PecError(_l("%(value)s is not an e-mail address.", value=text), field=field, code="address.format")
    local, _, domain = text.partition("@")
    return normalise_local_part(local, policy, field), normalise_domain(domain, field)


# --- availability -----------------------------------------------------------------------


@dataclass(frozen=True)
class NameUse:
    """A box registered before with the same name on the same domain, as the database has it."""

    state: BoxState
    holder_tax_ids: frozenset[str]  # the codice fiscale and partita IVA of its holder
    deleted_on: date | None = None  # when it became CANCELLATA


# Boxes that never existed at the gestore do not hold their name.
_NOT_HOLDING = {BoxState.REFUSED}


def check_name_available(
    local_part: str,
    domain: str,
    holder_tax_ids: Collection[str],
    uses: Iterable[NameUse],
    today: date,
    policy: NamePolicy = DEFAULT_NAME_POLICY,
    field: str = "name",
) -> None:
    """Refuse ``local_part@domain`` for the holder with ``holder_tax_ids`` when a live box has it, or
    when a deleted box had it and its reservation for a different holder still runs."""
    mine = {x.strip().upper() for x in holder_tax_ids if x}
    address = f"{local_part}@{domain}"
    for use in uses:
        if use.state in _NOT_HOLDING:
            continue
        same_holder = bool(mine & {x.upper() for x in use.holder_tax_ids})
        if use.state != BoxState.DELETED:
            if same_holder:
                raise PecError(
                    _l("This holder already has the box %(address)s.", address=address), field=field, code="name.own"
                )
            raise PecError(
                _l("%(address)s is already taken: choose another name.", address=address),
                field=field,
                code="name.taken",
            )
        if same_holder:
            continue
        if policy.reservation_days is None or use.deleted_on is None:
            reserved = True
        else:
            reserved = today < use.deleted_on + timedelta(days=policy.reservation_days)
        if reserved:
            raise PecError(
                _l(
                    "%(address)s belonged to a deleted box and can only be given back to its holder"
                    " (the same codice fiscale or partita IVA).",
                    address=address,
                ),
                field=field,
                code="name.reserved_for_holder",
            )


def check_holder_change(old_tax_ids: Collection[str], new_tax_ids: Collection[str]) -> None:
    """A subentro (change of holder) keeps the codice fiscale or partita IVA: the new holder record
    must share one with the old (a new legal representative, a corrected name)."""
    old = {x.strip().upper() for x in old_tax_ids if x}
    new = {x.strip().upper() for x in new_tax_ids if x}
    if not old & new:
        raise PecError(
            _l(
                "A box can pass only to a holder with the same codice fiscale or partita IVA: a different"
                " subject needs a new box."
            ),
            field="holder",
            code="subentro.tax_id",
        )
