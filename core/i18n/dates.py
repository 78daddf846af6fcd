"""The ``datetimeformat`` and ``dateformat`` filters, as flask-babel's but with the locale's patterns
compiled once.

A list page formats a date or two on each of its 50 rows. flask-babel asks Babel to look the
locale's pattern up and parse it on every call, and converts the time zone with pytz: about 85 µs
a date, a tenth of a page's CPU on the audit trail. These filters keep each (locale, format)'s
parsed patterns and convert with ``zoneinfo``; the text is the same (``tests/core/test_dates.py``
compares them). Anything else (``long`` or ``full`` times, which name the zone; no locale, as
outside a request) is left to flask-babel.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import flask_babel
from babel import Locale
from babel.dates import DateTimePattern, get_date_format, get_datetime_format, get_time_format, parse_pattern
from flask import g, has_app_context

NAMED = ("short", "medium", "long", "full")


@lru_cache(maxsize=256)
def _date_pattern(locale: Locale, format: str) -> DateTimePattern:
    return parse_pattern(get_date_format(format, locale=locale) if format in NAMED else format)


@lru_cache(maxsize=64)
def _datetime_patterns(locale: Locale, format: str) -> tuple[str, DateTimePattern, DateTimePattern]:
    """How Babel writes a date and time: the locale's way of joining them, the time's and the date's patterns."""
    joined = get_datetime_format(format, locale=locale).replace("'", "")
    return joined, parse_pattern(get_time_format(format, locale=locale)), _date_pattern(locale, format)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _babel_state():
    """flask-babel's namespace of the moment (its chosen locale and zone), read without the proxies
    its own functions go through three times each: a list formats a hundred dates."""
    if not has_app_context():
        return None
    return g._get_current_object().get("_flask_babel")


def current_locale() -> Locale | None:
    """flask-babel's ``get_locale()``, read straight from its namespace once it has chosen."""
    return getattr(_babel_state(), "babel_locale", None) or flask_babel.get_locale()


def _user_time(value: datetime) -> datetime:
    zone = getattr(_babel_state(), "babel_tzinfo", None) or flask_babel.get_timezone()
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(_zone(str(zone)))


def format_datetime(value: datetime | None, format: str | None = None) -> str:
    """``datetimeformat``: the date and time in the user's locale and time zone."""
    locale = current_locale()
    if value is None or locale is None or format not in ("short", "medium"):
        return flask_babel.format_datetime(value, format)
    joined, time_pattern, date_pattern = _datetime_patterns(locale, format)
    local = _user_time(value)
    time_text = time_pattern.apply(local, locale, reference_date=local.date())
    return joined.replace("{0}", time_text).replace("{1}", date_pattern.apply(local, locale))


def format_date(value: date | None, format: str | None = None) -> str:
    """``dateformat``: the date (of a date and time, in the user's time zone) in the user's locale."""
    locale = current_locale()
    if value is None or locale is None or format is None:
        return flask_babel.format_date(value, format)
    if isinstance(value, datetime):
        value = _user_time(value).date()
    return _date_pattern(locale, format).apply(value, locale)
