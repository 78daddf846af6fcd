"""The box export's columns and rows (core's csv_response streams them and neutralises formulas)."""

from __future__ import annotations

import types
from datetime import date

from plugins.pec.catalogue import RenewalMode
from plugins.pec.exports import BOX_COLUMNS, box_rows, cell, header
from plugins.pec.lifecycle import BoxState


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
    heading, row = list(box_rows([record]))
    assert heading == header() == [str(title) for _, title in BOX_COLUMNS]
    assert heading[:3] == ["PEC address", "Domain", "State"]
    assert row == [
        "mario.rossi@pec.example.it",
        "pec.example.it",
        "Active",
        "Pro",
        2048,
        "Rossi Mario",
        "RSSMRA80A01H501U",
        "",
        "@agente",  # core's csv_response neutralises it when it writes the cell
        "",
        "2026-01-02",
        "2026-01-03",
        "2027-01-02",
        "Tacit renewal",
    ]


def test_rows_are_made_lazily_from_a_cursor():
    consumed = []

    def records():
        for i in range(3):
            consumed.append(i)
            yield {"address": f"box{i}@pec.example.it", "state": BoxState.PENDING}

    rows = box_rows(records())
    assert next(rows)[0] == "PEC address"
    assert consumed == []
    assert next(rows)[:3] == ["box0@pec.example.it", "", "Awaiting activation"]
    assert consumed == [0]


def test_cells_keep_numbers_and_empty_nothing():
    assert cell(None) == ""
    assert cell(5) == 5
    assert cell(types.SimpleNamespace(label="Etichetta")) == "Etichetta"
