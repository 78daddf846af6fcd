"""The staff's side: templates, requests from the client page, approval, the bin, bulk generation,
the report, widgets, and who may do what."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import time_machine
from sqlalchemy import func, select

from tests.plugins.center_certificates.conftest import (
    acting,
    make_request,
    make_template,
    pdf_bytes,
    staff_client,
    state,
    upload,
)

SPRING = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def test_a_manager_creates_edits_and_clones_a_template(app, centre):
    browser = staff_client(app, "manager@acme.test")
    response = browser.post(
        "/acme/certificates/templates/new",
        data={
            "name": "Seguro de responsabilidad",
            "lead_days": "30",
            "auto_for_new_clients": "y",
            "active": "y",
        },
    )
    assert response.status_code == 302
    listing = browser.get("/acme/certificates/templates/").get_data(as_text=True)
    assert "Seguro de responsabilidad" in listing and "30 days before" in listing and "for every new client" in listing
    template_id = response.location.rsplit("/", 1)[1]
    clone = browser.post(f"/acme/certificates/templates/{template_id}/clone")
    page = browser.get(clone.location).get_data(as_text=True)
    assert "Seguro de responsabilidad (copy)" in page
    duplicate = browser.post(
        "/acme/certificates/templates/new", data={"name": "seguro de responsabilidad", "lead_days": "15"}
    )
    assert "There is already a template called seguro de responsabilidad." in duplicate.get_data(as_text=True)


def test_templates_are_for_managers_and_administrators_only(app, centre):
    assert staff_client(app, "staff@acme.test").get("/acme/certificates/templates/").status_code == 403
    assert staff_client(app, "manager@acme.test").get("/acme/certificates/templates/").status_code == 200
    assert staff_client(app, "admin@acme.test").get("/acme/certificates/templates/").status_code == 200


def test_staff_request_approve_and_see_only_the_clients_of_their_centre(app, centre):
    template = make_template(app, centre.tenant)
    browser = staff_client(app, "staff@acme.test")
    response = browser.post(f"/acme/certificates/clients/{centre.client}/request", data={"template": template})
    assert response.status_code == 302
    tab = browser.get(f"/acme/clients/{centre.client}?tab=certificates").get_data(as_text=True)
    assert "Medical certificate" in tab and "Missing client information" in tab
    assert (
        browser.post(
            f"/acme/certificates/clients/{centre.other_client}/request", data={"template": template}
        ).status_code
        == 404
    )
    theirs = make_request(app, centre.tenant, centre.other_client, template)
    for path in (f"/acme/certificates/{theirs}", f"/acme/certificates/{theirs}/edit"):
        assert browser.get(path).status_code == 404
    assert browser.post(f"/acme/certificates/{theirs}/delete").status_code == 404


def test_the_list_is_searched_by_client_and_filtered_by_state_template_and_centre(app, factory, centre):
    medical = make_template(app, centre.tenant)
    insurance = make_template(app, centre.tenant, "Insurance policy")
    alamo = factory.client(centre.tenant, "Construcciones Álamo", groups=[centre.group], email="obra@alamo.test")
    ids = {
        "north medical": make_request(app, centre.tenant, centre.client, medical),
        "north insurance": make_request(app, centre.tenant, centre.client, insurance),
        "south medical": make_request(app, centre.tenant, centre.other_client, medical),
        "álamo medical": make_request(app, centre.tenant, alamo, medical),
    }
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, ids["álamo medical"], date(2026, 12, 31))
    browser = staff_client(app, "admin@acme.test")

    def listed(**query) -> set[str]:
        page = browser.get("/acme/certificates/", query_string=query)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        return {name for name, certificate_id in ids.items() if f"/acme/certificates/{certificate_id}" in text}

    assert listed() == set(ids)
    assert listed(q="alamo") == {"álamo medical"}, "accents and case do not matter"
    assert listed(q="obra@alamo") == {"álamo medical"}
    assert listed(q="NORTHERN") == {"north medical", "north insurance"}
    assert listed(q="nobody at all") == set()
    assert listed(template=insurance) == {"north insurance"}
    assert listed(status="pending_approval") == {"álamo medical"}
    assert listed(centre=centre.other_group) == {"south medical"}
    assert listed(centre=centre.group, template=medical) == {"north medical", "álamo medical"}
    page = browser.get("/acme/certificates/", query_string={"q": "alamo", "centre": centre.group}).get_data(
        as_text=True
    )
    assert 'value="alamo"' in page and f'<option value="{centre.group}" selected>' in page

    staff = staff_client(app, "staff@acme.test")
    text = staff.get("/acme/certificates/", query_string={"centre": centre.other_group}).get_data(as_text=True)
    assert f"/acme/certificates/{ids['south medical']}" not in text, "a centre filter never widens what one sees"


def test_the_centre_uploads_for_the_client_then_approves(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    browser = staff_client(app, "staff@acme.test")
    response = browser.post(
        f"/acme/certificates/{certificate}/edit",
        data={
            "file": (io.BytesIO(pdf_bytes()), "seguro.pdf"),
            "validity_date": "2030-12-31",
            "notes": "Original seen",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = browser.get(f"/acme/certificates/{certificate}").get_data(as_text=True)
    assert "Pending approval" in page and "by the centre" in page and "Original seen" in page
    browser.post(f"/acme/certificates/{certificate}/approve")
    assert state(app, centre.tenant, certificate)["status"] == "approved"
    page = browser.get(f"/acme/certificates/{certificate}").get_data(as_text=True)
    assert f'/acme/certificates/{certificate}/edit"' not in page, "an approved certificate offers no Edit"
    assert browser.get(f"/acme/certificates/{certificate}/edit").status_code == 302
    download = browser.get(f"/acme/certificates/{certificate}/file")
    assert download.mimetype == "application/pdf" and download.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in download.headers["Content-Disposition"]


def test_notes_are_limited_to_400_characters(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    page = (
        staff_client(app)
        .post(
            f"/acme/certificates/{certificate}/edit",
            data={
                "validity_date": "2030-01-01",
                "notes": "x" * 401,
                "file": (io.BytesIO(pdf_bytes()), "a.pdf"),
            },
            content_type="multipart/form-data",
        )
        .get_data(as_text=True)
    )
    assert "400" in page and state(app, centre.tenant, certificate)["status"] == "missing_info"


def test_rejecting_from_the_page_needs_a_reason(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
    browser = staff_client(app)
    page = browser.post(
        f"/acme/certificates/{certificate}/reject", data={"reason": ""}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Write why it is rejected" in page
    browser.post(f"/acme/certificates/{certificate}/reject", data={"reason": "Illegible"})
    assert state(app, centre.tenant, certificate)["rejection_reason"] == "Illegible"


def test_deleting_moves_to_the_bin_purges_the_file_and_hides_it_everywhere(app, centre):
    from core.extensions import db
    from core.files.models import StoredFile

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2030, 12, 31))
    browser = staff_client(app)
    assert browser.post(f"/acme/certificates/{certificate}/delete").status_code == 302
    assert state(app, centre.tenant, certificate)["deleted_at"] is not None
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(StoredFile)) == 0
    assert browser.get(f"/acme/certificates/{certificate}").status_code == 404
    assert "Medical certificate" not in browser.get("/acme/certificates/").get_data(as_text=True).split("<tbody>")[1]
    assert (
        "Medical certificate"
        not in browser.get(f"/acme/clients/{centre.client}?tab=certificates")
        .get_data(as_text=True)
        .split('class="client-tab"')[1]
        .split("request-certificate")[0]
    )
    export = browser.get("/acme/certificates/report.csv").get_data(as_text=True)
    assert "Pending approval" not in export and "Missing" not in export
    assert "Medical certificate" in browser.get("/acme/certificates/bin").get_data(as_text=True)
    assert '<p class="display-6 mb-0">0</p>' in browser.get("/acme/").get_data(as_text=True)


def test_generate_asks_with_the_count_then_creates_once(app, centre, run_jobs):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    make_request(app, centre.tenant, centre.client, template)
    browser = staff_client(app, "manager@acme.test")
    counted = browser.post(
        f"/acme/certificates/templates/{template}/generate",
        data={"groups": [str(centre.group), str(centre.other_group)]},
    )
    page = counted.get_data(as_text=True)
    assert "1 certificate will be created." in page and "cannot be undone" in page
    started = browser.post(
        f"/acme/certificates/templates/{template}/generate",
        data={"groups": [str(centre.group), str(centre.other_group)], "confirm": "1"},
    )
    assert "/acme/jobs/" in started.location
    run_jobs()
    again = browser.post(
        f"/acme/certificates/templates/{template}/generate",
        data={"groups": [str(centre.group), str(centre.other_group)]},
    )
    assert "0 certificates will be created." in again.get_data(as_text=True)
    job = browser.get(started.location).get_data(as_text=True)
    assert "Finished" in job
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 2


def test_a_new_client_gets_the_automatic_requests(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    make_template(app, centre.tenant, "Automatic", auto_for_new_clients=True)
    make_template(app, centre.tenant, "Manual")
    browser = staff_client(app)
    response = browser.post(
        "/acme/clients/new",
        data={
            "kind": "company",
            "country": "ES",
            "tax_id": "B12345674",
            "company_name": "Nueva SL",
            "groups": [str(centre.group)],
        },
    )
    client_id = int(response.location.rsplit("/", 1)[1])
    with acting(app, centre.tenant):
        names = db.session.scalars(select(Certificate.name).where(Certificate.client_id == client_id)).all()
    assert names == ["Automatic"]


def test_clients_imported_from_a_file_get_the_automatic_requests_once(app, centre, run_jobs):
    from core.clients.models import Client
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    make_template(app, centre.tenant, "Automatic", auto_for_new_clients=True)
    browser = staff_client(app)
    data = "NIF;Tipo;Nombre;Apellidos;Razón social\n12345678Z;persona;Ana;García;\nB12345674;empresa;;;Obras SL\n"

    def imported() -> dict[str, list[str]]:
        response = browser.post(
            "/acme/clients/import",
            data={"file": (io.BytesIO(data.encode()), "clientes.csv"), "group": str(centre.group)},
            content_type="multipart/form-data",
        )
        assert response.status_code == 302
        run_jobs()
        with acting(app, centre.tenant):
            rows = db.session.execute(
                select(Client.tax_id, Certificate.name).join(Certificate, Certificate.client_id == Client.id)
            ).all()
        found: dict[str, list[str]] = {}
        for tax_id, name in rows:
            found.setdefault(tax_id, []).append(name)
        return found

    assert imported() == {"12345678Z": ["Automatic"], "B12345674": ["Automatic"]}
    assert imported() == {"12345678Z": ["Automatic"], "B12345674": ["Automatic"]}, "re-importing creates nothing"


def test_the_report_shows_who_is_missing_what_and_exports_it(app, centre):
    first = make_template(app, centre.tenant, "Insurance")
    make_template(app, centre.tenant, "Medical")
    make_request(app, centre.tenant, centre.client, first)
    browser = staff_client(app, "manager@acme.test")
    page = browser.get("/acme/certificates/report").get_data(as_text=True)
    table = page.split('id="report"')[1]
    assert "Northern Client" in table and "Southern Client" in table and "Missing client information" in table
    missing = browser.get("/acme/certificates/report?status=missing_info").get_data(as_text=True)
    assert "Southern Client" not in missing.split('id="report"')[1]
    not_requested = browser.get("/acme/certificates/report?status=none").get_data(as_text=True)
    assert "Southern Client" in not_requested.split('id="report"')[1]
    by_centre = browser.get(f"/acme/certificates/report?group={centre.other_group}").get_data(as_text=True)
    assert "Northern Client" not in by_centre.split('id="report"')[1]
    rows = list(
        csv.reader(io.StringIO(browser.get("/acme/certificates/report.csv").get_data(as_text=True).lstrip("\ufeff")))
    )
    assert rows[0] == ["tax_id", "client", "email", "Insurance", "Medical"]
    assert ["Missing client information", ""] in [r[3:] for r in rows[1:]]


def test_the_dashboard_counts_pending_expiring_and_expired(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
    page = staff_client(app, "staff@acme.test").get("/acme/").get_data(as_text=True)
    assert "Certificates pending approval" in page and "Certificates expiring soon" in page
    assert 'href="/acme/certificates/?status=pending_approval"' in page
