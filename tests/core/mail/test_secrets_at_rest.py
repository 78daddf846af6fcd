"""Secrets at rest: no plaintext in the database files, and ``flask secrets rotate`` moves them to a new key."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

SECRETS = {"acme": "Acme-smtp-Secret-7731", "beta": "Beta-smtp-Secret-0429"}


def _store(app, factory) -> dict:
    from core.extensions import db
    from core.mail.services import save_tenant_settings
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenants = {}
    for slug, secret in SECRETS.items():
        tenant = factory.tenant(slug)
        with app.app_context(), tenant_context(tenant.id):
            save_tenant_settings(
                db.session.get(Tenant, tenant.id), f"smtp.{slug}.test", 587, "starttls", "mailer", secret, "a@b.test"
            )
        tenants[slug] = tenant
    return tenants


def _passwords(app, tenants) -> dict:
    from core.extensions import db
    from core.mail.models import TenantMailSettings
    from tenants.context import tenant_context

    found = {}
    for slug, tenant in tenants.items():
        with app.app_context(), tenant_context(tenant.id):
            found[slug] = db.session.scalar(select(TenantMailSettings.password))
    return found


def _raw_tokens(owner_engine) -> list[str]:
    with owner_engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('app.all_tenants', 'on', false)"))
        return list(conn.execute(text("SELECT password FROM core_tenant_mail_settings ORDER BY id")).scalars())


def _raw_database(database, owner_engine) -> bytes:
    """Everything the database holds, as the owner reads it: files and dump (SQLite), every row (PostgreSQL)."""
    if database["engine"] == "sqlite":
        path = Path(urlsplit(database["owner_url"]).path)
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        raw = b"".join(p.read_bytes() for p in files)
        with sqlite3.connect(path) as conn:
            raw += "\n".join(conn.iterdump()).encode()
        conn.close()
        return raw
    with owner_engine.connect() as conn:
        conn.execute(text("SELECT set_config('app.all_tenants', 'on', false)"))
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalars()
        rows = []
        for table in list(tables):
            # A whole row as text: every text, JSON and bytea (hex) column at once.
            rows += conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).scalars()
        return "\n".join(rows).encode()


# Every encrypted column, and the test below that stores a known value in it: a new secret column
# must join the scan.
SCANNED = {
    "core_tenant_mail_settings.password",
    "core_vapid_keys.private_pem",
    "inboxes_mailboxes.password",  # tests/plugins/inboxes/test_secrets.py
    "pec_provider_configs.settings",  # scanned by tests/plugins/pec/test_activation.py
    "sedes_certificates.credential_pem",  # tests/plugins/sedes/test_sync.py
    "sedes_certificates.password",  # tests/plugins/sedes/test_certificates.py
    "sedes_certificates.pkcs12",  # tests/plugins/sedes/test_certificates.py
    "sedes_webhooks.previous_secret",  # tests/plugins/sedes/test_webhooks.py
    "sedes_webhooks.secret",  # tests/plugins/sedes/test_webhooks.py
}


def test_every_encrypted_column_is_in_the_secret_scan(app):
    from core.crypto import encrypted_columns
    from core.extensions import db

    assert {f"{table.name}.{column.name}" for table, column in encrypted_columns(db.metadata)} == SCANNED


def _vapid_private_key(app) -> bytes:
    """The installation's push signing key, made on first use: its PEM body, as the app reads it."""
    from core.push.services import vapid_key

    with app.app_context():
        pem = vapid_key().private_pem
    return b"".join(line.encode() for line in pem.splitlines() if line and not line.startswith("-----"))


def test_stored_secrets_are_nowhere_in_the_raw_database(app, factory, database, owner_engine):
    tenants = _store(app, factory)
    assert _passwords(app, tenants) == SECRETS, "the application reads them back"
    private_key = _vapid_private_key(app)
    assert len(private_key) > 100
    raw = _raw_database(database, owner_engine)
    assert b"smtp.acme.test" in raw, "the dump does see the tenants' rows"
    for secret in [*(s.encode() for s in SECRETS.values()), private_key, private_key[:40]]:
        assert secret not in raw
        assert secret.hex().encode() not in raw
    assert all(token.startswith("gAAAAA") for token in _raw_tokens(owner_engine)), "Fernet tokens"


