"""Seeds 000 and 001 in the browser: a manager uploads a client's digital certificate, adds the DEHú
mailbox it offers, presses "Consultar buzón", sees the new notification arrive, opens it after
confirming (comparecencia), and downloads its document and the acuse de recibo.

DEHú is the simulator, over real HTTPS with client certificates; the sync runs on a real RQ worker.
Texts are looked for as the app shows them in Spanish.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_journey import log_in, ui
from tests.plugins.sedes import conftest as sedes_fixtures
from tests.plugins.sedes.sync_helpers import point_catalogue_at

pytestmark = pytest.mark.browser

# The plugin's DEHú simulator on loopback.
dehu_simulator = sedes_fixtures.dehu_simulator

CIF = "B12345674"
PASSWORD = "clave-del-certificado"


def test_a_certificate_a_mailbox_consultar_buzon_and_opening_a_notification(
    app, factory, browser_page, dehu_simulator, run_jobs, tmp_path
):
    tenant = factory.tenant("acme", language="es", plugins=["sedes"])
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa", password="clave-de-la-jefa")
    client_id = factory.client(tenant, "Construcciones Levante SL", CIF)
    point_catalogue_at(app, dehu_simulator)
    issued = dehu_simulator.ca.representante("12345678Z", CIF, "CONSTRUCCIONES LEVANTE SL")
    dehu_simulator.enrol(issued, [CIF])
    pfx = tmp_path / "levante.pfx"
    pfx.write_bytes(issued.pkcs12(PASSWORD))
    sent = dehu_simulator.add_notification(CIF, subject="Requerimiento de información IVA 2025")

    page = browser_page
    log_in(page, app, "acme", "jefa@acme.test", "clave-de-la-jefa")

    # The client's Buzones electrónicos tab: upload its certificate.
    page.goto(f"/acme/clients/{client_id}?tab=sedes_mailboxes")
    page.get_by_role("link", name=ui(app, "Upload a certificate")).click()
    page.get_by_label(ui(app, "Certificate file (.pfx or .p12)")).set_input_files(str(pfx))
    page.get_by_label(ui(app, "Certificate password")).fill(PASSWORD)
    page.get_by_role("button", name=ui(app, "Upload"), exact=True).click()

    # The mailboxes it could read are offered: DEHú, ticked.
    offers = page.locator("#mailbox-offers")
    expect(offers).to_contain_text("Construcciones Levante SL")
    page.get_by_role("button", name=ui(app, "Add the ticked mailboxes")).click()

    # Consultar buzón, on the client's tab; the sync runs on the worker.
    page.goto(f"/acme/clients/{client_id}?tab=sedes_mailboxes")
    mailbox_row = page.locator("#client-mailboxes tr[data-sede='dehu']")
    expect(mailbox_row).to_be_visible()
    mailbox_row.locator("[data-sync-mailbox]").click()
    expect(page.locator("#sync-mailboxes")).to_be_visible()
    run_jobs()
    page.reload()
    expect(page.locator("#sync-mailboxes tr[data-result='ok']")).to_have_count(1)
    found = page.get_by_role("link", name="Requerimiento de información IVA 2025")
    expect(found).to_be_visible()
    assert "PeticionAcceso" not in dehu_simulator.operations()  # listing never opened it

    # Open it: only after confirming.
    found.click()
    expect(page.locator("#opened")).to_have_text(ui(app, "Not opened"))
    page.get_by_label(
        re.compile(
            re.escape(
                ui(
                    app,
                    "I understand that opening it now counts as notified for %(client)s.",
                    client="Construcciones Levante SL",
                )
            )
        )
    ).check()
    page.get_by_role("button", name=ui(app, "Open the notification")).click()
    expect(page.get_by_role("alert").last).to_contain_text(
        ui(app, "The notification has been opened at the sede; its documents are below.")
    )
    expect(page.locator("#opened")).to_contain_text("Jefa")
    assert dehu_simulator.notification(sent.identificador).state == "ACEPTADA"

    # The document and the acuse, downloaded.
    documents = page.locator("#documents a[data-document]")
    expect(documents).to_have_count(2)
    for index in range(2):
        with page.expect_download() as download_info:
            documents.nth(index).click()
        path = download_info.value.path()
        with open(path, "rb") as handle:
            assert handle.read(5) == b"%PDF-"
    expect(page.locator("#documents")).to_contain_text(ui(app, "Acuse de recibo"))
