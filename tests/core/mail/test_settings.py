"""The tenant administrator's mail settings page: saving, validation, the password, the test button."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.core.mail.conftest import SMTP_PASSWORD, SMTP_USER, messages, use_smtp


def _admin(factory, client, slug="acme"):
    tenant = factory.tenant(slug, name="Gestoría Acme", language="en")
    factory.user(tenant, f"admin@{slug}.test", role_key="admin", name="Ada Admin")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, slug, f"admin@{slug}.test")
    return tenant


def _stored(app, tenant) -> dict | None:
    from core.extensions import db
    from core.mail.models import TenantMailSettings
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        row = db.session.scalar(select(TenantMailSettings))
        if row is None:
            return None
        return {
            "host": row.host,
            "port": row.port,
            "security": row.security,
            "username": row.username,
            "password": row.password,
            "from_address": row.from_address,
        }


def _form(smtp_server=None, **changes) -> dict:
    data = {
        "host": smtp_server.host if smtp_server else "smtp.example.com",
        "port": str(smtp_server.port) if smtp_server else "587",
        "security": "none" if smtp_server else "starttls",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from_address": "noreply@acme.test",
    }
    data.update(changes)
    return data


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_the_administrator_saves_the_server_and_the_password_is_never_shown_again(app, factory, client):
    tenant = _admin(factory, client)
    page = _text(client.get("/acme/settings/mail/"))
    assert "No mail server is configured" in page
    response = client.post("/acme/settings/mail/", data=_form())
    assert response.status_code == 302
    assert _stored(app, tenant) == {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from_address": "noreply@acme.test",
    }
    page = _text(client.get("/acme/settings/mail/"))
    assert "smtp.example.com" in page and SMTP_USER in page
    assert SMTP_PASSWORD not in page
    assert "A password is stored. Leave this empty to keep it." in page

    # Saving with the password left empty keeps it; a new one replaces it.
    client.post("/acme/settings/mail/", data=_form(password="", port="2525"))
    assert _stored(app, tenant)["password"] == SMTP_PASSWORD and _stored(app, tenant)["port"] == 2525
    client.post("/acme/settings/mail/", data=_form(password="another-secret"))
    assert _stored(app, tenant)["password"] == "another-secret"
    # No user name: no login, and no password kept.
    client.post("/acme/settings/mail/", data=_form(username="", password=""))
    assert _stored(app, tenant)["username"] is None and _stored(app, tenant)["password"] is None
    # No host: back to the platform's server (here: the outbox folder).
    client.post("/acme/settings/mail/", data=_form(host="", from_address=""))
    assert _stored(app, tenant)["host"] is None
    assert "No mail server is configured" in _text(client.get("/acme/settings/mail/"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": "https://smtp.example.com"}, "Enter only the server&#39;s name or IP address"),
        ({"host": "smtp.example.com/path"}, "Enter only the server&#39;s name or IP address"),
        ({"host": "smtp example.com"}, "Enter only the server&#39;s name or IP address"),
        ({"host": "smtp.example.com:587"}, "Enter only the server&#39;s name or IP address"),
        ({"host": "-bad-.example.com"}, "Enter only the server&#39;s name or IP address"),
        ({"host": "300.1.1.1"}, "Enter only the server&#39;s name or IP address"),
        ({"host": "user@smtp.example.com"}, "Enter only the server&#39;s name or IP address"),
        ({"port": "0"}, "The port is a number from 1 to 65535"),
        ({"port": "99999"}, "The port is a number from 1 to 65535"),
        ({"port": "smtp"}, "The port is a number from 1 to 65535"),
        ({"from_address": ""}, "Enter the address your messages are sent from."),
        ({"from_address": "not an address"}, "This is not a valid e-mail address."),
        ({"rate_per_minute": "0"}, "Enter a whole number from 1 to 6000, or leave it empty."),
        ({"rate_per_minute": "fast"}, "Enter a whole number from 1 to 6000, or leave it empty."),
        ({"rate_per_minute": "6001"}, "Enter a whole number from 1 to 6000, or leave it empty."),
    ],
)
def test_a_bad_server_is_refused_with_a_clear_message(app, factory, client, changes, message):
    tenant = _admin(factory, client)
    page = client.post("/acme/settings/mail/", data=_form(**changes))
    assert page.status_code == 200
    assert message in _text(page)
    assert _stored(app, tenant) is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("SMTP.Example.COM", "smtp.example.com"),
        ("93.184.215.14", "93.184.215.14"),
        ("[2606:4700::1111]", "2606:4700::1111"),
    ],
)
def test_host_names_and_ip_addresses_are_accepted(app, factory, client, typed, stored):
    tenant = _admin(factory, client)
    assert client.post("/acme/settings/mail/", data=_form(host=typed)).status_code == 302
    assert _stored(app, tenant)["host"] == stored


def test_the_test_button_sends_to_the_administrator_through_the_typed_settings(app, factory, client, smtp_server):
    tenant = _admin(factory, client)
    page = client.post("/acme/settings/mail/test", data=_form(smtp_server))
    assert page.status_code == 200
    text = _text(page)
    assert "We have sent a test message to admin@acme.test through 127.0.0.1." in text
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["admin@acme.test"] and received.login == SMTP_USER
    assert received.message["From"].addresses[0].addr_spec == "noreply@acme.test"
    assert "Gestoría Acme" in received.message["Subject"]
    assert _stored(app, tenant) is None, "the test does not save the settings"
    assert messages(app, tenant) == [], "nor does it queue anything"


def test_the_test_button_uses_the_stored_password_when_the_field_is_left_empty(app, factory, client, smtp_server):
    tenant = _admin(factory, client)
    use_smtp(app, tenant, smtp_server)
    page = client.post("/acme/settings/mail/test", data=_form(smtp_server, password=""))
    assert "We have sent a test message" in _text(page)
    assert smtp_server.received[0].login == SMTP_USER


def test_the_test_button_shows_what_the_server_said_when_it_fails(app, factory, client, smtp_server):
    _admin(factory, client)
    page = _text(client.post("/acme/settings/mail/test", data=_form(smtp_server, password="wrong-password")))
    assert "The test message could not be sent." in page
    assert "The server refused the user name or the password." in page
    assert "SMTPAuthenticationError: 535" in page
    assert "wrong-password" not in page
    assert "5.7.8" not in page and "Authentication credentials invalid" not in page, "codes only, not the server's text"

    page = _text(client.post("/acme/settings/mail/test", data=_form(smtp_server, security="starttls")))
    assert "does not offer what these settings ask for (STARTTLS or login)" in page

    smtp_server.stop()
    page = _text(client.post("/acme/settings/mail/test", data=_form(smtp_server)))
    assert "The server refused the connection. Check the host and the port." in page
    assert "ConnectionRefusedError" in page
    assert smtp_server.received == []


def test_the_test_button_without_a_server_of_ones_own_reports_where_the_message_went(app, factory, client):
    from pathlib import Path

    _admin(factory, client)
    page = _text(client.post("/acme/settings/mail/test", data=_form(host="", from_address="")))
    assert "was written to the outbox as an .eml file instead of being sent" in page
    assert len(list(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))) == 1


def test_only_holders_of_the_mail_permission_see_the_page_and_the_menu_entry(app, factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "staff@acme.test", permissions=["core.users:view"])
    factory.user(tenant, "mailer@acme.test", permissions=["core.mail:manage"])
    login(client, "acme", "staff@acme.test")
    assert client.get("/acme/settings/mail/").status_code == 403
    assert "/acme/settings/mail/" not in _text(client.get("/acme/"))
    other = app.test_client()
    login(other, "acme", "mailer@acme.test")
    assert other.get("/acme/settings/mail/").status_code == 200
    assert "/acme/settings/mail/" in _text(other.get("/acme/"))


def test_the_mail_permission_is_for_administrators_only_by_default(app):
    permission = app.extensions["ventanilla_plugins"].permissions.get("core.mail:manage")
    assert permission is not None and permission.default_roles == ()


# --- the server must be on the internet, and the stored password stays with its server ---------


@pytest.fixture
def strict(app, monkeypatch):
    """Production's rule: servers on private addresses are refused (tests allow them by default)."""
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_HOSTS", False)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.7", "192.168.1.20", "[::ffff:127.0.0.1]", "0.0.0.0"],
)
def test_a_server_on_a_private_address_is_refused_on_saving(app, factory, client, strict, host):
    tenant = _admin(factory, client)
    page = client.post("/acme/settings/mail/", data=_form(host=host))
    assert page.status_code == 200
    assert "is not a server on the internet" in _text(page)
    assert _stored(app, tenant) is None


