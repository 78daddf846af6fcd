"""Re-encrypting every secret at rest with the newest key (``flask secrets rotate``).

Rotation: put a new key in front of ``VENTANILLA_SECRET_KEYS`` (or the instance key file), run
the command, then drop the old key. Every encrypted column of every table is read in batches of
raw tokens across all tenants; a token the newest key already opens is left alone, any other is
re-encrypted (``MultiFernet.rotate``) and written back in one executemany per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import LargeBinary, Text, and_, bindparam, select, tuple_, type_coerce, update

from core.crypto import EncryptedText, encrypted_columns, fernet, keys_from_environment_or_file
from core.extensions import db
from tenants.context import all_tenants


@dataclass
class ColumnRotation:
    table: str
    column: str
    rotated: int = 0
    current: int = 0
    unreadable: int = 0

    def __str__(self) -> str:
        line = f"{self.table}.{self.column}: {self.rotated} re-encrypted, {self.current} already with the newest key"
        return line + (f", {self.unreadable} that no key opens" if self.unreadable else "")


def _newest_key() -> Fernet:
    keys = current_app.config.get("SECRET_KEYS") or keys_from_environment_or_file(current_app.config["INSTANCE_PATH"])
    return Fernet(keys[0])


def rotate_secrets(batch_size: int = 500) -> list[ColumnRotation]:
    """Re-encrypt every value of every encrypted column with the newest key; one count per column."""
    newest, keys = _newest_key(), fernet()
    results = []
    with all_tenants():
        for table, column in encrypted_columns(db.metadata):
            is_text = isinstance(column.type, EncryptedText)
            raw_type = Text() if is_text else LargeBinary()
            primary_key = list(table.primary_key.columns)
            counts = ColumnRotation(table.name, column.name)
            last = None
            while True:
                stmt = select(*primary_key, type_coerce(column, raw_type).label("token")).where(column.is_not(None))
                if last is not None:
                    stmt = stmt.where(tuple_(*primary_key) > tuple_(*last))
                rows = db.session.execute(stmt.order_by(*primary_key).limit(batch_size)).all()
                if not rows:
                    break
                changes = []
                for row in rows:
                    token = row.token.encode("ascii") if is_text else bytes(row.token)
                    try:
                        newest.decrypt(token)
                    except InvalidToken:
                        pass
                    else:
                        counts.current += 1
                        continue
                    try:
                        fresh = keys.rotate(token)
                    except InvalidToken:
                        counts.unreadable += 1
                        continue
                    change = {f"key_{i}": row[i] for i in range(len(primary_key))}
                    change["fresh_token"] = fresh.decode("ascii") if is_text else fresh
                    changes.append(change)
                if changes:
                    db.session.execute(
                        update(table)
                        .where(and_(*(c == bindparam(f"key_{i}") for i, c in enumerate(primary_key))))
                        .values({column.name: bindparam("fresh_token", type_=raw_type)}),
                        changes,
                    )
                db.session.commit()
                counts.rotated += len(changes)
                last = tuple(rows[-1][: len(primary_key)])
            results.append(counts)
    return results
