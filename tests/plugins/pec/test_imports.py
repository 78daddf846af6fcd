"""CSV import of holders and boxes: each row validated data or every problem with its field."""

from __future__ import annotations

import pytest

from plugins.pec.catalogue import RenewalMode
from plugins.pec.errors import PecError
from plugins.pec.identity import COMPANY, PERSON
from plugins.pec.imports import MAX_ROWS, BoxRow, HolderRow, parse_boxes, parse_holders

HOLDERS = "\n".join(
    [
        "Tipo;Codice Fiscale;Partita IVA;Nome;Cognome;Ragione Sociale;E-mail;"
        "Indirizzo;CAP;Comune;Provincia;Telefono;Cellulare;Fax;Note",
        "PF;RSSMRA80A01H501U;;mario;ROSSI;;mario.rossi@example.it;"
        "Via del Corso 12;00186;Roma;RM;06 4688 2031;347 218 9054;;cliente storico",
        "PG;07973780013;07973780013;;;Acme S.r.l.;info@acme.example.it;"
        "Via Garibaldi 3;10010;Samone;TO;011 561 2345;;011 561 2346;",
        ";RSSMRA80A01H501X;;Mario;Rossi;;mario;V. ;00100;Roma;MI;0000000000;06 4688 2031;;",
        "PF;RSSMRA80A01H501U;;Mario;Rossi;;mario.rossi@example.it;Piazza Navona 1;00186;Roma;RM;06 4688 2031;;;",
        "PF;RSSMRA80A01H501U;;Marco;Rossi;;marco@example.it;Via Roma 1;00186;Roma;RM;06 4688 2031;;;",
        "",
        "",
    ]
)


def test_every_row_of_holders_is_either_data_or_its_problems():
    report = parse_holders(HOLDERS.encode())
    assert report.counts == {"rows": 5, "valid": 3, "rejected": 2}
    assert report.ignored_columns == ["Note"]
    assert [r.row for r in report.rows] == [2, 3, 4, 5, 6]

    mario = report.rows[0].data
    assert isinstance(mario, HolderRow)
    assert (mario.identity.kind, mario.identity.first_name, mario.identity.last_name) == (PERSON, "Mario", "Rossi")
    assert (mario.address.comune, mario.address.phone.e164, mario.address.mobile.e164) == (
        "Roma",
        "+390646882031",
        "+393472189054",
    )
    acme = report.rows[1].data
    assert (acme.identity.kind, acme.identity.company_name, acme.address.provincia) == (COMPANY, "Acme S.r.l.", "TO")
    assert acme.address.fax.e164 == "+390115612346"


def test_a_bad_row_lists_every_problem_with_its_field():
    report = parse_holders(HOLDERS.encode())
    bad = report.rows[2]
    assert not bad.ok and bad.data is None
    assert {(e.field, e.code) for e in bad.errors} == {
        ("codice_fiscale", "cf.checksum"),
        ("email", "email.invalid"),
        ("street", "street.short"),
        ("provincia", "comune.provincia_mismatch"),
        ("phone", "phone.fake.same_digits"),
        ("mobile", "phone.type"),
    }
    assert all(e.row == 4 for e in bad.errors)
    assert {e.field_label for e in bad.errors} >= {"Codice fiscale", "E-mail", "Telephone"}


def test_a_holder_on_several_rows_adds_addresses_unless_the_rows_disagree():
    report = parse_holders(HOLDERS.encode())
    assert report.rows[3].data.same_holder_as == 2
    assert report.rows[3].data.address.street == "Piazza Navona 1"
    [conflict] = report.rows[4].errors
    assert (conflict.field, conflict.code) == ("codice_fiscale", "holder.conflict")
    assert "Row 2" in str(conflict.message)


def test_the_kind_of_subject_is_guessed_from_the_code_when_missing():
    data = "codice fiscale,ragione sociale,email,indirizzo,cap,comune,telefono\n"
    data += "07973780013,Acme srl,info@acme.example.it,Via Roma 1,00186,Roma,06 4688 2031\n"
    [row] = parse_holders(data.encode()).rows
    assert row.ok and row.data.identity.kind == COMPANY
    bad = "tipo,codice fiscale\nforse,RSSMRA80A01H501U\n"
    assert parse_holders(bad.encode()).rows[0].errors[0].code == "kind.unknown"


def test_the_downloadable_report_lists_row_column_and_problem():
    table = list(parse_holders(HOLDERS.encode()).error_table())
    assert table[0] == ["Row", "Column", "Problem"]
    assert ["4", "E-mail", "mario is not a valid e-mail address."] in table


