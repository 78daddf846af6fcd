"""Mailbox passwords at rest: Fernet tokens, nowhere in the raw database, and moved by ``flask secrets rotate``."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import select, text

from plugins.inboxes.models import Mailbox
from tests.core.mail.test_secrets_at_rest import _raw_database, use_keys  # noqa: F401  (fixture)
from tests.plugins.inboxes.conftest import in_tenant

PASSWORDS = {"Entrada": "Entrada-imap-Secret-5521", "Salida": "Salida-smtp-Secret-9174"}


def _store(app, factory):
    from plugins.inboxes import mailboxes

    tenant = factory.tenant("acme")
    with in_tenant(app, tenant.id):
        mailboxes.save_mailbox(
            None,
            "inbound",
            mailboxes.MailboxData(
                name="Entrada", host="imap.acme.test", port=993, username="u", password=PASSWORDS["Entrada"]
            ),
        )
        mailboxes.save_mailbox(
            None,
            "outbound",
            mailboxes.MailboxData(
                name="Salida",
                host="smtp.acme.test",
                port=587,
                security="starttls",
                username="u",
                password=PASSWORDS["Salida"],
                sender_address="s@acme.test",
            ),
        )
    return tenant


def _tokens(owner_engine) -> list[str]:
    with owner_engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('app.all_tenants', 'on', false)"))
        return list(conn.execute(text("SELECT password FROM inboxes_mailboxes ORDER BY id")).scalars())


def _passwords(app, tenant) -> dict:
    from core.extensions import db

    with in_tenant(app, tenant.id):
        return dict(db.session.execute(select(Mailbox.name, Mailbox.password)).all())


def test_mailbox_passwords_are_nowhere_in_the_raw_database(app, factory, database, owner_engine):
    tenant = _store(app, factory)
    assert _passwords(app, tenant) == PASSWORDS
    raw = _raw_database(database, owner_engine)
    assert b"imap.acme.test" in raw, "the dump does see the mailboxes"
    for secret in PASSWORDS.values():
        assert secret.encode() not in raw and secret.encode().hex().encode() not in raw
    assert all(token.startswith("gAAAAA") for token in _tokens(owner_engine))


def test_rotation_re_encrypts_the_mailbox_passwords(app, factory, owner_engine, use_keys):  # noqa: F811
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(old)
    tenant = _store(app, factory)
    use_keys(new, old)
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "inboxes_mailboxes.password: 2 re-encrypted, 0 already with the newest key" in result.output
    use_keys(new)
    assert _passwords(app, tenant) == PASSWORDS
    assert sorted(Fernet(new).decrypt(t.encode()).decode() for t in _tokens(owner_engine)) == sorted(PASSWORDS.values())
