"""The error every rule of the plugin raises when the user's input breaks it.

It carries a translatable ``message`` and the form ``field`` it belongs to, as core's
``DomainError`` does; the plugin's views (or ``core.api``, once it exists) turn it into a form
error or a flash, never a 500. Kept here so that these modules need nothing from core.
"""

from __future__ import annotations


class PecError(ValueError):
    """A rule was broken by the user's input. ``message`` is a (lazy) translatable string."""

    def __init__(self, message, field: str | None = None, code: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field
        # A stable machine-readable reason (``"cf.checksum"``), for tests, APIs and import reports.
        self.code = code

    def __repr__(self) -> str:
        return f"PecError({str(self.message)!r}, field={self.field!r}, code={self.code!r})"


class PecErrors(ValueError):
    """Several rules broken at once (a whole form or CSV row checked together)."""

    def __init__(self, errors: list[PecError]) -> None:
        super().__init__("; ".join(str(e.message) for e in errors))
        self.errors = list(errors)

    def by_field(self) -> dict[str | None, list[PecError]]:
        """The problems grouped by the field they belong to, as a form shows them."""
        grouped: dict[str | None, list[PecError]] = {}
        for error in self.errors:
            grouped.setdefault(error.field, []).append(error)
        return grouped
