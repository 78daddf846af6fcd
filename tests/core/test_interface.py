"""The shared interface: layout, language, error pages, security headers, the landing page."""

from __future__ import annotations

import pytest
from flask import Blueprint

from core.permissions import public
from tests.conftest import login


def _catalogue(language: str):
    from babel.messages.pofile import read_po

    with open(f"core/translations/{language}/LC_MESSAGES/messages.po", "rb") as handle:
        return read_po(handle, locale=language)


def _in(language: str, msgid: str, context: str | None = None) -> str:
    message = _catalogue(language).get(msgid, context=context)
    assert message is not None and message.string, f"{msgid!r} is not translated into {language}"
    return message.string


def test_pages_carry_the_security_headers(factory, client):
    factory.tenant("acme")
    response = client.get("/acme/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_layout_uses_the_css_framework_installed_from_pypi(factory, client):
    factory.tenant("acme")
    page = client.get("/acme/login").get_data(as_text=True)
    assert "/bootstrap/static/css/bootstrap.min.css" in page
    stylesheet = client.get("/bootstrap/static/css/bootstrap.min.css")
    assert stylesheet.status_code == 200 and b"Bootstrap" in stylesheet.data[:500]


def test_the_layout_shows_tenant_menu_user_and_language(factory, client):
    tenant = factory.tenant("acme", name="Acme Asesores", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin", name="Bea Boss")
    login(client, "acme", "boss@acme.test")
    page = client.get("/acme/").get_data(as_text=True)
    for expected in (
        "Acme Asesores",
        'id="main-menu"',
        'id="admin-menu"',
        "Bea Boss",
        "Italiano",
        "Log out",
        'action="/acme/search"',
    ):
        assert expected in page, expected


@pytest.mark.parametrize("language", ["es", "it", "en"])
def test_the_login_page_speaks_the_tenants_language(factory, client, language):
    factory.tenant("acme", language=language)
    page = client.get("/acme/login").get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    assert _in(language, "Forgot your password?") in page


def test_switching_language_sticks_to_the_user(app, factory, client):
    tenant = factory.tenant("acme", language="es")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    client.post("/acme/language", data={"language": "it", "next": "/acme/users/"})
    assert '<html lang="it">' in client.get("/acme/").get_data(as_text=True)
    elsewhere = app.test_client()
    login(elsewhere, "acme", "boss@acme.test")
    assert '<html lang="it">' in elsewhere.get("/acme/").get_data(as_text=True), "saved on the user"


def test_a_visitor_can_switch_the_login_page_language(factory, client):
    factory.tenant("acme", language="es")
    response = client.post("/acme/language", data={"language": "en", "next": "/acme/login"})
    assert response.location == "/acme/login"
    assert '<html lang="en">' in client.get("/acme/login").get_data(as_text=True)


@pytest.mark.parametrize("language", ["es", "it"])
def test_error_pages_speak_the_users_language(factory, client, language):
    tenant = factory.tenant("acme", language=language)
    factory.user(tenant, "nobody@acme.test", permissions=[])
    login(client, "acme", "nobody@acme.test")
    forbidden = client.get("/acme/users/")
    assert forbidden.status_code == 403
    assert _in(language, "You do not have permission to see this") in forbidden.get_data(as_text=True)


def test_a_missing_row_answers_404_in_the_users_language(factory, client):
    tenant = factory.tenant("acme", language="it")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    missing = client.get("/acme/users/987654")
    assert missing.status_code == 404
    assert _in("it", "Page not found") in missing.get_data(as_text=True)


def test_an_unexpected_error_shows_the_generic_page_and_no_details(app, factory):
    from core.app import create_app

    broken = create_app(
        {
            "INSTANCE_PATH": app.config["INSTANCE_PATH"],
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SECRET_KEY": "k" * 32,
            "PUBLIC_URL": "https://ventanilla.example.com",
        }
    )
    probe = Blueprint("probe", __name__)

    @probe.route("/explode")
    @public
    def explode():
        raise RuntimeError("secret internals")

    broken.register_blueprint(probe)
    response = broken.test_client().get("/explode", headers={"Accept-Language": "it"})
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body and "Traceback" not in body
    assert _in("it", "Something went wrong on our side") in body


def test_the_landing_page_sends_visitors_to_their_organisation(factory, client):
    factory.tenant("acme")
    assert client.get("/").status_code == 200
    response = client.get("/?organisation=ACME")
    assert response.status_code == 302 and response.location == "/acme/login"
    unknown = client.get("/?organisation=nobody")
    assert unknown.status_code == 404


def test_the_health_check_reports_database_and_redis(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_dates_are_shown_in_the_tenants_time_zone(app, factory, client):
    from datetime import UTC, datetime

    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", language="en")
    user = factory.user(tenant, "boss@acme.test", role_key="admin")
    with app.app_context():
        from tenants.models import Tenant

        db.session.get(Tenant, tenant.id).timezone = "America/New_York"
        db.session.commit()
        with tenant_context(tenant.id):
            db.session.get(User, user).created_at = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
            db.session.commit()
    login(client, "acme", "boss@acme.test")
    page = client.get(f"/acme/users/{user}").get_data(as_text=True)
    assert "7:00:00" in page and "12:00:00" not in page
