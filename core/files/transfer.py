"""Moving an installation's files and outbox from the local folders into the configured stores
(``flask storage copy-local``), for the day it goes from one machine to several."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.files.store import KEY_PATTERN, VARIANT_PATTERN, FileStore, LocalNamedStore, NamedStore, content_key


@dataclass
class Copied:
    files: int = 0
    variants: int = 0
    outbox: int = 0
    skipped: int = 0  # already in the store
    damaged: list[str] | None = None  # files whose bytes no longer match their name: not copied


def copy_local(files_dir: str | Path, outbox_dir: str | Path, files: FileStore, outbox: NamedStore) -> Copied:
    """Copy ``<files_dir>/<tenant>/<xx>/<key>[.<variant>]`` and ``<outbox_dir>/*.eml`` into the
    stores; what is there already is left as it is, so an interrupted copy is run again."""
    copied = Copied(damaged=[])
    root = Path(files_dir)
    for path in sorted(root.glob("*/*/*")) if root.is_dir() else []:
        tenant, _, name = path.relative_to(root).parts
        key, _, variant = name.partition(".")
        if not (tenant.isdigit() and KEY_PATTERN.match(key) and (not variant or VARIANT_PATTERN.match(variant))):
            continue  # not ours (a partial write, a stray file)
        if files.exists(int(tenant), key, variant or None):
            copied.skipped += 1
        elif variant:
            files.save_variant(int(tenant), key, variant, path.read_bytes())
            copied.variants += 1
        else:
            data = path.read_bytes()
            if content_key(data) != key:
                copied.damaged.append(str(path))
                continue
            files.save(int(tenant), data)
            copied.files += 1
    local, cursor = LocalNamedStore(outbox_dir), None
    while True:
        page, cursor = local.list(cursor, 500)
        for info in page:
            try:
                outbox.get(info.name)
            except FileNotFoundError:
                outbox.put(info.name, local.get(info.name)[1])
                copied.outbox += 1
            else:
                copied.skipped += 1
        if cursor is None:
            return copied
