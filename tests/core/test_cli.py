"""The ``flask tenants|operators|demo`` commands, run as an operator would from a shell."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, login, login_operator, path_of, tenant_row


@pytest.fixture
def flask_cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(args=list(args), **kwargs)

    return invoke


def _roles(app, tenant_id: int) -> dict[str, str]:
    """The tenant's roles: key -> name."""
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        return {role.key: role.name for role in db.session.scalars(select(Role))}


def _default_role_names(app, language: str) -> dict[str, str]:
    from flask_babel import force_locale

    from core.roles.models import DEFAULT_ROLE_KEYS
    from core.roles.services import DEFAULT_ROLE_NAMES

    with app.test_request_context(), force_locale(language):
        return {key: str(DEFAULT_ROLE_NAMES[key]) for key in DEFAULT_ROLE_KEYS}


def _licence(app, slug: str, plugin: str = "sample") -> dict | None:
    from core.extensions import db
    from tenants import licensing
    from tenants.models import Tenant

    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        row = licensing.licences(tenant).get(plugin)
        if row is None:
            return None
        return {"licensed": row.licensed, "enabled": row.enabled, "limits": dict(row.limits or {})}


def _said(app, message: str, language: str | None = None, **values) -> str:
    """``message`` as the command prints it: the CLI has no request, so it speaks the default language."""
    from flask_babel import force_locale, gettext

    with app.test_request_context() if language else app.app_context():
        if language is None:
            return gettext(message, **values)
        with force_locale(language):
            return gettext(message, **values)


def _counts(app) -> dict[str, int]:
    from core.auth.models import Operator, User
    from core.extensions import db
    from core.groups.models import Group
    from core.roles.models import Role
    from tenants.context import all_tenants
    from tenants.models import Tenant, TenantPlugin

    with app.app_context(), all_tenants():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Tenant, User, Group, Role, Operator, TenantPlugin)
        }


# --- tenants create ---------------------------------------------------------------------


def test_tenants_create_makes_the_tenant_its_roles_and_invites_the_administrator(app, flask_cli, client, outbox):
    result = flask_cli(
        "tenants",
        "create",
        "studio",
        "Studio Rossi",
        "--language",
        "it",
        "--timezone",
        "Europe/Rome",
        "--admin-email",
        "x@y.test",
        "--admin-name",
        "Xenia",
    )
    assert result.exit_code == 0, result.output
    created = tenant_row(app, "studio")
    assert result.output.strip() == f"created tenant studio (id {created['id']}); invited x@y.test"
    assert created == {
        "id": created["id"],
        "name": "Studio Rossi",
        "language": "it",
        "timezone": "Europe/Rome",
        "status": "active",
    }
    assert _roles(app, created["id"]) == _default_role_names(app, "it")
    assert _roles(app, created["id"]) != _default_role_names(app, "es"), "in the tenant's language, not the CLI's"

    (mail,) = outbox()
    assert mail.to == "x@y.test"
    assert mail.subject == _said(app, "You are invited to %(organisation)s", "it", organisation="Studio Rossi")
    assert "Xenia" in mail.text and "Studio Rossi" in mail.text
    assert mail.language == "it" and '<html lang="it">' in mail.html
    link = path_of(mail.link())
    assert link.startswith("/studio/invitation/")
    assert (
        client.post(link, data={"password": "a-long-new-password", "confirm": "a-long-new-password"}).status_code == 302
    )
    login(client, "studio", "x@y.test", "a-long-new-password")
    assert client.get("/studio/users/").status_code == 200, "the invitee is the tenant's administrator"


def test_tenants_create_without_an_administrator_sends_nothing(app, flask_cli, outbox):
    result = flask_cli("tenants", "create", "bare", "Bare Org")
    assert result.exit_code == 0, result.output
    assert tenant_row(app, "bare")["language"] == "es" and tenant_row(app, "bare")["timezone"] == "Europe/Madrid"
    assert outbox() == []


@pytest.mark.parametrize("slug", ["Bad Slug!", "operator", "-x", "a" * 41])
def test_tenants_create_with_a_bad_code_fails_with_a_clear_message(app, flask_cli, outbox, slug):
    result = flask_cli("tenants", "create", "--admin-email", "x@y.test", "--", slug, "Whatever")
    assert result.exit_code == 1
    assert (
        result.output
        == "Error: "
        + _said(
            app, "The code may have lowercase letters, digits and hyphens (at most 40), and not be a reserved word."
        )
        + "\n"
    )
    assert _counts(app)["Tenant"] == 0
    assert outbox() == []


def test_tenants_create_with_a_taken_code_or_an_unknown_zone_fails(app, flask_cli, factory):
    factory.tenant("acme")
    taken = flask_cli("tenants", "create", "acme", "Acme again")
    assert taken.exit_code == 1 and _said(app, "The code %(slug)s is already taken.", slug="acme") in taken.output
    zone = flask_cli("tenants", "create", "fresh", "Fresh", "--timezone", "Mars/Olympus_Mons")
    assert zone.exit_code == 1 and _said(app, "Unknown time zone.") in zone.output
    language = flask_cli("tenants", "create", "fresh", "Fresh", "--language", "fr")
    assert language.exit_code == 2 and "Invalid value for '--language'" in language.output
    assert _counts(app)["Tenant"] == 1


