"""Codice fiscale, partita IVA and names of a holder."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine

from plugins.pec.errors import PecError, PecErrors
from plugins.pec.identity import (
    COMPANY,
    PERSON,
    base_code,
    company_key,
    decode_codice_fiscale,
    is_omocode,
    name_mismatches,
    normalise_company_name,
    normalise_person_name,
    validate_codice_fiscale,
    validate_holder_identity,
    validate_partita_iva,
)

MARIO = "RSSMRA80A01H501U"  # Mario Rossi, born in Roma on 1 January 1980
MARIO_OMOCODE = "RSSMRA80AL1H501F"  # the same with the day's 0 replaced by L (omocodia)
GIULIA = "BNCGLI84B69F205F"  # Giulia Bianchi, born in Milano on 29 February 1984
GIULIA_ALL_LETTERS = "BNCGLIUQBSVFNLRK"  # every replaceable digit replaced
ANNA_FRANCE = "BNCNNA75L55Z110S"  # Anna Bianchi, born in France on 15 July 1975
PIVA = "07973780013"
TODAY = date(2026, 5, 1)


def error_of(call, *args, **kwargs) -> PecError:
    with pytest.raises(PecError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- validation -------------------------------------------------------------------------


def test_codice_fiscale_is_normalised_to_upper_case_without_spaces():
    assert validate_codice_fiscale(" rss mra 80a01 h501u ") == MARIO
    assert validate_codice_fiscale("RSS-MRA-80A01-H501U") == MARIO


def test_omocodes_are_valid_codes_of_their_own():
    assert validate_codice_fiscale(MARIO_OMOCODE) == MARIO_OMOCODE
    assert validate_codice_fiscale(GIULIA_ALL_LETTERS) == GIULIA_ALL_LETTERS


@pytest.mark.parametrize(
    ("value", "code", "words"),
    [
        ("", "cf.required", "Enter the codice fiscale"),
        ("RSSMRA80", "cf.length", "has 8 characters"),
        ("RSSMRA80A01H501UX", "cf.length", "has 17 characters"),
        ("RSSMRA80A01H501X", "cf.checksum", "check"),
        ("RSSMR180A01H501U", "cf.format", "first six characters"),
        ("RSSMRAA0A01H501U", "cf.format", "year of birth"),
        ("RSSMRA80Z01H501U", "cf.format", "month letter"),
        ("RSSMRA80A0AH501U", "cf.format", "day of birth"),
        ("RSSMRA80A011501U", "cf.format", "letter of the birthplace"),
        ("RSSMRA80A01HA01U", "cf.format", "digits of the birthplace"),
        ("RSSMRA80A01H5011", "cf.format", "check letter"),
        ("RSSMRA80A32H501C", "cf.date", "impossible birth date"),  # right check letter, 32 January
        ("RSSMRA80B30H501X", "cf.date", "impossible birth date"),  # 30 February
    ],
)
def test_each_kind_of_wrong_codice_fiscale_has_its_own_message(value, code, words):
    error = error_of(validate_codice_fiscale, value)
    assert error.code == code
    assert error.field == "codice_fiscale"
    assert words in str(error.message)


def test_an_eleven_digit_codice_fiscale_is_a_company_s_checked_as_a_partita_iva():
    assert validate_codice_fiscale("079 7378 0013") == PIVA
    assert error_of(validate_codice_fiscale, "07973780014").code == "piva.checksum"


def test_messages_work_outside_a_request_and_name_the_value():
    error = error_of(validate_codice_fiscale, "RSSMRA80A01H501X")
    assert str(error) == str(error.message)
    assert "RSSMRA80A01H501X" in str(error)


@pytest.mark.parametrize("value", [PIVA, "IT07973780013", "it 079 737 800 13", "01234560017"])
def test_valid_partita_iva_is_returned_as_eleven_digits(value):
    assert len(validate_partita_iva(value)) == 11


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "piva.required"),
        ("0797378001", "piva.length"),
        ("079737800133", "piva.length"),
        ("0797378001A", "piva.format"),
        ("07973780014", "piva.checksum"),
        ("00000000000", "piva.format"),  # seven zeros first
        ("12345678901", "piva.office"),  # office code 890 does not exist
    ],
)
def test_each_kind_of_wrong_partita_iva_has_its_own_message(value, code):
    error = error_of(validate_partita_iva, value)
    assert (error.code, error.field) == (code, "partita_iva")


# --- decoding ---------------------------------------------------------------------------


def test_decoding_gives_the_holder_form_its_birth_data():
    data = decode_codice_fiscale(MARIO, today=TODAY)
    assert (data.sex, data.birth_date) == ("M", date(1980, 1, 1))
    assert (data.birth_comune, data.birth_provincia, data.birth_country) == ("Roma", "RM", None)
    assert not data.born_abroad
    assert (data.omocode, data.base_code) == (False, MARIO)


def test_decoding_a_woman_s_code_born_on_29_february():
    data = decode_codice_fiscale(GIULIA, today=TODAY)
    assert (data.sex, data.birth_date, data.birth_comune, data.birth_provincia) == (
        "F",
        date(1984, 2, 29),
        "Milano",
        "MI",
    )


def test_an_omocode_decodes_like_the_code_it_stands_for():
    original = decode_codice_fiscale(GIULIA, today=TODAY)
    omocode = decode_codice_fiscale(GIULIA_ALL_LETTERS, today=TODAY)
    assert omocode.omocode and is_omocode(GIULIA_ALL_LETTERS) and not is_omocode(GIULIA)
    assert omocode.base_code == GIULIA == base_code(GIULIA_ALL_LETTERS)
    assert (omocode.sex, omocode.birth_date, omocode.birth_comune, omocode.birth_provincia) == (
        original.sex,
        original.birth_date,
        original.birth_comune,
        original.birth_provincia,
    )
    assert decode_codice_fiscale(MARIO_OMOCODE, today=TODAY).base_code == MARIO


def test_a_person_born_abroad_has_a_country_and_no_comune():
    data = decode_codice_fiscale(ANNA_FRANCE, today=TODAY)
    assert data.born_abroad
    assert (data.birth_country, data.birth_comune, data.birth_provincia) == ("Francia", None, None)
    assert (data.sex, data.birth_date) == ("F", date(1975, 7, 15))


def test_a_comune_that_still_exists_is_named_as_today_with_its_provincia():
    # Samone (H753): the code's data says Aosta for a birth in 1930; it is in Torino today.
    data = decode_codice_fiscale("SPSCRI30A01H753X", today=TODAY)
    assert (data.birth_comune, data.birth_provincia) == ("Samone", "TO")
    # Reggio nell'Emilia as ISTAT writes it.
    assert decode_codice_fiscale("NRESRA99P49H223V", today=TODAY).birth_comune == "Reggio nell'Emilia"


def test_an_unknown_birthplace_leaves_the_place_empty_but_keeps_the_code():
    data = decode_codice_fiscale("RSSMRA80A01A000C", today=TODAY)  # no comune has the code A000
    assert (data.birth_comune, data.birth_provincia, data.birthplace_code) == (None, None, "A000")
    assert (data.birth_date, data.sex) == (date(1980, 1, 1), "M")
    abroad = decode_codice_fiscale("RSSMRA80A01Z999Y", today=TODAY)  # no country has Z999
    assert (abroad.born_abroad, abroad.birth_country) == (True, None)


def test_the_century_is_the_latest_that_puts_the_birth_in_the_past():
    assert decode_codice_fiscale("RSSMRA05A01B354J", today=TODAY).birth_date == date(2005, 1, 1)
    # Born "26" in December, seen in May 2026: not yet born in 2026, so 1926.
    code = "RSSMRA26T01H501"
    from stdnum.it.codicefiscale import calc_check_digit

    code += calc_check_digit(code)
    assert decode_codice_fiscale(code, today=TODAY).birth_date == date(1926, 12, 1)


def test_without_a_date_decoding_uses_today():
    code = "RSSMRA26T01H501"
    from stdnum.it.codicefiscale import calc_check_digit

    code += calc_check_digit(code)
    with time_machine.travel(date(2027, 1, 1)):
        assert decode_codice_fiscale(code).birth_date == date(2026, 12, 1)


def test_a_company_code_has_no_birth_data_to_decode():
    assert error_of(decode_codice_fiscale, PIVA).code == "cf.not_personal"


def test_names_that_do_not_fit_the_code_are_pointed_out():
    assert name_mismatches(MARIO, "Rossi", "Mario") == []
    assert name_mismatches(MARIO, "Russo", "Maria") == []  # the same consonants: RSS, MRA
    assert name_mismatches(MARIO, "Bianchi", "Mario") == ["last_name"]
    assert name_mismatches(MARIO, "Rossi", "Giulia") == ["first_name"]
    assert name_mismatches(MARIO_OMOCODE, "Rossi", "Mario") == []
    assert name_mismatches(PIVA, "Rossi", "Mario") == []


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  DE   LUCA ", "De Luca"),
        ("d\u2019angelo", "D'Angelo"),
        ("anna-maria", "Anna-Maria"),
        ("McDonald", "McDonald"),
        ("o'neill", "O'Neill"),
        ("NICOLÒ", "Nicolò"),
        ("De Luca", "De Luca"),
    ],
)
def test_person_names_are_tidied_and_capitalised_only_when_typed_in_one_case(typed, stored):
    assert normalise_person_name(typed) == stored


@pytest.mark.parametrize(
    ("typed", "code"), [("", "name.required"), ("Rossi2", "name.characters"), ("x" * 101, "name.length")]
)
def test_person_names_refuse_what_is_not_a_name(typed, code):
    assert error_of(normalise_person_name, typed, "first_name").code == code


def test_company_names_keep_their_case_and_lose_stray_spaces():
    assert normalise_company_name("  ACME   S.R.L. ") == "ACME S.R.L."
    assert error_of(normalise_company_name, "").code == "company.required"
    assert error_of(normalise_company_name, " - ").code == "company.short"


def test_one_company_however_its_legal_form_is_written():
    assert company_key("Acme S.r.l.") == company_key("ACME SRL") == company_key("acme  s r l") == "acme srl"
    assert company_key("Rossi & Figli S.p.A.") == "rossi figli spa"
    assert company_key("Acme S.r.l.") != company_key("Acme S.p.A.")


# --- the whole identity -----------------------------------------------------------------


def test_a_person_with_a_business_has_both_identifiers():
    identity = validate_holder_identity(PERSON, MARIO, "IT07973780013", "mario", "ROSSI")
    assert (identity.first_name, identity.last_name, identity.display_name) == ("Mario", "Rossi", "Rossi Mario")
    assert identity.tax_ids == {MARIO, PIVA}


def test_a_company_needs_an_eleven_digit_code_and_a_ragione_sociale():
    identity = validate_holder_identity(COMPANY, PIVA, PIVA, company_name="Acme S.r.l.")
    assert (identity.display_name, identity.tax_ids) == ("Acme S.r.l.", {PIVA})
    with pytest.raises(PecErrors) as caught:
        validate_holder_identity(COMPANY, MARIO, company_name="")
    assert {(e.field, e.code) for e in caught.value.errors} == {
        ("company_name", "company.required"),
        ("codice_fiscale", "cf.company_personal"),
    }


def test_every_problem_of_an_identity_is_reported_at_once_by_field():
    with pytest.raises(PecErrors) as caught:
        validate_holder_identity(PERSON, "RSSMRA80A01H501X", "123", "", "")
    fields = caught.value.by_field()
    assert set(fields) == {"codice_fiscale", "partita_iva", "first_name", "last_name"}
    assert fields["codice_fiscale"][0].code == "cf.checksum"
