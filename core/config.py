"""Settings from the environment, with embedded defaults.

With nothing set, the platform runs on SQLite and an embedded Redis server, both kept in
``instance/`` beside the project. Production sets ``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY`` and the SMTP settings.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from core.keyfiles import private_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"

LANGUAGES = ("es", "it", "en")

# Where browsers' push subscriptions point: Chrome, Edge and the other Chromium browsers (FCM),
# Firefox (Mozilla autopush), Edge on Windows (WNS) and Safari (Apple).
DEFAULT_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    ".notify.windows.com",
    ".push.apple.com",
)


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _count(value: str | None, name: str) -> int:
    """A whole number of at least 0 from the environment (empty or unset: 0)."""
    try:
        number = int((value or "0").strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must be 0 or more, not {number}")
    return number


def _list(value: str | None) -> list[str]:
    """A comma-separated setting as a list (empty items left out)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def check_public_url(config: dict, debug: bool) -> None:
    """Refuse to start without ``VENTANILLA_PUBLIC_URL`` outside debug and tests.

    Links in e-mails (password reset, invitations, notices) are built from it; without it they
    would have to come from the Host of the request, which whoever sends the request chooses.
    """
    url = config.get("PUBLIC_URL") or ""
    if not url:
        if debug or config.get("TESTING"):
            return
        raise RuntimeError(
            "VENTANILLA_PUBLIC_URL is not set: set it to the address people use to reach the site "
            "(such as https://ventanilla.example.com). Links in e-mails are built from it, never from "
            "the Host header of a request."
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise RuntimeError(f"VENTANILLA_PUBLIC_URL must be http(s)://host[:port][/path], not {url!r}")


def _normalise_db_url(url: str) -> str:
    # psycopg 3 is the driver; plain postgres URLs would pick psycopg2.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _secret_key(instance: Path) -> str:
    """The session-signing key: from the environment, else a file made once in the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    return private_file(instance / "secret_key", lambda: secrets.token_urlsafe(48)).strip()


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask configuration: environment first, then ``overrides`` (tests, CLI)."""
    overrides = dict(overrides or {})
    env = os.environ
    instance = Path(overrides.get("INSTANCE_PATH") or env.get("VENTANILLA_INSTANCE") or DEFAULT_INSTANCE)
    instance.mkdir(parents=True, exist_ok=True)

    db_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'ventanilla.sqlite3'}"
    config: dict = {
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(db_url),
        # Migrations run as the owner of the tables; the application may connect as a role
        # that owns nothing so that PostgreSQL row-level security applies to it.
        "DATABASE_MIGRATION_URL": _normalise_db_url(env.get("DATABASE_MIGRATION_URL") or db_url),
        "DATABASE_APP_ROLE": env.get("DATABASE_APP_ROLE") or None,
        "REDIS_URL": env.get("REDIS_URL") or None,
        "QUEUE_PREFIX": env.get("VENTANILLA_QUEUE_PREFIX", ""),
        "SECRET_KEY": None,
        "SESSION_COOKIE_SECURE": _bool(env.get("VENTANILLA_SECURE_COOKIES"), True),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(env.get("VENTANILLA_SECURE_COOKIES"), True),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        "BABEL_DEFAULT_LOCALE": "es",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BOOTSTRAP_SERVE_LOCAL": True,
        "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
        # The address people reach the site at: every link in an e-mail starts with it, never with
        # the Host of a request (which the sender of the request chooses). Required outside debug.
        "PUBLIC_URL": env.get("VENTANILLA_PUBLIC_URL", "").rstrip("/"),
        # Host names the site answers to (Flask's TRUSTED_HOSTS; a leading dot allows subdomains);
        # a request for any other host gets 400. Unset: every host is answered.
        "TRUSTED_HOSTS": _list(env.get("VENTANILLA_ALLOWED_HOSTS")) or None,
        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host (0: none,
        # the headers are ignored). Behind them the client's address (login throttling, audit
        # trail) and the scheme and host come from those headers; trust no more than are there.
        "TRUSTED_PROXIES": _count(env.get("VENTANILLA_TRUSTED_PROXIES"), "VENTANILLA_TRUSTED_PROXIES"),
        "MAIL_FROM": env.get("MAIL_FROM", "Ventanilla <no-reply@ventanilla.localhost>"),
        "SMTP_HOST": env.get("SMTP_HOST") or None,
        "SMTP_PORT": int(env.get("SMTP_PORT", "587")),
        "SMTP_USERNAME": env.get("SMTP_USERNAME") or None,
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD") or None,
        "SMTP_SECURITY": env.get("SMTP_SECURITY", "starttls"),
        # Uploaded files and the .eml outbox (core.files.store): ``local`` keeps them in FILES_DIR
        # and OUTBOX_DIR, which every process must see (one machine, or a shared folder); ``s3``
        # in an S3-compatible bucket (core.files.s3), for web and workers on several machines.
        # OUTBOX_STORE unset: the same backend as FILES_STORE.
        "FILES_STORE": env.get("VENTANILLA_FILES_STORE", "local"),
        "FILES_DIR": env.get("VENTANILLA_FILES_DIR") or str(instance / "files"),
        "OUTBOX_STORE": env.get("VENTANILLA_OUTBOX_STORE") or None,
        "OUTBOX_DIR": env.get("VENTANILLA_OUTBOX_DIR") or str(instance / "outbox"),
        # The bucket of the s3 backend: its name, a key prefix (several installations in one
        # bucket), the endpoint of a server other than Amazon's (MinIO, Ceph...), the region,
        # the credentials (unset: boto3's own chain, AWS_* variables or an instance role) and the
        # addressing style (auto, path: most self-hosted servers, virtual).
        "S3_BUCKET": env.get("VENTANILLA_S3_BUCKET") or None,
        "S3_PREFIX": env.get("VENTANILLA_S3_PREFIX", ""),
        "S3_ENDPOINT_URL": env.get("VENTANILLA_S3_ENDPOINT_URL") or None,
        "S3_REGION": env.get("VENTANILLA_S3_REGION") or None,
        "S3_ACCESS_KEY_ID": env.get("VENTANILLA_S3_ACCESS_KEY_ID") or None,
        "S3_SECRET_ACCESS_KEY": env.get("VENTANILLA_S3_SECRET_ACCESS_KEY") or None,
        "S3_ADDRESSING_STYLE": env.get("VENTANILLA_S3_ADDRESSING_STYLE", "auto"),
        # How long the sanity parse of an uploaded PDF may run (seconds, in a child process).
        "FILES_PDF_CHECK_TIMEOUT": float(env.get("VENTANILLA_PDF_CHECK_TIMEOUT", "10")),
        # Uploaded images are decoded and re-encoded in a child process with this time limit
        # (seconds), and one account may have this many uploads in progress at once.
        "FILES_IMAGE_TIMEOUT": float(env.get("VENTANILLA_IMAGE_TIMEOUT", "20")),
        "UPLOADS_PER_ACCOUNT": 2,
        # Outbound mail: attempts before a message is marked failed, the first back-off (doubled
        # after each failure: 90 s ... 25.6 h, about two days in all), a worker's claim on a message
        # and the SMTP connection timeout (seconds).
        "MAIL_MAX_ATTEMPTS": int(env.get("MAIL_MAX_ATTEMPTS", "12")),
        "MAIL_RETRY_BASE_SECONDS": int(env.get("MAIL_RETRY_BASE_SECONDS", "90")),
        "MAIL_LEASE_SECONDS": 600,
        # A delivery job sends at most this many messages, for at most this long, then gives the
        # worker back to other jobs; it claims them this many at a time.
        "MAIL_BATCH_SIZE": int(env.get("MAIL_BATCH_SIZE", "500")),
        "MAIL_BATCH_SECONDS": float(env.get("MAIL_BATCH_SECONDS", "5")),
        "MAIL_CLAIM_SIZE": int(env.get("MAIL_CLAIM_SIZE", "20")),
        # Messages a minute to each tenant's server when the tenant sets none, and the most a
        # tenant may set (0: no limit).
        "MAIL_RATE_PER_MINUTE": int(env.get("MAIL_RATE_PER_MINUTE", "1200")),
        "MAIL_RATE_MAX_PER_MINUTE": int(env.get("MAIL_RATE_MAX_PER_MINUTE", "6000")),
        "SMTP_TIMEOUT": int(env.get("SMTP_TIMEOUT", "30")),
        # Fernet keys for secrets at rest, newest first (core.crypto); filled below when not given.
        "SECRET_KEYS": None,
        "CLIENT_IMPORT_MAX_BYTES": 20_000_000,
        # Servers a tenant names (SMTP now; IMAP, webhooks, push) may not be on loopback, private,
        # link-local or reserved addresses (core.netcheck) unless the operator allows it: on in
        # tests and in `make run`'s demo, whose servers listen on loopback.
        "ALLOW_PRIVATE_HOSTS": _bool(env.get("VENTANILLA_ALLOW_PRIVATE_HOSTS"), bool(overrides.get("TESTING"))),
        # Real push services speak HTTPS; tests run their own on plain HTTP (VENTANILLA_PUSH_ALLOW_HTTP=1
        # for the workers they start).
        "PUSH_ALLOW_HTTP_ENDPOINTS": _bool(env.get("VENTANILLA_PUSH_ALLOW_HTTP"), False),
        # The push services a browser's subscription may point at (host[:port]; a leading dot
        # allows any host under that domain): the browsers' own, nothing else.
        "PUSH_SERVICES": _list(env.get("VENTANILLA_PUSH_SERVICES")) or list(DEFAULT_PUSH_SERVICES),
        # Browsers (subscriptions) kept per account; a new one beyond that replaces the oldest.
        "PUSH_MAX_SUBSCRIPTIONS": 5,
        # E-mail addresses under the reserved .test domain (RFC 2606), which the demo's accounts
        # use: refused in production, allowed in tests and on the embedded defaults (`make run`,
        # `flask demo load`), which production does not use (it sets DATABASE_URL).
        # VENTANILLA_ALLOW_TEST_EMAIL=1 or 0 decides either way.
        "EMAIL_ALLOW_TEST_DOMAINS": _bool(
            env.get("VENTANILLA_ALLOW_TEST_EMAIL"), bool(overrides.get("TESTING")) or not env.get("DATABASE_URL")
        ),
        # Login throttling: failures allowed within the window before a lockout.
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": 5,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 30,
        "LOGIN_FAILURE_WINDOW": 15 * 60,
        # Password reset requests allowed within the window, per account and per client address.
        "PASSWORD_RESET_MAX_PER_ACCOUNT": 5,
        "PASSWORD_RESET_MAX_PER_ADDRESS": 20,
        "PASSWORD_RESET_WINDOW": 15 * 60,
        "PASSWORD_RESET_TTL": 3600,
        "INVITATION_TTL": 7 * 24 * 3600,
        "PASSWORD_MIN_LENGTH": 10,
        # Back-off between the retries of a job that failed for a transient reason (seconds).
        "JOB_RETRY_INTERVALS": [15, 60, 300, 900],
        # Extra plugin modules to register besides the entry points (tests, local development).
        "EXTRA_PLUGINS": [p for p in env.get("VENTANILLA_EXTRA_PLUGINS", "").split(",") if p],
        "PLUGIN_ALLOWLIST": [p for p in env.get("VENTANILLA_PLUGINS", "").split(",") if p] or None,
        "TESTING": False,
    }
    config.update(overrides)
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _secret_key(instance)
    if not config.get("SECRET_KEYS"):
        # VENTANILLA_SECRET_KEYS, else the instance key file (created with mode 0600 on first run).
        from core.crypto import keys_from_environment_or_file

        config["SECRET_KEYS"] = keys_from_environment_or_file(str(instance))
    return config
