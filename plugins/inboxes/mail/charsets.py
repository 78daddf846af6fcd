"""Turning the bytes of a text part into text whatever its label says.

Mail in the wild declares charsets that do not exist (``x-unknown``, ``text/html``), mislabels UTF-8
as ISO-8859-1 and Windows-1252 as ISO-8859-1 or US-ASCII, or declares nothing. ``decode_text`` tries,
in order: the declared charset (through an alias table and Python's codecs), then UTF-8, then
Windows-1252 — and it never fails: the last step replaces what is left. It says which charset it
used and whether it had to guess.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

# Labels seen in real mail that Python does not know, or knows under another meaning.
ALIASES = {
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "x-gbk": "gbk",
    "gb2312": "gb18030",  # a superset: GB2312 labels often carry GBK/GB18030 text
    "windows-874": "cp874",
    "iso-8859-11": "cp874",
    "x-user-defined": "windows-1252",
}
# Labels that say nothing about the bytes.
MEANINGLESS = {"", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "none", "8bit", "binary"}
# Single-byte charsets under whose label UTF-8 text often travels; latin-1 decodes any bytes, so
# without this check mislabelled UTF-8 would silently turn into mojibake ("cafÃ©").
_UTF8_SUSPECTS = {"ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}


@dataclass(frozen=True)
class Decoded:
    text: str
    charset: str  # the codec that produced ``text``
    declared: str | None  # what the message said (lower case), None if nothing
    guessed: bool  # the declared charset was missing, unknown or wrong

    @property
    def note(self) -> str | None:
        if not self.guessed:
            return None
        if self.declared:
            return f"declared {self.declared}, decoded as {self.charset}"
        return f"no charset declared, decoded as {self.charset}"


def codec_name(label: str | None) -> str | None:
    """The Python codec for a charset label, or None for an unknown or meaningless one."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    if cleaned in MEANINGLESS:
        return None
    cleaned = ALIASES.get(cleaned, cleaned)
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        return None


def _has_utf8_multibyte(data: bytes) -> bool:
    if not any(b >= 0x80 for b in data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_text(data: bytes, declared: str | None) -> Decoded:
    label = declared.strip().strip("\"'").lower() if declared else None
    codec = codec_name(label)
    if codec is not None:
        if codec in _UTF8_SUSPECTS and _has_utf8_multibyte(data):
            return Decoded(data.decode("utf-8"), "utf-8", label, True)
        if codec == "ascii" and any(b >= 0x80 for b in data):
            codec = None  # 8-bit bytes under an ASCII label: guess below
        else:
            try:
                return Decoded(data.decode(codec), codec, label, False)
            except UnicodeDecodeError:
                pass
            except LookupError:  # a codec that exists but cannot decode bytes (rot13...)
                pass
    try:
        text = data.decode("utf-8")
        return Decoded(text, "utf-8", label, label is not None or not text.isascii())
    except UnicodeDecodeError:
        pass
    try:
        return Decoded(data.decode("cp1252"), "cp1252", label, True)
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): latin-1 maps them.
        return Decoded(data.decode("latin-1"), "latin-1", label, True)
