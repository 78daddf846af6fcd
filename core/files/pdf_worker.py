"""Sanity parse of one PDF in a child process: ``python -I pdf_worker.py <max_pages>`` < file.pdf.

Runs on its own (imports only pypdf), under a memory and CPU limit it sets on itself, so a hostile
PDF can neither hang nor exhaust the web worker; the parent kills it after its time limit. Prints
one JSON line: ``{"ok": true, "pages": n}`` or ``{"ok": false, "reason": "encrypted" | "no_pages"
| "too_many_pages" | "damaged"}``.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings

MEMORY_LIMIT = 1024 * 1024 * 1024
CPU_SECONDS = 60


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


def check(data: bytes, max_pages: int) -> dict:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                return {"ok": False, "reason": "encrypted"}
        pages = len(reader.pages)
        if pages < 1:
            return {"ok": False, "reason": "no_pages"}
        if pages > max_pages:
            return {"ok": False, "reason": "too_many_pages", "pages": pages}
        for page in reader.pages:
            box = page.mediabox
            if box.width <= 0 or box.height <= 0:
                return {"ok": False, "reason": "damaged"}
        reader.pages[0].get_contents()
    except Exception:  # MemoryError included: whatever pypdf cannot read is damaged for us
        return {"ok": False, "reason": "damaged"}
    return {"ok": True, "pages": pages}


def main() -> None:
    _limit_resources()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    max_pages = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    data = sys.stdin.buffer.read()
    sys.stdout.write(json.dumps(check(data, max_pages)) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
