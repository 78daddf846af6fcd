"""The operator console over HTTP: logging in, provisioning tenants, suspending, licensing, jobs."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, login, login_operator, path_of, tenant_row

OPERATOR_EMAIL = "op@ventanilla.test"


@pytest.fixture
def console(factory, client):
    """A browser logged in to the operator console, reading it in English."""
    factory.operator(OPERATOR_EMAIL)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client, OPERATOR_EMAIL)
    return client


def _text(response) -> str:
    return response.get_data(as_text=True)


def _tenant_count(app) -> int:
    from core.extensions import db
    from tenants.models import Tenant

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Tenant))


def _default_role_names(app, language: str) -> set[str]:
    """What the catalogue calls the five default roles in ``language``."""
    from flask_babel import force_locale

    from core.roles.models import DEFAULT_ROLE_KEYS
    from core.roles.services import DEFAULT_ROLE_NAMES

    with app.test_request_context(), force_locale(language):
        return {str(DEFAULT_ROLE_NAMES[key]) for key in DEFAULT_ROLE_KEYS}


def _row_of(page: str, slug: str) -> str:
    """The operator list's table row of the tenant ``slug``."""
    for row in re.findall(r"<tr>.*?</tr>", page, flags=re.S):
        if f"<code>{slug}</code>" in row:
            return row
    raise AssertionError(f"no row for {slug}")


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]


# --- logging in -------------------------------------------------------------------------


def test_operator_login_with_a_wrong_password_is_refused_with_a_clear_message(factory, client):
    factory.operator(OPERATOR_EMAIL)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.post("/operator/login", data={"email": OPERATOR_EMAIL, "password": "not-the-password"})
    assert page.status_code == 200
    assert "The e-mail or the password is not correct." in _text(page)
    assert client.get("/operator/").status_code == 302, "a refused login must not open the console"
    login_operator(client, OPERATOR_EMAIL)
    assert client.get("/operator/").status_code == 200


def test_a_tenant_users_credentials_do_not_open_the_operator_console(factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.post("/operator/login", data={"email": "boss@acme.test", "password": PASSWORD})
    assert page.status_code == 200
    assert "The e-mail or the password is not correct." in _text(page)
    response = client.get("/operator/")
    assert response.status_code == 302 and response.location.startswith("/operator/login")


def test_a_logged_in_tenant_administrator_is_sent_to_the_operator_login(factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    login(client, "acme", "boss@acme.test")
    response = client.get("/operator/")
    assert response.status_code == 302 and response.location.startswith("/operator/login")


# --- creating an organisation -----------------------------------------------------------


def test_creating_an_organisation_gives_it_default_roles_in_its_language_and_invites_its_administrator(
    app, console, outbox
):
    response = console.post(
        "/operator/tenants/new",
        data={
            "slug": "studio",
            "name": "Studio Rossi",
            "language": "it",
            "timezone": "Europe/Rome",
            "admin_email": "Carla@Studio.test",
            "admin_name": "Carla Rossi",
        },
    )
    assert response.status_code == 302
    created = tenant_row(app, "studio")
    assert created == {
        "id": created["id"],
        "name": "Studio Rossi",
        "language": "it",
        "timezone": "Europe/Rome",
        "status": "active",
    }
    assert response.location == f"/operator/tenants/{created['id']}"
    page = _text(console.get(response.location))
    assert "The organisation Studio Rossi has been created." in page
    assert "We have sent an invitation to Carla@Studio.test." in page
    assert "carla@studio.test" in page and "Invited" in page, "the console lists the invited administrator"

    (mail,) = outbox()
    assert mail.to == "carla@studio.test"
    assert mail.language == "it"
    assert '<html lang="it">' in mail.html, "the invitation is written in the tenant's language"
    assert "Studio Rossi" in mail.subject
    link = path_of(mail.link())
    assert link.startswith("/studio/invitation/")
    assert console.get(link).status_code == 200

    invitee = app.test_client()
    accepted = invitee.post(link, data={"password": "a-long-new-password", "confirm": "a-long-new-password"})
    assert accepted.status_code == 302
    login(invitee, "studio", "carla@studio.test", "a-long-new-password")
    assert invitee.get("/studio/users/").status_code == 200, "the invitee is an administrator"
    roles_page = invitee.get("/studio/roles/")
    assert roles_page.status_code == 200
    shown = set(re.findall(r'<a href="/studio/roles/\d+">([^<]+)</a>', _text(roles_page)))
    assert shown == _default_role_names(app, "it")
    assert shown != _default_role_names(app, "en"), "the names are Italian, not the console's English"


def test_an_organisation_without_an_administrator_e_mail_is_created_and_nobody_is_mailed(app, console, outbox):
    response = console.post(
        "/operator/tenants/new",
        data={
            "slug": "bare",
            "name": "Bare Org",
            "language": "en",
            "timezone": "Europe/London",
            "admin_email": "",
            "admin_name": "",
        },
    )
    assert response.status_code == 302
    assert tenant_row(app, "bare")["timezone"] == "Europe/London"
    assert "No administrator yet." in _text(console.get(response.location))
    assert outbox() == []


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("operator", "not be a reserved word"),
        ("Bad Slug!", "not be a reserved word"),
        ("-acme", "not be a reserved word"),
        ("a" * 41, "Field cannot be longer than 40 characters."),
        ("acme", "The code acme is already taken."),
        ("ACME", "The code acme is already taken."),
    ],
)
def test_a_taken_malformed_or_reserved_code_is_refused_and_creates_nothing(
    app, factory, console, outbox, slug, message
):
    factory.tenant("acme", language="en")
    before = _tenant_count(app)
    page = console.post(
        "/operator/tenants/new",
        data={
            "slug": slug,
            "name": "Another",
            "language": "en",
            "timezone": "Europe/Madrid",
            "admin_email": "boss@another.test",
            "admin_name": "Boss",
        },
    )
    assert page.status_code == 200
    assert message in _text(page)
    assert 'id="slug"' in _text(page) and "is-invalid" in _text(page)
    assert _tenant_count(app) == before
    assert outbox() == []


