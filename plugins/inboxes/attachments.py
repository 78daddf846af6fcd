"""Where the bytes of a message's attachments go, and how they are served. The one place for both.

Core's files (``accept_upload``) accept images and PDFs only — checked by their content, images
re-encoded, PDFs parsed in a sandbox — and they are what we use for those (kind
``inboxes.attachment``). Mail carries anything else too (Word and Excel files, ZIPs, .eml, calendar
invitations); core.api has no way to store such bytes, so they are kept here, in
``inboxes_attachment_data`` (one row per distinct content per tenant), and are only ever served as a
download of type ``application/octet-stream`` with ``nosniff`` and a sandboxing CSP, never shown.

What core.api should offer instead (then this module becomes a call to it): an upload kind that
accepts any content type as an *opaque* file — size-limited, typed by sniffing for display only,
stored in the tenant's FileStore like any other, and always served by ``send_stored_file`` as an
attachment of ``application/octet-stream`` — e.g. ``UploadKind(..., content_types=ANY)`` or
``accept_opaque(data, filename, *, max_bytes, tenant_id=None, user_id=None) -> StoredFile``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote

from flask import Response
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.api import (
    HEIC,
    JPEG,
    MB,
    PDF,
    PNG,
    DomainError,
    UploadKind,
    accept_upload,
    db,
    register_kind,
    send_stored_file,
)
from plugins.inboxes.models import Attachment, AttachmentData

KIND = register_kind(
    UploadKind("inboxes.attachment", frozenset({JPEG, PNG, HEIC, PDF}), 25 * MB, _l("an image or a PDF"))
)
# What core's files can check; anything else is kept as opaque bytes without trying.
_CHECKABLE = ("image/", "application/pdf")
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"%PDF-")
# A download is never a page: no scripts, no requests.
_OPAQUE_POLICY = "default-src 'none'; sandbox"
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 ._()\[\]+,-]")


def _checkable(data: bytes, content_type: str) -> bool:
    return (
        content_type.startswith(_CHECKABLE) or data.startswith(_SIGNATURES) or data[4:12] in (b"ftypheic", b"ftypmif1")
    )


def _opaque(data: bytes) -> AttachmentData:
    digest = hashlib.sha256(data).hexdigest()
    found = db.session.scalar(select(AttachmentData).where(AttachmentData.sha256 == digest))
    if found is not None:
        return found
    try:
        with db.session.begin_nested():
            row = AttachmentData(sha256=digest, size=len(data), content=data)
            db.session.add(row)
    except IntegrityError:  # stored by another worker meanwhile
        return db.session.scalar(select(AttachmentData).where(AttachmentData.sha256 == digest))
    return row


def store(message_id: int, filename: str, content_type: str, data: bytes, *, content_id=None, inline=False):
    """Keep one attachment of a message (flushed, not committed)."""
    attachment = Attachment(
        message_id=message_id,
        filename=filename[:255],
        content_type=(content_type or "application/octet-stream")[:127],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_id=content_id[:255] if content_id else None,
        inline=inline,
    )
    stored = None
    if data and _checkable(data, attachment.content_type):
        try:
            with db.session.begin_nested():
                stored = accept_upload(data, filename, KIND.name)
        except DomainError:
            stored = None  # not what it claims, or damaged: kept as opaque bytes below
    if stored is not None:
        attachment.file_id = stored.id
    else:
        attachment.data_id = _opaque(data).id
    db.session.add(attachment)
    return attachment


def is_image(attachment: Attachment) -> bool:
    return attachment.file is not None and attachment.file.is_image


def response(attachment: Attachment, *, inline: bool = False) -> Response:
    """The attachment for the browser (the caller checked tenant and permission)."""
    if attachment.file is not None:
        return send_stored_file(attachment.file, as_attachment=not inline, download_name=attachment.filename)
    content = bytes(attachment.data.content) if attachment.data is not None else b""
    fallback = unicodedata.normalize("NFKD", attachment.filename).encode("ascii", "ignore").decode("ascii")
    fallback = _UNSAFE_ASCII.sub("_", fallback).strip() or "attachment"
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(attachment.filename, safe='')}"
    return Response(
        content,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": _OPAQUE_POLICY,
        },
    )
