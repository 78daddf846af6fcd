"""The client's side: Perfil → Certificados in the client portal, uploads, and who sees what."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from tests.conftest import PASSWORD, login
from tests.core.files import samples
from tests.plugins.center_certificates.conftest import acting, approve, make_request, make_template, state, upload

FUTURE = (date.today() + timedelta(days=200)).isoformat()
NOISY_PNG = samples.noisy_png()


@pytest.fixture
def portal(app, centre, factory):
    """The northern client's portal account, logged in."""
    factory.portal_user(centre.tenant, centre.client, "north@client.test")
    factory.portal_user(centre.tenant, centre.other_client, "south@client.test")
    browser = app.test_client()
    login(browser, "acme", "north@client.test", PASSWORD)
    return browser


def _send(browser, certificate: int, data: bytes, filename: str, validity: str = FUTURE, notes: str = ""):
    return browser.post(
        f"/acme/portal/certificates/{certificate}",
        data={
            "file": (io.BytesIO(data), filename),
            "validity_date": validity,
            "notes": notes,
        },
        content_type="multipart/form-data",
    )


def test_the_client_sees_current_certificates_and_history(app, centre, portal):
    template = make_template(app, centre.tenant)
    old_template = make_template(app, centre.tenant, "Insurance")
    current = make_request(app, centre.tenant, centre.client, template)
    archived = make_request(app, centre.tenant, centre.client, old_template)
    upload(app, centre.tenant, archived, date.today() + timedelta(days=300))
    approve(app, centre.tenant, archived)
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import archive

    with acting(app, centre.tenant):
        archive(db.session.get(Certificate, archived))
    page = portal.get("/acme/portal/certificates/").get_data(as_text=True)
    current_block, history_block = page.split('id="current-certificates"')[1].split('id="certificate-history"')
    assert f"/acme/portal/certificates/{current}" in current_block and "Missing client information" in current_block
    assert f"/acme/portal/certificates/{archived}" in history_block and "Archived" in history_block
    assert 'href="/acme/portal/certificates/"' in portal.get("/acme/portal/").get_data(as_text=True)


def test_a_client_sees_only_their_own_certificates(app, centre, portal):
    template = make_template(app, centre.tenant)
    theirs = make_request(app, centre.tenant, centre.other_client, template)
    assert "Medical" not in portal.get("/acme/portal/certificates/").get_data(as_text=True)
    for path in (
        f"/acme/portal/certificates/{theirs}",
        f"/acme/portal/certificates/{theirs}/file",
        f"/acme/portal/certificates/{theirs}/thumbnail",
    ):
        assert portal.get(path).status_code == 404
    assert _send(portal, theirs, samples.pdf(), "x.pdf").status_code == 404
    assert state(app, centre.tenant, theirs)["status"] == "missing_info"


def test_the_client_uploads_a_pdf_with_its_date_and_notes(app, centre, portal):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    response = _send(portal, certificate, samples.pdf(), "certificado.pdf", notes="Renewed in March")
    assert response.status_code == 302
    after = state(app, centre.tenant, certificate)
    assert after["status"] == "pending_approval" and after["validity_date"].isoformat() == FUTURE
    page = portal.get(f"/acme/portal/certificates/{certificate}").get_data(as_text=True)
    assert "Pending approval" in page and "Correct the document" in page, "it can be corrected until approved"
    download = portal.get(f"/acme/portal/certificates/{certificate}/file")
    assert download.mimetype == "application/pdf"


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [(samples.jpeg(), "FOTO.JPG", "image/jpeg"), (samples.png(), "escaneo.png", "image/png")],
    ids=["jpg", "png"],
)
def test_a_plain_photo_is_accepted_and_shown_as_a_thumbnail(app, centre, portal, data, filename, content_type):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    assert _send(portal, certificate, data, filename).status_code == 302
    assert state(app, centre.tenant, certificate)["status"] == "pending_approval"
    assert portal.get(f"/acme/portal/certificates/{certificate}/file").mimetype == content_type
    thumb = portal.get(f"/acme/portal/certificates/{certificate}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype.startswith("image/")
    staff = app.test_client()
    login(staff, "acme", "staff@acme.test")
    page = staff.get(f"/acme/certificates/{certificate}").get_data(as_text=True)
    assert f"({content_type})" in page and f"/acme/certificates/{certificate}/thumbnail" in page


def test_the_client_corrects_an_upload_until_it_is_approved(app, centre, portal):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    assert _send(portal, certificate, samples.pdf(), "wrong.pdf", notes="First try").status_code == 302
    first = state(app, centre.tenant, certificate)
    later = (date.today() + timedelta(days=300)).isoformat()
    assert (
        _send(portal, certificate, samples.jpeg(), "right.jpg", validity=later, notes="The right one").status_code
        == 302
    )
    corrected = state(app, centre.tenant, certificate)
    assert corrected["status"] == "pending_approval" and corrected["validity_date"].isoformat() == later
    assert corrected["file_id"] != first["file_id"]
    assert portal.get(f"/acme/portal/certificates/{certificate}/file").mimetype == "image/jpeg"
    approve(app, centre.tenant, certificate)
    page = portal.get(f"/acme/portal/certificates/{certificate}").get_data(as_text=True)
    assert 'id="upload-form"' not in page, "approval freezes it"
    refused = _send(portal, certificate, samples.pdf(), "late.pdf")
    assert "can no longer be changed" in portal.get(refused.location).get_data(as_text=True)
    assert state(app, centre.tenant, certificate)["file_id"] == corrected["file_id"]


def test_an_expired_certificate_stays_among_the_current_ones(app, centre, portal):
    from datetime import UTC, datetime

    import time_machine

    from tests.plugins.center_certificates.conftest import sweep

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    upload(app, centre.tenant, certificate, date.today() + timedelta(days=20))
    approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=22), tick=False):
        assert sweep(app, centre.tenant)["expired"] == 1
    page = portal.get("/acme/portal/certificates/").get_data(as_text=True)
    current_block, history_block = page.split('id="current-certificates"')[1].split('id="certificate-history"')
    assert f"/acme/portal/certificates/{certificate}" in current_block and 'data-status="expired"' in current_block
    assert f"/acme/portal/certificates/{certificate}" not in history_block