# --- editing and suspending -------------------------------------------------------------


def test_the_operator_edits_name_language_and_time_zone(app, factory, console):
    tenant = factory.tenant("acme", name="Acme", language="es")
    response = console.post(
        f"/operator/tenants/{tenant.id}",
        data={
            "name": "Acme Italia",
            "language": "it",
            "timezone": "Europe/Rome",
        },
    )
    assert response.status_code == 302
    page = _text(console.get(response.location))
    assert "The organisation has been saved." in page and "Acme Italia" in page
    assert tenant_row(app, "acme") == {
        "id": tenant.id,
        "name": "Acme Italia",
        "language": "it",
        "timezone": "Europe/Rome",
        "status": "active",
    }
    assert '<html lang="it">' in _text(app.test_client().get("/acme/login"))


def test_an_unknown_time_zone_is_refused_and_changes_nothing(app, factory, console):
    tenant = factory.tenant("acme", name="Acme", language="es")
    page = console.post(
        f"/operator/tenants/{tenant.id}",
        data={
            "name": "Renamed",
            "language": "it",
            "timezone": "Mars/Olympus_Mons",
        },
    )
    assert page.status_code == 200
    assert "Not a valid choice." in _text(page)
    assert tenant_row(app, "acme") == {
        "id": tenant.id,
        "name": "Acme",
        "language": "es",
        "timezone": "Europe/Madrid",
        "status": "active",
    }


def test_suspending_a_tenant_closes_it_and_reactivating_opens_it_again(app, factory, console):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "boss@acme.test", role_key="admin")
    user = app.test_client()
    login(user, "acme", "boss@acme.test")
    assert user.get("/acme/").status_code == 200

    response = console.post(f"/operator/tenants/{tenant.id}/status", data={"suspend": "1"})
    assert response.status_code == 302
    page = _text(console.get(response.location))
    assert "The organisation has been suspended." in page and "Reactivate" in page
    assert tenant_row(app, "acme")["status"] == "suspended"
    assert app.test_client().get("/acme/login").status_code == 404
    assert user.get("/acme/").status_code == 404, "the logged-in user is shut out at once"
    assert user.post("/acme/login", data={"email": "boss@acme.test", "password": PASSWORD}).status_code == 404
    assert "Suspended" in _text(console.get("/operator/"))

    console.post(f"/operator/tenants/{tenant.id}/status", data={"suspend": "0"})
    assert tenant_row(app, "acme")["status"] == "active"
    assert app.test_client().get("/acme/login").status_code == 200
    again = app.test_client()
    login(again, "acme", "boss@acme.test")
    assert again.get("/acme/").status_code == 200


