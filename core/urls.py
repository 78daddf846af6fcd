"""Absolute links for e-mails, from a request or from ``VENTANILLA_PUBLIC_URL``."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, url_for


def external_url(endpoint: str, **values) -> str:
    public = current_app.config.get("PUBLIC_URL")
    if has_request_context() and not public:
        return url_for(endpoint, _external=True, **values)
    # Built from the URL map directly: pushing a request context here would run the teardown
    # handlers of the request in progress when it is popped (and leave its tenant early).
    parts = urlsplit(public or "http://127.0.0.1:5000")
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme or "http")
    return adapter.build(endpoint, values, force_external=True)
