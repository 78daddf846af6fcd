"""Decode an uploaded image under a pixel limit and re-encode it; make thumbnails.

Re-encoding is what makes an image safe to keep and show: the new file holds only pixels, so EXIF
(GPS, camera, dates), comments, text chunks and anything appended after the image data (a phone's
motion-photo video, say) are gone. An image that carries a web page or script in its headers,
metadata or after its end (a polyglot) is refused outright: nobody's camera makes one, so it was
built to attack whoever opens it.
The EXIF orientation is applied first, and an embedded colour profile is converted to sRGB, so
the picture looks the same without its metadata.
JPEG stays JPEG, PNG stays PNG, HEIC becomes JPEG (never re-saved as HEIF, which would carry its
metadata along).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pillow_heif
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageCms, ImageOps

from core.errors import DomainError
from core.files.kinds import HEIC, HEIF, JPEG, PNG

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener(thumbnails=False)

DECODERS = {JPEG: "JPEG", PNG: "PNG", HEIC: "HEIF", HEIF: "HEIF"}
PNG_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA", "I;16"})
JPEG_QUALITY = 90
THUMBNAIL_QUALITY = 85
_SRGB = ImageCms.createProfile("sRGB")


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


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _flatten(image: Image.Image) -> Image.Image:
    """An RGB or L image; transparent areas become white."""
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGBA" if image.mode == "RGBA" else "RGB")
    except Exception:  # an unusable profile: keep the pixels as they are
        log.info("ignored an unusable colour profile")
        return image


def _open(data: bytes | BinaryIO, decoder: str, max_pixels: int) -> Image.Image:
    """Open lazily (headers only) and refuse an image with too many pixels before decoding it."""
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        image = Image.open(source, formats=[decoder])
    except Image.DecompressionBombError:
        raise _too_large(max_pixels) from None
    except Exception:
        raise _damaged() from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise _damaged()
    if width * height > max_pixels:
        image.close()
        raise _too_large(max_pixels)
    return image


def reencode(data: bytes, content_type: str, max_pixels: int) -> Rendition:
    """Decode ``data`` (whose sniffed type is ``content_type``) and encode a clean copy."""
    if _hides_markup(data, content_type):
        raise DomainError(
            _l(
                "The image hides a web page or a script, so it was refused. "
                "Save the picture again (a screenshot will do) and upload that."
            )
        )
    image = _open(data, DECODERS[content_type], max_pixels)
    with image:
        try:
            image.load()
        except Image.DecompressionBombError:
            raise _too_large(max_pixels) from None
        except Exception:  # truncated data, bad chunks, decoder errors (some raise bare ValueError)
            raise _damaged() from None
        icc = image.info.get("icc_profile")
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # unreadable EXIF: keep the pixels as stored
            upright = image.copy()
    upright = _to_srgb(upright, icc)
    out = io.BytesIO()
    if content_type == PNG:
        if upright.mode not in PNG_MODES:
            upright = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
        upright.info = {}
        upright.save(out, "PNG", compress_level=6)
        target, extension = PNG, "png"
    else:
        upright = _flatten(upright)
        upright.info = {}
        upright.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        target, extension = JPEG, "jpg"
    return Rendition(out.getvalue(), target, extension, upright.width, upright.height)


def render_thumbnail(source: BinaryIO, size: int) -> bytes:
    """A JPEG at most ``size`` pixels wide and high, from a stored (already re-encoded) image."""
    with Image.open(source, formats=["JPEG", "PNG"]) as image:
        image.draft("RGB", (size, size))
        image.thumbnail((size, size))
        small = _flatten(image)
        small.info = {}
        out = io.BytesIO()
        small.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
