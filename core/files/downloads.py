"""Serving stored files to the browser.

There is no generic download route: a file belongs to an object of a plugin (a certificate, a
message), and only that plugin's view knows who may see it. Such a view looks the file up through
its own object *after* the tenant and permission checks, then returns ``send_stored_file``::

    @bp.route("/<int:certificate_id>/file")
    @requires("certificates.certificates:view")
    def download(certificate_id):
        certificate = services.get_visible(certificate_id) or abort(404)
        return send_stored_file(certificate.file)

The helpers below check nothing themselves: callers must have checked tenant and permission.
"""

from __future__ import annotations

import io
import re
import unicodedata
from urllib.parse import quote

from flask import Response, current_app, request
from werkzeug.wsgi import wrap_file

from core.files.models import StoredFile
from core.files.services import display_name, open_stored, thumbnail

# Shown in the browser when asked; anything else is always downloaded.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "application/pdf"})
# The file is never a page: no scripts, no requests, no forms; PDFs are left to the viewer.
FILE_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 ._()\[\]+,-]")
# RFC 8187 attr-char besides letters and digits.
_ATTR_CHARS = "!#$&+-.^_`|~"


def content_disposition(disposition: str, filename: str) -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''percent-encoded`` (RFC 6266 / RFC 8187)."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = _UNSAFE_ASCII.sub("_", fallback).strip() or "download"
    encoded = quote(filename, safe=_ATTR_CHARS)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _send(handle, content_type: str, disposition: str, filename: str, sandbox: bool) -> Response:
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    response = current_app.response_class(wrap_file(request.environ, handle), direct_passthrough=True)
    response.headers["Content-Type"] = content_type
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = content_disposition(disposition, filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = FILE_POLICY + ("; sandbox" if sandbox else "")
    return response


def send_stored_file(stored: StoredFile, *, as_attachment: bool = True, download_name: str | None = None) -> Response:
    """Stream ``stored`` with its exact type and safe headers. The caller checked tenant and permission.

    ``as_attachment=False`` shows JPEG, PNG and PDF in the browser; other types are always
    downloaded. ``download_name`` defaults to the upload's display name; it is sanitised and
    gets the file's real extension.
    """
    inline = not as_attachment and stored.content_type in INLINE_TYPES
    name = display_name(download_name, stored.extension) if download_name else stored.original_name
    return _send(
        open_stored(stored),
        stored.content_type,
        "inline" if inline else "attachment",
        name,
        sandbox=stored.content_type != "application/pdf",
    )


def send_thumbnail(stored: StoredFile, size: int = 256) -> Response:
    """The image's JPEG thumbnail, shown inline (same caveat: the caller checked access)."""
    stem = stored.original_name.rsplit(".", 1)[0]
    return _send(io.BytesIO(thumbnail(stored, size)), "image/jpeg", "inline", f"{stem}.jpg", sandbox=True)
