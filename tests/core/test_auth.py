"""Logging in and out, throttling, password reset and invitations, sessions and CSRF."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from core.extensions import utcnow
from tests.conftest import PASSWORD, login, path_of


def test_logged_out_visit_to_a_tenant_leads_to_its_login_page(factory, client):
    factory.tenant("acme", language="it")
    response = client.get("/acme/")
    assert response.status_code == 302
    assert response.location == "/acme/login?next=/acme/"
    page = client.get(response.location)
    assert page.status_code == 200
    assert '<html lang="it">' in page.get_data(as_text=True)


def test_unknown_and_suspended_tenants_answer_404(app, factory, client):
    from core.extensions import db
    from core.provisioning import set_status
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    assert client.get("/nobody/login").status_code == 404
    with app.app_context():
        set_status(db.session.get(Tenant, tenant.id), suspended=True)
    assert client.get("/acme/login").status_code == 404


def test_login_takes_the_user_back_where_they_were_going(factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    response = client.post("/acme/login?next=/acme/users/", data={"email": "BOSS@acme.test", "password": PASSWORD})
    assert response.location == "/acme/users/"


def test_login_never_redirects_off_site(factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        client.post("/acme/logout")
        response = client.post(f"/acme/login?next={target}", data={"email": "boss@acme.test", "password": PASSWORD})
        assert response.location == "/acme/"


def test_wrong_password_gets_a_clear_error(factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    page = client.post("/acme/login", data={"email": "boss@acme.test", "password": "nope-nope-nope"})
    assert page.status_code == 200
    assert "The e-mail or the password is not correct." in page.get_data(as_text=True)


def test_account_is_locked_after_repeated_failures_with_a_clear_message(app, factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        client.post("/acme/login", data={"email": "boss@acme.test", "password": "wrong-password!"})
    page = client.post("/acme/login", data={"email": "boss@acme.test", "password": PASSWORD})
    assert page.status_code == 200, "the right password must not get through during a lockout"
    assert "Too many failed attempts" in page.get_data(as_text=True)
    assert "15 minutes" in page.get_data(as_text=True)


def test_one_address_trying_many_accounts_is_locked_out(app, factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    for n in range(app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]):
        client.post("/acme/login", data={"email": f"guess{n}@acme.test", "password": "wrong-password!"})
    page = client.post("/acme/login", data={"email": "boss@acme.test", "password": PASSWORD})
    assert "Too many failed attempts" in page.get_data(as_text=True)


def test_logout_ends_the_session(factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    assert client.post("/acme/logout").status_code == 302
    assert client.get("/acme/").status_code == 302


def _copy_cookies(source, target) -> None:
    """What an attacker who copied the browser's cookies holds."""
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def test_a_copied_session_cookie_stops_working_once_its_owner_logs_out(app, factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    thief = app.test_client()
    _copy_cookies(client, thief)
    assert thief.get("/acme/").status_code == 200, "a copied cookie works while its session lasts"
    client.post("/acme/logout")
    assert thief.get("/acme/").status_code == 302, "logging out ends the session on the server too"
    other = app.test_client()
    login(other, "acme", "boss@acme.test")
    assert other.get("/acme/").status_code == 200, "only that session: another browser stays in"


def test_a_copied_operator_cookie_stops_working_once_the_operator_logs_out(app, factory, client):
    from tests.conftest import login_operator

    factory.operator()
    login_operator(client)
    thief = app.test_client()
    _copy_cookies(client, thief)
    assert thief.get("/operator/").status_code == 200
    client.post("/operator/logout")
    assert thief.get("/operator/").status_code == 302


def test_a_form_posted_without_its_csrf_token_is_refused(factory, client):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    response = client.post("/acme/groups/new", data={"name": "Forged"}, without_csrf=True)
    assert response.status_code == 400
    assert client.get("/acme/groups/").get_data(as_text=True).count("Forged") == 0


def test_password_reset_link_is_mailed_works_once_and_changes_the_password(factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    page = client.post("/acme/password/forgot", data={"email": "boss@acme.test"}, follow_redirects=True)
    assert "If an account with that e-mail exists" in page.get_data(as_text=True)
    (mail,) = outbox()
    assert mail.to == "boss@acme.test"
    link = path_of(mail.link())
    assert link.startswith("/acme/password/reset/")
    assert client.get(link).status_code == 200
    done = client.post(link, data={"password": "a-new-long-password", "confirm": "a-new-long-password"})
    assert done.status_code == 302
    login(client, "acme", "boss@acme.test", "a-new-long-password")
    again = client.get(link)
    assert again.status_code == 404
    assert "already been used" in again.get_data(as_text=True)


def test_password_reset_link_expires(app, factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    client.post("/acme/password/forgot", data={"email": "boss@acme.test"})
    link = path_of(outbox()[0].link())
    later = utcnow() + timedelta(seconds=app.config["PASSWORD_RESET_TTL"] + 60)
    with time_machine.travel(later, tick=False):
        page = client.get(link)
    assert page.status_code == 404
    assert "expired" in page.get_data(as_text=True)


def test_reset_for_an_unknown_address_reveals_nothing_and_sends_nothing(factory, client, outbox):
    factory.tenant("acme", language="en")
    page = client.post("/acme/password/forgot", data={"email": "ghost@acme.test"}, follow_redirects=True)
    assert "If an account with that e-mail exists" in page.get_data(as_text=True)
    assert outbox() == []


def test_asking_for_a_reset_link_does_the_same_work_whether_or_not_the_account_exists(app, factory, client, outbox):
    from sqlalchemy import event, func, select

    from core.auth.models import AuthToken
    from core.extensions import db
    from core.mail.models import OutboundMessage
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def seen(_connection, _cursor, statement, *_args) -> None:
        statements.append(statement)

    work = {}
    # As a running server is: the process has read the tenant (kept from the second page on).
    for _ in range(2):
        client.get("/acme/password/forgot")
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for email in ("boss@acme.test", "ghost@acme.test", "boss@acme.test"):
            statements.clear()
            response = client.post("/acme/password/forgot", data={"email": email})
            assert response.status_code == 302
            work.setdefault(email, []).append(list(statements))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert work["boss@acme.test"][0] == work["ghost@acme.test"][0] == work["boss@acme.test"][1], (
        "the same SQL in the request for an account and for nobody: the account's work is done by a job"
    )
    with app.app_context(), tenant_context(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(AuthToken)) == 0
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 0
    assert [mail.to for mail in outbox()] == ["boss@acme.test", "boss@acme.test"], "the job writes the links"


def test_reset_links_to_one_account_stop_at_the_limit_with_the_same_answer(app, factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    limit = app.config["PASSWORD_RESET_MAX_PER_ACCOUNT"]
    for _ in range(limit):
        client.post("/acme/password/forgot", data={"email": "boss@acme.test"})
    page = client.post("/acme/password/forgot", data={"email": "Boss@acme.test"}, follow_redirects=True)
    assert page.status_code == 200
    assert "If an account with that e-mail exists" in page.get_data(as_text=True), "the limit must not reveal it"
    assert len(outbox()) == limit


def test_one_address_asking_for_too_many_reset_links_is_refused_with_429(app, factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    for n in range(app.config["PASSWORD_RESET_MAX_PER_ADDRESS"]):
        client.post("/acme/password/forgot", data={"email": f"ghost{n}@acme.test"})
    page = client.post("/acme/password/forgot", data={"email": "boss@acme.test"})
    assert page.status_code == 429
    assert "Too many requests for a new password" in page.get_data(as_text=True)
    assert "15 minutes" in page.get_data(as_text=True)
    assert outbox() == []
    elsewhere = client.post(
        "/acme/password/forgot", data={"email": "boss@acme.test"}, environ_base={"REMOTE_ADDR": "198.51.100.20"}
    )
    assert elsewhere.status_code == 302, "another address is not held back"
    assert [mail.to for mail in outbox()] == ["boss@acme.test"]


def test_a_reset_link_never_points_at_the_host_the_request_named(app, factory, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    # Behind a proxy that passes on the client's X-Forwarded-Host.
    proxied = _app_behind(app, 1, WTF_CSRF_ENABLED=False, PUBLIC_URL=app.config["PUBLIC_URL"])
    for headers in ({"Host": "attacker.example"}, {"X-Forwarded-Host": "attacker.example"}):
        proxied.test_client().post(
            "/acme/password/forgot", data={"email": "boss@acme.test"}, headers=headers, without_csrf=True
        )
    mails = outbox()
    assert len(mails) == 2
    for mail in mails:
        assert mail.link().startswith("http://ventanilla.test/acme/password/reset/"), "the public URL, always"
        assert "attacker.example" not in mail.text + mail.html


def _bare_config(app, **config) -> dict:
    return {
        "INSTANCE_PATH": app.config["INSTANCE_PATH"],
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": "x" * 32,
        **config,
    }


def test_outside_debug_the_application_refuses_to_start_without_its_public_url(app, monkeypatch):
    import pytest

    from core.app import create_app
    from core.urls import external_url

    monkeypatch.delenv("VENTANILLA_PUBLIC_URL", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="VENTANILLA_PUBLIC_URL is not set"):
        create_app(_bare_config(app))
    for wrong in ("ventanilla.example.com", "ftp://ventanilla.example.com", "https://"):
        with pytest.raises(RuntimeError, match="VENTANILLA_PUBLIC_URL must be"):
            create_app(_bare_config(app, PUBLIC_URL=wrong))
    monkeypatch.setenv("VENTANILLA_PUBLIC_URL", "https://ventanilla.example.com/")
    production = create_app(_bare_config(app))
    with production.test_request_context("/", headers={"Host": "attacker.example"}):
        assert external_url("auth.login", tenant="acme") == "https://ventanilla.example.com/acme/login"
    monkeypatch.delenv("VENTANILLA_PUBLIC_URL")
    debug = create_app(_bare_config(app, DEBUG=True))
    with debug.app_context():
        assert external_url("auth.login", tenant="acme") == "http://127.0.0.1:5000/acme/login"


def test_with_allowed_hosts_a_request_for_any_other_host_is_refused(app, factory, monkeypatch, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    monkeypatch.setenv("VENTANILLA_ALLOWED_HOSTS", "ventanilla.example.com, .ventanilla.example.net")
    guarded = _app_behind(app, 1, WTF_CSRF_ENABLED=False)
    browser = guarded.test_client()

    def forgot(headers):
        email = {"email": "boss@acme.test"}
        return browser.post("/acme/password/forgot", data=email, headers=headers, without_csrf=True)

    assert forgot({"Host": "attacker.example"}).status_code == 400
    assert forgot({"Host": "ventanilla.example.com", "X-Forwarded-Host": "attacker.example"}).status_code == 400
    assert outbox() == []
    for host in ("ventanilla.example.com", "acme.ventanilla.example.net"):
        assert browser.get("/acme/login", headers={"Host": host}).status_code == 200


def test_reset_password_must_be_long_and_confirmed(factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    client.post("/acme/password/forgot", data={"email": "boss@acme.test"})
    link = path_of(outbox()[0].link())
    short = client.post(link, data={"password": "short", "confirm": "short"})
    assert "at least 10 characters" in short.get_data(as_text=True)
    mismatch = client.post(link, data={"password": "long-enough-one", "confirm": "long-enough-two"})
    assert "do not match" in mismatch.get_data(as_text=True)
    assert client.get(link).status_code == 200, "a refused attempt must not spend the link"


def test_the_profile_page_saves_ones_name_and_language(app, factory):
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin", name="Boss")
    browser = app.test_client()
    login(browser, "acme", "boss@acme.test")
    response = browser.post("/acme/profile", data={"profile-name": "  Beatriz Jefa ", "profile-locale": "es"})
    assert response.status_code == 302 and response.location.endswith("/acme/profile")
    with app.app_context(), tenant_context(tenant.id):
        user = db.session.scalar(db.select(User).where(User.email == "boss@acme.test"))
        assert (user.name, user.locale) == ("Beatriz Jefa", "es")
    refused = browser.post("/acme/profile", data={"profile-name": "", "profile-locale": ""})
    assert refused.status_code == 200, "a profile without a name is shown again with its error"


def test_changing_the_password_ends_every_other_session(app, factory):
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, "acme", "boss@acme.test")
    login(phone, "acme", "boss@acme.test")
    laptop.post(
        "/acme/profile",
        data={
            "password-current": PASSWORD,
            "password-password": "brand-new-password",
            "password-confirm": "brand-new-password",
        },
    )
    assert laptop.get("/acme/").status_code == 200
    assert phone.get("/acme/").status_code == 302


def test_changing_the_password_spends_every_outstanding_reset_link(app, factory, client, outbox):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    client.post("/acme/password/forgot", data={"email": "boss@acme.test"})
    link = path_of(outbox()[0].link())
    login(client, "acme", "boss@acme.test")
    client.post(
        "/acme/profile",
        data={
            "password-current": PASSWORD,
            "password-password": "brand-new-password",
            "password-confirm": "brand-new-password",
        },
    )
    stale = app.test_client().get(link)
    assert stale.status_code == 404 and "already been used" in stale.get_data(as_text=True)


def test_a_deactivated_user_is_logged_out_and_cannot_log_in(app, factory):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    victim = factory.user(tenant, "leaver@acme.test", permissions=[])
    admin, leaver = app.test_client(), app.test_client()
    login(admin, "acme", "boss@acme.test")
    login(leaver, "acme", "leaver@acme.test")
    admin.post(f"/acme/users/{victim}/deactivate")
    assert leaver.get("/acme/").status_code == 302
    page = leaver.post("/acme/login", data={"email": "leaver@acme.test", "password": PASSWORD})
    assert "deactivated" in page.get_data(as_text=True)


def test_session_cookie_is_secure_httponly_and_samesite_in_production(factory, app):
    from core.app import create_app

    production = create_app(
        {
            "INSTANCE_PATH": app.config["INSTANCE_PATH"],
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SECRET_KEY": "x" * 32,
            "PUBLIC_URL": "https://ventanilla.example.com",
        }
    )
    assert production.config["SESSION_COOKIE_SECURE"] is True
    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    production.test_client_class = app.test_client_class
    response = production.test_client().post(
        "https://localhost/acme/login", data={"email": "boss@acme.test", "password": PASSWORD}
    )
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _app_behind(app, proxies: int, **config):
    """Another app on the session's database and Redis, with ``proxies`` trusted reverse proxies."""
    from core.app import create_app

    other = create_app(
        {
            "INSTANCE_PATH": app.config["INSTANCE_PATH"],
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "QUEUE_PREFIX": app.config["QUEUE_PREFIX"],
            "SECRET_KEY": "x" * 32,
            "TESTING": True,
            "SESSION_COOKIE_SECURE": False,
            "TRUSTED_PROXIES": proxies,
            **config,
        }
    )
    other.test_client_class = app.test_client_class
    return other


def _login_from(client, address: str, email: str, password: str):
    return client.post(
        "/acme/login",
        data={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},  # the proxy
    )


def test_behind_a_trusted_proxy_each_client_address_has_its_own_login_lockout(app, factory):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    proxied = _app_behind(app, 1, LOGIN_MAX_FAILURES_PER_ADDRESS=3)
    browser = proxied.test_client()
    for n in range(3):
        _login_from(browser, "203.0.113.7", f"guess{n}@acme.test", "wrong-password!")
    locked = _login_from(browser, "203.0.113.7", "boss@acme.test", PASSWORD)
    assert "Too many failed attempts" in locked.get_data(as_text=True)
    elsewhere = _login_from(proxied.test_client(), "198.51.100.20", "boss@acme.test", PASSWORD)
    assert elsewhere.status_code == 302, "another client behind the same proxy must still log in"


def test_without_trusted_proxies_x_forwarded_for_is_ignored(app, factory):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    direct = _app_behind(app, 0, LOGIN_MAX_FAILURES_PER_ADDRESS=3)
    browser = direct.test_client()
    for n in range(3):
        _login_from(browser, f"203.0.113.{n}", f"guess{n}@acme.test", "wrong-password!")
    locked = _login_from(direct.test_client(), "198.51.100.20", "boss@acme.test", PASSWORD)
    assert "Too many failed attempts" in locked.get_data(as_text=True), "a forged header must not escape the lockout"


def test_test_domain_addresses_are_refused_in_production_and_allowed_for_the_demo_and_tests(tmp_path, monkeypatch):
    from core.config import load_config

    monkeypatch.delenv("VENTANILLA_ALLOW_TEST_EMAIL", raising=False)
    base = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}
    monkeypatch.setenv("DATABASE_URL", "postgresql://ventanilla_app@db/ventanilla")
    assert load_config(base)["EMAIL_ALLOW_TEST_DOMAINS"] is False, "production refuses admin@demo.test"
    assert load_config({**base, "TESTING": True})["EMAIL_ALLOW_TEST_DOMAINS"] is True
    monkeypatch.setenv("VENTANILLA_ALLOW_TEST_EMAIL", "1")
    assert load_config(base)["EMAIL_ALLOW_TEST_DOMAINS"] is True
    monkeypatch.delenv("VENTANILLA_ALLOW_TEST_EMAIL")
    monkeypatch.delenv("DATABASE_URL")
    assert load_config(base)["EMAIL_ALLOW_TEST_DOMAINS"] is True, "make run's embedded defaults serve the demo"
    monkeypatch.setenv("VENTANILLA_ALLOW_TEST_EMAIL", "0")
    assert load_config(base)["EMAIL_ALLOW_TEST_DOMAINS"] is False
