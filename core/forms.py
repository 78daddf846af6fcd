"""Form pieces shared by core's screens."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from core.cache import remember


def choices(pairs) -> list[SelectChoice]:
    """Select options from ``(value, label)`` pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


class Choice(NamedTuple):
    """One option of a filter: the ``id`` it sends and the ``name`` it shows."""

    id: int
    name: str


def kept_choices(name: str, read: Callable[[], Iterable]) -> list[Choice]:
    """The ``id`` and ``name`` of each row ``read()`` gives, as a filter offers them: kept with
    ``remember`` under ``name`` until the tenant's data next changes (every list page with the
    filter asks for them)."""
    pairs = remember(name, lambda: [[row.id, row.name] for row in read()])
    return [Choice(*pair) for pair in pairs]


class CheckboxListField(SelectMultipleField):
    """A list of checkboxes (roles of a user, members of a group, permissions of a role)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form) -> None:
        # An empty selection is valid; unknown values are not.
        if self.data:
            known = {value for value, *_ in self.iter_choices()}
            for value in self.data:
                if self.coerce(value) not in {self.coerce(k) for k in known}:
                    raise ValidationError(_l("%(value)s is not a valid choice.", value=value))