# --- licences ---------------------------------------------------------------------------


def test_licensing_a_plugin_opens_its_pages_and_its_limit_is_enforced(app, factory, console):
    tenant = factory.tenant("acme", language="en", plugins=())
    factory.user(tenant, "boss@acme.test", role_key="admin")
    admin = app.test_client()
    login(admin, "acme", "boss@acme.test")
    assert admin.get("/acme/notes/").status_code == 404

    response = console.post(
        f"/operator/tenants/{tenant.id}/licences/sample", data={"licensed": "1", "limit_notes": "2"}
    )
    assert response.status_code == 302
    assert "The licence has been saved." in _text(console.get(response.location))
    page = admin.get("/acme/notes/")
    assert page.status_code == 200
    # A new licence greets the tenant with a welcome note, which counts towards the limit.
    assert re.findall(r'<li><a href="/acme/notes/\d+">([^<]+)</a></li>', _text(page)) == ["Welcome note"]
    assert "Maximum notes: 2" in _text(admin.get("/acme/settings/plugins"))

    created = admin.post("/acme/notes/new", data={"title": "Second note"})
    assert created.status_code == 302 and re.fullmatch(r"/acme/notes/\d+", created.location)
    refused = admin.post("/acme/notes/new", data={"title": "Third note"}, follow_redirects=True)
    assert "Your licence allows 2 notes." in _text(refused)
    titles = re.findall(r'<li><a href="/acme/notes/\d+">([^<]+)</a></li>', _text(admin.get("/acme/notes/")))
    assert titles == ["Welcome note", "Second note"]


def test_raising_the_limit_lets_the_tenant_write_more(app, factory, console):
    tenant = factory.tenant("acme", language="en", plugins=())
    factory.user(tenant, "boss@acme.test", role_key="admin")
    admin = app.test_client()
    login(admin, "acme", "boss@acme.test")
    console.post(f"/operator/tenants/{tenant.id}/licences/sample", data={"licensed": "1", "limit_notes": "1"})
    assert "Your licence allows 1 notes." in _text(
        admin.post("/acme/notes/new", data={"title": "Blocked"}, follow_redirects=True)
    )

    console.post(f"/operator/tenants/{tenant.id}/licences/sample", data={"licensed": "1", "limit_notes": ""})
    assert admin.post("/acme/notes/new", data={"title": "Unlimited"}).status_code == 302
    assert "Maximum notes" not in _text(admin.get("/acme/settings/plugins"))


def test_revoking_a_licence_hides_the_plugin_from_thetenant_row(app, factory, console):
    tenant = factory.tenant("acme", language="en", plugins=("sample",))
    factory.user(tenant, "boss@acme.test", role_key="admin")
    admin = app.test_client()
    login(admin, "acme", "boss@acme.test")
    assert admin.get("/acme/notes/").status_code == 200
    assert 'href="/acme/notes/"' in _text(admin.get("/acme/"))
    assert 'data-plugin="sample"' in _text(admin.get("/acme/settings/plugins"))

    response = console.post(f"/operator/tenants/{tenant.id}/licences/sample", data={"limit_notes": ""})
    assert response.status_code == 302
    assert admin.get("/acme/notes/").status_code == 404
    dashboard = _text(admin.get("/acme/"))
    assert 'href="/acme/notes/"' not in dashboard and "Sample notes" not in dashboard
    plugins = _text(admin.get("/acme/settings/plugins"))
    assert 'data-plugin="sample"' not in plugins
    assert "Your organisation has no plugin licensed yet." in plugins
    assert admin.post("/acme/settings/plugins/sample", data={"enabled": "1"}).status_code == 404


