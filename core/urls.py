"""Absolute links for e-mails, from a request or from ``VENTANILLA_PUBLIC_URL``."""

from __future__ import annotations

from flask import current_app, has_request_context, url_for


def external_url(endpoint: str, **values) -> str:
    public = current_app.config.get("PUBLIC_URL")
    if has_request_context() and not public:
        return url_for(endpoint, _external=True, **values)
    with current_app.test_request_context(base_url=public or "http://127.0.0.1:5000"):
        return url_for(endpoint, _external=True, **values)
