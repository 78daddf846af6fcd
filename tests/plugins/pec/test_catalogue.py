"""Box types and space, durations, renewal modes, packages."""

from __future__ import annotations

import pytest

from plugins.pec.catalogue import (
    DEFAULT_BOX_TYPES,
    BoxType,
    RenewalMode,
    find_box_type,
    parse_renewal_mode,
    validate_mailbox_space,
    validate_years,
)
from plugins.pec.errors import PecError
from plugins.pec.lifecycle import BoxState
from plugins.pec.packages import check_assistant_quantity, check_joins_package, validate_package

STANDARD, PRO, PREMIUM = DEFAULT_BOX_TYPES


def error_of(call, *args, **kwargs) -> PecError:
    with pytest.raises(PecError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(("typed", "years"), [(1, 1), ("5", 5), (" 3 anni", 3), ("2 years", 2), ("1 anno", 1)])
def test_durations_are_whole_years_from_one_to_five(typed, years):
    assert validate_years(typed) == years


@pytest.mark.parametrize("typed", [0, 6, "", None, "1.5", "due", "-1"])
def test_other_durations_are_refused(typed):
    error = error_of(validate_years, typed)
    assert (error.code, error.field) == ("years.range", "years")
    assert "from 1 to 5" in str(error)


@pytest.mark.parametrize(
    ("typed", "mode"),
    [
        ("tacito", RenewalMode.TACIT),
        ("Automatico", RenewalMode.TACIT),
        ("sì", RenewalMode.TACIT),
        ("manuale", RenewalMode.MANUAL),
        ("A scadenza", RenewalMode.MANUAL),
        ("manual", RenewalMode.MANUAL),
    ],
)
def test_renewal_modes_as_people_write_them(typed, mode):
    assert parse_renewal_mode(typed) == mode


def test_an_unknown_renewal_mode_is_refused():
    assert error_of(parse_renewal_mode, "forse").code == "renewal.unknown"


def test_box_types_by_code_or_name():
    assert find_box_type("PRO") is PRO
    assert find_box_type("premium") is PREMIUM
    error = error_of(find_box_type, "gold")
    assert error.code == "box_type.unknown" and "Standard, Pro, Premium" in str(error)
    custom = (BoxType("base", "Casella Base", 512),)
    assert find_box_type("casella base", custom).code == "base"


def test_space_grows_in_steps_up_to_the_type_s_maximum():
    assert validate_mailbox_space(STANDARD, None) == 1024
    assert validate_mailbox_space(STANDARD, 1536) == 1536
    assert validate_mailbox_space(STANDARD, 2048) == 2048
    assert error_of(validate_mailbox_space, STANDARD, 2560).code == "space.max"
    assert error_of(validate_mailbox_space, STANDARD, 1100).code == "space.step"
    assert error_of(validate_mailbox_space, STANDARD, 512).code == "space.step"
    assert validate_mailbox_space(PRO, 10240) == 10240  # no maximum
    fixed = BoxType("dominio", "PEC su dominio", 1024, max_mailbox_mb=1024)
    assert not fixed.extensible
    assert error_of(validate_mailbox_space, fixed, 1536).code == "space.fixed"


def test_a_package_has_a_name_a_size_and_a_duration():
    assert validate_package("  Pacchetto   2026 ", "50", "1") == ("Pacchetto 2026", 50, 1)
    assert error_of(validate_package, "", 5, 1).code == "package.name"
    assert error_of(validate_package, "P", 0, 1).code == "package.size"
    assert error_of(validate_package, "P", "dieci", 1).code == "package.size"
    assert error_of(validate_package, "P", 10, 7).code == "years.range"


def test_only_active_boxes_join_a_package_and_never_beyond_its_size():
    check_joins_package(BoxState.ACTIVE, package_size=10, boxes_in_package=9)
    assert error_of(check_joins_package, BoxState.PENDING, 10, 0).code == "package.box_not_active"
    error = error_of(check_joins_package, BoxState.ACTIVE, 10, 10)
    assert error.code == "package.full" and "10 of 10" in str(error)
    assert error_of(check_joins_package, BoxState.ACTIVE, 10, 8, adding=3).code == "package.full"


def test_assistants_packages_never_exceed_the_pacchetto_postmaster():
    check_assistant_quantity(40, postmaster_size=100, already_assigned=60)
    error = error_of(check_assistant_quantity, 41, 100, 60)
    assert error.code == "package.over_postmaster" and "Only 40 boxes" in str(error)
