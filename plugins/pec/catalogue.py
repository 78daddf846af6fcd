"""What a gestore sells: box types with their space, durations in years, renewal modes.

Real panels sell a few types (Aruba: Standard 1 GB, Pro 2 GB + 3 GB of archive, Premium 2 GB +
8 GB), for 1 to 5 years, renewed tacitly or by hand (research/pec.md §1.2). The operator (the
gestore) keeps the catalogue; these defaults seed it. Sizes are in MB and money in cents
(integers, CONVENTIONS).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from flask_babel import lazy_gettext as _l

from plugins.pec.comuni import fold
from plugins.pec.errors import PecError

MIN_YEARS = 1
MAX_YEARS = 5
SPACE_STEP_MB = 512  # extra space is sold in steps of half a gigabyte


class RenewalMode(StrEnum):
    TACIT = "tacit"  # rinnovo tacito: renewed at expiry unless cancelled
    MANUAL = "manual"  # a scadenza: renewed only when someone asks

    @property
    def label(self):
        return _l("Tacit renewal") if self is RenewalMode.TACIT else _l("Renewal by request")


_RENEWAL_WORDS = {
    "tacit": RenewalMode.TACIT,
    "tacito": RenewalMode.TACIT,
    "tacita": RenewalMode.TACIT,
    "automatico": RenewalMode.TACIT,
    "automatic": RenewalMode.TACIT,
    "auto": RenewalMode.TACIT,
    "autorinnovo": RenewalMode.TACIT,
    "si": RenewalMode.TACIT,
    "yes": RenewalMode.TACIT,
    "manual": RenewalMode.MANUAL,
    "manuale": RenewalMode.MANUAL,
    "a scadenza": RenewalMode.MANUAL,
    "scadenza": RenewalMode.MANUAL,
    "no": RenewalMode.MANUAL,
}


def parse_renewal_mode(value: str, field: str = "renewal") -> RenewalMode:
    """``"tacito"``, ``"automatico"``, ``"manuale"``, ``"a scadenza"``... → a ``RenewalMode``."""
    mode = _RENEWAL_WORDS.get(fold(value or ""))
    if mode is None:
        raise PecError(_l("Choose the renewal: tacit or by request."), field=field, code="renewal.unknown")
    return mode


def validate_years(value, field: str = "years", maximum: int = MAX_YEARS) -> int:
    """A duration in whole years, 1 to 5 (the seed: "inserire solo il numero degli anni")."""
    text = str(value if value is not None else "").strip()
    match = re.fullmatch(r"(\d{1,2})(?:\s*(?:anni|anno|years?|y))?", text, re.IGNORECASE)
    years = int(match.group(1)) if match else None
    if years is None or not MIN_YEARS <= years <= maximum:
        raise PecError(
            _l("The duration is a number of years from %(min)s to %(max)s.", min=MIN_YEARS, max=maximum),
            field=field,
            code="years.range",
        )
    return years


@dataclass(frozen=True)
class BoxType:
    code: str
    name: str  # the gestore's product name, shown as it is
    mailbox_mb: int  # the space of the box
    archive_mb: int = 0  # the space of the archive (conservazione) that comes with it
    max_mailbox_mb: int | None = None  # how far extra space may take it; None: no limit
    price_cents_per_year: int | None = None

    @property
    def extensible(self) -> bool:
        return self.max_mailbox_mb is None or self.max_mailbox_mb > self.mailbox_mb


DEFAULT_BOX_TYPES = (
    BoxType("standard", "Standard", mailbox_mb=1024, max_mailbox_mb=2048),
    BoxType("pro", "Pro", mailbox_mb=2048, archive_mb=3072),
    BoxType("premium", "Premium", mailbox_mb=2048, archive_mb=8192),
)


def find_box_type(value: str, catalogue: Iterable[BoxType] = DEFAULT_BOX_TYPES, field: str = "box_type") -> BoxType:
    """The type whose code or name is ``value`` (case and accents ignored)."""
    key = fold(value or "")
    types = list(catalogue)
    for box_type in types:
        if key in (fold(box_type.code), fold(box_type.name)):
            return box_type
    raise PecError(
        _l("Choose the type of box (%(types)s).", types=", ".join(t.name for t in types)),
        field=field,
        code="box_type.unknown",
    )


def validate_mailbox_space(box_type: BoxType, mailbox_mb: int | None, field: str = "mailbox_mb") -> int:
    """The space of a box of ``box_type``: its own, or more in steps of 512 MB up to its maximum."""
    if mailbox_mb is None:
        return box_type.mailbox_mb
    if mailbox_mb == box_type.mailbox_mb:
        return mailbox_mb
    if not box_type.extensible:
        raise PecError(
            _l("A %(type)s box has %(mb)s MB and cannot be extended.", type=box_type.name, mb=box_type.mailbox_mb),
            field=field,
            code="space.fixed",
        )
    if mailbox_mb < box_type.mailbox_mb or (mailbox_mb - box_type.mailbox_mb) % SPACE_STEP_MB:
        raise PecError(
            _l(
                "A %(type)s box has %(mb)s MB, plus extra space in steps of %(step)s MB.",
                type=box_type.name,
                mb=box_type.mailbox_mb,
                step=SPACE_STEP_MB,
            ),
            field=field,
            code="space.step",
        )
    if box_type.max_mailbox_mb is not None and mailbox_mb > box_type.max_mailbox_mb:
        raise PecError(
            _l("A %(type)s box has at most %(mb)s MB.", type=box_type.name, mb=box_type.max_mailbox_mb),
            field=field,
            code="space.max",
        )
    return mailbox_mb
