"""Key files only their owner may read (the session key, the keys of secrets at rest)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def private_file(path: Path, make: Callable[[], str]) -> str:
    """The text of a key file only its owner may read: written with ``make()`` on first use (mode
    0600 from the start), and its mode tightened if someone loosened it since."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    elif stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s could be read by others (mode %o): set back to 0600", path, stat.S_IMODE(path.stat().st_mode))
        path.chmod(0o600)
    return path.read_text()
