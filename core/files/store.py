"""Where the bytes live: a small interface, and the local-directory backend.

Objects are content-addressed per tenant: ``save`` returns the sha256 hex of the bytes, and the
same bytes saved twice in one tenant are written once. An object may have *variants* (derived
files such as thumbnails) kept beside it and deleted with it. Nothing here checks permissions:
callers reach it through ``core.files.services`` and ``core.files.downloads``.

The backend is chosen by ``FILES_STORE`` (default ``local``); another backend (object storage)
registers a factory with ``register_backend`` and implements the same five methods.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from flask import Flask, current_app

KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
VARIANT_PATTERN = re.compile(r"^[a-z0-9]{1,32}$")


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(tenant_id: int, key: str, variant: str | None = None) -> None:
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool) or tenant_id <= 0:
        raise ValueError(f"bad tenant id {tenant_id!r}")
    if not KEY_PATTERN.match(key or ""):
        raise ValueError(f"bad file key {key!r}")
    if variant is not None and not VARIANT_PATTERN.match(variant):
        raise ValueError(f"bad variant name {variant!r}")


class FileStore(ABC):
    """Content-addressed bytes per tenant."""

    @abstractmethod
    def save(self, tenant_id: int, data: bytes) -> str:
        """Store ``data`` (once per tenant) and return its key, the sha256 hex of the bytes."""

    @abstractmethod
    def open(self, tenant_id: int, key: str, variant: str | None = None) -> BinaryIO:
        """A readable, seekable binary file. Raises ``FileNotFoundError`` if absent."""

    @abstractmethod
    def exists(self, tenant_id: int, key: str, variant: str | None = None) -> bool: ...

    @abstractmethod
    def delete(self, tenant_id: int, key: str) -> None:
        """Remove the object and all its variants; absent objects are not an error."""

    @abstractmethod
    def save_variant(self, tenant_id: int, key: str, variant: str, data: bytes) -> None:
        """Store a derived file (e.g. ``thumb256``) beside the object ``key``."""

    def read(self, tenant_id: int, key: str, variant: str | None = None) -> bytes:
        with self.open(tenant_id, key, variant) as handle:
            return handle.read()


class LocalFileStore(FileStore):
    """``<root>/<tenant_id>/<key[:2]>/<key>``, variants as ``<key>.<variant>``; atomic writes."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, tenant_id: int, key: str, variant: str | None = None) -> Path:
        _check(tenant_id, key, variant)
        name = key if variant is None else f"{key}.{variant}"
        return self.root / str(tenant_id) / key[:2] / name

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def save(self, tenant_id: int, data: bytes) -> str:
        key = content_key(data)
        path = self.path(tenant_id, key)
        if not path.exists():
            self._write(path, data)
        return key

    def save_variant(self, tenant_id: int, key: str, variant: str, data: bytes) -> None:
        self._write(self.path(tenant_id, key, variant), data)

    def open(self, tenant_id: int, key: str, variant: str | None = None) -> BinaryIO:
        return self.path(tenant_id, key, variant).open("rb")

    def exists(self, tenant_id: int, key: str, variant: str | None = None) -> bool:
        return self.path(tenant_id, key, variant).is_file()

    def delete(self, tenant_id: int, key: str) -> None:
        path = self.path(tenant_id, key)
        for candidate in [path, *path.parent.glob(f"{key}.*")]:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()


BACKENDS: dict[str, Callable[[Flask], FileStore]] = {
    "local": lambda app: LocalFileStore(app.config["FILES_DIR"]),
}


def register_backend(name: str, factory: Callable[[Flask], FileStore]) -> None:
    """Make ``FILES_STORE=<name>`` build its store with ``factory(app)``."""
    BACKENDS[name] = factory


def get_store(app: Flask | None = None) -> FileStore:
    """The application's file store (built once per application)."""
    app = app or current_app._get_current_object()
    store = app.extensions.get("ventanilla_files")
    if store is None:
        name = app.config.get("FILES_STORE", "local")
        if name not in BACKENDS:
            raise RuntimeError(f"unknown FILES_STORE {name!r}; known: {sorted(BACKENDS)}")
        store = app.extensions["ventanilla_files"] = BACKENDS[name](app)
    return store
