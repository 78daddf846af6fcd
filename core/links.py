"""Links in templates: ``url_for`` with Flask's work done once per endpoint and argument names.

A list links each of its rows to the same pages with other ids, and every page links its menu to
the same pages as the last one; Flask builds each link in full (URL defaults, the rule's
converters, quoting), some 30 µs, a hundred times a page. The first link to an endpoint with
given argument names, for a tenant, is built by Flask from marker values and kept as a pattern;
the next ones put their values where the markers were. A value takes this way only when the link
shows it as it is (a non-negative int; a string of letters, digits, ``-`` and ``_``), and an
endpoint only when its rules convert such values plainly and have no defaults (which would let a
value choose the rule). Anything else is Flask's ``url_for``. The patterns are the process's while
the tenant (``core.access``) is all that adds values to links, and each request's otherwise.
"""

from __future__ import annotations

import re

from flask import current_app, g, has_request_context, request
from flask import url_for as flask_url_for
from werkzeug.routing import BuildError, IntegerConverter, PathConverter, UnicodeConverter

_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_-]+")
_KEPT = "ventanilla.links"
_OPTIONS = frozenset({"_anchor", "_method", "_scheme", "_external"})
_INT_MARKER = 9_137_000_000_000
_TEXT_MARKER = "Zq9137marker"
# Patterns kept by the process: an endpoint and argument names per tenant; forgotten all at once past this.
_MOST_PATTERNS = 20_000


def _plain(value) -> bool:
    kind = type(value)
    if kind is int:
        return value >= 0
    return kind is str and _PLAIN_TEXT.fullmatch(value) is not None


def _plain_rules(endpoint: str) -> bool:
    """Whether every rule of ``endpoint`` writes a plain value into the path as it is (worked out
    once: the rules do not change once served)."""
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
    """The link built with markers, cut around them: ``[text, index, text, index, ..., text]``,
    where ``index`` is the position in ``names`` of the value that goes there."""
    resolved = endpoint
    if endpoint.startswith("."):
        blueprint = request.blueprint
        resolved = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
    if not _plain_rules(resolved):
        return None
    markers = [
        str(_INT_MARKER + index) if type(values[name]) is int else f"{_TEXT_MARKER}{index:03d}x"
        for index, name in enumerate(names)
    ]
    try:
        built = flask_url_for(endpoint, **dict(zip(names, markers, strict=True)))
    except (BuildError, ValueError, TypeError):
        # A marker the rule will not take where the caller's value may (digits as text for an id):
        # such links stay Flask's, which also says what is wrong with a value it will not take.
        return None
    spots = []
    for index, marker in enumerate(markers):
        at = built.find(marker)
        if at < 0 or built.find(marker, at + 1) >= 0:
            return None
        spots.append((at, len(marker), index))
    pieces: list = []
    done = 0
    for at, length, index in sorted(spots):
        pieces += [built[done:at], index]
        done = at + length
    pieces.append(built[done:])
    return pieces


def _shared_patterns(app) -> dict | None:
    """The patterns every request of this process may use, when nothing but the tenant (which is in
    their key) adds values to links; else None, and each request keeps its own."""
    shared = app.extensions.get(_KEPT)
    if shared is None:
        only_tenant = all(
            function.__module__ == "core.access"
            for functions in app.url_default_functions.values()
            for function in functions
        )
        shared = app.extensions[_KEPT] = {"patterns": {} if only_tenant else None}
    return shared["patterns"]


def url_for(endpoint: str, **values) -> str:
    """Flask's ``url_for`` for templates (same arguments, same links), with Flask's work done once
    per endpoint and argument names."""
    if not has_request_context() or _OPTIONS.intersection(values) or not all(map(_plain, values.values())):
        return flask_url_for(endpoint, **values)
    tenant = g.get("tenant")
    names = tuple(values)
    key = (
        endpoint,
        request.blueprint if endpoint.startswith(".") else None,
        names,
        tuple(type(v) is int for v in values.values()),
        tenant.slug if tenant is not None else None,
        request.script_root,
    )
    kept = _shared_patterns(current_app)
    if kept is None:
        kept = request.environ.setdefault(_KEPT, {})
    elif len(kept) >= _MOST_PATTERNS:
        kept.clear()
    pieces = kept.get(key, False)
    if pieces is False:
        pieces = kept[key] = _pattern(endpoint, names, values)
    if pieces is None:
        return flask_url_for(endpoint, **values)
    given = list(values.values())
    return "".join(str(given[piece]) if type(piece) is int else piece for piece in pieces)
