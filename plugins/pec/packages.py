"""Packages of boxes (pacchetti): N boxes for a duration in years, per agent or per assistant.

The seed: only ATTIVA boxes join a package; a package never holds more boxes than its size; the
packages given to an assistant never add up to more than the reseller's own "pacchetto
postmaster". Pure checks over counts the database layer reads (under a row lock, so two requests
cannot both take the last place).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from plugins.pec.catalogue import validate_years
from plugins.pec.errors import PecError
from plugins.pec.lifecycle import BoxState

MAX_PACKAGE_SIZE = 100_000


def validate_package(name: str, size, years) -> tuple[str, int, int]:
    """A new package's name, number of boxes and duration, checked."""
    clean = " ".join((name or "").split())
    if not clean:
        raise PecError(_l("Enter the name of the package."), field="name", code="package.name")
    if len(clean) > 100:
        raise PecError(_l("At most %(n)s characters.", n=100), field="name", code="package.name")
    try:
        number = int(str(size).strip())
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= MAX_PACKAGE_SIZE:
        raise PecError(
            _l("The number of boxes is a whole number from 1 to %(max)s.", max=MAX_PACKAGE_SIZE),
            field="size",
            code="package.size",
        )
    return clean, number, validate_years(years)


def check_joins_package(state: BoxState, package_size: int, boxes_in_package: int, adding: int = 1) -> None:
    """Whether ``adding`` boxes in ``state`` may join a package holding ``boxes_in_package`` of ``package_size``."""
    if state != BoxState.ACTIVE:
        raise PecError(_l("Only an active box can join a package."), field="package", code="package.box_not_active")
    free = package_size - boxes_in_package
    if adding > free:
        raise PecError(
            _l("The package is full: %(used)s of %(size)s boxes.", used=boxes_in_package, size=package_size),
            field="package",
            code="package.full",
        )


def check_assistant_quantity(quantity: int, postmaster_size: int, already_assigned: int) -> None:
    """Packages given to assistants never exceed the reseller's pacchetto postmaster."""
    available = postmaster_size - already_assigned
    if quantity > available:
        raise PecError(
            _l(
                "Only %(available)s boxes of the pacchetto postmaster (%(size)s) are left to assign.",
                available=max(available, 0),
                size=postmaster_size,
            ),
            field="size",
            code="package.over_postmaster",
        )
