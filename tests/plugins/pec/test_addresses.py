"""A holder's address: every field mandatory except fax and cellulare."""

from __future__ import annotations

import pytest

from plugins.pec.addresses import ABROAD, parse_country, validate_address
from plugins.pec.errors import PecError, PecErrors


def problems(**fields) -> dict[str, str]:
    with pytest.raises(PecErrors) as caught:
        validate_address(**fields)
    return {e.field: e.code for e in caught.value.errors}


ROMA = {"street": "Via del Corso 12", "comune": "roma", "provincia": "", "cap": "00186", "phone": "06 4688 2031"}


def test_an_italian_address_takes_the_comune_s_own_name_provincia_and_istat_code():
    address = validate_address(**ROMA)
    assert (address.comune, address.provincia, address.cap, address.nazione) == ("Roma", "RM", "00186", "IT")
    assert address.codice_istat == "058091"
    assert address.phone.e164 == "+390646882031"
    assert (address.mobile, address.fax) == (None, None)
    assert address.one_line == "Via del Corso 12, 00186 Roma (RM)"


def test_fax_and_cellulare_are_optional_but_checked_when_given():
    address = validate_address(**ROMA, mobile="347 218 9054", fax="06 4688 2032")
    assert (address.mobile.e164, address.fax.e164) == ("+393472189054", "+390646882032")
    assert problems(**ROMA, mobile="06 4688 2031", fax="0000000000") == {
        "mobile": "phone.type",
        "fax": "phone.fake.same_digits",
    }


def test_every_other_field_is_mandatory():
    assert problems(street="", comune="", provincia="", cap="", phone="") == {
        "street": "street.required",
        "comune": "comune.required",
        "cap": "cap.required",
        "phone": "phone.required",
    }


def test_a_cap_that_does_not_fit_the_comune_is_refused_with_the_right_ones():
    with pytest.raises(PecErrors) as caught:
        validate_address(**{**ROMA, "cap": "20121"})
    [error] = caught.value.errors
    assert error.field == "cap" and "00118" in str(error)


def test_homonyms_need_the_provincia():
    fields = {"street": "Via Garibaldi 3", "comune": "Samone", "cap": "10010", "phone": "347 218 9054"}
    assert problems(**fields, provincia="") == {"provincia": "comune.ambiguous"}
    assert validate_address(**fields, provincia="to").provincia == "TO"
    assert problems(**fields, provincia="TN") == {"cap": "cap.mismatch"}  # 10010 is Samone TO's


def test_a_comune_without_cap_in_the_data_takes_the_typed_one():
    address = validate_address(
        street="Via Roma 1", comune="Cagliari", provincia="CA", cap="09124", phone="070 684 1543"
    )
    assert (address.cap, address.provincia) == ("09124", "CA")


def test_an_address_abroad_is_free_text_with_provincia_ee_and_foreign_phones():
    address = validate_address(
        street="12 Rue de Rivoli",
        comune="Paris",
        provincia="",
        cap="75001",
        nazione="Francia",
        phone="01 42 60 37 81",
    )
    assert (address.nazione, address.provincia, address.codice_istat) == ("FR", ABROAD, None)
    assert address.phone.e164 == "+33142603781"
    assert address.one_line == "12 Rue de Rivoli, 75001 Paris, FR"


def test_countries_by_name_in_three_languages_or_code():
    assert parse_country("") == parse_country("Italia") == parse_country("italy") == parse_country("it") == "IT"
    assert parse_country("Germania") == parse_country("Alemania") == parse_country("DE") == "DE"
    with pytest.raises(PecError) as caught:
        parse_country("Atlantide")
    assert caught.value.code == "country.unknown"
