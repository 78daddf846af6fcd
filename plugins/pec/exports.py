"""CSV export of boxes ("Esporta Dati"): a stream of lines in flat memory, safe to open in a
spreadsheet.

A cell whose text starts with ``=`` ``+`` ``-`` ``@``, a tab or a carriage return would be read by a
spreadsheet as a formula (CSV injection): ``neutralise`` puts an apostrophe in front of it. It is
one small function on purpose: when core offers the same protection centrally, the export passes
core's function as ``neutraliser`` (or this one becomes an alias of it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` made safe for a spreadsheet cell: text starting like a formula gets a leading
    apostrophe; numbers stay numbers; None is an empty cell; dates are ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    *,
    delimiter: str = ";",
    bom: bool = True,
    neutraliser: Callable[[Any], Any] = neutralise,
) -> Iterator[str]:
    """The CSV text one line at a time (a BOM first, so spreadsheets read UTF-8). ``rows`` may be a
    lazy cursor: nothing is kept but the line being written. ``;`` is what a spreadsheet in an
    Italian locale splits on."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    if bom:
        yield "\ufeff"
    for row in _chain([header], rows):
        writer.writerow([neutraliser(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)


def _chain(first: Iterable, rest: Iterable) -> Iterator:
    yield from first
    yield from rest


# The columns of the box export: the key each row mapping provides, and the heading.
BOX_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("address", _l("PEC address")),
    ("domain", _l("Domain")),
    ("state", _l("State")),
    ("box_type", _l("Type of box")),
    ("mailbox_mb", _l("Space (MB)")),
    ("holder", _l("Holder")),
    ("codice_fiscale", _l("Codice fiscale")),
    ("partita_iva", _l("Partita IVA")),
    ("agent", _l("Agent")),
    ("package", _l("Package")),
    ("created_on", _l("Inserted on")),
    ("activated_on", _l("Activated on")),
    ("expires_on", _l("Expires on")),
    ("renewal", _l("Renewal")),
)


def box_rows(records: Iterable[Mapping[str, Any]], columns=BOX_COLUMNS) -> Iterator[list[Any]]:
    """Rows of the export from mappings (a SQLAlchemy ``Row._mapping``, a dict) with ``columns``' keys;
    a value with a ``label`` (a state, a renewal mode) is exported as its label."""
    keys = [key for key, _ in columns]
    for record in records:
        row = []
        for key in keys:
            value = record.get(key)
            label = getattr(value, "label", None)
            row.append(str(label) if label is not None else value)
        yield row


def box_export_lines(
    records: Iterable[Mapping[str, Any]], *, delimiter: str = ";", neutraliser=neutralise
) -> Iterator[str]:
    """The whole box export: headings in the reader's language, then one line per box."""
    header = [str(title) for _, title in BOX_COLUMNS]
    return csv_lines(header, box_rows(records), delimiter=delimiter, neutraliser=neutraliser)
