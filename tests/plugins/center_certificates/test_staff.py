"""The staff's side: templates, requests from the client page, approval, the bin, bulk generation,
the report, widgets, and who may do what."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import time_machine
from sqlalchemy import func, select

from tests.plugins.center_certificates.conftest import (
    acting,
    approve,
    make_request,
    make_template,
    pdf_bytes,
    staff_client,
    state,
    sweep,
    upload,
)

SPRING = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def widget_count(page: str, status: str) -> int:
    """The number the dashboard widget of ``status`` shows."""
    import re

    match = re.search(rf'data-widget="certificates-{status}">\s*<p class="display-6 mb-0">(\d+)</p>', page)
    assert match, f"no widget for {status}"
    return int(match.group(1))


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
    listing = browser.get("/acme/certificates/templates/").get_data(as_text=True)
    assert f'href="/acme/certificates/templates/{template_id}/clone"' in listing
    duplicate = browser.post(
        "/acme/certificates/templates/new", data={"name": "seguro de responsabilidad", "lead_days": "15"}
    )
    assert "There is already a template called seguro de responsabilidad." in duplicate.get_data(as_text=True)


def test_a_manager_edits_a_template_and_what_was_asked_keeps_its_own_terms(app, centre):
    from core.api import history
    from core.extensions import db
    from plugins.center_certificates.models import Certificate, CertificateTemplate

    template = make_template(app, centre.tenant, "Seguro", lead_days=15)
    make_template(app, centre.tenant, "Medical")
    asked = make_request(app, centre.tenant, centre.client, template)
    browser = staff_client(app, "manager@acme.test")
    url = f"/acme/certificates/templates/{template}"
    form = browser.get(url).get_data(as_text=True)
    assert 'value="Seguro"' in form and 'value="15"' in form and "does not change the certificates already" in form
    saved = browser.post(
        url,
        data={
            "name": "Seguro de responsabilidad",
            "description": "Póliza en vigor",
            "lead_days": "30",
            "renew_on_expiry": "y",
            "active": "y",
        },
    )
    assert saved.status_code == 302 and saved.location.endswith(url)
    with acting(app, centre.tenant):
        row = db.session.get(CertificateTemplate, template)
        assert (row.name, row.description, row.lead_days, row.renew_on_expiry, row.auto_for_new_clients) == (
            "Seguro de responsabilidad",
            "Póliza en vigor",
            30,
            True,
            False,
        )
        old = db.session.get(Certificate, asked)
        assert (old.name, old.lead_days) == ("Seguro", 15), "what was asked keeps the terms it was asked with"
        (edited,) = [e for e in history("certificate_template", template) if e.action == "update"]
        assert edited.changes["name"] == ["Seguro", "Seguro de responsabilidad"]
        assert edited.changes["lead_days"] == [15, 30] and edited.actor_name == "Maria Manager"
    listing = browser.get("/acme/certificates/templates/").get_data(as_text=True)
    assert "Seguro de responsabilidad" in listing and "30 days before" in listing and "again when it expires" in listing
    taken = browser.post(url, data={"name": "medical", "lead_days": "30", "active": "y"})
    assert taken.status_code == 200 and "There is already a template called medical." in taken.get_data(as_text=True)
    kept = browser.post(url, data={"name": "Seguro de responsabilidad", "lead_days": "30"})
    assert kept.status_code == 302, "its own name is not taken by itself"
    with acting(app, centre.tenant):
        assert db.session.get(CertificateTemplate, template).active is False, "unticked: no longer in use"
    tab = browser.get(f"/acme/clients/{centre.other_client}?tab=certificates").get_data(as_text=True)
    assert "Seguro de responsabilidad" not in tab.split('id="request-certificate"')[1], "not offered once out of use"


def test_the_centre_hands_in_the_next_document_of_an_expiring_certificate(app, centre):
    template = make_template(app, centre.tenant, lead_days=10)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 15))
        approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime(2026, 4, 1, 12, tzinfo=UTC), tick=False):
        browser = staff_client(app, "staff@acme.test")
        assert 'id="hand-in-next"' not in browser.get(f"/acme/certificates/{certificate}").get_data(as_text=True)
        refused = browser.get(f"/acme/certificates/{certificate}/next")
        assert refused.status_code == 302, "only while it expires soon"
    with time_machine.travel(datetime(2026, 4, 6, 12, tzinfo=UTC), tick=False):
        browser = staff_client(app, "staff@acme.test")
        assert sweep(app, centre.tenant)["expiring"] == 1
        page = browser.get(f"/acme/certificates/{certificate}").get_data(as_text=True)
        assert 'id="hand-in-next"' in page and f"/acme/certificates/{certificate}/next" in page
        assert 'id="next-form"' in browser.get(f"/acme/certificates/{certificate}/next").get_data(as_text=True)
        too_early = browser.post(
            f"/acme/certificates/{certificate}/next",
            data={"file": (io.BytesIO(pdf_bytes()), "next.pdf"), "validity_date": "2026-04-10"},
            content_type="multipart/form-data",
        )
        assert too_early.status_code == 200 and "must be valid after the current one" in too_early.get_data(
            as_text=True
        )
        response = browser.post(
            f"/acme/certificates/{certificate}/next",
            data={"file": (io.BytesIO(pdf_bytes()), "next.pdf"), "validity_date": "2027-04-15", "notes": "Seen"},
            content_type="multipart/form-data",
        )
        assert response.status_code == 302
        following = int(response.location.rsplit("/", 1)[1])
        page = browser.get(response.location).get_data(as_text=True)
        assert "Pending approval" in page and "by the centre" in page and 'id="previous-document"' in page
        current = browser.get(f"/acme/certificates/{certificate}").get_data(as_text=True)
        assert 'id="hand-in-next"' not in current and f'href="/acme/certificates/{following}"' in current
        assert browser.get(f"/acme/certificates/{certificate}/next").location.endswith(f"/{following}")
        tab = browser.get(f"/acme/clients/{centre.client}?tab=certificates").get_data(as_text=True)
        assert f'data-certificate="{certificate}"' in tab and f'data-certificate="{following}"' in tab
        browser.post(f"/acme/certificates/{following}/approve")
    assert state(app, centre.tenant, certificate)["archived_at"] is not None, "the expiring one went to the history"
    browser = staff_client(app, "staff@acme.test")
    tab = browser.get(f"/acme/clients/{centre.client}?tab=certificates").get_data(as_text=True)
    current_list = tab.split('class="client-tab"')[1].split("</table>")[0]
    assert f'data-certificate="{certificate}"' not in current_list and f'data-certificate="{following}"' in current_list
    history = browser.get(f"/acme/certificates/clients/{centre.client}/history").get_data(as_text=True)
    assert f'data-certificate="{certificate}"' in history


def test_an_expired_certificate_not_renewed_stays_in_the_client_tab_and_can_be_asked_again(app, centre):
    template = make_template(app, centre.tenant, lead_days=10)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 15))
        approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime(2026, 4, 16, 12, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant) == {"expired": 1, "expiring": 0, "renewed": 0}
    browser = staff_client(app, "staff@acme.test")
    tab = browser.get(f"/acme/clients/{centre.client}?tab=certificates").get_data(as_text=True)
    current_list = tab.split('class="client-tab"')[1].split("</table>")[0]
    row = current_list.split(f'data-certificate="{certificate}"')[1].split("</tr>")[0]
    assert 'data-status="expired"' in row, "Caducado, among the current ones"
    assert 'id="request-certificate"' in tab and f'<option value="{template}">' in tab, "it can be asked again"
    assert "(0)" in tab.split("See history")[1][:20], "nothing in the history"


def test_a_template_may_start_expiring_soon_0_days_before_but_not_without_a_number(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import CertificateTemplate

    browser = staff_client(app, "manager@acme.test")
    saved = browser.post("/acme/certificates/templates/new", data={"name": "Same day", "lead_days": "0"})
    assert saved.status_code == 302
    with acting(app, centre.tenant):
        assert (
            db.session.scalar(select(CertificateTemplate.lead_days).where(CertificateTemplate.name == "Same day")) == 0
        )
    empty = browser.post("/acme/certificates/templates/new", data={"name": "No number", "lead_days": ""})
    assert empty.status_code == 200 and "This field is required." in empty.get_data(as_text=True)
    too_many = browser.post("/acme/certificates/templates/new", data={"name": "Too many", "lead_days": "366"})
    assert "Number must be between 0 and 365." in too_many.get_data(as_text=True)


def test_cloning_opens_a_filled_in_form_and_saves_only_when_sent(app, factory, centre):
    from core.auth.models import User
    from core.extensions import db
    from plugins.center_certificates.models import CertificateTemplate

    source = make_template(
        app,
        centre.tenant,
        "Seguro",
        description="Póliza en vigor",
        lead_days=30,
        auto_for_new_clients=True,
        renew_on_expiry=True,
    )

    def names() -> list[str]:
        with acting(app, centre.tenant):
            return list(db.session.scalars(select(CertificateTemplate.name).order_by(CertificateTemplate.id)))

    browser = staff_client(app, "manager@acme.test")
    url = f"/acme/certificates/templates/{source}/clone"
    form = browser.get(url)
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'value="Seguro (copy)"' in page and "Póliza en vigor" in page and 'value="30"' in page
    for option in ("auto_for_new_clients", "renew_on_expiry", "active"):
        assert re.search(rf'<input checked [^>]*id="{option}"', page), f"{option} is carried over"
    assert names() == ["Seguro"], "opening the copy (and then Cancelar) leaves no stray template"

    saved = browser.post(
        url,
        data={"name": "Seguro (copy)", "description": "Póliza en vigor", "lead_days": "30", "renew_on_expiry": "y"},
    )
    assert saved.status_code == 302
    with acting(app, centre.tenant):
        copy = db.session.scalar(select(CertificateTemplate).where(CertificateTemplate.name == "Seguro (copy)"))
        assert (copy.lead_days, copy.renew_on_expiry, copy.auto_for_new_clients) == (30, True, False)
    assert names() == ["Seguro", "Seguro (copy)"]
    assert 'value="Seguro (copy) 2"' in browser.get(url).get_data(as_text=True), "a name not yet taken"

    with acting(app, centre.tenant):
        db.session.get(User, centre.manager).locale = "es"
        db.session.commit()
    assert 'value="Seguro (copia)"' in staff_client(app, "manager@acme.test").get(url).get_data(as_text=True)


def test_templates_are_for_managers_and_administrators_only(app, centre):
    assert staff_client(app, "staff@acme.test").get("/acme/certificates/templates/").status_code == 403
    assert staff_client(app, "manager@acme.test").get("/acme/certificates/templates/").status_code == 200
    assert staff_client(app, "admin@acme.test").get("/acme/certificates/templates/").status_code == 200


def test_the_staff_permission_is_named_as_the_centres_know_it(app, centre):
    page = staff_client(app, "admin@acme.test").get("/acme/roles/new").get_data(as_text=True)
    label = "Access to manage the profiles (certificates) of the clients of the indicated centres"
    assert label in page
    assert re.search(r'value="center_certificates\.certificates:manage"', page), "the key stays"


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
    # The help text says "At most 400 characters." too: look for the error under the field.
    assert re.search(
        r'id="notes"[^>]*>\s*x{401}</textarea>\s*<div class="invalid-feedback">'
        r"Field cannot be longer than 400 characters\.</div>",
        page,
    )
    assert state(app, centre.tenant, certificate)["status"] == "missing_info"


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
    assert widget_count(browser.get("/acme/").get_data(as_text=True), "pending_approval") == 1
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
    assert widget_count(browser.get("/acme/").get_data(as_text=True), "pending_approval") == 0


def _confirmation(page: str) -> dict[str, str]:
    """The hidden fields the confirmation carries: what it was counted for."""
    import re

    return dict(re.findall(r'<input id="(counted\w*)" name="\1" type="hidden" value="([^"]*)">', page))


def test_generate_asks_with_the_count_then_creates_once(app, centre, run_jobs):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    make_request(app, centre.tenant, centre.client, template)
    browser = staff_client(app, "manager@acme.test")
    both = [str(centre.group), str(centre.other_group)]
    counted = browser.post(f"/acme/certificates/templates/{template}/generate", data={"groups": both})
    page = counted.get_data(as_text=True)
    assert "1 certificate will be created." in page and "cannot be undone" in page
    carried = _confirmation(page)
    assert carried == {
        "counted_scope": "centres",
        "counted_groups": ",".join(sorted(both, key=int)),
        "counted": "1",
        "counted_notices": "1",
    }
    started = browser.post(
        f"/acme/certificates/templates/{template}/generate", data={"groups": both, "confirm": "1", **carried}
    )
    assert "/acme/jobs/" in started.location
    run_jobs()
    again = browser.post(f"/acme/certificates/templates/{template}/generate", data={"groups": both})
    assert "0 certificates will be created." in again.get_data(as_text=True)
    job = browser.get(started.location).get_data(as_text=True)
    assert "Finished" in job
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 2


def test_confirming_other_centres_than_were_counted_counts_again_instead_of_creating(app, factory, centre):
    from core.extensions import db
    from core.jobs.models import JobRun
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    browser = staff_client(app, "manager@acme.test")
    url = f"/acme/certificates/templates/{template}/generate"
    north = browser.post(url, data={"groups": [str(centre.group)]}).get_data(as_text=True)
    assert "1 certificate will be created." in north
    # South is ticked after counting, and the confirmation (which said 1) is pressed.
    both = [str(centre.group), str(centre.other_group)]
    answer = browser.post(url, data={"groups": both, "confirm": "1", **_confirmation(north)})
    assert answer.status_code == 200, "nothing is started"
    page = answer.get_data(as_text=True)
    assert "The choice or the number has changed since it was counted" in page
    assert "2 certificates will be created." in page
    assert _confirmation(page) == {
        "counted_scope": "centres",
        "counted_groups": ",".join(sorted(both, key=int)),
        "counted": "2",
        "counted_notices": "2",
    }

    # The same centres, but a client joined North since the count: the number shown would be wrong.
    factory.client(centre.tenant, "Late Client", groups=[centre.group])
    late = browser.post(url, data={"groups": both, "confirm": "1", **_confirmation(page)}).get_data(as_text=True)
    assert "3 certificates will be created." in late
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(JobRun)) == 0
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 0
    started = browser.post(url, data={"groups": both, "confirm": "1", **_confirmation(late)})
    assert "/acme/jobs/" in started.location


def test_generate_for_every_active_client_reaches_clients_in_no_centre(app, factory, centre, run_jobs):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    loner = factory.client(centre.tenant, "Client Of No Centre")
    factory.client(centre.tenant, "Gone Client", active=False)
    browser = staff_client(app, "manager@acme.test")
    url = f"/acme/certificates/templates/{template}/generate"
    page = browser.get(url).get_data(as_text=True)
    assert 'id="generate-scope"' in page and "Every active client, also those in no centre" in page
    counted = browser.post(url, data={"scope": "all"}).get_data(as_text=True)
    assert "3 certificates will be created." in counted, "North, South and the client of no centre"
    assert _confirmation(counted) == {
        "counted_scope": "all",
        "counted_groups": "",
        "counted": "3",
        "counted_notices": "2",
    }, "the client of no centre has no e-mail: 2 could be told"
    started = browser.post(url, data={"scope": "all", "confirm": "1", **_confirmation(counted)})
    assert "/acme/jobs/" in started.location
    run_jobs()
    with acting(app, centre.tenant):
        clients = set(db.session.scalars(select(Certificate.client_id).where(Certificate.template_id == template)))
    assert clients == {centre.client, centre.other_client, loner}


def test_only_who_sees_every_client_may_generate_for_all_of_them(app, factory, centre):
    from core.extensions import db
    from core.jobs.models import JobRun
    from plugins.center_certificates import TEMPLATES

    template = make_template(app, centre.tenant)
    factory.user(centre.tenant, "templater@acme.test", permissions=[TEMPLATES], groups=[centre.group])
    browser = staff_client(app, "templater@acme.test")
    url = f"/acme/certificates/templates/{template}/generate"
    page = browser.get(url).get_data(as_text=True)
    assert 'id="generate-scope"' not in page
    assert "North" in page and "South" not in page, "only one's own centres are offered"
    forced = browser.post(
        url, data={"scope": "all", "confirm": "1", "counted_scope": "all", "counted_groups": "", "counted": "2"}
    ).get_data(as_text=True)
    assert "2 certificates will be created" not in forced and "Choose at least one centre." in forced
    south = browser.post(url, data={"groups": [str(centre.other_group)]}).get_data(as_text=True)
    assert "certificate will be created" not in south and "certificates will be created" not in south
    assert "You can only generate certificates for the clients of your centres." in south
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(JobRun)) == 0


def test_generation_runs_in_keyset_batches_with_real_progress_and_never_twice(app, factory, centre, run_jobs):
    from sqlalchemy import event

    from core.extensions import db
    from core.jobs.models import JobRun
    from core.jobs.services import enqueue
    from plugins.center_certificates.models import Certificate
    from tenants.models import Tenant

    template = make_template(app, centre.tenant)
    for n in range(5):
        factory.client(centre.tenant, f"North {n}", groups=[centre.group])
    make_request(app, centre.tenant, centre.client, template)  # already asked: left out

    def run(batch: int) -> tuple[dict, list[int], int]:
        with app.app_context():
            run_id = enqueue(
                db.session.get(Tenant, centre.tenant.id),
                "center_certificates.generate",
                {"template_id": template, "group_ids": [centre.group], "batch": batch},
            ).id
            engine = db.engine
        progress, inserts = [], []

        def seen(target, value, old, initiator):
            if target.id == run_id:
                progress.append(value)

        def statement(connection, cursor, sql, *args):
            # On PostgreSQL the INSERT is inside the statement that also writes its audit events.
            if "INSERT INTO CENTER_CERTIFICATES_CERTIFICATES" in sql.upper():
                inserts.append(sql)

        event.listen(JobRun.progress, "set", seen)
        event.listen(engine, "before_cursor_execute", statement)
        try:
            run_jobs()
        finally:
            event.remove(JobRun.progress, "set", seen)
            event.remove(engine, "before_cursor_execute", statement)
        with acting(app, centre.tenant):
            return db.session.get(JobRun, run_id).result, progress, len(inserts)

    result, progress, inserts = run(batch=2)
    assert result["created"] == 5 and result["batches"] == 3 and inserts == 3, "2 + 2 + 1, one statement each"
    assert progress == [0, 40, 80, 100, 100], "the page moves as each batch is written (and 100 when finished)"
    again, _progress, _inserts = run(batch=2)
    assert again["created"] == 0, "a repeated (or retried) run creates nothing new"
    with acting(app, centre.tenant):
        per_client = db.session.execute(
            select(Certificate.client_id, func.count()).where(Certificate.is_open).group_by(Certificate.client_id)
        ).all()
    assert len(per_client) == 6 and {count for _client, count in per_client} == {1}


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


def test_expired_counts_and_lists_only_what_was_not_renewed(app, centre):
    renewing = make_template(app, centre.tenant, "Renewing", renew_on_expiry=True)
    plain = make_template(app, centre.tenant, "Plain")
    renewed = make_request(app, centre.tenant, centre.client, renewing)
    lapsed = make_request(app, centre.tenant, centre.other_client, plain)
    with time_machine.travel(SPRING, tick=False):
        for certificate in (renewed, lapsed):
            upload(app, centre.tenant, certificate, date(2026, 4, 1))
            approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime(2026, 4, 5, 9, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant) == {"expired": 2, "expiring": 0, "renewed": 1}
    assert state(app, centre.tenant, renewed)["status"] == "expired"
    browser = staff_client(app, "admin@acme.test")
    dashboard = browser.get("/acme/").get_data(as_text=True)
    assert widget_count(dashboard, "expired") == 1, "the renewed one is history, not news"
    listed = browser.get("/acme/certificates/?status=expired").get_data(as_text=True).split("<tbody>")[1]
    assert f"/acme/certificates/{lapsed}" in listed and f"/acme/certificates/{renewed}" not in listed


def test_the_centre_filter_offers_only_ones_own_centres_unless_one_sees_every_client(app, centre):
    def centres(email: str) -> set[str]:
        page = staff_client(app, email).get("/acme/certificates/").get_data(as_text=True)
        dropdown = page.split('name="centre"')[1].split("</select>")[0]
        return set(re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', dropdown))

    assert centres("staff@acme.test") == {"North"}
    assert centres("admin@acme.test") == {"North", "South"}


def test_the_client_tab_says_why_nothing_can_be_requested(app, centre):
    browser = staff_client(app, "staff@acme.test")

    def tab() -> str:
        return browser.get(f"/acme/clients/{centre.client}?tab=certificates").get_data(as_text=True)

    assert "There is no certificate template in use yet." in tab()
    template = make_template(app, centre.tenant)
    assert 'id="request-certificate"' in tab()
    make_request(app, centre.tenant, centre.client, template)
    page = tab()
    assert 'id="request-certificate"' not in page
    assert "This client already has an open certificate of every template in use." in page
    assert "There is no certificate template" not in page


def test_the_lists_filters_offer_a_template_or_centre_as_soon_as_it_exists(app, factory, centre):
    """The choices of the filters and of a client's request form are kept between pages until the
    tenant's data changes."""
    make_template(app, centre.tenant, "Medical")
    admin, staff = staff_client(app), staff_client(app, "staff@acme.test")
    tab = f"/acme/clients/{centre.client}?tab=certificates"
    for browser in (admin, staff):
        browser.get("/acme/certificates/")
    assert ">Insurance</option>" not in admin.get(tab).get_data(as_text=True)
    make_template(app, centre.tenant, "Insurance")
    assert ">Insurance</option>" in admin.get(tab).get_data(as_text=True), "a client's page asks for it at once"
    factory.group(centre.tenant, "East", [centre.staff])
    factory.group(centre.tenant, "West")
    listing = admin.get("/acme/certificates/").get_data(as_text=True)
    assert ">Insurance</option>" in listing and ">East</option>" in listing and ">West</option>" in listing
    mine = staff.get("/acme/certificates/").get_data(as_text=True)
    assert ">Insurance</option>" in mine and ">East</option>" in mine
    assert ">West</option>" not in mine and ">South</option>" not in mine, "only their own centres"
    report = admin.get("/acme/certificates/report").get_data(as_text=True)
    assert ">East</option>" in report and ">West</option>" in report
