"""Seguridad Social codes: the CCC and the NAF, each with its mod-97 control digits."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from core.api import DomainError
from plugins.sedes.ssid import (
    control_digits,
    format_code,
    is_valid_ccc,
    is_valid_naf,
    validate_ccc,
    validate_naf,
)


def test_a_naf_with_an_eight_digit_number_checks_province_and_number_written_together():
    # 2812345678 % 97 == 40
    assert validate_naf("28/12345678/40") == "281234567840"
    assert is_valid_naf("28 12345678 40")
    assert not is_valid_naf("28/12345678/41")


def test_a_number_below_ten_million_is_read_as_province_times_ten_to_the_seventh_plus_number():
    # NAF 28/01234567: 28 * 10**7 + 1234567 = 281234567, % 97 == 42 (written together it would be 85).
    assert control_digits("28", "01234567") == "42"
    assert is_valid_naf("28/01234567/42")
    assert not is_valid_naf("28/01234567/85")


def test_a_ccc_is_eleven_digits_with_its_control_digits():
    assert validate_ccc("28/1234567/42") == "28123456742"
    assert validate_ccc("28-1234567-42") == "28123456742"
    assert is_valid_ccc("28123456742")
    assert not is_valid_ccc("28123456743")


@pytest.mark.parametrize("value", ["", "2812345674", "281234567420", "28A234567-42", "28/1234567"])
def test_a_ccc_of_the_wrong_length_or_with_letters_is_refused_with_its_own_message(app, value):
    with pytest.raises(DomainError) as refused, app.test_request_context():
        validate_ccc(value)
    with app.test_request_context(), force_locale("en"):
        assert "11 digits" in str(refused.value.message)


def test_wrong_control_digits_are_named_as_such(app):
    with pytest.raises(DomainError) as refused, app.test_request_context():
        validate_naf("28/12345678/41")
    with app.test_request_context(), force_locale("en"):
        assert "control digits" in str(refused.value.message)
        assert "NAF" in str(refused.value.message)


def test_a_naf_is_not_a_ccc():
    assert not is_valid_ccc("281234567840")
    assert not is_valid_naf("28123456742")


def test_codes_are_written_as_people_write_them():
    assert format_code("28123456742") == "28 1234567 42"
    assert format_code("281234567840") == "28/12345678/40"
