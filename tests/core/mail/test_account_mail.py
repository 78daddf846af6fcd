"""Invitations and password resets are outbox messages: stored, then delivered by the worker."""

from __future__ import annotations

import re

from tests.conftest import login, path_of
from tests.core.mail.conftest import messages, use_smtp


def test_an_invitation_is_stored_with_the_new_user_and_reaches_the_tenants_server(
    app, factory, client, smtp_server, run_jobs
):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "admin@acme.test", role_key="admin", name="Ada Admin")
    use_smtp(app, tenant, smtp_server)
    login(client, "acme", "admin@acme.test")
    response = client.post("/acme/users/invite", data={"email": "nora@acme.test", "name": "Nora", "locale": "it"})
    assert response.status_code == 302
    (row,) = messages(app, tenant)
    assert row["template"] == "invitation" and row["to"] == ["nora@acme.test"] and row["status"] == "queued"
    run_jobs()
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["nora@acme.test"]
    mail = received.message
    assert mail["Content-Language"] == "it" and "Ada Admin" in mail.get_body(("plain",)).get_content()
    assert messages(app, tenant)[0]["status"] == "sent"

    link = path_of(re.search(r"https?://\S+", mail.get_body(("plain",)).get_content()).group(0))
    newcomer = app.test_client()
    newcomer.post(link, data={"password": "nora-password-1", "confirm": "nora-password-1"})
    login(newcomer, "acme", "nora@acme.test", "nora-password-1")


def test_a_password_reset_goes_through_the_outbox(app, factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    client.post("/acme/password/forgot", data={"email": "boss@acme.test"})
    assert messages(app, tenant) == [], "a job looks the account up and writes the message"
    (mail,) = outbox()
    (row,) = messages(app, tenant)
    assert row["template"] == "password_reset" and row["status"] == "sent"
    assert mail.to == "boss@acme.test" and mail.message["Message-ID"] == row["message_id"]
