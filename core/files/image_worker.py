"""Decode one image in a child process and encode a clean copy (or a thumbnail).

``python -I image_worker.py reencode <content type> <max pixels>`` < upload, or
``python -I image_worker.py thumbnail <size> <max pixels>`` < stored image.

Runs on its own (imports only Pillow and pillow-heif), under a memory and CPU limit it sets on
itself, so a hostile or merely huge image (a 0.8 MB JPEG can take 350 MB to decode) never weighs
on the web worker; the parent kills it after its time limit. Writes one JSON line, then the bytes:
``{"ok": true, "content_type": ..., "extension": ..., "width": w, "height": h}`` + newline + the
new file, or ``{"ok": false, "reason": "damaged" | "too_large"}``.

Re-encoding is what makes an image safe to keep and show: the new file holds only pixels, so EXIF
(GPS, camera, dates), comments, text chunks and anything appended after the image data are gone.
The EXIF orientation is applied first, and an embedded colour profile is converted to sRGB, so
the picture looks the same without its metadata. JPEG stays JPEG, PNG stays PNG, HEIC becomes JPEG
(never re-saved as HEIF, which would carry its metadata along).
"""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings

MEMORY_LIMIT = 1536 * 1024 * 1024
CPU_SECONDS = 60

JPEG = "image/jpeg"
PNG = "image/png"
HEIC = "image/heic"
HEIF = "image/heif"
DECODERS = {JPEG: "JPEG", PNG: "PNG", HEIC: "HEIF", HEIF: "HEIF"}
PNG_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA", "I;16"})
JPEG_QUALITY = 90
THUMBNAIL_QUALITY = 85


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _limit_resources() -> None:
    try:
        import resource
    except ImportError:  # not POSIX: the parent's timeout still applies
        return
    for limit, value in ((resource.RLIMIT_AS, MEMORY_LIMIT), (resource.RLIMIT_CPU, CPU_SECONDS)):
        try:
            _soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, hard))
        except (ValueError, OSError):
            pass


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _flatten(image):
    """An RGB or L image; transparent areas become white."""
    from PIL import Image

    if _has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _to_srgb(image, icc: bytes | None):
    from PIL import ImageCms

    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(image, source, srgb, outputMode="RGBA" if image.mode == "RGBA" else "RGB")
    except Exception:  # an unusable profile: keep the pixels as they are
        return image


def _open(data: bytes, decoder: str, max_pixels: int):
    """Open lazily (headers only) and refuse an image with too many pixels before decoding it."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    if decoder == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False)
    try:
        image = Image.open(io.BytesIO(data), formats=[decoder])
    except Image.DecompressionBombError:
        raise Refused("too_large") from None
    except Exception:
        raise Refused("damaged") from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise Refused("damaged")
    if width * height > max_pixels:
        image.close()
        raise Refused("too_large")
    return image


def reencode(data: bytes, content_type: str, max_pixels: int) -> tuple[dict, bytes]:
    from PIL import Image, ImageOps

    image = _open(data, DECODERS[content_type], max_pixels)
    with image:
        try:
            image.load()
        except Image.DecompressionBombError:
            raise Refused("too_large") from None
        except MemoryError:
            raise Refused("too_large") from None
        except Exception:  # truncated data, bad chunks, decoder errors (some raise bare ValueError)
            raise Refused("damaged") from None
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
    header = {"content_type": target, "extension": extension, "width": upright.width, "height": upright.height}
    return header, out.getvalue()


def thumbnail(data: bytes, size: int, max_pixels: int) -> tuple[dict, bytes]:
    """A JPEG at most ``size`` pixels wide and high, from a stored (already re-encoded) image."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    out = io.BytesIO()
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
            image.draft("RGB", (size, size))
            image.thumbnail((size, size))
            small = _flatten(image)
            small.info = {}
            small.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    except (Image.DecompressionBombError, MemoryError):
        raise Refused("too_large") from None
    except Exception:
        raise Refused("damaged") from None
    return {"content_type": JPEG, "extension": "jpg", "width": small.width, "height": small.height}, out.getvalue()


def main() -> None:
    _limit_resources()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    operation, argument, max_pixels = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = sys.stdin.buffer.read()
    try:
        if operation == "reencode":
            header, body = reencode(data, argument, max_pixels)
        else:
            header, body = thumbnail(data, int(argument), max_pixels)
    except Refused as refused:
        header, body = {"ok": False, "reason": refused.reason}, b""
    except MemoryError:  # past the memory limit while converting or encoding
        header, body = {"ok": False, "reason": "too_large"}, b""
    else:
        header["ok"] = True
    sys.stdout.buffer.write(json.dumps(header).encode("ascii") + b"\n" + body)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
