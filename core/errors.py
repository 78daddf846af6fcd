"""Errors the user can cause, and the error pages."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, render_template, request
from werkzeug.exceptions import HTTPException, SecurityError

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain was broken by the user's input. ``message`` is translatable.

    Views turn it into a form error or a flash message, never into a 500.
    """

    def __init__(self, message, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


ERROR_PAGES = (400, 403, 404, 405, 413, 429, 500)


def register_error_pages(app: Flask) -> None:
    def render(error: HTTPException):
        code = error.code or 500
        if isinstance(error, SecurityError):
            # A Host outside VENTANILLA_ALLOWED_HOSTS: no URL can be built for it, so no page.
            return Response(f"{code} Bad Request", code, mimetype="text/plain")
        template = f"errors/{code}.html" if code in ERROR_PAGES else "errors/generic.html"
        return render_template(template, error=error, code=code), code

    for code in ERROR_PAGES:
        app.register_error_handler(code, render)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return render(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        g.setdefault("error_page", True)
        return render_template("errors/500.html", code=500), 500
