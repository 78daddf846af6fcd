"""Plugin fields on the client: what plugins keep about every client, edited with the client.

A plugin answers ``client_fields(tenant)`` with ``ClientFieldSet`` s; this module puts them on
the client form, the data tab, the import and the export, validates what people type through
the plugin, and saves it in the client's own transaction. Values travel under their full name,
``<plugin>.<key>`` (the CSV column, the key in ``clients_updated`` changes); form fields are
named ``<plugin>__<key>`` because a dot cannot appear in an HTML id selector.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import select

from core.errors import DomainError
from core.extensions import db
from core.hooktypes import (
    BOOLEAN_FIELD,
    CHOICE_FIELD,
    LIST_FIELD,
    TEXTAREA_FIELD,
    ClientField,
    ClientFieldSet,
)
from core.plugins import host
from tenants.licensing import enabled_for

YES = frozenset({"yes", "y", "si", "s", "true", "1", "x", "vero", "verdadero", "on"})
NO = frozenset({"no", "n", "false", "0", "falso", "off", ""})


@dataclass(frozen=True)
class BoundFieldSet:
    """A plugin's field set, with the plugin's name attached."""

    plugin: str
    fields: ClientFieldSet

    @property
    def title(self):
        return self.fields.title

    def full_name(self, field: ClientField) -> str:
        return f"{self.plugin}.{field.key}"

    def form_name(self, field: ClientField) -> str:
        return f"{self.plugin}__{field.key}"

    def items(self) -> Iterable[tuple[str, ClientField]]:
        for field in self.fields.fields:
            yield self.full_name(field), field


def field_sets(tenant, user=None) -> list[BoundFieldSet]:
    """The tenant's plugins' field sets (those ``user`` may see, when given), in their order."""
    from core.auth.services import has_permission

    sets = [
        BoundFieldSet(plugin, fieldset)
        for plugin, results in host().call_by_plugin("client_fields", enabled_for(tenant), tenant=tenant)
        for fieldset in results
    ]
    if user is not None:
        sets = [s for s in sets if not s.fields.permission or has_permission(user, s.fields.permission)]
    return sorted(sets, key=lambda s: (s.fields.order, s.plugin))


def defaults(sets: list[BoundFieldSet]) -> dict[str, object]:
    return {name: field.empty for s in sets for name, field in s.items()}


def load(sets: list[BoundFieldSet], client_ids: list[int]) -> dict[int, dict[str, object]]:
    """``{client_id: {full name: value}}`` for every one of ``client_ids`` (defaults filled in):
    one ``load`` per plugin, whatever the number of clients."""
    values = {client_id: defaults(sets) for client_id in client_ids}
    if not client_ids:
        return values
    for bound in sets:
        for client_id, stored in (bound.fields.load(list(client_ids)) or {}).items():
            if client_id in values:
                for field in bound.fields.fields:
                    if field.key in stored:
                        values[client_id][bound.full_name(field)] = stored[field.key]
    return values


def label(bound: BoundFieldSet, field: ClientField) -> str:
    return f"{bound.title}: {field.label}" if bound.title else str(field.label)


def labels(sets: list[BoundFieldSet]) -> dict[str, str]:
    """Full name → "Section: Label", how the import report and errors name a plugin field."""
    return {name: label(bound, field) for bound in sets for name, field in bound.items()}


def validate(sets: list[BoundFieldSet], raw: Mapping[str, object], client_id: int | None) -> dict[str, dict]:
    """Check ``raw`` (``{full name: value}``, only what was given) through each plugin: ``{plugin:
    {key: value}}``. The first problem raises ``DomainError`` whose ``field`` is the full name."""
    checked: dict[str, dict] = {}
    for bound in sets:
        given = {field.key: raw[name] for name, field in bound.items() if name in raw}
        if not given:
            continue
        try:
            values = bound.fields.validate(dict(given), client_id)
        except DomainError as error:
            known = {field.key for field in bound.fields.fields}
            name = f"{bound.plugin}.{error.field}" if error.field in known else next(iter(bound.items()))[0]
            raise DomainError(error.message, field=name) from error
        checked[bound.plugin] = {key: values[key] for key in given if key in values}
    return checked


def save(sets: list[BoundFieldSet], values_by_client: Mapping[int, dict[str, dict]]) -> None:
    """Write ``{client_id: {plugin: {key: value}}}`` through each plugin, a set-based call each."""
    for bound in sets:
        mine = {client_id: per[bound.plugin] for client_id, per in values_by_client.items() if per.get(bound.plugin)}
        if mine:
            bound.fields.save(mine)


def flat(checked: Mapping[str, dict]) -> dict[str, object]:
    """``{plugin: {key: value}}`` → ``{full name: value}``."""
    return {f"{plugin}.{key}": value for plugin, values in checked.items() for key, value in values.items()}


def changes(before: Mapping[str, object], checked: Mapping[str, dict]) -> dict[str, tuple]:
    """What a save changes, as ``{full name: (before, after)}``."""
    return {name: (before.get(name), value) for name, value in flat(checked).items() if before.get(name) != value}


# --- text in and out (CSV cells, form values) -----------------------------------------------


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


def header_key(text: str) -> str:
    """A CSV header as it is compared: no case, accents, spaces or punctuation."""
    return _folded(text)


def headers(sets: list[BoundFieldSet]) -> dict[str, str]:
    """Accepted CSV header keys → full name."""
    accepted = {}
    for bound in sets:
        for name, field in bound.items():
            for header in (name, *field.headers):
                accepted.setdefault(header_key(header), name)
    return accepted


def parse_cell(field: ClientField, text: str):
    """A CSV cell as the field's value; raises ``DomainError`` when it cannot be one."""
    text = (text or "").strip()
    if field.kind == BOOLEAN_FIELD:
        key = _folded(text)
        if key in YES:
            return True
        if key in NO:
            return False
        raise DomainError(_l("Write yes or no."))
    if field.kind == LIST_FIELD:
        return [item.strip() for item in re.split(r"[|\n]", text) if item.strip()]
    if field.kind == CHOICE_FIELD and text:
        for value, choice_label in field.choices:
            if _folded(text) in (_folded(str(value)), _folded(str(choice_label))):
                return value
        raise DomainError(
            _l("Choose one of: %(choices)s.", choices=", ".join(str(value) for value, _label in field.choices))
        )
    return text


