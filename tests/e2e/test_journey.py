"""What a person does in the browser: an administrator grants a narrow role, the invited user sees
only what it allows and works in another language; a background job's progress updates live.

Texts are looked for as the user reads them: in the organisation's language, translated by the
app itself (so the test holds before and after the Spanish catalogue is filled in). The Italian
words are taken from the Italian catalogue, which must have them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD, path_of

pytestmark = pytest.mark.browser

ITALIAN_CATALOGUE = Path(__file__).resolve().parents[2] / "core" / "translations" / "it" / "LC_MESSAGES" / "messages.po"
NEW_PASSWORD = "lectora-secreta-2024"
ADMIN_ONLY = ("Users", "Roles", "Plugins", "Settings", "Background jobs")


def ui(app, message: str, language: str = "es", **variables) -> str:
    """``message`` as the app shows it in ``language``."""
    from flask_babel import force_locale, gettext

    with app.test_request_context(), force_locale(language):
        return gettext(message, **variables)


def catalogue_translation(msgid: str) -> str:
    """The Italian of ``msgid`` from core's Italian catalogue; fails clearly when it is not there."""
    assert ITALIAN_CATALOGUE.exists(), (
        f"the Italian catalogue {ITALIAN_CATALOGUE} does not exist yet: it must translate {msgid!r}"
    )
    with ITALIAN_CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="it")
    message = catalogue.get(msgid)
    assert message is not None and message.string, (
        f"the Italian catalogue {ITALIAN_CATALOGUE} has no translation of {msgid!r}"
    )
    return message.string


def log_in(page: Page, app, slug: str, email: str, password: str) -> None:
    page.goto(f"/{slug}/login")
    page.get_by_label(ui(app, "E-mail"), exact=True).fill(email)
    page.get_by_label(ui(app, "Password"), exact=True).fill(password)
    page.get_by_role("button", name=ui(app, "Log in")).click()
    expect(page.locator("#current-user-name")).to_be_visible()


def open_dropdown(page: Page, toggle) -> None:
    """Open a Bootstrap dropdown once the page's scripts have run (the toggle needs them)."""
    page.wait_for_load_state("load")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")


def user_menu(page: Page):
    return page.locator("header button:has(#current-user-name)")


def menu_link(page: Page, title: str):
    return page.locator("#main-menu, #admin-menu").get_by_role("link", name=title, exact=True)


