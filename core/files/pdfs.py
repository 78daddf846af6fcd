"""The sanity check of an uploaded PDF, run in a child process under a time limit.

Malformed PDFs have sent pypdf into endless loops before (GHSA-hm9v-vj3r-r55m,
GHSA-xcjx-m2pj-8g79), so the parse never runs in the web worker: ``pdf_worker.py`` runs in a fresh,
isolated interpreter (``-I``, empty environment: no secrets inherited) with its own memory and CPU
limits, and is killed when ``FILES_PDF_CHECK_TIMEOUT`` seconds have passed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from flask_babel import lazy_gettext as _l

from core.errors import DomainError

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("pdf_worker.py")


def check_pdf(data: bytes, *, timeout: float, max_pages: int) -> int:
    """The number of pages of a readable, unprotected PDF; ``DomainError`` for anything else."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(WORKER), str(max_pages)],
            input=data,
            capture_output=True,
            timeout=timeout,
            env={},
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.info("PDF check timed out after %ss (%d bytes)", timeout, len(data))
        raise DomainError(_l("The PDF took too long to check; it may be damaged. Save it again as PDF.")) from None
    try:
        result = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        # Killed by its own limits (memory, CPU) or crashed inside a C extension.
        log.info("PDF check ended without an answer (exit %s)", done.returncode)
        result = {"ok": False, "reason": "damaged"}
    if result.get("ok"):
        return int(result["pages"])
    reason = result.get("reason")
    if reason == "encrypted":
        raise DomainError(_l("The PDF is protected with a password; upload it without protection."))
    if reason == "no_pages":
        raise DomainError(_l("The PDF has no pages."))
    if reason == "too_many_pages":
        raise DomainError(_l("The PDF has too many pages: at most %(n)s.", n=max_pages))
    raise DomainError(_l("The PDF is damaged or incomplete."))
