"""Phone, cellulare and fax numbers: real ones only."""

from __future__ import annotations

import pytest

from plugins.pec.errors import PecError
from plugins.pec.phones import FAX, MOBILE, PHONE, parse_optional_phone, parse_phone


def error_of(*args, **kwargs) -> PecError:
    with pytest.raises(PecError) as caught:
        parse_phone(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("typed", "e164", "national"),
    [
        ("06 4688 2031", "+390646882031", "06 4688 2031"),
        ("+39 347 218 9054", "+393472189054", "347 218 9054"),
        ("0039 347 2189054", "+393472189054", "347 218 9054"),
        ("(055) 238-8606", "+390552388606", "055 238 8606"),
        ("0575 0504", "+3905750504", "0575 0504"),
        ("+33 1 42 60 37 81", "+33142603781", "01 42 60 37 81"),
    ],
)
def test_real_numbers_are_stored_in_e164(typed, e164, national):
    phone = parse_phone(typed)
    assert (phone.e164, phone.national) == (e164, national)


def test_display_is_national_at_home_and_international_abroad():
    assert parse_phone("06 4688 2031").display() == "06 4688 2031"
    assert parse_phone("+33 1 42 60 37 81").display() == "+33 1 42 60 37 81"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("0000000000", "same_digits"),
        ("1111111111", "same_digits"),
        ("3333333333", "same_digits"),  # valid for libphonenumber
        ("0611111111", "same_digits"),  # valid for libphonenumber: 06 and then all ones
        ("340 1111111", "same_digits"),
        ("3000000000", "same_digits"),
        ("0123456789", "sequence"),
        ("1234567890", "sequence"),
        ("9876543210", "sequence"),
        ("0612345678", "sequence"),  # valid for libphonenumber
        ("02 9876 5432", "sequence"),
        ("333 1234567", "sequence"),
        ("345 6789012", "sequence"),  # ascending with 9 → 0
        ("055 123456", "sequence"),
    ],
)
def test_made_up_numbers_are_refused(typed, reason):
    error = error_of(typed)
    assert (error.code, error.field) == (f"phone.fake.{reason}", "phone")
    assert "not a real phone number" in str(error)


def test_short_runs_inside_a_real_number_are_fine():
    assert parse_phone("06 1234 8890").e164 == "+390612348890"
    assert parse_phone("06 6982 0000").e164 == "+390669820000"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "phone.required"),
        ("abc", "phone.format"),
        ("06 1234 5678 int. 3", "phone.format"),
        ("06 46", "phone.invalid"),
        ("+39 347 218 90541234", "phone.invalid"),
        ("899 218 905", "phone.type"),  # premium rate
    ],
)
def test_what_is_not_a_reachable_number_is_refused(typed, code):
    assert error_of(typed).code == code


def test_a_cellulare_is_a_mobile_number():
    assert parse_phone("347 218 9054", MOBILE).is_mobile
    error = error_of("06 4688 2031", MOBILE)
    assert (error.code, error.field) == ("phone.type", "mobile")
    assert parse_phone("+1 650 253 0000", MOBILE).e164 == "+16502530000"  # fixed-or-mobile in the US


def test_a_fax_is_a_fixed_line():
    assert parse_phone("06 4688 2031", FAX).e164 == "+390646882031"
    error = error_of("347 218 9054", FAX)
    assert (error.code, error.field) == ("phone.type", "fax")


def test_fax_and_cellulare_may_be_left_empty_but_the_phone_may_not():
    assert parse_optional_phone("", FAX) is None
    assert parse_optional_phone("  ", MOBILE) is None
    with pytest.raises(PecError):
        parse_optional_phone("0000000000", FAX)
    assert error_of("", PHONE).code == "phone.required"


def test_a_number_without_prefix_belongs_to_the_given_country():
    assert parse_phone("01 42 60 37 81", region="FR").e164 == "+33142603781"