def lines(text: str | None) -> list[str]:
    """A list field's textarea: one value per line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def cell(field: ClientField, value) -> str:
    """A value as a CSV cell (the import reads it back)."""
    if field.kind == BOOLEAN_FIELD:
        return "yes" if value else "no"
    if field.kind == LIST_FIELD:
        return "|".join(str(item) for item in value or [])
    return "" if value is None else str(value)


def display(field: ClientField, value) -> str:
    """A value as the data tab shows it, in the reader's language."""
    if field.kind == BOOLEAN_FIELD:
        return str(lazy_pgettext("answer", "Yes") if value else lazy_pgettext("answer", "No"))
    if field.kind == LIST_FIELD:
        return ", ".join(str(item) for item in value or []) or "—"
    if field.kind == CHOICE_FIELD:
        return next((str(text) for choice, text in field.choices if choice == value), str(value or "—"))
    return str(value) if value not in (None, "") else "—"


def form_fields(sets: list[BoundFieldSet]) -> dict[str, object]:
    """WTForms fields for the client form, keyed by form name."""
    from wtforms import BooleanField, SelectField, StringField, TextAreaField
    from wtforms.validators import Length, Optional

    from core.forms import choices

    made = {}
    for bound in sets:
        for field in bound.fields.fields:
            common = {"label": field.label, "description": field.help}
            if field.kind == BOOLEAN_FIELD:
                made[bound.form_name(field)] = BooleanField(default=bool(field.empty), **common)
            elif field.kind == CHOICE_FIELD:
                made[bound.form_name(field)] = SelectField(
                    choices=choices([("", "—"), *field.choices]), default=field.empty, **common
                )
            elif field.kind in (LIST_FIELD, TEXTAREA_FIELD):
                made[bound.form_name(field)] = TextAreaField(validators=[Optional()], **common)
            else:
                made[bound.form_name(field)] = StringField(
                    validators=[Optional(), Length(max=field.max_length)], **common
                )
    return made


def form_values(sets: list[BoundFieldSet], form) -> dict[str, object]:
    """What the person typed in the plugin fields, as ``{full name: value}``."""
    values = {}
    for bound in sets:
        for field in bound.fields.fields:
            data = form[bound.form_name(field)].data
            if field.kind == LIST_FIELD:
                data = lines(data)
            elif field.kind == BOOLEAN_FIELD:
                data = bool(data)
            else:
                data = (data or "").strip()
            values[bound.full_name(field)] = data
    return values


def fill_form(sets: list[BoundFieldSet], form, values: Mapping[str, object]) -> None:
    """Put stored values in an edit form that has not been submitted."""
    for bound in sets:
        for name, field in bound.items():
            value = values.get(name, field.empty)
            form[bound.form_name(field)].data = "\n".join(value or []) if field.kind == LIST_FIELD else value


# --- the common case: one row per client in a table of the plugin --------------------------


class ModelClientFields(ClientFieldSet):
    """Client fields kept in one row per client of a plugin model: ``client_id`` (unique in the
    tenant) and one column per field, named as its key (a ``list`` field in a JSON column).

    Give the model ``audit_parent() -> ("client", self.client_id)`` (and make it ``Audited``) so
    that the client's history shows the changes. ``check(values, client_id)`` is the plugin's own
    validation (same contract as ``ClientFieldSet.validate``).
    """

    def __init__(self, model, title, fields, *, check=None, permission=None, order: int = 100) -> None:
        self.model = model
        self.title = title
        self.fields = tuple(fields)
        self.check = check
        self.permission = permission
        self.order = order

    def _rows(self, client_ids) -> dict[int, object]:
        rows = {}
        ids = list(client_ids)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            for row in db.session.scalars(select(self.model).where(self.model.client_id.in_(chunk))):
                rows[row.client_id] = row
        return rows

    def load(self, client_ids):
        return {
            client_id: {field.key: getattr(row, field.key) for field in self.fields}
            for client_id, row in self._rows(client_ids).items()
        }

    def validate(self, values, client_id):
        return self.check(values, client_id) if self.check else values

    def save(self, values_by_client):
        rows = self._rows(values_by_client)
        for client_id, values in values_by_client.items():
            row = rows.get(client_id)
            if row is None:
                row = self.model(client_id=client_id, **{f.key: f.empty for f in self.fields})
                db.session.add(row)
            for key, value in values.items():
                setattr(row, key, list(value) if isinstance(value, list | tuple) else value)
        db.session.flush()
