"""Accepting uploads, thumbnails and deleting files. No request objects: views pass bytes and names.

The pipeline of ``accept_upload``: one of the account's few upload slots (``UPLOADS_PER_ACCOUNT``
at once) → size limit of the kind (read at most limit + 1 bytes) → type from the content
(``sniff``), which must be one the kind allows → images decoded under the kind's pixel limit and
re-encoded in a child process under a time limit (``images.reencode``), PDFs parsed in a child
process under a time limit (``pdfs.check_pdf``) and kept as given, CSV text kept as given → bytes
written to the tenant's content-addressed store → a ``StoredFile`` row, flushed but not
committed: the caller commits it together with the object that refers to it.

Every refusal is a ``DomainError`` whose translatable message says what is wrong.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.errors import DomainError
from core.extensions import db
from core.files import images
from core.files.kinds import CSV, IMAGE_INPUT_TYPES, MB, PDF, UploadKind, get_kind
from core.files.models import StoredFile
from core.files.pdfs import check_pdf
from core.files.sniff import describe, sniff
from core.files.store import StorageUnavailable, get_store
from tenants.context import TenantContextMissing, TenantMismatch, current_tenant_id

log = logging.getLogger(__name__)

__all__ = [
    "accept_image_or_pdf",
    "accept_upload",
    "delete_stored_file",
    "display_name",
    "open_stored",
    "read_stored",
    "sniff",
    "thumbnail",
]

DEFAULT_PDF_CHECK_TIMEOUT = 10
THUMBNAIL_SIZES = range(16, 2049)
_PENDING_DELETES = "ventanilla_files_pending_deletes"


def _tenant(tenant_id: int | None) -> int:
    current = current_tenant_id()
    if tenant_id is None:
        if current is None:
            raise TenantContextMissing("storing a file without a tenant context")
        return current
    if current is not None and int(tenant_id) != current:
        raise TenantMismatch(f"storing a file of tenant {tenant_id} while acting for tenant {current}")
    return int(tenant_id)


def _read(data: bytes | BinaryIO, kind: UploadKind) -> bytes:
    raw = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data.read(kind.max_bytes + 1)
    if len(raw) > kind.max_bytes:
        raise DomainError(_l("The file is larger than %(n)s MB.", n=f"{kind.max_bytes / MB:g}"))
    if not raw:
        raise DomainError(_l("The file is empty."))
    return raw


def _refuse_type(kind: UploadKind, sniffed: tuple[str, str] | None) -> DomainError:
    if sniffed is None:
        return DomainError(_l("The file is not %(allowed)s and its type could not be recognised.", allowed=kind.label))
    return DomainError(
        _l("The file is not %(allowed)s: it looks like %(what)s.", allowed=kind.label, what=describe(*sniffed))
    )


def display_name(filename: str | None, extension: str) -> str:
    """A safe name to show and offer on download: no folders, no control or bidi characters, the
    real extension (``IMG_1.HEIC`` accepted as JPEG is shown as ``IMG_1.jpg``). Never a path."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem.strip(" .")[:200].strip(" .") or "file"
    return f"{stem}.{extension}"


# How long an upload slot is held at most if its request dies without giving it back (seconds).
UPLOAD_SLOT_SECONDS = 300


@contextmanager
def upload_slot(tenant_id: int, user_id: int | None) -> Iterator[None]:
    """Hold one of the account's ``UPLOADS_PER_ACCOUNT`` upload slots for the block.

    Each upload may start child processes that decode images or parse PDFs: an account sending
    many files at once gets a ``DomainError`` for those beyond its slots. Uploads with no user
    (the demo data, jobs) are not counted.
    """
    if user_id is None:
        yield
        return
    from core.redis_connection import get_redis

    limit = current_app.config["UPLOADS_PER_ACCOUNT"]
    key = f"ventanilla:uploads:t{tenant_id}:u{user_id}"
    redis = get_redis()
    with redis.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, UPLOAD_SLOT_SECONDS)
        held = pipe.execute()[0]
    try:
        if held > limit:
            raise DomainError(
                _l("You are already sending %(n)s files. Wait until they are done and try again.", n=limit),
                field="file",
            )
        yield
    finally:
        redis.decr(key)


def accept_upload(
    data: bytes | BinaryIO,
    filename: str | None,
    kind: str = "document",
    *,
    tenant_id: int | None = None,
    user_id: int | None = None,
) -> StoredFile:
    """Check, clean and store an upload of ``kind``; returns the flushed (uncommitted) row.

    ``data`` is the bytes or a readable binary stream (e.g. ``request.files["file"]``);
    ``filename`` only gives the display name. ``tenant_id`` defaults to the current tenant and
    must match it; ``user_id`` (who uploads) is held to ``UPLOADS_PER_ACCOUNT`` uploads at once.
    Raises ``DomainError`` with a message for the user.
    """
    tenant = _tenant(tenant_id)
    with upload_slot(tenant, user_id):
        return _accept(data, filename, kind, tenant, user_id)