# --- tenants list, suspend, activate ----------------------------------------------------


def test_tenants_list_shows_code_status_language_and_enabled_plugins(app, flask_cli, factory):
    from core.extensions import db
    from tenants import licensing
    from tenants.models import Tenant

    factory.tenant("acme", name="Acme", language="en", plugins=("sample",))
    factory.tenant("globex", name="Globex", language="it", plugins=())
    switched_off = factory.tenant("initech", name="Initech", language="es", plugins=("sample",))
    with app.app_context():
        licensing.set_enabled(db.session.get(Tenant, switched_off.id), "sample", False)
    flask_cli("tenants", "suspend", "globex")

    result = flask_cli("tenants", "list")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert lines == [
        ["acme", "active", "en", "Acme", "[sample]"],
        ["globex", "suspended", "it", "Globex", "[-]"],
        ["initech", "active", "es", "Initech", "[-]"],
    ]


def test_tenants_suspend_and_activate_close_and_reopen_thetenant_row(app, flask_cli, factory, client):
    factory.tenant("acme")
    result = flask_cli("tenants", "suspend", "acme")
    assert result.exit_code == 0 and result.output.strip() == "acme: suspended"
    assert tenant_row(app, "acme")["status"] == "suspended"
    assert client.get("/acme/login").status_code == 404

    result = flask_cli("tenants", "activate", "acme")
    assert result.exit_code == 0 and result.output.strip() == "acme: active"
    assert tenant_row(app, "acme")["status"] == "active"
    assert client.get("/acme/login").status_code == 200


def test_suspending_an_unknown_tenant_is_a_clear_error(app, flask_cli):
    result = flask_cli("tenants", "suspend", "nobody")
    assert result.exit_code == 1
    assert (
        result.output
        == "Error: " + _said(app, "There is no organisation with the code %(slug)s.", slug="nobody") + "\n"
    )


# --- tenants license --------------------------------------------------------------------


def test_tenants_license_grants_the_plugin_with_its_limit_and_revoke_takes_it_away(app, flask_cli, factory, client):
    tenant = factory.tenant("acme", language="en", plugins=())
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    assert client.get("/acme/notes/").status_code == 404

    result = flask_cli("tenants", "license", "acme", "sample", "--limit", "notes=3")
    assert result.exit_code == 0 and result.output.strip() == "acme: sample licensed"
    assert _licence(app, "acme") == {"licensed": True, "enabled": True, "limits": {"notes": 3}}
    assert client.get("/acme/notes/").status_code == 200
    assert "Maximum notes: 3" in client.get("/acme/settings/plugins").get_data(as_text=True)

    result = flask_cli("tenants", "license", "acme", "sample", "--revoke")
    assert result.exit_code == 0 and result.output.strip() == "acme: sample revoked"
    assert _licence(app, "acme")["licensed"] is False
    assert client.get("/acme/notes/").status_code == 404


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("notes=lots", "Maximum notes must be a whole number"),
        ("notes", "is not KEY=VALUE"),
        ("notes=-1", "Maximum notes must be a whole number"),
        ("notes=2.5", "Maximum notes must be a whole number"),
        ("regions=north,mars", "Regions: mars is not one of islands, north, south."),
        ("colour=red", "colour is not a limit of sample (it has: motto, notes, regions)."),
    ],
)
def test_tenants_license_with_a_malformed_limit_is_a_usage_error(app, flask_cli, factory, bad, said):
    factory.tenant("acme", plugins=())
    result = flask_cli("tenants", "license", "acme", "sample", "--limit", bad)
    assert result.exit_code == 2
    assert "Invalid value for --limit" in result.output and said in result.output
    assert _licence(app, "acme") is None, "nothing is licensed"


def test_tenants_license_takes_lists_and_text_and_keeps_the_other_limits(app, flask_cli, factory, client):
    tenant = factory.tenant("acme", language="en", plugins=())
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    assert flask_cli("tenants", "license", "acme", "sample", "--limit", "notes=3").exit_code == 0
    result = flask_cli(
        "tenants", "license", "acme", "sample", "--limit", "regions=South, north", "--limit", "motto=  Less   is more "
    )
    assert result.exit_code == 0, result.output
    assert _licence(app, "acme")["limits"] == {"notes": 3, "regions": ["south", "north"], "motto": "Less is more"}
    page = client.get("/acme/settings/plugins").get_data(as_text=True)
    assert "Regions: South, North" in page and "Motto: Less is more" in page
    assert flask_cli("tenants", "license", "acme", "sample", "--limit", "regions=").exit_code == 0
    assert _licence(app, "acme")["limits"] == {"notes": 3, "motto": "Less is more"}


