"""Links in templates: ``url_for`` with Flask's work done once per page, endpoint and argument names.

A list links each of its rows to the same pages with other ids, and Flask builds every link in
full (URL defaults, the rule's converters, quoting): some 30 µs each, a hundred times a page. The
first link of a request to an endpoint with given argument names is built by Flask from marker
values and kept as a pattern; the next ones put their values where the markers were. A value
takes this way only when the link shows it as it is (a non-negative int; a string of letters,
digits, ``-`` and ``_``), and an endpoint only when its rules convert such values plainly and have
no defaults (which would let a value choose the rule). Anything else is Flask's ``url_for``.
"""

from __future__ import annotations

import re

from flask import g, has_request_context, request
from flask import url_for as flask_url_for
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter

_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_-]+")
_KEPT = "ventanilla.links"
_OPTIONS = frozenset({"_anchor", "_method", "_scheme", "_external"})
_INT_MARKER = 9_137_000_000_000
_TEXT_MARKER = "Zq9137marker"


def _plain(value) -> bool:
    kind = type(value)
    if kind is int:
        return value >= 0
    return kind is str and _PLAIN_TEXT.fullmatch(value) is not None


def _plain_rules(endpoint: str) -> bool:
    """Whether every rule of ``endpoint`` writes a plain value into the path as it is (worked out
    once: the rules do not change once served)."""
    from flask import current_app

    known = current_app.extensions.setdefault("ventanilla_plain_endpoints", {})
    if endpoint not in known:
        try:
            rules = list(current_app.url_map.iter_rules(endpoint))
        except KeyError:
            rules = []
        known[endpoint] = bool(rules) and all(_plain_rule(rule) for rule in rules)
    return known[endpoint]


def _plain_rule(rule) -> bool:
    if rule.defaults or rule.redirect_to is not None:
        return False
    # Werkzeug keeps a rule's converters only here; without it, no rule is taken as plain.
    converters = getattr(rule, "_converters", None)
    if converters is None:
        return False
    for converter in converters.values():
        if type(converter) is IntegerConverter:
            if converter.fixed_digits:
                return False
        elif type(converter) not in (UnicodeConverter, PathConverter):
            return False
    return True


def _pattern(endpoint: str, names: tuple[str, ...], values: dict) -> list | None:
    """The link built with markers, split around them: ``[text, index, text, index, ...]``."""
    resolved = endpoint
    if endpoint.startswith("."):
        blueprint = request.blueprint
        resolved = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
    if not _plain_rules(resolved):
        return None
    markers = {
        name: _INT_MARKER + index if type(values[name]) is int else f"{_TEXT_MARKER}{index}"
        for index, name in enumerate(names)
    }
    built = flask_url_for(endpoint, **markers)
    pieces: list = []
    rest = built
    for index, name in enumerate(names):
        head, found, tail = rest.partition(str(markers[name]))
        if not found or str(markers[name]) in tail:
            return None
        pieces += [head, index]
        rest = tail
    pieces.append(rest)
    return pieces


def url_for(endpoint: str, **values) -> str:
    """Flask's ``url_for`` for templates (same arguments, same links), faster on the second link alike."""
    if not has_request_context() or _OPTIONS.intersection(values) or not all(map(_plain, values.values())):
        return flask_url_for(endpoint, **values)
    tenant = g.get("tenant")
    names = tuple(values)
    key = (endpoint, names, tuple(type(v) is int for v in values.values()), tenant.id if tenant else None)
    kept = request.environ.setdefault(_KEPT, {})
    if key not in kept:
        kept[key] = _pattern(endpoint, names, values) if names else None
    pieces = kept[key]
    if pieces is None:
        return flask_url_for(endpoint, **values)
    given = list(values.values())
    return "".join(str(given[piece]) if type(piece) is int else piece for piece in pieces)