def test_windows_files_with_commas_and_english_headers_are_read():
    data = "Kind,Fiscal code,First name,Surname,Email,Street,Postcode,City,Province,Phone\r\n"
    data += "person,RSSMRA80A01H501U,Nicolò,Rossi,n@example.it,Via Roma 1,10011,Agliè,TO,06 4688 2031\r\n"
    [row] = parse_holders(data.encode("cp1252")).rows
    assert row.ok and (row.data.identity.first_name, row.data.address.comune) == ("Nicolò", "Agliè")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "file.empty"),
        (b"\n\n", "file.empty"),
        (b"\x00\x01PK", "file.binary"),
        (b"Nome;Cognome\nMario;Rossi\n", "file.columns"),
    ],
)
def test_an_unusable_file_is_refused_as_a_whole(data, code):
    with pytest.raises(PecError) as caught:
        parse_holders(data)
    assert (caught.value.code, caught.value.field) == (code, "file")


def test_too_many_rows_are_refused():
    data = "cf\n" + "RSSMRA80A01H501U\n" * (MAX_ROWS + 1)
    with pytest.raises(PecError) as caught:
        parse_holders(data.encode())
    assert caught.value.code == "file.rows"


# --- boxes ------------------------------------------------------------------------------

BOXES = """Casella PEC;Codice Fiscale;Tipo casella;Durata;Rinnovo;Spazio MB;Agente;Pacchetto
Mario.Rossi@PEC.example.it;RSSMRA80A01H501U;Pro;2 anni;tacito;;Luigi Verdi;Pacchetto 2026
acme@pec.example.it;07973780013;;;;;;
mario.rossi@pec.example.it;07973780013;;;;;;
nicolò@pec;RSSMRA80A01H501X;Gold;9;forse;1100;;
"""


def test_every_row_of_boxes_is_either_data_or_its_problems():
    report = parse_boxes(BOXES.encode())
    assert report.counts == {"rows": 4, "valid": 2, "rejected": 2}
    first = report.rows[0].data
    assert isinstance(first, BoxRow)
    assert (first.address, first.holder_codice_fiscale) == ("mario.rossi@pec.example.it", "RSSMRA80A01H501U")
    assert (first.box_type.code, first.years, first.renewal, first.mailbox_mb) == ("pro", 2, RenewalMode.TACIT, 2048)
    assert (first.agent, first.package) == ("Luigi Verdi", "Pacchetto 2026")
    second = report.rows[1].data
    assert (second.box_type.code, second.years, second.renewal, second.mailbox_mb) == (
        "standard",
        1,
        RenewalMode.MANUAL,
        1024,
    )
    assert (second.agent, second.package) == (None, None)


def test_a_box_twice_in_the_file_is_refused_the_second_time():
    [duplicate] = parse_boxes(BOXES.encode()).rows[2].errors
    assert (duplicate.code, duplicate.field) == ("name.duplicate", "address")
    assert "Row 2" in str(duplicate.message)


def test_a_bad_box_row_lists_every_problem():
    bad = parse_boxes(BOXES.encode()).rows[3]
    assert {(e.field, e.code) for e in bad.errors} == {
        ("address", "name.characters"),
        ("codice_fiscale", "cf.checksum"),
        ("box_type", "box_type.unknown"),
        ("years", "years.range"),
        ("renewal", "renewal.unknown"),
    }


def test_boxes_may_give_name_and_domain_apart_or_take_a_default_domain():
    data = "casella;dominio;cf\nmario.rossi;PEC.example.it;RSSMRA80A01H501U\nanna;;RSSMRA80A01H501U\n"
    report = parse_boxes(data.encode(), default_domain="pec.studio.it", default_years=3)
    assert [r.data.address for r in report.rows] == ["mario.rossi@pec.example.it", "anna@pec.studio.it"]
    assert {r.data.years for r in report.rows} == {3}
    without_default = parse_boxes(data.encode())
    assert without_default.rows[1].errors[0].code == "domain.required"


def test_space_is_checked_against_the_type():
    data = (
        "casella pec;cf;tipo;spazio\n"
        "a@pec.it;RSSMRA80A01H501U;standard;2560\n"
        "b@pec.it;RSSMRA80A01H501U;standard;molto\n"
    )
    rows = parse_boxes(data.encode()).rows
    assert rows[0].errors[0].code == "space.max"
    assert rows[1].errors[0].code == "space.format"


def test_a_box_file_needs_an_address_column():
    with pytest.raises(PecError) as caught:
        parse_boxes(b"cf;tipo\nRSSMRA80A01H501U;pro\n")
    assert caught.value.code == "file.columns"
