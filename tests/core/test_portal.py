"""The client portal: portal accounts, who reaches which pages, invitations, and the installable app."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, login, path_of

STAFF_PAGES = ("/acme/", "/acme/clients/", "/acme/profile", "/acme/users/")


def _said(app, message: str, language: str, **values) -> str:
    """``message`` as the application says it in ``language``."""
    from flask_babel import force_locale, gettext

    with app.test_request_context(), force_locale(language):
        return gettext(message, **values)


def _portal_client(factory, slug: str = "acme", language: str = "en"):
    """A tenant with a client and that client's portal account (portal@<slug>.test)."""
    tenant = factory.tenant(slug, language=language)
    client_id = factory.client(tenant, "Bodega Luna SL", tax_id="B12345674", email="luna@client.test")
    user_id = factory.portal_user(tenant, client_id, f"portal@{slug}.test")
    return tenant, client_id, user_id


def _admin(factory, tenant, client) -> None:
    factory.user(tenant, f"admin@{tenant.slug}.test", role_key="admin", name="Ada Admin")
    login(client, tenant.slug, f"admin@{tenant.slug}.test")


def _flashes(page: str) -> str:
    return page.split("<main", 1)[1].split("</main>", 1)[0]


# --- who reaches what -------------------------------------------------------------------


def test_a_portal_account_logs_in_to_the_portal_home_with_its_clients_data(factory, client):
    tenant, _, _ = _portal_client(factory)
    other = factory.client(tenant, "Otra Empresa SA", email="otra@client.test")
    assert other
    response = login(client, "acme", "portal@acme.test")
    assert response.location == "/acme/portal/"
    page = client.get(response.location).get_data(as_text=True)
    assert "Bodega Luna SL" in page and "B12345674" in page and "luna@client.test" in page
    assert "Otra Empresa SA" not in page
    assert client.get("/acme/login").location == "/acme/portal/", "signed in already: the login page sends home"


def test_a_portal_login_ignores_a_next_page_outside_the_portal(factory, client):
    _portal_client(factory)
    response = client.post("/acme/login?next=/acme/users/", data={"email": "portal@acme.test", "password": PASSWORD})
    assert response.location == "/acme/portal/"
    client.post("/acme/logout")
    response = client.post(
        "/acme/login?next=/acme/portal/account", data={"email": "portal@acme.test", "password": PASSWORD}
    )
    assert response.location == "/acme/portal/account"


def test_portal_accounts_are_sent_to_the_portal_from_every_staff_page_whatever_their_role_grants(app, factory, client):
    from core.extensions import db
    from core.roles.models import ROLE_CLIENT, Role
    from tenants.context import tenant_context

    tenant, _, _ = _portal_client(factory)
    with app.app_context(), tenant_context(tenant.id):
        role = db.session.scalar(select(Role).where(Role.key == ROLE_CLIENT))
        role.all_permissions = True
        db.session.commit()
    login(client, "acme", "portal@acme.test")
    for page in STAFF_PAGES:
        response = client.get(page)
        assert response.status_code == 302 and response.location == "/acme/portal/", page
    response = client.post("/acme/users/invite", data={"email": "sneaky@acme.test", "name": "Sneaky"})
    assert response.status_code == 302 and response.location == "/acme/portal/"
    factory.user(tenant, "boss@acme.test", role_key="admin")
    boss = app.test_client()
    login(boss, "acme", "boss@acme.test")
    assert "sneaky@acme.test" not in boss.get("/acme/users/").get_data(as_text=True)


def test_staff_are_sent_to_the_dashboard_and_strangers_to_the_login_from_portal_pages(factory, client):
    tenant, _, _ = _portal_client(factory)
    factory.user(tenant, "boss@acme.test", role_key="admin")
    for page in ("/acme/portal/", "/acme/portal/account"):
        anonymous = client.get(page)
        assert anonymous.status_code == 302 and anonymous.location == f"/acme/login?next={page}"
    login(client, "acme", "boss@acme.test")
    for page in ("/acme/portal/", "/acme/portal/account"):
        response = client.get(page)
        assert response.status_code == 302 and response.location == "/acme/", page


