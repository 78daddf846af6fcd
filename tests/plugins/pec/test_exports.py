"""The box export: streamed lines, formula-safe cells."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import date

import pytest

from plugins.pec.catalogue import RenewalMode
from plugins.pec.exports import BOX_COLUMNS, box_export_lines, csv_lines, neutralise
from plugins.pec.lifecycle import BoxState


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+39 06 4688 2031", "'+39 06 4688 2031"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Mario Rossi", "Mario Rossi"),
        ("a=b", "a=b"),
        (None, ""),
        (-5, -5),
        (2.5, 2.5),
        (True, "true"),
        (date(2026, 3, 9), "2026-03-09"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(value, cell):
    assert neutralise(value) == cell


def read(lines) -> list[list[str]]:
    text = "".join(lines)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def test_lines_are_a_csv_a_spreadsheet_reads():
    rows = read(csv_lines(["Casella", "Note"], [["a@pec.it", 'dice "ciao"; poi va'], ["b@pec.it", "=1+1"]]))
    assert rows == [["Casella", "Note"], ["a@pec.it", 'dice "ciao"; poi va'], ["b@pec.it", "'=1+1"]]


def test_another_neutraliser_can_replace_ours():
    rows = read(csv_lines(["h"], [["=x"]], neutraliser=lambda v: f"<{v}>"))
    assert rows == [["<h>"], ["<=x>"]]


def test_the_box_export_has_labelled_columns_and_labels_for_states():
    record = {
        "address": "mario.rossi@pec.example.it",
        "domain": "pec.example.it",
        "state": BoxState.ACTIVE,
        "box_type": "Pro",
        "mailbox_mb": 2048,
        "holder": "Rossi Mario",
        "codice_fiscale": "RSSMRA80A01H501U",
        "partita_iva": None,
        "agent": "@agente",
        "package": None,
        "created_on": date(2026, 1, 2),
        "activated_on": date(2026, 1, 3),
        "expires_on": date(2027, 1, 2),
        "renewal": RenewalMode.TACIT,
    }
    header, row = read(box_export_lines([record]))
    assert header == [str(title) for _, title in BOX_COLUMNS]
    assert header[:3] == ["PEC address", "Domain", "State"]
    assert row == [
        "mario.rossi@pec.example.it",
        "pec.example.it",
        "Active",
        "Pro",
        "2048",
        "Rossi Mario",
        "RSSMRA80A01H501U",
        "",
        "'@agente",
        "",
        "2026-01-02",
        "2026-01-03",
        "2027-01-02",
        "Tacit renewal",
    ]


def test_the_export_streams_in_flat_memory():
    """20,000 boxes from a generator: memory stays that of a few lines, not of the file."""

    def records():
        for i in range(20_000):
            yield {"address": f"box{i}@pec.example.it", "state": BoxState.ACTIVE, "expires_on": date(2027, 1, 1)}

    tracemalloc.start()
    try:
        total = 0
        for line in box_export_lines(records()):
            total += len(line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 1_000_000
    assert peak < 1_000_000, f"peak {peak} bytes"
