"""Where the bytes live: two small interfaces, and their local-directory backends.

``FileStore`` holds uploaded files. Objects are content-addressed per tenant: ``save`` returns the
sha256 hex of the bytes, and the same bytes saved twice in one tenant are written once. An object
may have *variants* (derived files such as thumbnails) kept beside it and deleted with it. Nothing
here checks permissions: callers reach it through ``core.files.services`` and ``core.files.downloads``.

``NamedStore`` holds named objects of one kind that every process may write and the operator reads
newest first (the ``.eml`` outbox): their names sort by the time they were written.

Every process (web, workers on other machines) must see the same bytes: the local backends only do
on one machine (or a shared folder); ``s3`` (``core.files.s3``) keeps both in an S3-compatible
object store. ``FILES_STORE`` chooses the file store (default ``local``), ``OUTBOX_STORE`` the
outbox's (default: the same as ``FILES_STORE``); another backend registers a factory with
``register_backend`` / ``register_named_backend``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from flask import Flask, current_app

KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
VARIANT_PATTERN = re.compile(r"^[a-z0-9]{1,32}$")
# A named object: no path separator, no leading dot (the local backend's partial writes are hidden).
NAME_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,200}$")


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

    def describe(self) -> str:
        """Where the bytes are, for the operator (never a credential)."""
        return type(self).__name__


class LocalFileStore(FileStore):
    """``<root>/<tenant_id>/<key[:2]>/<key>``, variants as ``<key>.<variant>``; atomic writes."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"local folder {self.root}"

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


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"bad object name {name!r}")


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    modified: datetime


class NamedStore(ABC):
    """Named objects of one kind, written whole, listed in descending name order (newest first when
    the names start with the time they were written) a page at a time, after a name (keyset)."""

    @abstractmethod
    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` atomically: readers see the whole object or none."""

    @abstractmethod
    def get(self, name: str) -> tuple[ObjectInfo, bytes]:
        """The object and its bytes. Raises ``FileNotFoundError`` if absent."""

    @abstractmethod
    def list(self, after: str | None = None, limit: int = 50) -> tuple[list[ObjectInfo], str | None]:
        """Up to ``limit`` objects whose names sort before ``after``, greatest name first, and the
        cursor of the next page (None on the last)."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; an absent one is not an error."""

    def heads(self, names: Iterable[str], size: int) -> dict[str, bytes]:
        """The first ``size`` bytes of each object (its headers, for a list); absent ones left out."""
        found = {}
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                found[name] = self.head(name, size)
        return found

    def head(self, name: str, size: int) -> bytes:
        return self.get(name)[1][:size]

    def describe(self) -> str:
        """Where the objects are, for the operator (never a credential)."""
        return type(self).__name__


class LocalNamedStore(NamedStore):
    """``<root>/<name>``; written as a hidden ``.<name>.part`` and renamed, so a reader never sees half."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _path(self, name: str) -> Path:
        check_name(name)
        return self.root / name

    @staticmethod
    def _info(path: Path) -> ObjectInfo:
        stat = path.stat()
        return ObjectInfo(path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o750)  # mail holds personal data and links
        partial = self.root / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, path)

    def get(self, name: str) -> tuple[ObjectInfo, bytes]:
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(name)
        return self._info(path), path.read_bytes()

    def head(self, name: str, size: int) -> bytes:
        with self._path(name).open("rb") as handle:
            return handle.read(size)

    def list(self, after: str | None = None, limit: int = 50) -> tuple[list[ObjectInfo], str | None]:
        if not self.root.is_dir():
            return [], None
        names = sorted(
            (e.name for e in os.scandir(self.root) if e.is_file() and NAME_PATTERN.match(e.name)), reverse=True
        )
        if after:
            names = [name for name in names if name < after]
        page = []
        for name in names[:limit]:
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                page.append(self._info(self.root / name))
        return page, (names[limit - 1] if len(names) > limit else None)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()


class StorageUnavailable(RuntimeError):
    """The configured store cannot be used (no such bucket, credentials refused, unreachable...)."""


BACKENDS: dict[str, Callable[[Flask], FileStore]] = {
    "local": lambda app: LocalFileStore(app.config["FILES_DIR"]),
}
# Named stores: ``factory(app, kind)``; the local one keeps kind ``x`` in ``app.config["X_DIR"]``.
NAMED_BACKENDS: dict[str, Callable[[Flask, str], NamedStore]] = {
    "local": lambda app, kind: LocalNamedStore(app.config[f"{kind.upper()}_DIR"]),
}


def register_backend(name: str, factory: Callable[[Flask], FileStore]) -> None:
    """Make ``FILES_STORE=<name>`` build its store with ``factory(app)``."""
    BACKENDS[name] = factory


def register_named_backend(name: str, factory: Callable[[Flask, str], NamedStore]) -> None:
    """Make ``<KIND>_STORE=<name>`` build the named store of ``kind`` with ``factory(app, kind)``."""
    NAMED_BACKENDS[name] = factory


# Built-in backends in modules of their own, imported when chosen: boto3 costs its import time only
# where ``s3`` is used, and those modules (which import this one) register themselves.
BUILT_IN_MODULES = {"s3": "core.files.s3"}


def _load_backends(name: str) -> None:
    if name in BUILT_IN_MODULES:
        importlib.import_module(BUILT_IN_MODULES[name])


def get_store(app: Flask | None = None) -> FileStore:
    """The application's file store (built once per application)."""
    app = app or current_app._get_current_object()
    store = app.extensions.get("ventanilla_files")
    if store is None:
        name = app.config.get("FILES_STORE", "local")
        _load_backends(name)
        if name not in BACKENDS:
            raise RuntimeError(f"unknown FILES_STORE {name!r}; known: {sorted(BACKENDS)}")
        store = app.extensions["ventanilla_files"] = BACKENDS[name](app)
    return store


def get_named_store(kind: str, app: Flask | None = None) -> NamedStore:
    """The application's store of ``kind`` objects (``outbox``), chosen by ``<KIND>_STORE`` and by
    default the same backend as the file store."""
    app = app or current_app._get_current_object()
    cache = app.extensions.setdefault("ventanilla_named_stores", {})
    store = cache.get(kind)
    if store is None:
        name = app.config.get(f"{kind.upper()}_STORE") or app.config.get("FILES_STORE", "local")
        _load_backends(name)
        if name not in NAMED_BACKENDS:
            raise RuntimeError(f"unknown {kind.upper()}_STORE {name!r}; known: {sorted(NAMED_BACKENDS)}")
        store = cache[kind] = NAMED_BACKENDS[name](app, kind)
    return store
