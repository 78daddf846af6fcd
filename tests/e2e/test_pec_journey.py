"""A PEC reseller's day, in Italian, in the browser: a holder is registered with an address chosen
from the comuni list, a box is registered for them, the gestore activates it in the operator
console while the reseller's page turns ATTIVA by itself, the box joins an agent's package, and
the searched list is exported as CSV.

Only the reseller, its domain and an agent with a package are arranged with services; everything
else goes through the pages. Texts are looked for as the app shows them in Italian.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.test_journey import ui

pytestmark = pytest.mark.browser

SLUG = "studio-pec"
CF = "RSSMRA78D15H501U"


def it(app, message: str, context: str | None = None, **variables) -> str:
    """``message`` as the reseller reads it (Italian)."""
    from flask_babel import force_locale, pgettext

    if context is None:
        return ui(app, message, "it", **variables)
    with app.test_request_context(), force_locale("it"):
        return pgettext(context, message, **variables)


@pytest.fixture
def studio(app, factory):
    """An Italian reseller with a domain the gestore activates by hand, and an agent with a package."""
    from core.api import db, tenant_context
    from plugins.pec import agents
    from plugins.pec.models import Domain

    tenant = factory.tenant(SLUG, name="Studio PEC", language="it")
    factory.user(tenant, "titolare@studio-pec.test", role_key="admin", name="Teresa Titolare")
    factory.operator()
    with app.app_context(), tenant_context(tenant.id):
        domain = Domain(name="pec.studio-pec.example")
        db.session.add(domain)
        db.session.flush()
        agent = agents.create_agent(agents.AgentData("Agenzia Nord S.a.s.", email="nord@agenti.test"), [domain.id])
        agents.add_package(agent, "Professionisti 2026", 10, 1)
        db.session.commit()
    return tenant


def _domain_id(app) -> int:
    from sqlalchemy import select

    from core.api import all_tenants, db
    from plugins.pec.models import Domain

    with app.app_context(), all_tenants():
        return db.session.scalar(select(Domain.id).where(Domain.name == "pec.studio-pec.example"))


def log_in(page: Page, app, email: str, password: str = PASSWORD) -> None:
    page.goto(f"/{SLUG}/login")
    page.get_by_label(it(app, "E-mail"), exact=True).fill(email)
    page.get_by_label(it(app, "Password"), exact=True).fill(password)
    page.get_by_role("button", name=it(app, "Log in")).click()
    expect(page.locator("#current-user-name")).to_be_visible()


def test_a_reseller_registers_a_holder_and_a_box_the_gestore_activates_it_and_it_is_exported(
    app, studio, new_page, live_server
):
    page = new_page()
    log_in(page, app, "titolare@studio-pec.test")

    # Gestione anagrafica utenti → a new holder: a core client with the PEC section.
    page.locator("#main-menu").get_by_role("link", name=it(app, "Holder records"), exact=True).click()
    page.get_by_role("link", name=it(app, "New holder")).click()
    page.locator("#country").select_option("IT")
    page.locator("#tax_id").fill(CF)
    page.locator("#first_name").fill("Mario")
    page.locator("#last_name").fill("Rossi")
    page.locator("#email").fill("mario.rossi@cliente.test")
    page.get_by_role("button", name=it(app, "Save"), exact=True).click()
    expect(page.locator("h1")).to_contain_text("Mario Rossi")

    # In the PEC panel the holder's birth data came from the codice fiscale; the address's comune is
    # chosen from the list, which proposes provincia and CAP.
    page.goto(f"/{SLUG}/pec/holders/?q=rossi")
    page.get_by_role("link", name="Mario Rossi").click()
    expect(page.locator("#profile-birth_comune")).to_have_value("Roma")
    page.get_by_text(it(app, "Add an address")).click()
    page.locator("#new-address-street").fill("Via Roma 3")
    page.locator("#new-address-comune").press_sequentially("Samo", delay=40)
    choice = page.locator(".pec-comuni [data-comune='Samone (TO)']")
    expect(page.locator(".pec-comuni [data-comune='Samone (TN)']")).to_be_visible()  # the homonym, told apart
    choice.click()
    expect(page.locator("#new-address-provincia")).to_have_value("TO")
    expect(page.locator("#new-address-cap")).to_have_value("10010")
    page.locator("#new-address-phone").fill("0125 53 2917")
    page.locator("#new-address").get_by_role("button", name=it(app, "Save")).click()
    expect(page.locator("#addresses")).to_contain_text("Via Roma 3, 10010 Samone (TO)")

    # Inserisci nuovo account certificato: the codice fiscale finds the holder.
    page.goto(f"/{SLUG}/pec/boxes/")
    page.get_by_role("link", name=it(app, "New certified account")).first.click()
    page.get_by_label(it(app, "Box name (before @)")).fill("mario.rossi")
    expect(page.get_by_label(it(app, "Domain"), exact=True)).to_have_value(str(_domain_id(app)))
    page.get_by_label(it(app, "Holder's codice fiscale")).fill(CF)
    page.get_by_label(it(app, "Holder's codice fiscale")).blur()
    expect(page.locator("#holder-found")).to_contain_text("Mario Rossi")
    page.get_by_role("button", name=it(app, "Verify and save")).click()
    page.get_by_label("Via Roma 3, 10010 Samone (TO)").check()
    page.get_by_role("button", name=it(app, "Use this address")).click()
    page.get_by_role("button", name=it(app, "No activity: finish")).click()
    state = page.locator("#box-state")
    expect(state).to_contain_text(it(app, "Awaiting activation", "box state"))
    box_url = page.url

    # The gestore activates it in the operator console; the reseller's page, left open, turns ATTIVA.
    gestore = new_page()
    gestore.goto("/operator/login")
    gestore.locator("input[name=email]").fill("op@ventanilla.test")
    gestore.locator("input[name=password]").fill(PASSWORD)
    gestore.locator("button[type=submit]").click()
    gestore.goto("/operator/pec/")
    row = gestore.locator("#activation-queue tr[data-box='mario.rossi@pec.studio-pec.example']")
    expect(row).to_contain_text("Studio PEC")
    row.locator("form button[type=submit]").first.click()
    expect(gestore.locator("#activation-queue tr[data-box='mario.rossi@pec.studio-pec.example']")).to_have_count(0)
    expect(page.locator("#box-state")).to_contain_text(it(app, "Active", "box state"), timeout=15_000)
    assert page.url == box_url

    # Gestione agenti commerciali → the box's agent; Gestione pacchetti → the agent's package.
    page.get_by_role("link", name=it(app, "Manage agent association")).click()
    page.get_by_label(it(app, "Replace with")).select_option(label="Agenzia Nord S.a.s.")
    page.get_by_role("button", name=it(app, "Apply agent change")).click()
    expect(page.locator("[data-field=agent]")).to_have_text("Agenzia Nord S.a.s.")
    page.get_by_role("link", name=it(app, "Change package association")).click()
    page.get_by_label(it(app, "Package"), exact=True).select_option(label="Professionisti 2026")
    page.get_by_role("button", name=it(app, "Apply package change")).click()
    expect(page.locator("[data-field=package]")).to_have_text("Professionisti 2026")

    # Esporta Dati of the boxes searched by domain.
    page.goto(f"/{SLUG}/pec/boxes/")
    page.get_by_label(it(app, "Domain"), exact=True).select_option(label="pec.studio-pec.example")
    page.get_by_role("button", name=it(app, "Search")).click()
    with page.expect_download() as download:
        page.get_by_role("link", name=it(app, "Export data")).click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == [it(app, "PEC address"), it(app, "Domain"), it(app, "State")]
    assert rows[1][0] == "mario.rossi@pec.studio-pec.example"
    assert rows[1][2] == it(app, "Active", "box state")
    assert "Agenzia Nord S.a.s." in rows[1] and "Professionisti 2026" in rows[1]


def test_a_codice_fiscale_typed_before_the_page_script_arrived_still_finds_its_holder(app, studio, factory, new_page):
    factory.client(studio, "Mario Rossi", CF)
    page = new_page()
    log_in(page, app, "titolare@studio-pec.test")
    page.route("**/pec.js", lambda route: route.abort())
    page.goto(f"/{SLUG}/pec/boxes/new")
    page.get_by_label(it(app, "Holder's codice fiscale")).fill(CF)
    page.get_by_label(it(app, "Holder's codice fiscale")).blur()
    page.unroute("**/pec.js")
    page.add_script_tag(url=page.evaluate("document.querySelector('script[src*=\"pec.js\"]').src"))
    expect(page.locator("#holder-found")).to_contain_text("Mario Rossi")
    expect(page.locator("#new-holder")).to_be_hidden()