def test_admin_creates_role_and_user_who_sees_only_what_role_allows(app, browser_page, live_server, outbox):
    import core.demo

    with app.app_context():
        core.demo.load()
    page = browser_page

    # The administrator logs in and makes a role that may only see the groups.
    log_in(page, app, "demo", "admin@demo.test", "demo-admin")
    expect(page.locator("#current-user-name")).to_have_text("Ana Administradora")
    menu_link(page, ui(app, "Roles")).click()
    page.get_by_role("link", name=ui(app, "New role")).click()
    page.get_by_label(ui(app, "Name"), exact=True).fill("Consulta de grupos")
    see_groups = page.get_by_label(ui(app, "See the groups"))
    expect(see_groups).to_have_value("core.groups:view")
    see_groups.check()
    page.get_by_role("button", name=ui(app, "Save")).click()
    expect(page.get_by_role("link", name="Consulta de grupos", exact=True)).to_be_visible()

    # ...and invites a user who holds only that role.
    menu_link(page, ui(app, "Users")).click()
    page.get_by_role("link", name=ui(app, "Invite a user")).click()
    page.get_by_label(ui(app, "E-mail"), exact=True).fill("lectora@demo.test")
    page.get_by_label(ui(app, "Name"), exact=True).fill("Lucía Lectora")
    page.get_by_role("checkbox", name="Consulta de grupos", exact=True).check()
    page.get_by_role("button", name=ui(app, "Send the invitation")).click()
    expect(page.get_by_role("alert")).to_contain_text(
        ui(app, "We have sent an invitation to %(email)s.", email="lectora@demo.test")
    )

    # The administrator logs out through the user menu.
    open_dropdown(page, user_menu(page))
    page.get_by_role("button", name=ui(app, "Log out")).click()
    expect(page.get_by_role("button", name=ui(app, "Log in"))).to_be_visible()

    # The invitation arrives by e-mail; its link leads to choosing a password.
    invitations = [mail for mail in outbox() if mail.to == "lectora@demo.test"]
    assert len(invitations) == 1, f"expected one invitation, got {invitations!r}"
    link = invitations[0].link()
    assert link.startswith("http://ventanilla.test/demo/"), link
    page.goto(path_of(link))
    page.get_by_label(ui(app, "New password"), exact=True).fill(NEW_PASSWORD)
    page.get_by_label(ui(app, "Repeat the new password"), exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name=ui(app, "Create my account")).click()
    expect(page.get_by_role("alert")).to_contain_text(
        ui(app, "Welcome! Your account is ready: log in with your new password.")
    )

    # The new user sees the groups and nothing an administrator sees.
    log_in(page, app, "demo", "lectora@demo.test", NEW_PASSWORD)
    expect(page.locator("#current-user-name")).to_have_text("Lucía Lectora")
    expect(page.locator("#admin-menu").get_by_role("link", name=ui(app, "Groups"), exact=True)).to_be_visible()
    for title in ADMIN_ONLY:
        expect(menu_link(page, ui(app, title)), f"menu entry {title!r}").to_have_count(0)

    response = page.goto("/demo/users/")
    assert response is not None and response.status == 403, response and response.status
    expect(page.get_by_role("heading", name=ui(app, "You do not have permission to see this"))).to_be_visible()
    page.get_by_role("link", name=ui(app, "Go to the home page")).click()

    # She switches the interface to Italian from the language menu in the header.
    language_button = page.locator("header").get_by_role("button", name=ui(app, "Language"))
    expect(language_button.locator(".bi-translate")).to_have_count(1)
    open_dropdown(page, language_button)
    page.get_by_role("button", name="Italiano", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "it")

    groups_it = catalogue_translation("Groups")
    profile_it = catalogue_translation("My profile")
    expect(
        page.locator("#admin-menu").get_by_role("link", name=groups_it, exact=True),
        f"the menu should show {groups_it!r} (Italian of 'Groups'); is the catalogue compiled (make translations)?",
    ).to_be_visible()
    open_dropdown(page, user_menu(page))
    expect(
        page.get_by_role("link", name=profile_it, exact=True),
        f"the user menu should show {profile_it!r} (Italian of 'My profile'); is the catalogue compiled?",
    ).to_be_visible()


def test_job_progress_bar_updates_live(app, factory, browser_page, run_jobs):
    from core.extensions import db
    from core.jobs.services import enqueue
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    factory.user(tenant, "boss@acme.test", role_key="admin", name="Boss")
    with app.app_context():
        run_id = enqueue(db.session.get(Tenant, tenant.id), "sample.count_notes", started_by=None).id
    page = browser_page
    log_in(page, app, "acme", "boss@acme.test", PASSWORD)

    page.goto(f"/acme/jobs/{run_id}")
    badge = page.locator("#job-status .badge")
    bar = page.locator(".job-progress .progress-bar")
    expect(badge).to_have_attribute("data-status", "queued")
    expect(badge).to_have_text(ui(app, "Queued"))
    expect(bar).to_have_text("0%")
    # A mark that a reload would wipe out.
    page.evaluate("window.stillTheSamePage = true")

    run_jobs()

    expect(badge).to_have_attribute("data-status", "finished")
    expect(badge).to_have_text(ui(app, "Finished"))
    expect(bar).to_have_text("100%")
    assert page.evaluate("window.stillTheSamePage === true"), "the page was reloaded instead of updated"