def test_a_portal_account_can_log_out(factory, client):
    _portal_client(factory)
    login(client, "acme", "portal@acme.test")
    page = client.get("/acme/portal/").get_data(as_text=True)
    assert 'action="/acme/logout"' in page, "the portal menu offers to log out"
    response = client.post("/acme/logout")
    assert response.status_code == 302 and response.location == "/acme/login"
    after = client.get("/acme/portal/")
    assert after.status_code == 302 and after.location.startswith("/acme/login")


# --- inviting and revoking --------------------------------------------------------------


def test_inviting_a_client_sends_an_invitation_in_the_tenants_language_that_opens_the_portal(
    app, factory, client, outbox
):
    tenant = factory.tenant("acme", name="Gestoría Acme", language="it")
    client_id = factory.client(tenant, "Bodega Luna SL", email="Luna@Client.test")
    _admin(factory, tenant, client)
    card = client.get(f"/acme/clients/{client_id}").get_data(as_text=True).split('id="portal-access"')[1]
    assert f'action="/acme/clients/{client_id}/portal/invite"' in card.split("</div></div>")[0]

    response = client.post(f"/acme/clients/{client_id}/portal/invite")
    assert response.location == f"/acme/clients/{client_id}"
    page = client.get(response.location).get_data(as_text=True)
    assert _said(app, "We have sent an invitation to %(email)s.", "it", email="luna@client.test") in _flashes(page)
    card = page.split('id="portal-access"')[1].split("</div></div>")[0]
    assert "luna@client.test" in card and _said(app, "Send the invitation again", "it") in card

    (mail,) = outbox()
    assert mail.to == "luna@client.test"
    assert mail.language == "it" and '<html lang="it">' in mail.html
    assert mail.subject == _said(app, "You are invited to %(organisation)s", "it", organisation="Gestoría Acme")
    assert "Ada Admin" in mail.text
    link = path_of(mail.link())
    assert link.startswith("/acme/invitation/")

    visitor = app.test_client()
    assert visitor.get(link).status_code == 200
    accepted = visitor.post(link, data={"password": "a-long-new-password", "confirm": "a-long-new-password"})
    assert accepted.status_code == 302 and accepted.location == "/acme/login"
    response = login(visitor, "acme", "luna@client.test", "a-long-new-password")
    assert response.location == "/acme/portal/"
    assert "Bodega Luna SL" in visitor.get("/acme/portal/").get_data(as_text=True)
    assert (
        visitor.post(link, data={"password": "another-password-1", "confirm": "another-password-1"}).status_code == 404
    )

    card = client.get(f"/acme/clients/{client_id}").get_data(as_text=True).split('id="portal-access"')[1]
    card = card.split("</div></div>")[0]
    assert "/portal/invite" not in card and "/portal/revoke" in card, "an active account can only be revoked"
    assert "luna@client.test" not in client.get("/acme/users/").get_data(as_text=True), "not a staff account"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "The client needs an e-mail address to be invited to the portal."),
        ("ADMIN@acme.test", "The e-mail admin@acme.test already belongs to another account of the organisation."),
    ],
)
def test_a_client_without_a_usable_email_gets_a_clear_error_and_no_invitation(
    app, factory, client, outbox, email, message
):
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", language="en")
    client_id = factory.client(tenant, "Bodega Luna SL", email=email)
    _admin(factory, tenant, client)
    response = client.post(f"/acme/clients/{client_id}/portal/invite", follow_redirects=True)
    assert response.status_code == 200
    assert message in _flashes(response.get_data(as_text=True))
    assert outbox() == []
    with app.app_context(), tenant_context(tenant.id):
        assert db.session.scalars(select(User).where(User.client_id.is_not(None))).all() == []


def test_inviting_again_follows_the_clients_new_email_and_refuses_a_staff_one(app, factory, client, outbox):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    def change_email(email: str) -> None:
        with app.app_context(), tenant_context(tenant.id):
            db.session.get(Client, client_id).email = email
            db.session.commit()

    tenant = factory.tenant("acme", language="en")
    client_id = factory.client(tenant, "Bodega Luna SL", email="luna@client.test")
    _admin(factory, tenant, client)
    client.post(f"/acme/clients/{client_id}/portal/invite")
    (first,) = outbox()

    change_email("admin@acme.test")
    refused = client.post(f"/acme/clients/{client_id}/portal/invite", follow_redirects=True)
    assert refused.status_code == 200
    message = "The e-mail admin@acme.test already belongs to another account of the organisation."
    assert message in _flashes(refused.get_data(as_text=True))
    assert len(outbox()) == 1

    change_email("nueva@client.test")
    client.post(f"/acme/clients/{client_id}/portal/invite")
    second = outbox()[-1]
    assert second.to == "nueva@client.test"
    visitor = app.test_client()
    assert visitor.get(path_of(first.link())).status_code == 404, "the older link stops working"
    visitor.post(path_of(second.link()), data={"password": "a-long-new-password", "confirm": "a-long-new-password"})
    assert login(visitor, "acme", "nueva@client.test", "a-long-new-password").location == "/acme/portal/"


