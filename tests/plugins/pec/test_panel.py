"""The rest of the panel: holders' pages and client fields, documents, export, subentro, history,
agents and domains, the gestore's console for domains, panel codes and credentials, Info Servizio."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc

from sqlalchemy import select

from tests.conftest import login, login_operator
from tests.core.files.samples import pdf, png
from tests.plugins.pec.conftest import (
    BIANCHI_CF,
    COMPANY_PIVA,
    ROSSI_CF,
    activate_box,
    box_row,
    in_tenant,
    make_box,
    make_holder,
    tenant_row,
)


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


# --- holders --------------------------------------------------------------------------------


def test_the_client_form_carries_the_holder_fields_and_fills_birth_data_from_the_codice_fiscale(app, client, reseller):
    from core.api import Client, db
    from plugins.pec.holders import profile_of

    login(client, reseller.slug, "admin@rivendita.test")
    form = client.get("/rivendita/clients/new").get_data(as_text=True)
    assert 'name="pec__partita_iva"' in form and 'name="pec__birth_date"' in form
    bad = client.post(
        "/rivendita/clients/new",
        data={
            "country": "IT",
            "tax_id": ROSSI_CF,
            "first_name": "Mario",
            "last_name": "Rossi",
            "pec__partita_iva": "01234560158",
        },
    )
    assert bad.status_code == 200 and "does not match the others" in bad.get_data(as_text=True)
    good = client.post(
        "/rivendita/clients/new",
        data={
            "country": "IT",
            "tax_id": ROSSI_CF,
            "first_name": "Mario",
            "last_name": "Rossi",
            "pec__partita_iva": COMPANY_PIVA,
        },
    )
    assert good.status_code == 302
    with in_tenant(app, reseller.tenant):
        holder = db.session.scalar(select(Client).where(Client.tax_id == ROSSI_CF))
        profile = profile_of(holder.id)
        assert (
            profile.partita_iva,
            profile.birth_date,
            profile.sex,
            profile.birth_comune,
            profile.birth_provincia,
        ) == (
            COMPANY_PIVA,
            "1978-04-15",
            "M",
            "Roma",
            "RM",
        )
        holder_id = holder.id
    # The PEC search finds the holder by partita IVA as well as by name and codice fiscale.
    for q in (COMPANY_PIVA, "rossi", ROSSI_CF.lower()):
        assert f"/pec/holders/{holder_id}" in client.get(f"/rivendita/pec/holders/?q={q}").get_data(as_text=True), q


def test_holder_sections_are_read_only_until_editable_fields_are_enabled(app, client, reseller):
    holder, address = make_holder(app, reseller.tenant)
    login(client, reseller.slug, "admin@rivendita.test")
    page = client.get(f"/rivendita/pec/holders/{holder}").get_data(as_text=True)
    assert f'name="address-{address}-street"' not in page  # shown as text
    assert "Via Appia Nuova 120" in page
    editable = client.get(f"/rivendita/pec/holders/{holder}?edit=addresses").get_data(as_text=True)
    assert f'name="address-{address}-street"' in editable
    saved = client.post(
        f"/rivendita/pec/holders/{holder}/addresses/{address}",
        data={
            f"address-{address}-street": "Via Appia Nuova 122",
            f"address-{address}-comune": "Roma",
            f"address-{address}-provincia": "RM",
            f"address-{address}-cap": "00183",
            f"address-{address}-nazione": "IT",
            f"address-{address}-phone": "06 4857 3921",
            f"address-{address}-mobile": "1111111111",
        },
    )
    assert saved.status_code == 400 and "is not a real phone number" in saved.get_data(as_text=True)
    data = {
        f"address-{address}-street": "Via Appia Nuova 122",
        f"address-{address}-comune": "Roma",
        f"address-{address}-provincia": "RM",
        f"address-{address}-cap": "00183",
        f"address-{address}-nazione": "IT",
        f"address-{address}-phone": "06 4857 3921",
        f"address-{address}-mobile": "347 218 9053",
    }
    assert client.post(f"/rivendita/pec/holders/{holder}/addresses/{address}", data=data).status_code == 302
    # Several activities with ragione sociale, at one of the addresses.
    for name in ("Studio Rossi S.r.l.", "Rossi Consulenze"):
        response = client.post(
            f"/rivendita/pec/holders/{holder}/activities",
            data={"new-activity-company_name": name, "new-activity-address_id": address},
        )
        assert response.status_code == 302
    duplicate = client.post(
        f"/rivendita/pec/holders/{holder}/activities", data={"new-activity-company_name": "STUDIO ROSSI SRL"}
    )
    assert duplicate.status_code == 400
    page = client.get(f"/rivendita/pec/holders/{holder}").get_data(as_text=True)
    assert "Via Appia Nuova 122" in page and "Rossi Consulenze" in page
    # The client page of core has the PEC tab.
    tab = client.get(f"/rivendita/clients/{holder}?tab=pec").get_data(as_text=True)
    assert "Via Appia Nuova 122" in tab and "Studio Rossi S.r.l." in tab


# --- boxes: documents, history, subentro, export ---------------------------------------------


def test_documents_are_pdf_only_and_listed_by_kind(app, client, reseller):
    holder, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "documenti", holder, address)
    login(client, reseller.slug, "admin@rivendita.test")
    refused = client.post(
        f"/rivendita/pec/boxes/{box}/documents",
        data={"kind": "activation", "file": (io.BytesIO(png()), "contratto.pdf")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 200 and "a PDF" in refused.get_data(as_text=True)
    uploaded = client.post(
        f"/rivendita/pec/boxes/{box}/documents",
        data={"kind": "activation", "file": (io.BytesIO(pdf()), "contratto.pdf"), "notes": "firmato"},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302
    listing = client.get(f"/rivendita/pec/boxes/{box}/documents").get_data(as_text=True)
    document = int(re.search(rf"/boxes/{box}/documents/(\d+)", listing).group(1))
    download = client.get(f"/rivendita/pec/boxes/{box}/documents/{document}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert download.headers["Content-Type"] == "application/pdf"


def test_subentro_keeps_the_codice_fiscale_or_partita_iva(app, client, reseller):
    from core.api import Client, db
    from plugins.pec.holders import profile_of

    rossi, address = make_holder(app, reseller.tenant)
    bianchi, _ = make_holder(app, reseller.tenant, BIANCHI_CF, email="laura@cliente.test")
    company, _ = make_holder(app, reseller.tenant, COMPANY_PIVA, email="rossi.srl@cliente.test")
    with in_tenant(app, reseller.tenant):
        profile_of(rossi).partita_iva = COMPANY_PIVA  # Mario Rossi's firm became the company
        db.session.commit()
    box = make_box(app, reseller, "subentro", rossi, address)
    login(client, reseller.slug, "admin@rivendita.test")
    refused = client.post(f"/rivendita/pec/boxes/{box}/subentro", data={"codice_fiscale": BIANCHI_CF})
    assert refused.status_code == 200 and "same codice fiscale or partita IVA" in refused.get_data(as_text=True)
    assert client.post(f"/rivendita/pec/boxes/{box}/subentro", data={"codice_fiscale": COMPANY_PIVA}).status_code == 302
    assert box_row(app, reseller.tenant, box)["holder_id"] == company
    history = client.get(f"/rivendita/pec/boxes/{box}/history").get_data(as_text=True)
    with in_tenant(app, reseller.tenant):
        assert db.session.get(Client, company).name in history or str(company) in history
    assert bianchi != company


def test_the_export_streams_the_searched_boxes_with_formula_cells_neutralised(app, client, reseller):
    from core.api import Client, db

    rossi, address = make_holder(app, reseller.tenant)
    with in_tenant(app, reseller.tenant):
        db.session.get(Client, rossi).name = '=HYPERLINK("http://x","y")'
        db.session.commit()
    first = make_box(app, reseller, "prima", rossi, address)
    make_box(app, reseller, "seconda", rossi, address)
    activate_box(app, reseller, first)
    login(client, reseller.slug, "admin@rivendita.test")
    rows = csv_rows(client.get("/rivendita/pec/boxes/export.csv?state=active"))
    assert [r[0] for r in rows[1:]] == ["prima@pec.rivendita.example"]
    assert rows[1][5] == '\'=HYPERLINK("http://x","y")'
    assert rows[1][6] == ROSSI_CF
    everything = csv_rows(client.get("/rivendita/pec/boxes/export.csv?q=seconda"))
    assert [r[0] for r in everything[1:]] == ["seconda@pec.rivendita.example"]


def test_the_export_reads_in_batches_in_flat_memory(app, reseller):
    """20,000 boxes: the export's rows come from a server-side cursor, so the memory it holds is a
    batch's, not the file's."""
    from core.api import User, db, utcnow
    from plugins.pec import boxes, exports
    from plugins.pec.models import Box

    rossi, address = make_holder(app, reseller.tenant)
    now = utcnow()
    with in_tenant(app, reseller.tenant):
        db.session.execute(
            Box.__table__.insert(),
            [
                {
                    "tenant_id": reseller.tenant.id,
                    "domain_id": reseller.domain_id,
                    "local_part": f"casella{i:05d}",
                    "address": f"casella{i:05d}@pec.rivendita.example",
                    "holder_id": rossi,
                    "holder_address_id": address,
                    "state": "active",
                    "box_type": "standard",
                    "mailbox_mb": 1024,
                    "years": 1,
                    "renewal": "manual",
                    "request_id": f"r{i}",
                    "provider": "manual",
                    "provider_reference": "",
                    "provider_error": "",
                    "refusal_reason": "",
                    "agent_requested": False,
                    "created_by_id": reseller.admin,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(20_000)
            ],
        )
        db.session.commit()
        user = db.session.get(User, reseller.admin)
        tracemalloc.start()
        try:
            count = sum(
                1 for _ in exports.with_header(boxes.export_rows(tenant_row(reseller.tenant), user, boxes.Search()))
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == 20_001
    assert peak < 8_000_000, f"peak {peak} bytes"


# --- agents, domains, the gestore's console -------------------------------------------------


def test_agents_are_searched_activated_and_given_domains(app, client, reseller):
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(
        "/rivendita/pec/agents/new",
        data={"company_name": "Agenzia Nord S.a.s.", "email": "nord@agenti.test", "domain_ids": [reseller.domain_id]},
    )
    assert response.status_code == 302
    agent = int(response.location.rstrip("/").split("/")[-1])
    client.post(
        "/rivendita/pec/agents/new", data={"first_name": "Rosa", "last_name": "Greco", "email": "rosa@agenti.test"}
    )
    assert "Agenzia Nord" in client.get("/rivendita/pec/agents/?q=nord").get_data(as_text=True)
    assert "Agenzia Nord" not in client.get("/rivendita/pec/agents/?q=greco").get_data(as_text=True)
    assert "Greco" in client.get("/rivendita/pec/agents/?q=rosa@agenti").get_data(as_text=True)
    nameless = client.post("/rivendita/pec/agents/new", data={"email": "x@agenti.test"})
    assert nameless.status_code == 200 and "ragione sociale" in nameless.get_data(as_text=True)
    client.post(f"/rivendita/pec/agents/{agent}/active", data={"active": "0"})
    assert "Agenzia Nord" not in client.get("/rivendita/pec/agents/?active=yes").get_data(as_text=True)
    client.post(f"/rivendita/pec/agents/{agent}/domains/{reseller.domain_id}/remove")
    page = client.get(f"/rivendita/pec/agents/{agent}").get_data(as_text=True)
    assert 'id="agent-domains"' in page and "pec.rivendita.example</li>" not in page
    client.post(f"/rivendita/pec/agents/{agent}/domains", data={"domain": "pec.rivendita.example"})
    assert "Remove domain" in client.get(f"/rivendita/pec/agents/{agent}").get_data(as_text=True)


def test_domains_are_read_only_for_the_reseller_and_changed_by_the_gestore(app, client, factory, reseller):
    login(client, reseller.slug, "admin@rivendita.test")
    assert "pec.rivendita.example" in client.get("/rivendita/pec/domains/").get_data(as_text=True)
    assert client.get(f"/rivendita/pec/domains/{reseller.domain_id}").status_code == 200
    assert not [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("pec.")
        and "domain" in r.endpoint
        and "POST" in r.methods
        and "agent" not in r.endpoint
    ]

    factory.operator()
    operator = app.test_client()
    login_operator(operator)
    assert "pec.rivendita.example" in operator.get(f"/operator/pec/resellers/{reseller.tenant.id}").get_data(
        as_text=True
    )
    changed = operator.post(
        f"/operator/pec/domains/{reseller.domain_id}",
        data={
            "name": "pec.rivendita.example",
            "provider": "manual",
            "default_box_type": "pro",
            "notes": "Rinnovato",
            "active": "y",
        },
    )
    assert changed.status_code == 302
    assert "Pro" in client.get(f"/rivendita/pec/domains/{reseller.domain_id}").get_data(as_text=True)
    # A domain name belongs to one reseller on the whole platform.
    other = factory.tenant("altra", language="it")
    taken = operator.post(
        f"/operator/pec/resellers/{other.id}/domains", data={"name": "PEC.Rivendita.example", "provider": "manual"}
    )
    assert taken.status_code == 400 and "is-invalid" in taken.get_data(as_text=True)  # on the name, in Spanish
    added = operator.post(
        f"/operator/pec/resellers/{other.id}/domains",
        data={"name": "pec.altra.example", "provider": "manual", "active": "y"},
    )
    assert added.status_code == 302


# --- panel codes and credentials --------------------------------------------------------------


def test_the_reseller_gets_a_ten_digit_code_unique_on_the_platform(app, factory, reseller, outbox):
    from core.api import db
    from plugins.pec import accounts

    second = factory.tenant("seconda", language="it")
    codes = []
    for tenant in (reseller.tenant, second):
        with in_tenant(app, tenant):
            codes.append(accounts.reseller_code(tenant_row(tenant)))
            db.session.commit()
    assert all(re.fullmatch(r"\d{10}", code) for code in codes) and codes[0] != codes[1]
    with in_tenant(app, reseller.tenant):
        user = accounts.user_for_login_identifier(codes[1])
        assert user is None  # another reseller's code names no one here
        assert accounts.user_for_login_identifier("not a code") is None


def test_the_settings_give_the_code_to_a_user_who_receives_it_by_email(app, client, reseller, outbox):
    login(client, reseller.slug, "admin@rivendita.test")
    page = client.get("/rivendita/pec/settings").get_data(as_text=True)
    code = re.search(r'id="reseller-code">(\d{10})<', page).group(1)
    client.post("/rivendita/pec/settings", data={"user_id": reseller.admin, "resend": "y"})
    mails = [m for m in outbox() if m.to == "admin@rivendita.test"]
    assert mails and code in mails[-1].text and "/rivendita/login" in mails[-1].text
    with in_tenant(app, reseller.tenant):
        from plugins.pec import accounts

        assert accounts.user_for_login_identifier(code).email == "admin@rivendita.test"
    assert code in client.get("/rivendita/pec/").get_data(as_text=True)


def test_the_reseller_signs_in_with_the_panel_code_as_well_as_the_email(app, client, reseller):
    from tests.conftest import PASSWORD

    login(client, reseller.slug, "admin@rivendita.test")
    code = re.search(r'id="reseller-code">(\d{10})<', client.get("/rivendita/pec/settings").get_data(as_text=True))
    client.post("/rivendita/pec/settings", data={"user_id": reseller.admin, "resend": "y"})
    visitor = app.test_client()
    page = visitor.get("/rivendita/login").get_data(as_text=True)
    assert "panel code" in page or "codice del pannello" in page
    wrong = visitor.post("/rivendita/login", data={"email": code.group(1), "password": "sbagliata"})
    assert wrong.status_code == 200
    signed_in = visitor.post("/rivendita/login", data={"email": code.group(1), "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in.location == "/rivendita/"


def test_a_new_assistant_receives_code_and_first_password_by_email_and_signs_in(app, client, reseller, outbox):
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(
        "/rivendita/pec/assistants/new",
        data={
            "first_name": "anna",
            "last_name": "verdi",
            "email": "anna.verdi@rivendita.test",
            "domain_id": reseller.domain_id,
            "pec_addresses": "anna@pec.rivendita.example\nnot-an-address",
            "package_mode": "consumo",
        },
    )
    assert response.status_code == 200 and "not a valid e-mail address" in response.get_data(as_text=True)
    response = client.post(
        "/rivendita/pec/assistants/new",
        data={
            "first_name": "anna",
            "last_name": "verdi",
            "email": "anna.verdi@rivendita.test",
            "comune": "Monza",
            "provincia": "MB",
            "domain_id": reseller.domain_id,
            "pec_addresses": "anna@pec.rivendita.example",
            "package_mode": "consumo",
        },
    )
    assert response.status_code == 302
    mail = next(m for m in outbox() if m.to == "anna.verdi@rivendita.test")
    code = re.search(r"\b(\d{10})\b", mail.text).group(1)
    password = re.search(r":\s*([A-Z2-9]{12,})\s", mail.text).group(1)
    assistant = app.test_client()
    login(assistant, reseller.slug, "anna.verdi@rivendita.test", password)
    summary = assistant.get("/rivendita/pec/").get_data(as_text=True)
    assert code in summary
    assert assistant.get("/rivendita/pec/boxes/new").status_code == 200


def test_info_servizio_summarises_states_expiries_and_package_use(app, client, reseller):
    from core.api import db
    from plugins.pec import agents
    from plugins.pec.models import Box

    rossi, address = make_holder(app, reseller.tenant)
    boxes = [make_box(app, reseller, f"s{i}", rossi, address) for i in range(3)]
    activate_box(app, reseller, boxes[0])
    with in_tenant(app, reseller.tenant):
        agent = agents.create_agent(agents.AgentData("Agenzia Sud", email="sud@agenti.test"))
        package = agents.add_package(agent, "Base", 4, 1)
        box = db.session.get(Box, boxes[0])
        box.agent_id, box.package_id = agent.id, package.id
        db.session.commit()
    login(client, reseller.slug, "admin@rivendita.test")
    page = client.get("/rivendita/pec/").get_data(as_text=True)
    assert 'data-count="active">1<' in page and 'data-count="pending">2<' in page
    assert "1 / 4" in page and "Base" in page
    dashboard = client.get("/rivendita/").get_data(as_text=True)
    assert 'data-widget="pec-pending"' in dashboard
    assert ROSSI_CF  # holders found by CF elsewhere


def test_holders_imported_by_the_client_import_get_the_pec_fields_and_birth_data(app, client, reseller, run_jobs):
    from core.api import Client, db
    from plugins.pec.holders import profile_of

    login(client, reseller.slug, "admin@rivendita.test")
    text = f"Codice fiscale;Nome;Cognome;Paese;Partita IVA\n{ROSSI_CF};Mario;Rossi;IT;{COMPANY_PIVA}\n"
    response = client.post(
        "/rivendita/clients/import",
        data={"file": (io.BytesIO(text.encode()), "titolari.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    run_jobs()
    with in_tenant(app, reseller.tenant):
        holder = db.session.scalar(select(Client).where(Client.tax_id == ROSSI_CF))
        assert holder is not None, client.get(response.location).get_data(as_text=True)[-3000:]
        profile = profile_of(holder.id)
        assert (profile.partita_iva, profile.birth_date, profile.birth_comune) == (COMPANY_PIVA, "1978-04-15", "Roma")
