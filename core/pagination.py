"""Keyset pagination: each page is one indexed range scan, however deep the list goes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.types import TypeDecorator


@dataclass
class Page:
    items: list
    next_cursor: str | None
    is_first: bool


def _encode(values: list) -> str:
    plain = [value.isoformat() if isinstance(value, date) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain, default=str).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        return None
    return values if isinstance(values, list) else None


def _bound(key, value):
    """A cursor value back as a parameter of the key's own type: compared as text, a date-time
    cursor misses the stored form on SQLite (a row shown twice) and PostgreSQL refuses it."""
    stored = key.type
    while isinstance(stored, TypeDecorator):  # UTCDateTime: what it stores is a date-time
        stored = stored.impl_instance
    try:
        python_type = stored.python_type
    except NotImplementedError:
        python_type = None
    if isinstance(value, str) and python_type is datetime:
        value = datetime.fromisoformat(value)
    elif isinstance(value, str) and python_type is date:
        value = date.fromisoformat(value)
    return literal(value, key.type)


def _page(rows, keys, per_page: int, is_first: bool, tuples: bool = False) -> Page:
    has_more = len(rows) > per_page
    rows = rows[:per_page]
    next_cursor = None
    if has_more and rows:
        last = rows[-1][0] if tuples else rows[-1]
        next_cursor = _encode([getattr(last, key.key) for key in keys])
    return Page(rows, next_cursor, is_first)


def keyset_page(
    session,
    stmt: Select,
    keys: list,
    cursor: str | None,
    per_page: int = 50,
    descending: bool = False,
    rows: bool = False,
) -> Page:
    """Entities of ``stmt`` ordered by ``keys`` (unique together, the last one the primary key).

    ``cursor`` is the opaque value the previous page returned as ``next_cursor``. With ``rows``
    the items are whole result rows (an entity first, then further selected columns).
    """
    after = _decode(cursor) if cursor else None
    if after is not None and len(after) == len(keys):
        try:
            values = [_bound(key, value) for key, value in zip(keys, after, strict=True)]
        except ValueError:
            after = None  # a cursor that was tampered with: the first page
        else:
            bound = tuple_(*keys)
            stmt = stmt.where(bound < tuple_(*values) if descending else bound > tuple_(*values))
    order = [k.desc() for k in keys] if descending else list(keys)
    limited = stmt.order_by(*order).limit(per_page + 1)
    items = list(session.execute(limited)) if rows else list(session.scalars(limited))
    return _page(items, keys, per_page, after is None, tuples=rows)