def test_revoking_access_ends_the_portal_session_and_the_login(app, factory, client):
    tenant, client_id, _ = _portal_client(factory)
    portal = app.test_client()
    login(portal, "acme", "portal@acme.test")
    assert portal.get("/acme/portal/").status_code == 200
    _admin(factory, tenant, client)

    response = client.post(f"/acme/clients/{client_id}/portal/revoke", follow_redirects=True)
    assert "The client can no longer log in to the portal." in _flashes(response.get_data(as_text=True))

    after = portal.get("/acme/portal/")
    assert after.status_code == 302 and after.location == "/acme/login?next=/acme/portal/"
    again = portal.post("/acme/login", data={"email": "portal@acme.test", "password": PASSWORD})
    assert again.status_code == 200
    assert "This account has been deactivated." in again.get_data(as_text=True)
    card = client.get(f"/acme/clients/{client_id}").get_data(as_text=True).split('id="portal-access"')[1]
    assert "/portal/invite" in card.split("</div></div>")[0], "the client can be invited again"


def test_deactivating_a_client_closes_its_portal_account(app, factory, client, outbox):
    tenant, client_id, _ = _portal_client(factory)
    other_client = factory.client(tenant, "Otra SA", tax_id="B87654313", email="otra@client.test")
    portal = app.test_client()
    login(portal, "acme", "portal@acme.test")
    assert portal.get("/acme/portal/").status_code == 200
    _admin(factory, tenant, client)
    client.post(f"/acme/clients/{other_client}/portal/invite")
    invitation = path_of(outbox()[-1].link())

    client.post(f"/acme/clients/{client_id}/deactivate")
    client.post(f"/acme/clients/{other_client}/deactivate")

    assert portal.get("/acme/portal/").status_code == 302, "the open session ends"
    again = portal.post("/acme/login", data={"email": "portal@acme.test", "password": PASSWORD})
    assert "This account has been deactivated." in again.get_data(as_text=True)
    assert app.test_client().get(invitation).status_code == 404, "a pending invitation dies too"
    client.post(f"/acme/clients/{client_id}/reactivate")
    refused = portal.post("/acme/login", data={"email": "portal@acme.test", "password": PASSWORD})
    assert refused.status_code == 200, "reactivating the client does not reopen the portal: invite again"


def test_a_client_deactivated_by_an_import_loses_its_portal_account(app, factory, client, run_jobs):
    import io

    tenant, _client_id, _ = _portal_client(factory)
    portal = app.test_client()
    login(portal, "acme", "portal@acme.test")
    _admin(factory, tenant, client)
    client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(b"tax_id,active\nB12345674,no\n"), "clients.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    run_jobs()
    assert portal.get("/acme/portal/").status_code == 302
    again = portal.post("/acme/login", data={"email": "portal@acme.test", "password": PASSWORD})
    assert "This account has been deactivated." in again.get_data(as_text=True)


# --- the portal's own pages -------------------------------------------------------------


def test_the_portal_account_page_changes_the_language(factory, client):
    _portal_client(factory, language="es")
    login(client, "acme", "portal@acme.test")
    assert '<html lang="es">' in client.get("/acme/portal/account").get_data(as_text=True)
    response = client.post("/acme/portal/account", data={"profile-locale": "it"})
    assert response.status_code == 302 and response.location == "/acme/portal/account"
    assert '<html lang="it">' in client.get("/acme/portal/").get_data(as_text=True)
    client.post("/acme/portal/account", data={"profile-locale": ""})
    assert '<html lang="es">' in client.get("/acme/portal/").get_data(as_text=True), "back to the organisation's"


