"""A certificate's file and its thumbnail, for views that have already checked who may see it."""

from __future__ import annotations

from flask import abort

from core.api import send_stored_file, send_thumbnail
from plugins.center_certificates.models import Certificate

THUMBNAIL_SIZE = 320


def file_response(certificate: Certificate, *, inline: bool = False):
    if certificate.file is None:
        abort(404)
    return send_stored_file(
        certificate.file, as_attachment=not inline, download_name=f"{certificate.name}.{certificate.file.extension}"
    )


def thumbnail_response(certificate: Certificate):
    if certificate.file is None or not certificate.file.content_type.startswith("image/"):
        abort(404)
    return send_thumbnail(certificate.file, THUMBNAIL_SIZE)