def _accept(data, filename: str | None, kind: str, tenant: int, user_id: int | None) -> StoredFile:
    upload_kind = get_kind(kind)
    raw = _read(data, upload_kind)
    sniffed = sniff(raw)
    content_type = sniffed[0] if sniffed else None
    if content_type == "text/plain" and CSV in upload_kind.content_types:
        content_type = CSV  # CSV has no magic: any plain UTF-8 or Latin-1 text is a candidate
    if content_type not in upload_kind.content_types:
        raise _refuse_type(upload_kind, sniffed)

    width = height = None
    if content_type in IMAGE_INPUT_TYPES:
        rendition = images.reencode(raw, content_type, upload_kind.max_pixels)
        stored_bytes, content_type, extension = rendition.data, rendition.content_type, rendition.extension
        width, height = rendition.width, rendition.height
    elif content_type == PDF:
        timeout = current_app.config.get("FILES_PDF_CHECK_TIMEOUT", DEFAULT_PDF_CHECK_TIMEOUT)
        check_pdf(raw, timeout=timeout, max_pages=upload_kind.max_pdf_pages)
        stored_bytes, extension = raw, "pdf"
    elif content_type == CSV:
        stored_bytes, extension = raw, "csv"
    else:
        raise _refuse_type(upload_kind, sniffed)

    key = get_store().save(tenant, stored_bytes)
    stored = StoredFile(
        tenant_id=tenant,
        key=key,
        size=len(stored_bytes),
        content_type=content_type,
        extension=extension,
        original_name=display_name(filename, extension),
        kind=upload_kind.name,
        width=width,
        height=height,
        created_by_id=user_id,
    )
    db.session.add(stored)
    db.session.flush()
    return stored


def accept_image_or_pdf(
    data: bytes | BinaryIO,
    filename: str | None,
    kind: str = "document",
    *,
    tenant_id: int | None = None,
    user_id: int | None = None,
) -> StoredFile:
    """``accept_upload`` for kinds made of images and PDFs only (``document``, ``image``…)."""
    if get_kind(kind).content_types - IMAGE_INPUT_TYPES - {PDF}:
        raise ValueError(f"upload kind {kind!r} accepts more than images and PDFs")
    return accept_upload(data, filename, kind, tenant_id=tenant_id, user_id=user_id)


def open_stored(stored: StoredFile) -> BinaryIO:
    """The stored bytes as a binary file (close it). Callers have checked tenant and permission."""
    return get_store().open(stored.tenant_id, stored.key)


def read_stored(stored: StoredFile) -> bytes:
    """The bytes of a stored file (the caller has checked tenant and permission)."""
    return get_store().read(stored.tenant_id, stored.key)


def thumbnail(stored: StoredFile, size: int = 256) -> bytes:
    """A JPEG of the image at most ``size`` px on each side, made once and kept beside the original."""
    if not stored.is_image:
        raise ValueError(f"{stored!r} is not an image")
    if size not in THUMBNAIL_SIZES:
        raise ValueError(f"thumbnail size {size} outside {THUMBNAIL_SIZES}")
    store, variant = get_store(), f"thumb{size}"
    try:
        return store.read(stored.tenant_id, stored.key, variant)
    except FileNotFoundError:
        pass
    with store.open(stored.tenant_id, stored.key) as source:
        data = images.render_thumbnail(source, size)
    store.save_variant(stored.tenant_id, stored.key, variant, data)
    return data


def delete_stored_file(stored: StoredFile) -> None:
    """Delete the row (flushed, not committed). When the transaction commits and no other row of
    the tenant refers to the same bytes, the bytes and their thumbnails are removed too."""
    tenant_id, key = stored.tenant_id, stored.key
    db.session.delete(stored)
    db.session.flush()
    if db.session.scalar(select(StoredFile.id).where(StoredFile.key == key).limit(1)) is None:
        db.session().info.setdefault(_PENDING_DELETES, set()).add((tenant_id, key))


@event.listens_for(Session, "after_commit")
def _remove_unreferenced_bytes(session: Session) -> None:
    pending = session.info.pop(_PENDING_DELETES, None)
    if pending and has_app_context():
        for tenant_id, key in sorted(pending):
            try:
                get_store().delete(tenant_id, key)
            except (StorageUnavailable, OSError):
                # The rows are gone for good (committed): bytes left behind cost space, not data,
                # and must not turn the request that deleted them into an error.
                log.exception("could not remove the bytes %s of tenant %s", key, tenant_id)


@event.listens_for(Session, "after_rollback")
def _forget_pending_deletes(session: Session) -> None:
    session.info.pop(_PENDING_DELETES, None)