@pytest.fixture
def use_keys(app, monkeypatch):
    """Set the key ring (newest first) as an operator would, dropping the cached one."""

    def use(*keys: str) -> None:
        monkeypatch.setitem(app.config, "SECRET_KEYS", list(keys))
        app.extensions.pop("ventanilla_fernet", None)

    yield use
    app.extensions.pop("ventanilla_fernet", None)


def test_rotation_re_encrypts_every_secret_with_the_new_key_across_tenants(app, factory, owner_engine, use_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(old)
    tenants = _store(app, factory)
    assert all(Fernet(old).decrypt(t.encode()) for t in _raw_tokens(owner_engine))

    use_keys(new, old)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["secrets", "rotate", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert "core_tenant_mail_settings.password: 2 re-encrypted, 0 already with the newest key" in result.output
    assert "2 secret(s) re-encrypted" in result.output

    use_keys(new)
    assert _passwords(app, tenants) == SECRETS, "only the new key is needed now"
    assert sorted(Fernet(new).decrypt(t.encode()).decode() for t in _raw_tokens(owner_engine)) == sorted(
        SECRETS.values()
    )

    again = runner.invoke(args=["secrets", "rotate"])
    assert again.exit_code == 0
    assert "core_tenant_mail_settings.password: 0 re-encrypted, 2 already with the newest key" in again.output


def test_rotation_with_a_key_ring_that_cannot_open_a_secret_fails_and_changes_nothing(
    app, factory, owner_engine, use_keys
):
    use_keys(Fernet.generate_key().decode())
    _store(app, factory)
    before = _raw_tokens(owner_engine)
    use_keys(Fernet.generate_key().decode())
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code != 0
    assert "2 that no key opens" in result.output and "keep the old keys" in result.output
    assert _raw_tokens(owner_engine) == before


def test_the_instance_key_file_is_made_on_first_run_readable_by_its_owner_only(tmp_path, monkeypatch):
    from core.config import load_config

    monkeypatch.delenv("VENTANILLA_SECRET_KEYS", raising=False)
    config = load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    key_file = tmp_path / "secret_keys"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert config["SECRET_KEYS"] == [key_file.read_text().strip()]
    Fernet(config["SECRET_KEYS"][0])
    assert load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})["SECRET_KEYS"] == config["SECRET_KEYS"]


def test_a_key_file_that_others_could_read_is_set_back_to_owner_only(tmp_path, monkeypatch):
    from core.config import load_config

    monkeypatch.delenv("VENTANILLA_SECRET_KEYS", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config({"INSTANCE_PATH": str(tmp_path)})
    for name in ("secret_keys", "secret_key"):
        (tmp_path / name).chmod(0o644)
    again = load_config({"INSTANCE_PATH": str(tmp_path)})
    assert again["SECRET_KEYS"] == first["SECRET_KEYS"] and again["SECRET_KEY"] == first["SECRET_KEY"]
    for name in ("secret_keys", "secret_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_keys_from_the_environment_come_first(tmp_path, monkeypatch):
    from core.config import load_config

    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("VENTANILLA_SECRET_KEYS", f"{first}, {second}")
    config = load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    assert config["SECRET_KEYS"] == [first, second]
    assert not (tmp_path / "secret_keys").exists()


def test_changing_the_smtp_settings_is_audited_with_the_password_masked(app, factory, client):
    from sqlalchemy import select

    from core.audit.models import AuditEvent
    from core.extensions import db
    from core.mail.services import save_tenant_settings
    from tenants.context import tenant_context

    tenant = factory.tenant("acme")
    with app.app_context(), tenant_context(tenant.id):
        save_tenant_settings(
            tenant.id,
            host="smtp.acme.test",
            port=587,
            security="starttls",
            username="mailer",
            password="s3cret-smtp-pass",
            from_address="no-reply@acme.test",
        )
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "mail_settings"))
    assert event.changes["password"] == [None, "••••••"]
    assert "s3cret-smtp-pass" not in str(event.changes)
