"""Document numbers in edicts: a corpus of edict PDFs written with a real PDF library (paragraphs,
tables, numbers split over the lines of a narrow cell, with and without their letter), read back
with pypdf, and the near misses that must never make a client's number."""

from __future__ import annotations

import pytest
from fpdf import FPDF

from plugins.sedes import pki
from plugins.sedes.teu.boe import parse_index, pdf_text
from plugins.sedes.teu.documents import client_number, normal, numbers_in

PERSON = "12345678Z"
FOREIGNER = "X1234567L"
COMPANY = "B12345674"
NEXT_LINE = {"new_x": "LMARGIN", "new_y": "NEXT"}


def edict(paragraphs=(), table=(), widths=(30, 22, 30, 20)) -> bytes:
    """An edict as issuing bodies send them to the BOE: text, then a table of the people notified."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(
        0, 5, "Anuncio de la Jefatura Provincial de Tráfico de Madrid de notificación de sanciones.", **NEXT_LINE
    )
    for paragraph in paragraphs:
        pdf.multi_cell(0, 5, paragraph, **NEXT_LINE)
    if table:
        with pdf.table(col_widths=widths[: len(table[0])], text_align="LEFT") as grid:
            for row in table:
                cells = grid.row()
                for value in row:
                    cells.cell(value)
    return bytes(pdf.output())


def found(data: bytes) -> set[str]:
    return numbers_in(pdf_text(data))


HEADER = ("EXPEDIENTE", "IDENTIF", "LOCALIDAD", "CUANTIA")


@pytest.mark.parametrize(
    "data, number",
    [
        (edict([f"Se notifica a la persona con DNI {PERSON} la resolución."]), PERSON),
        (edict(["Se notifica a la persona con D.N.I. 12.345.678-Z la resolución."]), PERSON),
        (edict(["Interesado: 12345678 Z, Madrid."]), PERSON),
        (edict(["Interesado con N.I.E. X-1234567-L."]), FOREIGNER),
        (edict([f"Obligado tributario N.I.F. {COMPANY}, IVA 2025."]), COMPANY),
        (edict(["Sujeto pasivo B-12345674."]), COMPANY),
        (edict(["Interesado con documento 12345678, expediente de baja."]), PERSON),
        (edict(["Interesado con documento X1234567."]), FOREIGNER),
        (edict(table=[HEADER, ("280123456789", PERSON, "MADRID", "200,00")]), PERSON),
        (edict(table=[HEADER, ("280123456789", "12345678", "MADRID", "200,00")]), PERSON),
        # A narrow column splits the number over two lines of its cell.
        (edict(table=[HEADER, ("280123456789", "123456\n78Z", "MADRID", "200,00")]), PERSON),
        (edict(table=[HEADER, ("280123456789", "X123\n4567L", "GETAFE", "90,00")]), FOREIGNER),
        (edict(table=[HEADER, ("280123456789", "1234\n5678", "SEVILLA", "90,00")]), PERSON),
        (edict(["Interesado con documento 1234", "5678Z, domicilio desconocido."]), PERSON),
    ],
    ids=[
        "paragraph",
        "dots-and-hyphen",
        "letter-apart",
        "nie-hyphens",
        "company",
        "company-hyphen",
        "without-letter",
        "nie-without-letter",
        "table",
        "table-without-letter",
        "table-split-cell",
        "table-split-nie",
        "table-split-without-letter",
        "split-across-lines",
    ],
)
def test_an_edict_names_the_client_in_every_form_it_is_written(data, number):
    assert number in found(data)


@pytest.mark.parametrize(
    "text",
    [
        "Interesado con DNI 12345678A.",  # the wrong check letter: not this person
        "Interesado con DNI 12345678 A.",
        "Interesado con DNI ***4567**.",  # masked, as other publications show it
        "Expediente 112345678Z.",  # the digits inside a longer number
        "Expediente 123456789.",
        "Expediente 2024/12345678.",
        "Referencia 1.12.345.678.",
        "Interesado con DNI 12345679Z.",  # one digit off
        "Interesado con DNI 1234567.",  # a digit missing
        "Cuantía 1234 5678 euros.",  # two numbers of two cells, never joined across a plain space
        "Interesado con N.I.E. X1234567T.",
        "Don Juan Español Pérez, domiciliado en Madrid.",  # a name is never a key
    ],
)
def test_near_misses_never_make_the_clients_number(text):
    data = edict([text])
    assert pdf_text(data).strip()  # the PDF's text was read: the miss is the matcher's
    assert found(data) & {PERSON, FOREIGNER} == set()


def test_a_table_of_many_people_gives_each_of_them_and_nobody_else():
    people = [pki.dni(n) for n in (31000001, 44556677, 50607080, 72000003)]
    rows = [HEADER] + [(f"28{n:010d}", person, "MADRID", "200,00") for n, person in enumerate(people)]
    rows.append(("280000000099", "***5678**", "MADRID", "90,00"))
    assert found(edict(table=rows)) == set(people)


def test_a_client_tax_id_is_compared_in_the_same_normal_form():
    assert client_number("12.345.678-z") == PERSON
    assert client_number("ES B12345674") == COMPANY
    assert client_number("1234567L") == "01234567L"
    assert client_number("12345678A") is None
    assert normal("X-1234567-L") == FOREIGNER


def test_the_day_index_gives_each_announcement_with_its_issuer_and_pdf():
    from datetime import date

    page = (
        "<html><body><h3>ADMINISTRACIÓN GENERAL DEL ESTADO</h3><h4>MINISTERIO DEL INTERIOR</h4>"
        "<h5>Jefatura Provincial de Tráfico de Madrid</h5>"
        '<ul><li class="notif"><p>Anuncio de notificación de sanciones.</p><div class="enlacesDoc"><ul>'
        '<li class="puntoPDF"><a href="pdfs/BOE-N-2026-338001.pdf">PDF (BOE-N-2026-338001)</a></li></ul></div></li>'
        '<li class="other"><a href="/otra.pdf">no</a></li></ul>'
        "<h3>ADMINISTRACIÓN LOCAL</h3><h5>Ayuntamiento de Sevilla</h5>"
        '<ul><li class="notif"><p>Anuncio del Ayuntamiento.</p>'
        '<a href="/boe_n/dias/2026/12/04/not.php?id=BOE-N-2026-338002">PDF</a></li></ul></body></html>'
    ).encode()
    url = "https://www.boe.es/boe_n/dias/2026/12/04/index.php?l=N"
    first, second = parse_index(page, url, date(2026, 12, 4))
    assert (first.identifier, first.issuer, first.department) == (
        "BOE-N-2026-338001",
        "Jefatura Provincial de Tráfico de Madrid",
        "MINISTERIO DEL INTERIOR",
    )
    assert first.pdf_url == "https://www.boe.es/boe_n/dias/2026/12/04/pdfs/BOE-N-2026-338001.pdf"
    assert first.title == "Anuncio de notificación de sanciones."
    assert (second.identifier, second.issuer, second.department) == (
        "BOE-N-2026-338002",
        "Ayuntamiento de Sevilla",
        "ADMINISTRACIÓN LOCAL",
    )
    assert second.pdf_url.endswith("not.php?id=BOE-N-2026-338002")
    # The same page as the BOE served it in ISO-8859-1, saying so.
    latin = b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1" /></head>' + page
    latin = latin.decode("utf-8").encode("iso-8859-1")
    assert parse_index(latin, url, date(2026, 12, 4))[0].issuer == "Jefatura Provincial de Tráfico de Madrid"
