"""CSV export of boxes ("Esporta Dati"): the columns and the rows, for ``core.api.csv_response``.

Core streams the rows as they are read and makes every cell safe for spreadsheets (a text that
starts like a formula gets a leading apostrophe) — in one place, for every download of the
platform; this module only says what the columns are and turns records into rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l

# The columns of the box export: the key each record provides, and the heading.
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


def header(columns=BOX_COLUMNS) -> list[str]:
    """The headings, in the reader's language."""
    return [str(title) for _, title in columns]


def cell(value: Any) -> Any:
    """A value as the export writes it: a label for a state or a renewal mode, ISO dates, numbers
    as they are, nothing for None."""
    if value is None:
        return ""
    label = getattr(value, "label", None)
    if label is not None:
        return str(label)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def with_header(rows: Iterable[list[Any]], columns=BOX_COLUMNS) -> Iterator[list[Any]]:
    """Rows already in the columns' order, the headings first."""
    yield header(columns)
    yield from rows


def box_rows(records: Iterable[Mapping[str, Any]], columns=BOX_COLUMNS) -> Iterator[list[Any]]:
    """Rows of the export from mappings (a SQLAlchemy ``Row._mapping``, a dict) with ``columns``'
    keys; the headings first. Lazy: a cursor stays a cursor."""
    keys = [key for key, _ in columns]
    yield header(columns)
    for record in records:
        yield [cell(record.get(key)) for key in keys]
