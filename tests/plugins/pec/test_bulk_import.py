"""Bulk CSV import of holders and boxes: a real worker runs the ``bulk`` job; every rejected row is
reported with its line, column and reason; importing the same file again creates nothing new."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import func, select

from tests.conftest import login
from tests.plugins.pec.conftest import BIANCHI_CF, ROSSI_CF, in_tenant

HOLDERS = (
    "Tipo;Codice Fiscale;Nome;Cognome;Ragione Sociale;Partita IVA;Email;Indirizzo;Comune;Provincia;CAP;"
    "Telefono;Cellulare\n"
    f"PF;{ROSSI_CF};Mario;Rossi;;;mario@cliente.test;Via Appia Nuova 120;Roma;RM;00183;06 4857 3921;347 218 9053\n"
    f"PF;{ROSSI_CF};Mario;Rossi;;;mario@cliente.test;Via del Corso 1;Roma;RM;00186;06 4857 3921;\n"
    f"PF;{BIANCHI_CF};Laura;Bianchi;;;laura@cliente.test;Corso Buenos Aires 18;Milano;MI;20124;0000000000;\n"
    "PG;01234560157;;;Rossi Servizi S.r.l.;01234560157;info@rossi.test;Via Roma 3;Samone;;10010;0125 53 2917;\n"
    "PF;RSSMRA78D15H501X;Mario;Rossi;;;x@cliente.test;Via Roma 1;Roma;RM;00183;06 4857 3921;\n"
)


def upload(client, kind: str, text: str):
    return client.post(
        "/rivendita/pec/imports/",
        data={"kind": kind, "file": (io.BytesIO(text.encode()), f"{kind}.csv")},
        content_type="multipart/form-data",
    )


def count(app, tenant, model) -> int:
    from core.api import db

    with in_tenant(app, tenant):
        return db.session.scalar(select(func.count()).select_from(model))


def test_holders_and_boxes_are_imported_with_a_report_row_by_row(app, client, reseller, run_jobs):
    from core.api import Client
    from plugins.pec.models import Box, HolderAddress

    login(client, reseller.slug, "admin@rivendita.test")
    response = upload(client, "holders", HOLDERS)
    assert response.status_code == 302
    report_url = response.location
    assert "reload the page" in client.get(report_url).get_data(as_text=True)
    run_jobs()
    page = client.get(report_url).get_data(as_text=True)
    assert "5 rows: 1 created, 3 rejected." in page
    problems = list(
        csv.reader(io.StringIO(client.get(report_url + "/report.csv").get_data(as_text=True).lstrip("\ufeff")))
    )
    lines = {row[0] for row in problems[1:]}
    assert lines == {"4", "5", "6"}  # a fake phone, a homonymous comune without provincia, a wrong check letter
    assert count(app, reseller.tenant, Client) == 1
    assert count(app, reseller.tenant, HolderAddress) == 2  # Mario Rossi on two rows: two addresses

    boxes_csv = (
        "Casella PEC;Codice Fiscale;Tipo casella;Durata;Rinnovo\n"
        f"mario.rossi@pec.rivendita.example;{ROSSI_CF};Pro;2;tacito\n"
        f"studio@pec.rivendita.example;{ROSSI_CF};;;\n"
        f"laura@pec.rivendita.example;{BIANCHI_CF};;;\n"
        f"mario@altro.example;{ROSSI_CF};;;\n"
        f"mario.rossi@pec.rivendita.example;{ROSSI_CF};;;\n"
    )
    response = upload(client, "boxes", boxes_csv)
    run_jobs()
    page = client.get(response.location).get_data(as_text=True)
    assert "5 rows: 2 created, 3 rejected." in page
    assert "No holder has this codice fiscale: import the holders first." in page
    assert "altro.example is not one of your domains." in page
    assert count(app, reseller.tenant, Box) == 2
    # Again: nothing new (holders found by codice fiscale, boxes already there).
    again = upload(client, "holders", HOLDERS)
    run_jobs()
    assert re.search(r"5 rows: 0 created", client.get(again.location).get_data(as_text=True))
    upload(client, "boxes", boxes_csv)
    run_jobs()
    assert count(app, reseller.tenant, Box) == 2
    assert count(app, reseller.tenant, HolderAddress) == 2


def test_a_file_that_is_not_a_table_is_refused_in_the_report(app, client, reseller, run_jobs):
    login(client, reseller.slug, "admin@rivendita.test")
    response = upload(client, "boxes", "just some words\nand more\n")
    run_jobs()
    page = client.get(response.location).get_data(as_text=True)
    assert "The file has no column for" in page
