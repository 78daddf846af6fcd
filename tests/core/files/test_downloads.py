"""``send_stored_file`` through a tiny blueprint that exists only here (core has no download route:
files belong to plugins' objects, whose views check access and then call the helper)."""

from __future__ import annotations

import pytest
from flask import Blueprint, abort, request

from core.extensions import db
from core.files.services import accept_image_or_pdf, accept_upload, read_stored
from core.permissions import public
from tests.core.files import samples


@pytest.fixture(scope="module")
def probe(app):
    from core.app import create_app
    from core.files.downloads import send_stored_file, send_thumbnail
    from core.files.models import StoredFile

    probe_app = create_app(
        {
            "INSTANCE_PATH": app.config["INSTANCE_PATH"],
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SECRET_KEY": "k" * 32,
            "PUBLIC_URL": "https://ventanilla.example.com",
            "FILES_DIR": app.config["FILES_DIR"],
        }
    )
    bp = Blueprint("probe_files", __name__)

    # A real view would require a permission and reach the file through its own object.
    @bp.route("/<int:file_id>")
    @public
    def download(file_id):
        stored = db.session.get(StoredFile, file_id) or abort(404)
        return send_stored_file(
            stored, as_attachment="inline" not in request.args, download_name=request.args.get("name")
        )

    @bp.route("/<int:file_id>/thumbnail")
    @public
    def small(file_id):
        return send_thumbnail(db.session.get(StoredFile, file_id) or abort(404), 128)

    probe_app.register_blueprint(bp, url_prefix="/<tenant>/probe-files")
    return probe_app.test_client()


def _store(app, acting, tenant, data, name, kind="document"):
    with acting(tenant):
        stored = accept_upload(data, name, kind)
        db.session.commit()
        return stored.id, read_stored(stored)


def test_a_download_carries_the_exact_type_and_safe_headers(app, acme, acting, probe):
    file_id, kept = _store(app, acting, acme, samples.pdf(), "Informe año 2026.pdf")
    response = probe.get(f"/acme/probe-files/{file_id}")
    assert response.status_code == 200
    assert response.data == kept
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(kept))
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Informe ano 2026.pdf\"; filename*=UTF-8''Informe%20a%C3%B1o%202026.pdf"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_text_keeps_its_exact_type_and_is_always_downloaded_in_a_sandbox(app, acme, acting, probe):
    data = "nombre;ciudad\nMaría;Logroño\n".encode("latin-1")
    file_id, _ = _store(app, acting, acme, data, "clientes.csv", kind="csv")
    response = probe.get(f"/acme/probe-files/{file_id}?inline=1")
    assert response.headers["Content-Type"] == "text/csv"  # no charset guessed on the way out
    assert response.headers["Content-Disposition"].startswith('attachment; filename="clientes.csv"')
    assert response.headers["Content-Security-Policy"].endswith("; sandbox")
    assert response.data == data


def test_an_image_may_be_shown_inline_under_another_name(app, acme, acting, probe):
    file_id, kept = _store(app, acting, acme, samples.jpeg(), "IMG_1.jpg")
    response = probe.get(f"/acme/probe-files/{file_id}?inline=1&name=Ana%20López%0d%0aX-Evil:%201")
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == (
        "inline; filename=\"Ana LopezX-Evil_ 1.jpg\"; filename*=UTF-8''Ana%20L%C3%B3pezX-Evil%3A%201.jpg"
    )
    assert "X-Evil" not in response.headers
    assert response.data == kept


def test_a_thumbnail_is_served_as_a_jpeg(app, acme, acting, probe):
    file_id, _ = _store(app, acting, acme, samples.png(samples.photo(400, 200)), "plan.png")
    response = probe.get(f"/acme/probe-files/{file_id}/thumbnail")
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.data.startswith(b"\xff\xd8\xff")


def test_another_tenants_file_answers_404(app, factory, acme, acting, probe):
    factory.tenant("globex", language="en")
    file_id, _ = _store(app, acting, acme, samples.pdf(), "acme.pdf")
    assert probe.get(f"/globex/probe-files/{file_id}").status_code == 404
    assert probe.get(f"/acme/probe-files/{file_id}").status_code == 200


def test_accept_image_or_pdf_refuses_a_kind_that_takes_other_types(acme, acting):
    with acting(acme), pytest.raises(ValueError):
        accept_image_or_pdf(samples.pdf(), "a.pdf", "csv")