def test_the_client_hands_in_the_next_document_while_it_expires_soon(app, centre, portal, outbox):
    from plugins.center_certificates.services import notify

    template = make_template(app, centre.tenant, lead_days=15)
    certificate = make_request(app, centre.tenant, centre.client, template)
    upload(app, centre.tenant, certificate, date.today() + timedelta(days=5))
    approve(app, centre.tenant, certificate)
    assert state(app, centre.tenant, certificate)["status"] == "expiring"
    index = portal.get("/acme/portal/certificates/").get_data(as_text=True)
    assert "You can hand in the next one now." in index
    page = portal.get(f"/acme/portal/certificates/{certificate}").get_data(as_text=True)
    assert "Hand in the next document" in page and 'id="upload-form"' in page
    response = _send(portal, certificate, samples.png(), "next.png", notes="Renewed")
    assert response.status_code == 302
    assert state(app, centre.tenant, certificate)["status"] == "expiring", "the current one stays as it was"
    page = portal.get(f"/acme/portal/certificates/{certificate}").get_data(as_text=True)
    assert 'id="next-document"' in page and 'id="upload-form"' not in page, "one next document, not two"
    following = int(page.split('id="next-document"><a href="/acme/portal/certificates/')[1].split('"')[0])
    after = state(app, centre.tenant, following)
    assert after["status"] == "pending_approval" and after["validity_date"].isoformat() == FUTURE
    current_block = (
        portal.get("/acme/portal/certificates/").get_data(as_text=True).split('id="current-certificates"')[1]
    )
    assert f"/acme/portal/certificates/{following}" in current_block
    assert f"/acme/portal/certificates/{certificate}" in current_block.split('id="certificate-history"')[0]
    with acting(app, centre.tenant) as tenant:
        notify(tenant)
    subjects = [m.subject for m in outbox()]
    assert subjects.count("Org acme asks you for: Medical certificate") == 1, "the next one asks for nothing"


def test_a_real_heic_photo_is_accepted_and_shown_as_a_thumbnail(app, centre, portal):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    assert _send(portal, certificate, samples.heic(), "IMG_0001.HEIC").status_code == 302
    thumb = portal.get(f"/acme/portal/certificates/{certificate}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    staff = app.test_client()
    login(staff, "acme", "staff@acme.test")
    assert staff.get(f"/acme/certificates/{certificate}/thumbnail").mimetype == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (samples.elf_program(), "photo.jpg", "it looks like an executable program"),
        (samples.jpeg() + samples.PAYLOAD, "polyglot.jpg", "hides a web page or a script"),
        (samples.png_declaring(30000, 30000), "bomb.png", "megapixels"),
        (NOISY_PNG[: len(NOISY_PNG) * 6 // 10], "truncated.png", "damaged or incomplete"),
        (samples.pdf(user_password="secret"), "locked.pdf", "protected with a password"),
    ],
    ids=["executable-renamed", "jpeg-with-html-payload", "pixel-bomb", "truncated-png", "encrypted-pdf"],
)
def test_hostile_uploads_are_refused_with_a_clear_message(app, centre, portal, data, filename, message):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    response = _send(portal, certificate, data, filename)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert state(app, centre.tenant, certificate)["status"] == "missing_info"


def test_after_a_rejection_the_client_reads_why_and_uploads_again(app, centre, portal):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import reject

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    _send(portal, certificate, samples.pdf(), "a.pdf")
    with acting(app, centre.tenant) as tenant:
        reject(tenant, db.session.get(Certificate, certificate), "Missing the doctor's signature", None)
    page = portal.get(f"/acme/portal/certificates/{certificate}").get_data(as_text=True)
    assert "Missing the doctor&#39;s signature" in page and 'id="upload-form"' in page
    assert _send(portal, certificate, samples.pdf(2), "b.pdf").status_code == 302
    assert state(app, centre.tenant, certificate)["status"] == "pending_approval"


def test_a_validity_date_is_required_and_must_not_be_past(app, centre, portal):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    page = _send(portal, certificate, samples.pdf(), "a.pdf", validity="").get_data(as_text=True)
    assert "Write the validity date" in page
    page = _send(portal, certificate, samples.pdf(), "a.pdf", validity="2020-01-01").get_data(as_text=True)
    assert "already passed" in page


def test_staff_cannot_open_the_portal_pages(app, centre, portal):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    staff = app.test_client()
    login(staff, "acme", "staff@acme.test")
    response = staff.get(f"/acme/portal/certificates/{certificate}")
    assert response.status_code == 302 and response.location.endswith("/acme/")
    assert portal.get(f"/acme/certificates/{certificate}").status_code == 302
