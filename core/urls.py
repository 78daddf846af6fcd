"""Absolute links for e-mails, from ``VENTANILLA_PUBLIC_URL``.

Never from the request: its Host (or X-Forwarded-Host) is whatever the sender of the request
wrote, so a reset link built from it could point at another site. Outside debug and tests the
application does not start without the public URL (``core.config.check_public_url``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, url_for

# Where links point in debug and tests when no public URL is set.
DEVELOPMENT_URL = "http://127.0.0.1:5000"


def external_url(endpoint: str, **values) -> str:
    """An absolute link to ``endpoint`` for an e-mail or a push: built on the configured public URL
    (``VENTANILLA_PUBLIC_URL``), never on the request's host."""
    public = current_app.config.get("PUBLIC_URL")
    if not public:
        if not (current_app.debug or current_app.testing):
            raise RuntimeError("VENTANILLA_PUBLIC_URL is not set: links in e-mails cannot be built")
        if has_request_context():
            # Debug and tests only: the developer's own browser sent the request.
            return url_for(endpoint, _external=True, **values)
        public = DEVELOPMENT_URL
    # Built from the URL map directly: pushing a request context here would run the teardown
    # handlers of the request in progress when it is popped (and leave its tenant early).
    parts = urlsplit(public)
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme or "http")
    return adapter.build(endpoint, values, force_external=True)
