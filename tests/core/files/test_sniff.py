"""The type comes from the bytes: right for formats ``filetype`` misses or over-matches."""

from __future__ import annotations

from core.files.sniff import sniff
from tests.core.files import samples


def test_common_uploads_are_recognised_from_their_content():
    assert sniff(samples.jpeg()) == ("image/jpeg", "jpg")
    assert sniff(samples.png()) == ("image/png", "png")
    assert sniff(samples.heic()) == ("image/heic", "heic")
    assert sniff(samples.pdf()) == ("application/pdf", "pdf")
    assert sniff(b"") is None


def test_heif_brands_that_filetype_does_not_know_are_recognised():
    heic = samples.heic()
    assert sniff(heic[:8] + b"heix" + heic[12:]) == ("image/heic", "heic")
    # A generic HEIF (major brand mif1) without a HEVC brand: still a HEIF image.
    size = int.from_bytes(heic[:4], "big")
    generic = heic[:8] + b"mif1" + heic[12:16] + b"mif1" * ((size - 16) // 4) + heic[size:]
    assert sniff(generic) == ("image/heif", "heif")


def test_executables_are_recognised_even_when_short():
    assert sniff(b"\x7fELF\x02\x01\x01") == ("application/x-executable", "elf")
    assert sniff(b"\xcf\xfa\xed\xfe" + bytes(60)) == ("application/x-mach-binary", "macho")
    windows = bytearray(b"MZ" + bytes(254))
    windows[0x3C:0x40] = (128).to_bytes(4, "little")
    windows[128:132] = b"PE\x00\x00"
    assert sniff(bytes(windows)) == ("application/x-msdownload", "exe")
    assert sniff(b"#!/bin/sh\nrm -rf /\n") == ("text/x-shellscript", "sh")


def test_text_that_starts_with_mz_is_text_not_a_windows_program():
    assert sniff(b"MZ;Mazarron;30870\nAB;Albacete;02001\n" * 4) == ("text/plain", "txt")


def test_markup_is_told_apart_from_plain_text():
    assert sniff(b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'><script/></svg>") == ("image/svg+xml", "svg")
    assert sniff(b"<?xml version='1.0'?><invoice/>") == ("application/xml", "xml")
    assert sniff(b"<?php echo 1; ?>") == ("application/x-httpd-php", "php")
    assert sniff(b"  <iframe src=x>") == ("text/html", "html")
    assert sniff("año;ciudad\n".encode("latin-1")) == ("text/plain", "txt")
    assert sniff(b"a\x00b") is None