def test_the_portal_account_page_changes_the_password(app, factory, client):
    _portal_client(factory)
    login(client, "acme", "portal@acme.test")
    wrong = client.post(
        "/acme/portal/account",
        data={
            "password-current": "not-it",
            "password-password": "a-new-long-pass",
            "password-confirm": "a-new-long-pass",
        },
    )
    assert wrong.status_code == 200 and "The current password is not correct." in wrong.get_data(as_text=True)
    other_browser = app.test_client()
    login(other_browser, "acme", "portal@acme.test")

    changed = client.post(
        "/acme/portal/account",
        data={
            "password-current": PASSWORD,
            "password-password": "a-new-long-pass",
            "password-confirm": "a-new-long-pass",
        },
    )
    assert changed.status_code == 302 and changed.location == "/acme/portal/account"
    assert client.get("/acme/portal/").status_code == 200, "this browser stays signed in"
    assert other_browser.get("/acme/portal/").status_code == 302, "every other session ends"
    client.post("/acme/logout")
    refused = client.post("/acme/login", data={"email": "portal@acme.test", "password": PASSWORD})
    assert refused.status_code == 200
    assert login(client, "acme", "portal@acme.test", "a-new-long-pass").location == "/acme/portal/"


def test_the_manifest_makes_the_portal_an_installable_app(factory, client):
    factory.tenant("acme", name="Gestoría Acme")
    response = client.get("/acme/portal/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json()
    assert manifest["start_url"] == "/acme/portal/" and manifest["scope"] == "/acme/portal/"
    assert manifest["display"] == "standalone"
    assert manifest["name"] == "Gestoría Acme" and manifest["icons"]


def test_the_service_worker_is_served_from_the_portals_own_path(factory, client):
    factory.tenant("acme")
    response = client.get("/acme/portal/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    body = response.get_data(as_text=True)
    assert 'addEventListener("push"' in body and 'addEventListener("notificationclick"' in body


def test_the_portal_layout_links_the_manifest_and_carries_a_working_csrf_token(factory, client):
    _portal_client(factory)
    login(client, "acme", "portal@acme.test")
    page = client.get("/acme/portal/").get_data(as_text=True)
    assert '<link rel="manifest" href="/acme/portal/manifest.webmanifest">' in page
    assert 'data-sw="/acme/portal/sw.js"' in page and 'data-scope="/acme/portal/"' in page
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    endpoint = {"endpoint": "https://push.example.test/send/abc"}
    refused = client.post("/acme/portal/push/subscriptions", json=endpoint, without_csrf=True)
    assert refused.status_code == 400 and refused.get_json(silent=True) is None, "refused before the view"
    accepted = client.post(
        "/acme/portal/push/subscriptions", json=endpoint, without_csrf=True, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 400 and "unusable push subscription" in accepted.get_json()["error"], (
        "the token from the page passes the CSRF check (the subscription itself is incomplete)"
    )


def test_the_portal_is_phone_first_with_a_bottom_tab_bar(factory, client):
    _portal_client(factory)
    login(client, "acme", "portal@acme.test")
    for path in ("/acme/portal/", "/acme/portal/account"):
        page = client.get(path).get_data(as_text=True)
        assert '<meta name="viewport" content="width=device-width' in page, path
        tabbar = re.search(r'<nav class="portal-tabbar[^"]*"[^>]*>(.*?)</nav>', page, re.S)
        assert tabbar, f"{path} has no bottom tab bar"
        assert 'href="/acme/portal/"' in tabbar.group(1)
    home_tab = re.search(
        r'<nav class="portal-tabbar.*?</nav>', client.get("/acme/portal/").get_data(as_text=True), re.S
    )
    assert 'nav-link text-center active" href="/acme/portal/"' in home_tab.group(0)


def test_inviting_again_after_a_revocation_needs_a_new_password(app, factory, outbox):
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    client_id = factory.client(tenant, "Bodega Luna SL", email="luna@client.test")
    factory.portal_user(tenant, client_id, "luna@client.test")
    staff = app.test_client()
    login(staff, "acme", "admin@acme.test")
    staff.post(f"/acme/clients/{client_id}/portal/revoke")
    staff.post(f"/acme/clients/{client_id}/portal/invite")
    refused = app.test_client().post("/acme/login", data={"email": "luna@client.test", "password": PASSWORD})
    assert refused.status_code == 200, "the old password must not open the portal again"
    with app.app_context(), tenant_context(tenant.id):
        account = db.session.scalar(select(User).where(User.email == "luna@client.test"))
        assert account.active and account.password_hash is None
    assert outbox()[-1].to == "luna@client.test"