def test_a_limit_that_is_not_a_whole_number_is_refused_and_grants_nothing(app, factory, console):
    tenant = factory.tenant("acme", language="en", plugins=())
    factory.user(tenant, "boss@acme.test", role_key="admin")
    for bad in ("two", "-1", "1.5"):
        page = console.post(
            f"/operator/tenants/{tenant.id}/licences/sample",
            data={"licensed": "1", "limit_notes": bad},
            follow_redirects=True,
        )
        assert page.status_code == 200
        assert "Maximum notes must be a whole number, or empty for no limit." in _text(page)
        assert "The licence has been saved." not in _text(page)
    admin = app.test_client()
    login(admin, "acme", "boss@acme.test")
    assert admin.get("/acme/notes/").status_code == 404


def test_the_operator_sets_list_and_text_limits(app, factory, console):
    tenant = factory.tenant("acme", language="en", plugins=())
    page = _text(console.get(f"/operator/tenants/{tenant.id}"))
    assert 'name="limit_regions" value="islands"' in page and 'name="limit_motto"' in page
    response = console.post(
        f"/operator/tenants/{tenant.id}/licences/sample",
        data={"licensed": "1", "limit_notes": "", "limit_regions": ["south", "islands"], "limit_motto": " Be kind "},
    )
    assert "The licence has been saved." in _text(console.get(response.location))
    page = _text(console.get(f"/operator/tenants/{tenant.id}"))
    assert 'value="south" id="limit-sample-regions-south" checked' in page
    assert 'value="north" id="limit-sample-regions-north">' in page and 'value="Be kind"' in page
    from core.api import licence_value
    from core.extensions import db
    from tenants.models import Tenant

    with app.app_context():
        row = db.session.get(Tenant, tenant.id)
        assert licence_value(row, "sample", "regions") == ["south", "islands"]
        assert licence_value(row, "sample", "motto") == "Be kind"
        assert licence_value(row, "sample", "notes") is None


def test_licensing_a_plugin_that_is_not_installed_answers_404(factory, console):
    tenant = factory.tenant("acme", language="en", plugins=())
    assert console.post(f"/operator/tenants/{tenant.id}/licences/nope", data={"licensed": "1"}).status_code == 404


# --- jobs and the list ------------------------------------------------------------------


def test_the_job_page_lists_runs_of_every_tenant_with_their_codes(app, factory, console, run_jobs):
    from core.extensions import db
    from core.jobs.services import enqueue
    from tenants.models import Tenant

    acme = factory.tenant("acme", language="en")
    globex = factory.tenant("globex", language="en")
    with app.app_context():
        for ref in (acme, globex, globex):
            enqueue(db.session.get(Tenant, ref.id), "sample.count_notes")
    page = _text(console.get("/operator/jobs"))
    rows = [_cells(row) for row in re.findall(r"<tr>.*?</tr>", page, flags=re.S) if "sample.count_notes" in row]
    assert sorted(cells[1] for cells in rows) == ["acme", "globex", "globex"]

    run_jobs()
    finished = _text(console.get("/operator/jobs?status=finished"))
    assert finished.count("<code>sample.count_notes</code>") == 3
    assert "No jobs have run yet." in _text(console.get("/operator/jobs?status=failed"))


def test_the_operator_sees_every_tenant_with_its_user_count_and_searches_by_name_or_code(factory, console):
    acme = factory.tenant("acme", name="Acme Corporation", language="en")
    globex = factory.tenant("globex", name="Globex", language="it")
    factory.tenant("initech", name="Initech", language="es")
    factory.user(acme, "one@acme.test", role_key="admin")
    factory.user(acme, "two@acme.test", role_key="manager")
    factory.user(globex, "solo@globex.test", role_key="admin")

    page = _text(console.get("/operator/"))
    assert _cells(_row_of(page, "acme")) == ["acme", "Acme Corporation", "English", "2", "Active"]
    assert _cells(_row_of(page, "globex")) == ["globex", "Globex", "Italiano", "1", "Active"]
    assert _cells(_row_of(page, "initech")) == ["initech", "Initech", "Español", "0", "Active"]

    for query, expected in (
        ("CORPOR", {"acme"}),
        ("glob", {"globex"}),
        ("init", {"initech"}),
        ("nothing-like-it", set()),
    ):
        found = _text(console.get("/operator/", query_string={"q": query}))
        shown = {slug for slug in ("acme", "globex", "initech") if f"<code>{slug}</code>" in found}
        assert shown == expected, query
