"""Real files made on the spot with Pillow, pillow-heif and pypdf (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pillow_heif
from PIL import ExifTags, Image
from pypdf import PdfWriter

PAYLOAD = b"<script>alert('polyglot')</script><?php system($_GET['c']); ?>"
# What some phones append after a photo's end: a short video (an MP4 box), binary, no markup.
MOTION_TRAILER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 4
GPS = {1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (3.0, 42.0, 0.0)}


def photo(width: int = 64, height: int = 48, color=(200, 30, 30)) -> Image.Image:
    image = Image.new("RGB", (width, height), color)
    image.paste((20, 20, 200), (0, 0, width // 2, height // 2))  # a corner to see the orientation by
    return image


def jpeg(image: Image.Image | None = None, *, exif: Image.Exif | None = None, quality: int = 95) -> bytes:
    out = io.BytesIO()
    (image or photo()).save(out, "JPEG", quality=quality, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS secret body"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    return exif


def png(image: Image.Image | None = None) -> bytes:
    out = io.BytesIO()
    (image or photo()).save(out, "PNG")
    return out.getvalue()


def noisy_png(size: int = 256) -> bytes:
    return png(Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)))


def heic(image: Image.Image | None = None) -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(image or photo()).save(out, format="HEIF", quality=90)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, with only a sliver of image data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = zlib.compress(b"\x00" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_of_rows(rows: list[bytes]) -> bytes:
    """An 8-bit greyscale PNG whose pixel values are ``rows``, stored uncompressed in its IDAT: the
    bytes of the rows appear in the file as they are."""
    header = struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0)
    data = zlib.compress(b"".join(b"\x00" + row for row in rows), level=0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def jpeg_with_scan_bytes(spelled: bytes) -> bytes:
    """A JPEG whose entropy-coded data, half-way through, holds ``spelled``: what compressed
    pixels of a big photo do by chance now and then. The decoder takes it as (odd) pixels."""
    data = jpeg(Image.frombytes("RGB", (200, 150), os.urandom(200 * 150 * 3)))
    middle = len(data) // 2
    return data[:middle] + spelled + data[middle + len(spelled) :]


def elf_program() -> bytes:
    """The first bytes of a 64-bit Linux executable (ELF header), then some code-like bytes."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    header = struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return ident + header + os.urandom(512)


def pdf(pages: int = 1, *, user_password: str | None = None, owner_password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if user_password is not None or owner_password is not None:
        writer.encrypt(user_password=user_password or "", owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