def test_tenants_license_of_an_unknown_plugin_or_tenant_is_a_clear_error(app, flask_cli, factory):
    factory.tenant("acme", plugins=())
    plugin = flask_cli("tenants", "license", "acme", "nope")
    assert plugin.exit_code == 1
    assert plugin.output == "Error: " + _said(app, "The plugin %(plugin)s is not installed.", plugin="nope") + "\n"
    tenant = flask_cli("tenants", "license", "nobody", "sample")
    assert tenant.exit_code == 1
    assert (
        tenant.output
        == "Error: " + _said(app, "There is no organisation with the code %(slug)s.", slug="nobody") + "\n"
    )
    assert _licence(app, "acme", "nope") is None


# --- operators --------------------------------------------------------------------------


def test_operators_create_makes_an_operator_who_can_log_in(flask_cli, client):
    result = flask_cli("operators", "create", "Boss@Ops.test", "--name", "Boss", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "created operator boss@ops.test" in result.output
    login_operator(client, "boss@ops.test", PASSWORD)
    assert client.get("/operator/").status_code == 200


def test_operators_create_takes_the_password_as_an_option(flask_cli, client):
    result = flask_cli("operators", "create", "ops@ventanilla.test", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    login_operator(client, "ops@ventanilla.test", PASSWORD)


def test_operators_create_refuses_a_mismatched_confirmation(app, flask_cli):
    result = flask_cli("operators", "create", "ops@ventanilla.test", input="one-password\nanother-one\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert _counts(app)["Operator"] == 0


def test_creating_the_same_operator_twice_fails(app, flask_cli):
    assert flask_cli("operators", "create", "ops@ventanilla.test", "--password", PASSWORD).exit_code == 0
    again = flask_cli("operators", "create", "OPS@ventanilla.test", "--password", "another-password")
    assert again.exit_code == 1
    assert "Error: operator ops@ventanilla.test exists" in again.output
    assert _counts(app)["Operator"] == 1


# --- demo -------------------------------------------------------------------------------


def test_demo_load_creates_the_demo_tenants_and_logins_and_is_idempotent(app, flask_cli):
    first = flask_cli("demo", "load")
    assert first.exit_code == 0, first.output
    assert "operator operator@ventanilla.test created" in first.output
    assert tenant_row(app, "demo")["language"] == "es"
    assert tenant_row(app, "demo-it")["language"] == "it"
    assert _roles(app, tenant_row(app, "demo-it")["id"]) == _default_role_names(app, "it")
    assert _licence(app, "demo")["licensed"] and _licence(app, "demo-it")["licensed"]

    operator = app.test_client()
    login_operator(operator, "operator@ventanilla.test", "demo-operator")
    assert operator.get("/operator/").status_code == 200
    for slug, email in (("demo", "admin@demo.test"), ("demo-it", "admin@demo-it.test")):
        admin = app.test_client()
        login(admin, slug, email, "demo-admin")
        assert admin.get(f"/{slug}/users/").status_code == 200, f"{email} is an administrator"
        assert admin.get(f"/{slug}/notes/").status_code == 200
    staff = app.test_client()
    login(staff, "demo", "gestor@demo.test", "demo-staff")

    counts = _counts(app)
    licences = 2 * len(app.extensions["ventanilla_plugins"].installed)
    # Core's five demo users, and whatever accounts the plugins' demo data adds (the PEC assistant).
    assert counts["User"] >= 5
    assert {k: v for k, v in counts.items() if k != "User"} == {
        "Tenant": 2,
        "Group": 3,
        "Role": 10,
        "Operator": 1,
        "TenantPlugin": licences,
    }
    second = flask_cli("demo", "load")
    assert second.exit_code == 0, second.output
    assert second.output.strip() == "demo data already loaded"
    assert _counts(app) == counts


def test_demo_load_where_test_addresses_are_refused_changes_nothing_and_says_why_in_one_line(
    app, flask_cli, monkeypatch
):
    import email_validator

    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", False)
    monkeypatch.setitem(app.config, "EMAIL_ALLOW_TEST_DOMAINS", False)
    before = _counts(app)
    result = flask_cli("demo", "load")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: demo not loaded: the demo's accounts use the reserved .test domain, which this installation "
        "refuses (set VENTANILLA_ALLOW_TEST_EMAIL=1 to load it); nothing was changed"
    ], "one line, no traceback"
    assert _counts(app) == before, "no operator, tenant or user was written"


def test_demo_load_refuses_a_database_with_tenants_of_its_own_unless_forced_and_warns_of_the_operator(
    app, factory, flask_cli
):
    factory.tenant("acme")
    before = _counts(app)
    refused = flask_cli("demo", "load")
    assert refused.exit_code == 1
    assert "this database has tenants of its own (acme)" in refused.output and "--force" in refused.output
    assert _counts(app) == before
    forced = flask_cli("demo", "load", "--force")
    assert forced.exit_code == 0, forced.output
    assert tenant_row(app, "demo") is not None
    assert (
        "WARNING: the demo's operator account operator@ventanilla.test has the published password demo-operator"
        in forced.output
    )
