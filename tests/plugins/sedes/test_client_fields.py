"""The client's Seguridad Social codes and the two "Habilitado…" checkboxes, through core's client
fields: the form, the data tab, the history, the export and the import."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select

from tests.conftest import login

CLIENT = {"kind": "company", "country": "ES", "tax_id": "B12345674", "company_name": "Talleres Pérez SL"}
CCC_ONE = "28/1234567/42"
CCC_TWO = "08 1234567 74"  # 8 * 10**7 + 1234567 = 81234567, % 97 == 74
NAF = "28/12345678/40"


def _codes(app, tenant_id):
    from core.extensions import db
    from plugins.sedes.models import SedesClientData, SsidCode
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        codes = sorted((row.kind, row.code) for row in db.session.scalars(select(SsidCode)))
        flags = [(row.receives_electronic, row.checks_board) for row in db.session.scalars(select(SedesClientData))]
        return codes, flags


def test_the_client_form_keeps_every_ccc_and_the_naf_checked_and_normalised(app, factory, client):
    acme = factory.tenant("acme", language="en", plugins=("sedes",))
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    form = client.get("/acme/clients/new").get_data(as_text=True)
    for name in ("sedes__ccc", "sedes__naf", "sedes__receives_electronic", "sedes__checks_board"):
        assert f'name="{name}"' in form
    assert "Enabled to check notifications on the board (TEU)" in form
    board = re.search(r'<input[^>]*name="sedes__checks_board"[^>]*>', form).group(0)
    assert "checked" in board, "the board checkbox is ticked by default"
    assert "checked" not in re.search(r'<input[^>]*name="sedes__receives_electronic"[^>]*>', form).group(0)

    wrong = client.post("/acme/clients/new", data={**CLIENT, "sedes__ccc": f"{CCC_ONE}\n28/1234567/43"})
    assert wrong.status_code == 200
    assert "The control digits of this CCC are wrong: check the number." in wrong.get_data(as_text=True)
    short = client.post("/acme/clients/new", data={**CLIENT, "sedes__naf": "28/1234567/42"})
    assert "A NAF has 12 digits." in short.get_data(as_text=True)
    assert _codes(app, acme.id) == ([], [])

    made = client.post(
        "/acme/clients/new",
        data={
            **CLIENT,
            "sedes__ccc": f"{CCC_ONE}\n{CCC_TWO}\n{CCC_ONE}",
            "sedes__naf": NAF,
            "sedes__receives_electronic": "y",
            "sedes__checks_board": "y",
        },
    )
    assert made.status_code == 302
    client_id = int(made.location.rsplit("/", 1)[1])
    assert _codes(app, acme.id) == (
        [("ccc", "08123456774"), ("ccc", "28123456742"), ("naf", "281234567840")],
        [(True, True)],
    )
    page = client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    assert 'data-field="sedes.ccc">28123456742, 08123456774<' in page
    assert 'data-field="sedes.naf">281234567840<' in page

    # Unticking the board and dropping a CCC is recorded in the client's history.
    client.post(
        f"/acme/clients/{client_id}/edit",
        data={**CLIENT, "sedes__ccc": CCC_ONE, "sedes__naf": NAF, "sedes__receives_electronic": "y"},
    )
    assert _codes(app, acme.id) == ([("ccc", "28123456742"), ("naf", "281234567840")], [(True, False)])
    history = client.get(f"/acme/clients/{client_id}?tab=history").get_data(as_text=True)
    assert "08123456774" in history and "Enabled to check notifications on the board (TEU)" in history


def test_export_and_import_carry_the_codes_and_report_a_wrong_one_by_row(app, factory, client, run_jobs):
    acme = factory.tenant("acme", language="en", plugins=("sedes",))
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    text = (
        "nif,razon social,ccc,naf,tablon\n"
        f"B12345674,Talleres Pérez SL,{CCC_ONE}|{CCC_TWO},,si\n"
        "A58818501,Obras SA,28/1234567/40,,\n"
        f"Q2826000H,Fundación Luz,,{NAF},no\n"
    )
    response = client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(text.encode()), "clients.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    run_jobs()
    report = client.get(response.location).get_data(as_text=True)
    problems = report.split('id="import-problems"')[1]
    assert "<td>3</td>" in problems and "The control digits of this CCC are wrong" in problems
    exported = client.get("/acme/clients/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {row["tax_id"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert set(rows) == {"B12345674", "Q2826000H"}
    assert rows["B12345674"]["sedes.ccc"] == "28123456742|08123456774"
    assert rows["B12345674"]["sedes.checks_board"] == "yes"
    assert rows["B12345674"]["sedes.receives_electronic"] == "no"
    assert rows["Q2826000H"]["sedes.naf"] == "281234567840"
    assert rows["Q2826000H"]["sedes.checks_board"] == "no"
    # The export reads back: importing it again changes nothing.
    again = client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(exported.encode()), "clients.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    run_jobs()
    assert 'id="import-problems"' not in client.get(again.location).get_data(as_text=True)
    codes, _flags = _codes(app, acme.id)
    assert codes == [("ccc", "08123456774"), ("ccc", "28123456742"), ("naf", "281234567840")]


def test_a_client_with_a_mailbox_at_a_sede_that_needs_them_keeps_a_ccc_or_naf(app, factory):
    from core.extensions import db
    from plugins.sedes.models import Certificate, Mailbox, Sede
    from plugins.sedes.pki import CertificateAuthority
    from tests.plugins.sedes.data_helpers import PASSWORD, PERSON, in_tenant, make_office, sign_in, upload

    office = make_office(factory)
    with app.app_context():
        sede = db.session.get(Sede, "seg_social")
        sede.connector, sede.base_url = "dehu", "https://sede.seg-social.test/ws"
        db.session.commit()
    web = sign_in(app, office)
    upload(web, office, CertificateAuthority(reuse_keys=True).representante(PERSON, "B12345674").pkcs12(PASSWORD))
    edit = {**CLIENT, "company_name": "Talleres Pérez SL", "sedes__ccc": CCC_ONE, "sedes__checks_board": "y"}
    assert web.post(f"/gestoria/clients/{office.company}/edit", data=edit).status_code == 302
    with in_tenant(app, office.tenant.id):
        certificate_id = db.session.scalar(select(Certificate.id))
    web.post(
        f"/gestoria/sedes/certificates/{certificate_id}/mailboxes",
        data={"offer": f"{office.company}:seg_social:{certificate_id}"},
    )
    with in_tenant(app, office.tenant.id):
        assert db.session.scalar(select(Mailbox.sede_code)) == "seg_social"
    cleared = web.post(f"/gestoria/clients/{office.company}/edit", data={**edit, "sedes__ccc": ""})
    assert cleared.status_code == 200
    assert "The client has a mailbox at a sede that needs its CCC or NAF: keep at least one." in cleared.get_data(
        as_text=True
    )
    swapped = web.post(f"/gestoria/clients/{office.company}/edit", data={**edit, "sedes__ccc": "", "sedes__naf": NAF})
    assert swapped.status_code == 302, "a NAF instead of the CCC will do"
    assert _codes(app, office.tenant.id)[0] == [("naf", "281234567840")]
