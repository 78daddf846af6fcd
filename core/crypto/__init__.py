"""Secrets at rest: MultiFernet keyed by ``VENTANILLA_SECRET_KEYS`` (comma-separated, newest first).

With no keys in the environment (the embedded default) a key file is created in the instance
folder with mode 0600. Rotation: put a new key in front, run ``flask secrets rotate``, then drop
the old key once every secret has been re-encrypted with the new one.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import LargeBinary, Text
from sqlalchemy.types import TypeDecorator

from core.keyfiles import private_file

KEY_FILE = "secret_keys"


class SecretKeyError(RuntimeError):
    """No usable key, or a secret that none of the keys can open."""


def keys_from_environment_or_file(instance_path: str) -> list[str]:
    configured = os.environ.get("VENTANILLA_SECRET_KEYS", "")
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    if keys:
        return keys
    text = private_file(Path(instance_path) / KEY_FILE, lambda: Fernet.generate_key().decode() + "\n")
    return [line.strip() for line in text.splitlines() if line.strip()]


def fernet() -> MultiFernet:
    app = current_app._get_current_object()
    cached = app.extensions.get("ventanilla_fernet")
    if cached is None:
        keys = app.config.get("SECRET_KEYS") or keys_from_environment_or_file(app.config["INSTANCE_PATH"])
        try:
            cached = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError) as error:
            raise SecretKeyError("VENTANILLA_SECRET_KEYS holds a malformed Fernet key") from error
        app.extensions["ventanilla_fernet"] = cached
    return cached


def encrypt(plaintext: bytes) -> bytes:
    return fernet().encrypt(plaintext)


def decrypt(token: bytes) -> bytes:
    try:
        return fernet().decrypt(token)
    except InvalidToken as error:
        raise SecretKeyError("a secret could not be decrypted with any configured key") from error


class EncryptedText(TypeDecorator):
    """A text secret (a password) stored as a Fernet token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect):
        return None if value is None else encrypt(value.encode("utf-8")).decode("ascii")

    def process_result_value(self, value: str | None, dialect):
        return None if value is None else decrypt(value.encode("ascii")).decode("utf-8")


class EncryptedBytes(TypeDecorator):
    """A binary secret (a PKCS#12 file, a private key) stored as a Fernet token."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect):
        return None if value is None else encrypt(bytes(value))

    def process_result_value(self, value: bytes | None, dialect):
        return None if value is None else decrypt(bytes(value))


def encrypted_columns(metadata) -> list[tuple]:
    """Every (table, column) whose type is an encrypted one."""
    return [
        (table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedText | EncryptedBytes)
    ]