def test_the_test_button_never_connects_to_a_private_address(app, factory, client, smtp_server, strict):
    _admin(factory, client)
    for host in (smtp_server.host, "localhost"):
        page = _text(client.post("/acme/settings/mail/test", data=_form(smtp_server, host=host)))
        assert f"{host} is not a server on the internet" in page
        assert "We have sent a test message" not in page
    assert smtp_server.received == [] and smtp_server.handler.logins == []


@pytest.fixture
def banner_server():
    """A service that is not SMTP (an SSH daemon, say) on loopback: it greets and hangs up."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    banner = b"SSH-2.0-OpenSSH_9.6 internal-bastion-7\r\n"

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(banner)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(timeout=5)


def test_the_test_button_shows_a_classified_error_and_nothing_the_other_end_said(app, factory, client, banner_server):
    _admin(factory, client)
    page = _text(client.post("/acme/settings/mail/test", data=_form(host="127.0.0.1", port=str(banner_server))))
    assert "The test message could not be sent." in page
    assert "SSH-2.0" not in page and "internal-bastion" not in page and "OpenSSH" not in page


def test_the_stored_password_is_never_sent_to_a_server_or_user_the_form_changed(app, factory, client, smtp_server):
    tenant = _admin(factory, client)
    # The stored password belongs to the organisation's real server ...
    client.post("/acme/settings/mail/", data=_form(host="smtp.example.com"))
    assert _stored(app, tenant)["password"] == SMTP_PASSWORD
    # ... a test through another host with the field left empty must not hand it over.
    page = _text(client.post("/acme/settings/mail/test", data=_form(smtp_server, password="")))
    assert "We have sent a test message" not in page
    assert all(password != SMTP_PASSWORD for _login, password in smtp_server.handler.logins)
    assert smtp_server.received == []
    # Nor as another user on the stored host (saved the same way, below).
    client.post("/acme/settings/mail/", data=_form(host="smtp.example.com", username="other@acme.test", password=""))
    assert _stored(app, tenant)["password"] is None, "a new user name forgets the old user's password"
    client.post("/acme/settings/mail/", data=_form(host="smtp.example.com"))
    client.post("/acme/settings/mail/", data=_form(host="smtp.elsewhere.example", password=""))
    assert _stored(app, tenant)["password"] is None, "a new host forgets the old host's password"
    client.post("/acme/settings/mail/", data=_form(host="smtp.example.com"))
    client.post("/acme/settings/mail/", data=_form(host="SMTP.example.com", port="465", security="ssl", password=""))
    assert _stored(app, tenant)["password"] == SMTP_PASSWORD, "same host and user: kept"


def test_delivery_to_a_tenant_server_on_a_private_address_fails_for_good(app, factory, client, smtp_server, outbox):
    from tests.core.mail.conftest import messages

    tenant = _admin(factory, client)
    use_smtp(app, tenant, smtp_server)  # saved while private hosts were allowed
    app.config["ALLOW_PRIVATE_HOSTS"] = False
    try:
        client.post("/acme/password/forgot", data={"email": "admin@acme.test"})
        outbox()
    finally:
        app.config["ALLOW_PRIVATE_HOSTS"] = True
    (message,) = messages(app, tenant)
    assert message["status"] == "failed" and message["attempts"] == 1
    assert "RefusedAddress" in message["last_error"]
    assert smtp_server.received == []


def _rate(app, tenant) -> int | None:
    from core.extensions import db
    from core.mail.models import TenantMailSettings
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return db.session.scalar(select(TenantMailSettings.rate_per_minute))


def test_the_administrator_sets_the_rate_of_messages_a_minute(app, factory, client):
    tenant = _admin(factory, client)
    page = client.get("/acme/settings/mail/")
    assert "Empty: 1200, the platform" in _text(page) and "At most 6000." in _text(page)
    assert client.post("/acme/settings/mail/", data=_form(rate_per_minute="90")).status_code == 302
    assert _rate(app, tenant) == 90
    assert 'value="90"' in _text(client.get("/acme/settings/mail/"))
    assert client.post("/acme/settings/mail/", data=_form(rate_per_minute="")).status_code == 302
    assert _rate(app, tenant) is None
