"""The operator's view of mail: the outbox folder's .eml files and every tenant's messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import login, login_operator
from tests.core.mail.conftest import messages, use_smtp


@pytest.fixture
def console(factory, client):
    factory.operator()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client)
    return client


def _text(response) -> str:
    return response.get_data(as_text=True)


def _send(app, tenant, to: str, subject: str, **context):
    from core.extensions import db
    from core.mail.services import send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    context.setdefault("user", {"name": "Reader"})
    context.setdefault("host", "")
    with app.app_context(), tenant_context(tenant.id):
        return send_email(db.session.get(Tenant, tenant.id), to, subject, "test_message", "en", **context).id


def test_the_outbox_lists_the_files_newest_first_page_by_page(app, factory, console, run_jobs):
    tenant = factory.tenant("acme")
    for n in range(53):
        _send(app, tenant, f"client{n:02d}@client.test", f"Message number {n:02d}")
    run_jobs()
    first = _text(console.get("/operator/outbox"))
    subjects = re.findall(r"Message number (\d\d)", first)
    assert len(subjects) == 50
    assert subjects == sorted(subjects, reverse=True), "newest first"
    assert subjects[0] == "52"
    next_link = re.search(r'href="(/operator/outbox\?after=[^"]+)"', first).group(1)
    second = _text(console.get(next_link.replace("&amp;", "&")))
    assert re.findall(r"Message number (\d\d)", second) == ["02", "01", "00"]
    assert 'rel="next"' not in second


def test_one_outbox_file_shows_its_headers_text_and_sanitised_html(app, factory, console, run_jobs):
    tenant = factory.tenant("acme", name="Gestoría Acme")
    _send(app, tenant, "ana@client.test", "Your documents", user={"name": "Ana <b>Cliente</b>"})
    run_jobs()
    (path,) = Path(app.config["OUTBOX_DIR"]).glob("*.eml")
    page = _text(console.get(f"/operator/outbox/{path.name}"))
    assert "ana@client.test" in page and "Your documents" in page
    assert "Content-Language" in page and "Message-ID" in page
    (row,) = messages(app, tenant)
    assert row["message_id"].replace("<", "&lt;").replace(">", "&gt;") in page
    assert "Hello Ana &lt;b&gt;Cliente&lt;/b&gt;," in page, "the text part is shown as text"
    assert "Gestoría Acme" in page


def test_html_in_an_outbox_file_is_never_shown_raw(app, console):
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "someone@example.test"
    message["To"] = "op@ventanilla.test"
    message["Subject"] = "Dangerous"
    message.set_content("plain part")
    message.add_alternative(
        '<p onclick="steal()">Visible words</p><script>alert(1)</script><img src="https://tracker.test/p.gif">'
        '<a href="javascript:alert(2)">link</a><style>body{display:none}</style>',
        subtype="html",
    )
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="report.pdf")
    folder = Path(app.config["OUTBOX_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "20990101T000000000000-dead.eml").write_bytes(message.as_bytes())
    page = _text(console.get("/operator/outbox/20990101T000000000000-dead.eml"))
    assert "Visible words" in page and "plain part" in page
    for raw in ("<script>alert(1)", "onclick", "tracker.test", "javascript:", "display:none"):
        assert raw not in page
    assert "report.pdf" in page and "application/pdf" in page


@pytest.mark.parametrize("name", ["missing.eml", "..%2Fsecret_key", "..%2F..%2Fetc%2Fpasswd.eml", ".hidden.eml"])
def test_only_outbox_files_can_be_shown(app, console, name):
    folder = Path(app.config["OUTBOX_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".hidden.eml").write_text("Subject: hidden\n\nx")
    assert console.get(f"/operator/outbox/{name}").status_code == 404


def test_the_mail_list_shows_every_tenants_messages_with_status_attempts_and_errors(
    app, factory, console, smtp_server, run_jobs
):
    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    use_smtp(app, beta, smtp_server)
    smtp_server.stop()
    _send(app, acme, "ana@client.test", "Delivered to the folder")
    _send(app, beta, "bob@client.test", "Waiting for the server")
    run_jobs()
    page = _text(console.get("/operator/mail"))
    assert "Delivered to the folder" in page and "Waiting for the server" in page
    assert "<code>acme</code>" in page and "<code>beta</code>" in page
    assert 'data-status="sent"' in page and 'data-status="queued"' in page
    assert "ConnectionRefusedError" in page
    queued = _text(console.get("/operator/mail?status=queued"))
    assert "Waiting for the server" in queued and "Delivered to the folder" not in queued
    assert 'href="/operator/mail"' in _text(console.get("/operator/"))


def test_tenant_users_cannot_open_the_operator_mail_pages(factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    for url in ("/operator/mail", "/operator/outbox", "/operator/outbox/x.eml"):
        response = client.get(url)
        assert response.status_code == 302 and "/operator/login" in response.location
