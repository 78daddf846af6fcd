"""The life of a client certificate, as the people involved see it in the browser.

A manager makes a template that renews itself and asks a client for the certificate; the client,
invited to the portal, uploads it from a phone; the manager approves it. Then the clock moves on:
the certificate is "expiring soon", then expired, and a new request takes its place while the
old one goes to the history. The client is told of every step by e-mail.

Only the demo organisation is arranged with services; everything else goes through the pages.
Texts are looked for in the organisation's language (Spanish), translated by the app itself.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from playwright.sync_api import Locator, Page, expect
from pypdf import PdfWriter

from tests.conftest import path_of
from tests.e2e.conftest import TIMEOUT_MS
from tests.e2e.test_journey import log_in, menu_link, ui

pytestmark = pytest.mark.browser

MADRID = ZoneInfo("Europe/Madrid")
MANAGER = ("gestor@demo.test", "demo-staff")
CLIENT_EMAIL = "lucia.martin@cliente.test"
CLIENT_PASSWORD = "lucia-sube-certificados"
TEMPLATE = "Certificado médico"
LEAD_DAYS = 15
# The phone of the client: small screen, touch, the mobile layout of the portal.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone_page(chromium, live_server, request, tmp_path) -> Iterator[Page]:
    """A page in a fresh phone-sized browser context; kept as a screenshot when the test fails."""
    context = chromium.new_context(base_url=live_server, **PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for index, page in enumerate(context.pages):
            stem = tmp_path / f"failure-phone-{index}"
            try:
                page.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
                print(f"phone page at failure: {page.url} -> {stem}.png / .html")
            except Exception as exc:  # the page may be gone; the test's own error matters more
                print(f"could not keep the phone page at failure: {exc}")
    context.close()


def pdf_file(folder: Path) -> Path:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    path = folder / "certificado-medico.pdf"
    path.write_bytes(buffer.getvalue())
    return path


def local_morning(day: date) -> datetime:
    """One hour past midnight of ``day`` in Madrid, as a UTC instant."""
    return (datetime.combine(day, time(0), tzinfo=MADRID) + timedelta(hours=1)).astimezone(ZoneInfo("UTC"))


def notice_subject(app, event: str, organisation: str) -> str:
    """The subject of the notice of ``event`` as the client reads it (Spanish)."""
    from flask_babel import force_locale

    from plugins.center_certificates.services import notice_subject as subject

    with app.test_request_context(), force_locale("es"):
        return str(subject(event, organisation, TEMPLATE))


def mails_to_client(outbox, subject: str) -> list:
    return [mail for mail in outbox() if mail.to == CLIENT_EMAIL and mail.subject == subject]


def badge(scope: Locator | Page) -> Locator:
    return scope.locator("[data-status]").first


def certificate_rows(page: Page, scope: str = ".client-tab[data-tab='certificates']") -> Locator:
    """The rows of the journey's template (the demo's own templates ask the client for theirs too)."""
    return page.locator(f"{scope} tr[data-certificate]").filter(has=page.get_by_role("link", name=TEMPLATE))


def staff_sees_again(page: Page, app, path: str) -> None:
    """After a jump of days the staff session has expired: log in again and come back to ``path``."""
    page.goto(path)
    expect(page.get_by_role("button", name=ui(app, "Log in")), "the old session should have expired").to_be_visible()
    log_in(page, app, "demo", *MANAGER)
    page.goto(path)


def test_certificate_requested_uploaded_from_phone_approved_expires_and_is_requested_again(
    app, browser_page, phone_page, outbox, run_jobs, tmp_path
):
    from sqlalchemy import select

    import core.demo
    from core.extensions import db
    from core.jobs.runner import fan_out
    from tenants import licensing
    from tenants.models import Tenant

    with app.app_context():
        core.demo.load()
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        if not licensing.is_enabled(tenant, "center_certificates"):
            licensing.set_licence(tenant, "center_certificates", True)
        organisation = tenant.name
    today = datetime.now(MADRID).date()
    validity = today + timedelta(days=40)
    staff = browser_page

    # The manager of Centro Valencia adds a client with an e-mail address.
    log_in(staff, app, "demo", *MANAGER)
    menu_link(staff, ui(app, "Clients")).click()
    staff.get_by_role("link", name=ui(app, "New client")).click()
    staff.get_by_label(ui(app, "Tax id (NIF, NIE, CIF, codice fiscale, partita IVA…)")).fill("12345678Z")
    staff.get_by_label(ui(app, "First name"), exact=True).fill("Lucía")
    staff.get_by_label(ui(app, "Last names"), exact=True).fill("Martín Pérez")
    staff.get_by_label(ui(app, "E-mail"), exact=True).fill(CLIENT_EMAIL)
    staff.get_by_role("checkbox", name="Centro Valencia", exact=True).check()
    staff.get_by_role("button", name=ui(app, "Save")).click()
    expect(staff.get_by_role("alert")).to_contain_text("Lucía")
    client_path = path_of(staff.url)
    assert re.fullmatch(r"/demo/clients/\d+", client_path), staff.url

    # Certificates → Templates → New template: a medical certificate that is asked for again on expiry.
    menu_link(staff, ui(app, "Certificates")).click()
    staff.get_by_role("link", name=ui(app, "Templates"), exact=True).click()
    staff.get_by_role("link", name=ui(app, "New template")).click()
    staff.get_by_label(ui(app, "Name"), exact=True).fill(TEMPLATE)
    staff.get_by_label(ui(app, "“Expiring soon” starts this many days before the validity date")).fill(str(LEAD_DAYS))
    staff.get_by_label(
        ui(app, "When a certificate expires, request a new one from this template (the old one goes to the history)")
    ).check()
    staff.get_by_role("button", name=ui(app, "Create")).click()
    expect(staff.get_by_role("alert")).to_contain_text(ui(app, "The template has been saved."))
    expect(staff.get_by_role("heading", name=TEMPLATE)).to_be_visible()

    # Client page → Certificates tab → New: the request waits for the client.
    staff.goto(client_path)
    staff.locator("#client-tabs").get_by_role("link", name=ui(app, "Certificates")).click()
    request_form = staff.locator("#request-certificate")
    request_form.get_by_label(ui(app, "Certificate to request")).select_option(label=TEMPLATE)
    request_form.get_by_role("button", name=ui(app, "New")).click()
    expect(staff.get_by_role("alert")).to_contain_text(TEMPLATE)
    first = certificate_rows(staff)
    expect(first).to_have_count(1)
    expect(first.get_by_role("link", name=TEMPLATE)).to_be_visible()
    expect(badge(first)).to_have_text(ui(app, "Missing client information"))
    first_path = path_of(first.get_by_role("link", name=TEMPLATE).get_attribute("href"))

    # The manager invites the client to the portal from the client page.
    staff.goto(client_path)
    portal_card = staff.locator("#portal-access")
    portal_card.get_by_role("button", name=ui(app, "Invite to the portal")).click()
    expect(staff.get_by_role("alert")).to_contain_text(
        ui(app, "We have sent an invitation to %(email)s.", email=CLIENT_EMAIL)
    )
    invitations = [mail for mail in outbox() if mail.to == CLIENT_EMAIL and "/invitation/" in mail.text]
    assert len(invitations) == 1, f"expected one invitation to {CLIENT_EMAIL}, got {invitations!r}"

    # On her phone, the client chooses a password and logs in to the portal.
    phone = phone_page
    phone.goto(path_of(invitations[0].link()))
    phone.get_by_label(ui(app, "New password"), exact=True).fill(CLIENT_PASSWORD)
    phone.get_by_label(ui(app, "Repeat the new password"), exact=True).fill(CLIENT_PASSWORD)
    phone.get_by_role("button", name=ui(app, "Create my account")).click()
    expect(phone.get_by_role("alert")).to_contain_text(
        ui(app, "Welcome! Your account is ready: log in with your new password.")
    )
    phone.get_by_label(ui(app, "E-mail"), exact=True).fill(CLIENT_EMAIL)
    phone.get_by_label(ui(app, "Password"), exact=True).fill(CLIENT_PASSWORD)
    phone.get_by_role("button", name=ui(app, "Log in")).click()

    # The portal's home offers Certificates, also in the tab bar at the bottom of the screen.
    expect(phone.locator("#portal-sections").get_by_role("link", name=ui(app, "Certificates"))).to_be_visible()
    tab = phone.locator("nav.portal-tabbar").get_by_role("link", name=ui(app, "Certificates"))
    expect(tab).to_be_visible()
    box = tab.bounding_box()
    assert box is not None and box["y"] + box["height"] > PHONE["viewport"]["height"] - 80, box
    tab.tap()
    current = phone.locator("#current-certificates")
    expect(badge(current)).to_have_text(ui(app, "Missing client information"))
    current.get_by_role("link", name=re.compile(re.escape(TEMPLATE))).tap()

    # She uploads the PDF with its validity date and a note.
    upload = phone.locator("#upload-form")
    upload.get_by_label(ui(app, "File (JPG, PNG, HEIC or PDF)")).set_input_files(pdf_file(tmp_path))
    upload.get_by_label(ui(app, "Valid until (as written on the document)")).fill(validity.isoformat())
    upload.get_by_label(ui(app, "Notes"), exact=True).fill("Expedido por el Dr. García")
    upload.get_by_role("button", name=ui(app, "Send")).tap()
    expect(phone.get_by_role("alert")).to_contain_text(ui(app, "Thank you: the centre will review your document."))
    expect(badge(phone.locator("#current-certificates"))).to_have_text(ui(app, "Pending approval"))

    # The manager opens it from the client's tab and approves it.
    staff.goto(client_path + "?tab=certificates")
    certificate_rows(staff).get_by_role("link", name=TEMPLATE).click()
    status = staff.locator("#certificate-status")
    expect(status).to_have_text(ui(app, "Pending approval"))
    expect(staff.locator("main")).to_contain_text("Expedido por el Dr. García")
    staff.locator("#certificate-actions").get_by_role("button", name=ui(app, "Approve")).click()
    expect(staff.get_by_role("alert")).to_contain_text(ui(app, "The certificate has been approved."))
    expect(status).to_have_text(ui(app, "Approved"))

    # The client was told, in Spanish, that it was asked for and that it is approved.
    created_subject = notice_subject(app, "created", organisation)
    approved_subject = notice_subject(app, "approved", organisation)
    assert TEMPLATE in created_subject and TEMPLATE in approved_subject
    created = mails_to_client(outbox, created_subject)
    approved = mails_to_client(outbox, approved_subject)
    assert len(created) == 1, f"one 'created' notice expected: {[m.subject for m in outbox()]}"
    assert len(approved) == 1, f"one 'approved' notice expected: {[m.subject for m in outbox()]}"
    assert created[0].language == "es" and approved[0].language == "es"
    portal_path = first_path.replace("/demo/certificates/", "/demo/portal/certificates/")
    assert path_of(created[0].link()) == portal_path, created[0].text

    def transitions_run_as_the_cron_does() -> None:
        with app.app_context():
            assert fan_out("center_certificates.transitions") >= 1
        run_jobs()

    # The clock moves on to the first day of "expiring soon" (validity - lead time, in Madrid).
    with time_machine.travel(local_morning(validity - timedelta(days=LEAD_DAYS))) as clock:
        transitions_run_as_the_cron_does()
        staff_sees_again(staff, app, first_path)
        expect(staff.locator("#certificate-status")).to_have_text(ui(app, "Expiring soon"))
        expiring_subject = notice_subject(app, "expiring", organisation)
        assert len(mails_to_client(outbox, expiring_subject)) == 1, [m.subject for m in outbox()]

        # ...and to the day after the validity date: expired, and asked for again.
        clock.move_to(local_morning(validity + timedelta(days=1)))
        transitions_run_as_the_cron_does()
        staff_sees_again(staff, app, first_path)
        expect(staff.locator("#certificate-status")).to_have_text(ui(app, "Expired"))
        expired_subject = notice_subject(app, "expired", organisation)
        assert len(mails_to_client(outbox, expired_subject)) == 1, [m.subject for m in outbox()]
        assert len(mails_to_client(outbox, created_subject)) == 2, "the renewal should be announced to the client"

        staff.goto(client_path + "?tab=certificates")
        renewal = certificate_rows(staff)
        expect(renewal).to_have_count(1)
        expect(badge(renewal)).to_have_text(ui(app, "Missing client information"))
        renewal_path = path_of(renewal.get_by_role("link", name=TEMPLATE).get_attribute("href"))
        assert renewal_path != first_path, "the renewal is a new certificate"

        staff.get_by_role("link", name=re.compile(re.escape(ui(app, "See history")))).click()
        history = certificate_rows(staff, "main")
        expect(history).to_have_count(1)
        expect(badge(history)).to_have_text(ui(app, "Expired"))
        assert path_of(history.get_by_role("link", name=TEMPLATE).get_attribute("href")) == first_path
