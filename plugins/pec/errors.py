"""The errors every rule of the plugin raises when the user's input breaks it.

Both are ``core.api.DomainError`` s: a translatable ``message`` and the form ``field`` it belongs
to, which views show as a form error or a flash, never a 500. ``code`` is a stable
machine-readable reason (``"cf.checksum"``) for tests, the JSON endpoints and import reports.
"""

from __future__ import annotations

from core.api import DomainError


class PecError(DomainError):
    """A rule was broken by the user's input. ``message`` is a (lazy) translatable string."""

    def __init__(self, message, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message, field)
        self.code = code

    def __repr__(self) -> str:
        return f"PecError({str(self.message)!r}, field={self.field!r}, code={self.code!r})"


class PecErrors(DomainError):
    """Several rules broken at once (a whole form or CSV row checked together). As a single
    ``DomainError`` it carries the first problem's message and field."""

    def __init__(self, errors: list[PecError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(first.message if first else "", first.field if first else None)
        self.args = ("; ".join(str(e.message) for e in self.errors),)

    def __str__(self) -> str:
        return "; ".join(str(e.message) for e in self.errors)

    def by_field(self) -> dict[str | None, list[PecError]]:
        """The problems grouped by the field they belong to, as a form shows them."""
        grouped: dict[str | None, list[PecError]] = {}
        for error in self.errors:
            grouped.setdefault(error.field, []).append(error)
        return grouped
