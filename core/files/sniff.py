"""The type of some bytes, decided from their content, never from a file name or a client's MIME.

``filetype`` answers for most binary formats from the first bytes. On top of it: HEIF brands it
misses (``heix``, ``mif1``…), executables it misses or over-matches (a text starting with "MZ" is
not a Windows program), and text, which has no magic: UTF-8 or Latin-1 without NUL or control
bytes, told apart into markup (HTML, SVG, XML), scripts and plain text.
"""

from __future__ import annotations

import codecs
import re

import filetype
from flask_babel import lazy_gettext as _l

HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})
MACHO_MAGIC = frozenset(
    {b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"}
)
# Bytes that never occur in text files: C0 controls but tab, LF, VT, FF, CR and SUB (DOS EOF), and DEL.
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f]")

EXECUTABLE_TYPES = frozenset(
    {
        "application/x-executable",
        "application/x-msdownload",
        "application/x-mach-binary",
        "application/java-vm",
        "application/wasm",
        "text/x-shellscript",
    }
)
ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-tar",
        "application/x-rar-compressed",
        "application/gzip",
        "application/x-bzip2",
        "application/x-7z-compressed",
        "application/x-xz",
        "application/zstd",
        "application/x-lz4",
        "application/x-lzip",
        "application/x-lzop",
        "application/x-compress",
        "application/x-brotli",
        "application/vnd.ms-cab-compressed",
        "application/x-unix-archive",
        "application/x-deb",
        "application/x-rpm",
    }
)
OFFICE_PREFIXES = (
    "application/msword",
    "application/vnd.ms-",
    "application/vnd.openxmlformats",
    "application/vnd.oasis",
)


def _iso_bmff(data: bytes) -> tuple[str, str] | None:
    """HEIC/HEIF/AVIF from the ``ftyp`` box (filetype misses brands such as ``heix`` or plain ``mif1``)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    size = int.from_bytes(data[0:4], "big")
    if size < 16 or size > 4096:
        return None
    major = data[8:12]
    brands = {major} | {data[i : i + 4] for i in range(16, min(size, len(data)) - 3, 4)}
    if major in HEIC_BRANDS or (major in HEIF_BRANDS and brands & HEIC_BRANDS):
        return "image/heic", "heic"
    if brands & AVIF_BRANDS:
        return "image/avif", "avif"
    if major in HEIF_BRANDS:
        return "image/heif", "heif"
    return None


def _is_windows_program(data: bytes) -> bool:
    """Data starting with "MZ" is a program if the "PE\\0\\0" signature is at the offset stored at 0x3C, or if
    it is binary (an old DOS program); text that happens to start with "MZ" is not."""
    if len(data) < 64:
        return False
    offset = int.from_bytes(data[0x3C:0x40], "little")
    return data[offset : offset + 4] == b"PE\x00\x00" or _NOT_TEXT.search(data[:512]) is not None


def as_text(data: bytes) -> str | None:
    """The text of ``data`` if it is UTF-8 (BOM allowed) or Latin-1/Windows-1252 text, else None."""
    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    if _NOT_TEXT.search(body):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Every byte is a Latin-1 character; 0x80-0x9F are letters and signs in Windows-1252.
        return body.decode("latin-1")


def _classify_text(text: str) -> tuple[str, str]:
    head = text[:4096].lstrip("\ufeff \t\r\n\f\v").lower()
    if head.startswith("#!"):
        return "text/x-shellscript", "sh"
    if head.startswith(("<?php", "<?=")):
        return "application/x-httpd-php", "php"
    if head.startswith(("<svg", "<!doctype svg")) or (head.startswith("<?xml") and "<svg" in head):
        return "image/svg+xml", "svg"
    if head.startswith("<?xml") and "<html" not in head:
        return "application/xml", "xml"
    if re.match(r"<[a-z!?/]", head):
        return "text/html", "html"
    return "text/plain", "txt"


def sniff(data: bytes) -> tuple[str, str] | None:
    """``(content_type, extension)`` decided from the bytes, or None if the type is unknown."""
    if not data:
        return None
    found = _iso_bmff(data)
    if found:
        return found
    if data[:4] == b"\x7fELF":
        return "application/x-executable", "elf"
    if data[:4] in MACHO_MAGIC:
        return (
            ("application/java-vm", "class")
            if data[:4] == b"\xca\xfe\xba\xbe"
            else ("application/x-mach-binary", "macho")
        )
    guess = filetype.guess(data[:8192])
    if guess is not None and not (guess.mime == "application/x-msdownload" and not _is_windows_program(data)):
        if guess.mime == "image/apng":  # an animated PNG is a PNG; re-encoding keeps its first frame
            return "image/png", "png"
        return guess.mime, guess.extension
    text = as_text(data)
    if text is not None:
        return _classify_text(text)
    return None


def describe(content_type: str, extension: str = ""):
    """What the bytes look like, for messages: "an executable program", "a web page (HTML)"…"""
    fmt = (extension or content_type.rpartition("/")[2]).upper()
    if content_type in EXECUTABLE_TYPES:
        return _l("an executable program")
    if content_type == "application/x-httpd-php":
        return _l("a web script (PHP)")
    if content_type == "text/html":
        return _l("a web page (HTML)")
    if content_type == "image/svg+xml":
        return _l("an SVG drawing")
    if content_type == "application/xml":
        return _l("an XML document")
    if content_type == "text/plain":
        return _l("a text file")
    if content_type == "application/pdf":
        return _l("a PDF document")
    if content_type == "image/jpeg":
        return _l("a JPG image")
    if content_type == "image/png":
        return _l("a PNG image")
    if content_type in ("image/heic", "image/heif"):
        return _l("a HEIC photo")
    if content_type in ARCHIVE_TYPES:
        return _l("a compressed archive (%(format)s)", format=fmt)
    if content_type.startswith(OFFICE_PREFIXES) or content_type == "application/rtf":
        return _l("an office document (%(format)s)", format=fmt)
    if content_type.startswith("image/"):
        return _l("an image in %(format)s format", format=fmt)
    if content_type.startswith("video/"):
        return _l("a video")
    if content_type.startswith("audio/"):
        return _l("an audio file")
    return _l("a file of type %(format)s", format=fmt)
