"""Uploaded images: refused when they hide markup, else decoded and re-encoded in a child process.

Decoding is where an image costs: a 0.8 MB JPEG can take 350 MB and a second to decode, and a
HEIC goes through libheif. So the web worker never decodes one: ``image_worker.py`` runs in a
fresh, isolated interpreter (``-I``, an environment with nothing inherited: no secrets) under its
own memory and CPU limits, and is killed when ``FILES_IMAGE_TIMEOUT`` seconds have passed; it
re-encodes the upload (what makes an image safe to keep and show: only pixels, no EXIF, comments
or appended data) and makes thumbnails. See ``image_worker.py`` for what it keeps and converts.

An image that carries a web page or script in its headers, metadata or after its end (a polyglot)
is refused before that, here: nobody's camera makes one, so it was built to attack whoever opens it.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l

from core.errors import DomainError
from core.files.kinds import DEFAULT_MAX_PIXELS, HEIC, HEIF, JPEG, PNG

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("image_worker.py")
DEFAULT_TIMEOUT = 20
# The child's allocator: few arenas, so its address-space limit holds the pixels, not reservations.
WORKER_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


@dataclass(frozen=True)
class Rendition:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


# Markup that a browser or a PHP server would act on. Coded pixel data spells some of it out by
# chance ("<svg " about once in 100 photos of 5 MB), so only the rest of the file is searched.
_HIDDEN_MARKUP = re.compile(rb"<\s*(?:script|html|body|iframe|object|embed|svg)\b|<\?php|javascript:", re.IGNORECASE)
# In a JPEG scan, 0xFF is followed by 0x00 (a stuffed byte) or a restart marker; anything else ends it.
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_PNG_PIXEL_CHUNKS = (b"IDAT", b"fdAT")


def _jpeg_outside_scans(data: bytes) -> Iterator[bytes]:
    at = 2  # after the start-of-image marker
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xD9:  # end of image: what follows was appended
            yield data[at + 2 :]
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a segment
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        yield data[at + 4 : at + 2 + length]
        at += 2 + length
        if marker == 0xDA:
            end = _JPEG_SCAN_END.search(data, at)
            if end is None:
                return
            at = end.start()
    yield data[at:]


def _png_outside_pixels(data: bytes) -> Iterator[bytes]:
    at = 8  # after the signature
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        if kind not in _PNG_PIXEL_CHUNKS:
            yield data[at + 4 : at + 8 + length]
        at += 12 + length
        if kind == b"IEND":
            break
    yield data[at:]


def _heif_outside_media(data: bytes) -> Iterator[bytes]:
    at = 0
    while at + 8 <= len(data):
        size, kind, header = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8], 8
        if size == 1:
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        elif size == 0:
            size = len(data) - at
        if size < header:
            break
        if kind != b"mdat":
            yield data[at : at + size]
        at += size
    yield data[at:]


_OUTSIDE_PIXELS = {
    JPEG: _jpeg_outside_scans,
    PNG: _png_outside_pixels,
    HEIC: _heif_outside_media,
    HEIF: _heif_outside_media,
}


def _hides_markup(data: bytes, content_type: str) -> bool:
    """Whether the file's headers, metadata or what follows its end hold markup."""
    return any(_HIDDEN_MARKUP.search(part) for part in _OUTSIDE_PIXELS[content_type](data))


def _damaged() -> DomainError:
    return DomainError(_l("The image is damaged or incomplete."))


def _too_large(max_pixels: int) -> DomainError:
    return DomainError(_l("The image is too large: at most %(n)s megapixels.", n=f"{max_pixels / 1_000_000:g}"))


def _timeout() -> float:
    return (
        float(current_app.config.get("FILES_IMAGE_TIMEOUT", DEFAULT_TIMEOUT)) if has_app_context() else DEFAULT_TIMEOUT
    )


def _in_child(operation: str, argument: str, max_pixels: int, data: bytes) -> tuple[dict, bytes]:
    """Run ``image_worker.py``; its JSON header and the bytes it made, or ``DomainError``."""
    timeout = _timeout()
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(WORKER), operation, argument, str(max_pixels)],
            input=data,
            capture_output=True,
            timeout=timeout,
            env=dict(WORKER_ENVIRONMENT),
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.info("image %s timed out after %ss (%d bytes)", operation, timeout, len(data))
        raise DomainError(_l("The image took too long to read; it may be damaged. Save it again and retry.")) from None
    line, _, body = done.stdout.partition(b"\n")
    try:
        result = json.loads(line.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        # Killed by its own limits (memory, CPU) or crashed inside a decoder.
        log.info("image %s ended without an answer (exit %s, %d bytes)", operation, done.returncode, len(data))
        result = {"ok": False, "reason": "too_large" if done.returncode < 0 else "damaged"}
    if result.get("ok"):
        return result, body
    if result.get("reason") == "too_large":
        raise _too_large(max_pixels)
    raise _damaged()


def reencode(data: bytes, content_type: str, max_pixels: int) -> Rendition:
    """Decode ``data`` (whose sniffed type is ``content_type``) and encode a clean copy, in a child."""
    if _hides_markup(data, content_type):
        raise DomainError(
            _l(
                "The image hides a web page or a script, so it was refused. "
                "Save the picture again (a screenshot will do) and upload that."
            )
        )
    header, body = _in_child("reencode", content_type, max_pixels, data)
    return Rendition(body, header["content_type"], header["extension"], int(header["width"]), int(header["height"]))


def render_thumbnail(source: BinaryIO, size: int) -> bytes:
    """A JPEG at most ``size`` pixels wide and high, from a stored (already re-encoded) image."""
    _header, body = _in_child("thumbnail", str(size), DEFAULT_MAX_PIXELS, source.read())
    return body
