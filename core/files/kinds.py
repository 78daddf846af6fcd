"""Upload kinds: what an upload of a given purpose may contain, and how big it may be.

Core registers ``document`` (JPG, PNG, HEIC or PDF up to 10 MB), ``image`` (JPG, PNG or HEIC up to
10 MB) and ``csv`` (CSV text up to 20 MB, for imports). A plugin registers its own kinds when it
is imported, with names namespaced by the plugin::

    from flask_babel import lazy_gettext as _l
    from core.files.kinds import UploadKind, register_kind, MB, PDF

    register_kind(UploadKind("certificates.scan", frozenset({PDF}), 5 * MB, _l("a PDF")))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

MB = 1024 * 1024
JPEG = "image/jpeg"
PNG = "image/png"
HEIC = "image/heic"
HEIF = "image/heif"
PDF = "application/pdf"
CSV = "text/csv"

# Types the acceptance pipeline knows how to check (anything else cannot be accepted).
IMAGE_INPUT_TYPES = frozenset({JPEG, PNG, HEIC, HEIF})
SUPPORTED_TYPES = IMAGE_INPUT_TYPES | {PDF, CSV}

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?$")
DEFAULT_MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class UploadKind:
    """``label`` completes "The file is not …": a lazy translatable string such as "a JPG or PDF"."""

    name: str
    content_types: frozenset[str]
    max_bytes: int
    label: object
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_pdf_pages: int = 2000

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"upload kind name {self.name!r} is not of the form [plugin.]name")
        unknown = set(self.content_types) - SUPPORTED_TYPES
        if unknown or not self.content_types:
            raise ValueError(f"upload kind {self.name!r}: unsupported types {sorted(unknown)}")
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.max_pdf_pages <= 0:
            raise ValueError(f"upload kind {self.name!r}: limits must be positive")


_KINDS: dict[str, UploadKind] = {}


def register_kind(kind: UploadKind) -> UploadKind:
    """Add a kind. Registering the same definition again is harmless; a different one is an error."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"upload kind {kind.name!r} is already registered differently")
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> UploadKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"unknown upload kind {name!r}") from None


def all_kinds() -> list[UploadKind]:
    return sorted(_KINDS.values(), key=lambda k: k.name)


DOCUMENT = register_kind(
    UploadKind("document", frozenset({JPEG, PNG, HEIC, HEIF, PDF}), 10 * MB, _l("a JPG, PNG, HEIC or PDF"))
)
IMAGE = register_kind(UploadKind("image", frozenset({JPEG, PNG, HEIC, HEIF}), 10 * MB, _l("a JPG, PNG or HEIC image")))
CSV_IMPORT = register_kind(UploadKind("csv", frozenset({CSV}), 20 * MB, _l("a CSV file")))
