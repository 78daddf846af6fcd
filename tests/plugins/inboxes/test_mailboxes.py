"""Parametrización → Buzón de correo electrónico: saving mailboxes and their buttons, through the pages.

Passwords are never shown again and never go to another server; private addresses are refused
unless the operator allows them; every failure of a button is told in words."""

from __future__ import annotations

import re

import pytest

from core.api import DomainError
from plugins.inboxes import mailboxes
from plugins.inboxes.connectors import ErrorKind, MailError
from plugins.inboxes.models import Mailbox
from tests.conftest import login
from tests.core.mail.conftest import SMTP_PASSWORD, SMTP_USER
from tests.plugins.inboxes.conftest import in_tenant, make_inbound, make_outbound


@pytest.fixture
def acme(factory):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    return tenant


def flashes(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r'role="alert">(.*?)<button', html, re.S)]


def inbound_form(dovecot, user, **changes) -> dict:
    form = {
        "name": "Soporte",
        "provider": "",
        "protocol": "imap",
        "host": "localhost",
        "port": str(dovecot.ports["imaps"]),
        "security": "ssl",
        "verify_tls": "y",
        "ca_certificate": dovecot.ca_file.read_text(),
        "email_address": user.name,
        "username": user.name,
        "password": user.password,
        "folder": "INBOX",
        "after_fetch": "move",
        "processed_folder": "Procesados",
        "quarantine_folder": "Cuarentena",
        "poll_minutes": "5",
        "max_message_mb": "10",
        "active": "y",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_an_inbound_mailbox_is_created_tested_and_lists_its_folders(app, acme, client, dovecot, mailbox):
    login(client, "acme", "jefa@acme.test")
    dovecot.deliver(mailbox, b"From: a@example.com\r\nSubject: uno\r\n\r\nhola\r\n")
    response = client.post("/acme/inboxes/mailboxes/new/inbound", data=inbound_form(dovecot, mailbox))
    assert response.status_code == 302, flashes(response.get_data(as_text=True))
    page = response.location

    tested = client.post(f"{page}/test", follow_redirects=True).get_data(as_text=True)
    assert "Connected: the folder INBOX holds 1 message (1 unread)." in flashes(tested)
    assert mailbox.password not in tested

    dovecot.append(mailbox, b"From: a@example.com\r\nSubject: dos\r\n\r\nhola\r\n", folder="Clientes")
    listed = client.post(f"{page}/folders").get_data(as_text=True)
    assert "<code>INBOX</code>" in listed and "<code>Clientes</code>" in listed


def test_a_saved_password_is_never_shown_kept_when_empty_and_forgotten_with_its_server(app, acme, client, dovecot):
    user = dovecot.add_user("secret-keeper@example.test", "Muy-Secreta-123")
    inbound = make_inbound(app, acme, dovecot, user)
    login(client, "acme", "jefa@acme.test")

    page = client.get(f"/acme/inboxes/mailboxes/{inbound}").get_data(as_text=True)
    assert "Muy-Secreta-123" not in page and 'id="password-saved"' in page

    # Saving without a password keeps it...
    client.post(f"/acme/inboxes/mailboxes/{inbound}", data=inbound_form(dovecot, user, password="", name="Otro nombre"))
    with in_tenant(app, acme.id):
        from core.extensions import db

        assert db.session.get(Mailbox, inbound).password == "Muy-Secreta-123"
    # ...another user forgets it...
    client.post(f"/acme/inboxes/mailboxes/{inbound}", data=inbound_form(dovecot, user, password="", username="otro"))
    with in_tenant(app, acme.id):
        from core.extensions import db

        assert db.session.get(Mailbox, inbound).password is None
    tested = client.post(f"/acme/inboxes/mailboxes/{inbound}/test", follow_redirects=True).get_data(as_text=True)
    assert "No password is saved for this mailbox" in tested
    # ...and so does another server, even with the same user.
    client.post(f"/acme/inboxes/mailboxes/{inbound}", data=inbound_form(dovecot, user))
    client.post(f"/acme/inboxes/mailboxes/{inbound}", data=inbound_form(dovecot, user, password="", host="127.0.0.1"))
    with in_tenant(app, acme.id):
        from core.extensions import db

        assert db.session.get(Mailbox, inbound).password is None


def test_private_servers_are_refused_unless_the_operator_allows_them(app, acme, dovecot, mailbox):
    app.config["ALLOW_PRIVATE_HOSTS"] = False
    try:
        with in_tenant(app, acme.id), pytest.raises(DomainError) as refused:
            mailboxes.save_mailbox(
                None, "inbound", mailboxes.MailboxData(name="Interno", host="10.1.2.3", port=993, username="u")
            )
        assert refused.value.field == "host" and "not a server on the internet" in str(refused.value.message)
        # One saved while it was allowed is refused when connecting, in words.
        app.config["ALLOW_PRIVATE_HOSTS"] = True
        inbound = make_inbound(app, acme, dovecot, mailbox)
        app.config["ALLOW_PRIVATE_HOSTS"] = False
        with in_tenant(app, acme.id), pytest.raises(MailError) as error:
            from core.extensions import db

            mailboxes.test_connection(db.session.get(Mailbox, inbound))
        assert error.value.kind == ErrorKind.ADDRESS_REFUSED
    finally:
        app.config["ALLOW_PRIVATE_HOSTS"] = True


def test_certificates_are_verified_by_default(app, acme, dovecot, mailbox):
    untrusted = make_inbound(app, acme, dovecot, mailbox, ca_certificate="", name="Sin CA")
    with in_tenant(app, acme.id), pytest.raises(MailError) as error:
        from core.extensions import db

        mailboxes.test_connection(db.session.get(Mailbox, untrusted))
    assert error.value.kind == ErrorKind.TLS_CERTIFICATE
    trusted = make_inbound(app, acme, dovecot, mailbox, name="Con CA")
    with in_tenant(app, acme.id):
        from core.extensions import db

        assert mailboxes.test_connection(db.session.get(Mailbox, trusted)).tls is not None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"protocol": "pop3", "after_fetch": "move"}, "after_fetch", "POP3 has no folders"),
        ({"processed_folder": "INBOX"}, "after_fetch", "other than the one that is read"),
        ({"host": "https://imap.example.com"}, "host", "Enter only the server"),
        ({"poll_minutes": "0"}, "poll_minutes", None),
        ({"ca_certificate": "not a certificate"}, "ca_certificate", "PEM"),
        ({"name": ""}, "name", None),
    ],
)
def test_what_is_wrong_is_shown_on_its_field(app, acme, client, dovecot, mailbox, changes, field, words):
    login(client, "acme", "jefa@acme.test")
    response = client.post("/acme/inboxes/mailboxes/new/inbound", data=inbound_form(dovecot, mailbox, **changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(rf'id="{field}"[^>]*is-invalid|is-invalid[^>]*id="{field}"', html), f"{field} not marked"
    if words:
        assert words in html


def test_a_provider_fills_server_port_and_security(app, acme):
    with in_tenant(app, acme.id):
        box = mailboxes.save_mailbox(
            None,
            "inbound",
            mailboxes.MailboxData(name="Gmail", provider="gmail", username="x@gmail.com", password="app-password"),
        )
        assert (box.host, box.port, box.security) == ("imap.gmail.com", 993, "ssl")
        pop = mailboxes.save_mailbox(
            None,
            "inbound",
            mailboxes.MailboxData(
                name="Gmail POP", provider="gmail", protocol="pop3", after_fetch="delete", username="x@gmail.com"
            ),
        )
        assert (pop.host, pop.port) == ("pop.gmail.com", 995)
        smtp = mailboxes.save_mailbox(
            None,
            "outbound",
            mailboxes.MailboxData(name="Gmail SMTP", provider="gmail", username="x", sender_address="x@gmail.com"),
        )
        assert (smtp.host, smtp.port, smtp.security) == ("smtp.gmail.com", 465, "ssl")


def test_a_test_message_leaves_through_the_outbound_mailbox(app, acme, client, smtp_server):
    outbound = make_outbound(app, acme, smtp_server)
    login(client, "acme", "jefa@acme.test")

    page = client.post(f"/acme/inboxes/mailboxes/{outbound}/send-test", follow_redirects=True).get_data(as_text=True)

    assert "A test message has been sent to jefa@acme.test." in flashes(page)
    received = smtp_server.received[-1]
    assert received.login == SMTP_USER and received.rcpt_tos == ["jefa@acme.test"]
    assert received.message["From"] == "Soporte <soporte@asesoria.test>"


def test_a_refused_password_is_told_in_words_without_the_servers_reply(app, acme, client, smtp_server):
    outbound = make_outbound(app, acme, smtp_server, password="not-" + SMTP_PASSWORD)
    login(client, "acme", "jefa@acme.test")

    page = client.post(f"/acme/inboxes/mailboxes/{outbound}/send-test", follow_redirects=True).get_data(as_text=True)

    assert flashes(page) == ["It did not work: The server refused the user name or the password."]
    assert "535 5.7.8" not in page and "Authentication failed" not in page
    assert "Authentication credentials invalid" not in page
    assert smtp_server.received == []


def test_a_wrong_imap_password_is_told_in_words(app, acme, client, dovecot, mailbox):
    inbound = make_inbound(app, acme, dovecot, mailbox, password="wrong")
    login(client, "acme", "jefa@acme.test")
    page = client.post(f"/acme/inboxes/mailboxes/{inbound}/test", follow_redirects=True).get_data(as_text=True)
    assert flashes(page) == ["It did not work: The server refused the user name or the password."]
    assert "AUTHENTICATIONFAILED" not in page


def test_only_one_default_outbound_mailbox(app, acme, smtp_server):
    first = make_outbound(app, acme, smtp_server, name="Uno", is_default=True)
    second = make_outbound(app, acme, smtp_server, name="Dos", is_default=True)
    with in_tenant(app, acme.id):
        from core.extensions import db

        assert not db.session.get(Mailbox, first).is_default
        assert db.session.get(Mailbox, second).is_default
        assert mailboxes.default_outbound().id == second


def test_the_mailbox_list_shows_both_kinds_and_their_health(app, acme, client, dovecot, mailbox, smtp_server):
    make_inbound(app, acme, dovecot, mailbox, name="Entrada clientes")
    make_outbound(app, acme, smtp_server, name="Salida clientes", is_default=True)
    login(client, "acme", "jefa@acme.test")
    page = client.get("/acme/inboxes/mailboxes/").get_data(as_text=True)
    inbound_table = page.split('id="inbound-mailboxes"')[1].split("</table>")[0]
    outbound_table = page.split('id="outbound-mailboxes"')[1].split("</table>")[0]
    assert "Entrada clientes" in inbound_table and 'data-health="new"' in inbound_table
    assert "Salida clientes" in outbound_table and "Default" in outbound_table
