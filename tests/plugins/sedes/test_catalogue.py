"""The operator's sede catalogue: the seed's ten services, the list of services accessible with a
digital certificate, the operator console, and the licence that names the tenant's sedes."""

from __future__ import annotations

import re

from tests.conftest import login, login_operator
from tests.plugins.sedes.data_helpers import make_office, sign_in

SEED = [
    "Dirección electrónica habilitada - 060",
    "Dirección Electrónica Vial - DGT",
    "Seguridad Social - Sede electrónica",
    "Agencia Tributaria - Sede electrónica",
    "MINETUR",
    "GENCAT - Oficina Virtual de Trámites",
    "Administración de justicia - LexNET",
    "Bizkaia - Oficina Virtual de Hacienda",
    "Sede Electrónica de la Diputación Foral de Gipuzkoa",
    "JustiziaNet - Administración de Justicia en Euskadi",
]


def _sedes(app):
    from plugins.sedes.catalogue import all_sedes

    with app.app_context():
        return {s.code: (s.name, s.connector, s.needs_ssid, s.deadline_days, s.active) for s in all_sedes()}


def test_a_new_installation_has_the_seed_services_with_their_rules(app):
    from plugins.sedes.catalogue import all_sedes, ensure_catalogue

    with app.app_context():
        ensure_catalogue()
        sedes = all_sedes()
        assert [s.name for s in sedes] == SEED
        by_code = {s.code: s for s in sedes}
        assert by_code["dehu"].connector == "dehu" and by_code["dehu"].base_url.startswith("https://")
        assert by_code["seg_social"].needs_ssid and not by_code["dehu"].needs_ssid
        assert by_code["lexnet"].deadline_days == 3 and by_code["dehu"].deadline_days == 10
        assert by_code["aeat"].signature_test_url and by_code["seg_social"].register_url
        by_code["dgt"].name = "DEV"
        from core.extensions import db

        db.session.commit()
        ensure_catalogue()
        assert {s.code: s.name for s in all_sedes()}["dgt"] == "DEV", "an edited catalogue is kept"


def test_the_list_of_services_shows_each_portal_link_of_the_seed(app, factory):
    office = make_office(factory)
    page = sign_in(app, office, "gestor").get("/gestoria/sedes/services").get_data(as_text=True)
    rows = re.findall(r'<tr data-sede="([a-z_]+)">(.*?)</tr>', page, re.S)
    assert [code for code, _row in rows][:3] == ["dehu", "dgt", "seg_social"] and len(rows) == 10
    cells = dict(rows)
    assert "Go to the portal" in cells["dehu"] and "Register" in cells["dehu"]
    assert "Register" in cells["seg_social"] and "Electronic signature test" in cells["aeat"]
    assert "Register" not in cells["minetur"] and 'target="_blank"' in cells["minetur"]
    assert 'href="https://lexnet.justicia.es/"' in cells["lexnet"]


def test_the_operator_keeps_the_catalogue(app, factory, client):
    office = make_office(factory)
    factory.operator()
    # The operator console speaks the browser's language (Spanish when it names none).
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client)
    index = client.get("/operator/sedes/").get_data(as_text=True)
    assert 'data-sede="dehu"' in index and "Portal links only" in index
    edit = client.get("/operator/sedes/dehu").get_data(as_text=True)
    assert 'value="https://gd-dehuws.redsara.es"' in edit and '<option selected value="dehu">' in edit
    assert client.get("/operator/sedes/nowhere").status_code == 404
    new = {
        "code": "TGSS_WS",
        "name": "TGSS (servicio web)",
        "portal_url": "https://sede.seg-social.gob.es/",
        "connector": "dehu",
        "base_url": "",
        "deadline_days": "10",
        "position": "20",
        "active": "y",
    }
    refused = client.post("/operator/sedes/new", data=new).get_data(as_text=True)
    assert "A sede read by a connector needs the service&#39;s base URL." in refused
    refused = client.post("/operator/sedes/new", data={**new, "base_url": "http://insecure.test/ws"})
    assert "A link must start with https:// and name a server." in refused.get_data(as_text=True)
    refused = client.post("/operator/sedes/new", data={**new, "code": "tgss ws", "base_url": "https://ws.test/"})
    assert "A code is up to 32 lowercase letters, digits or underscores." in refused.get_data(as_text=True)
    made = client.post("/operator/sedes/new", data={**new, "base_url": "https://ws.seg-social.test/WSCN"})
    assert made.status_code == 302
    assert _sedes(app)["tgss_ws"] == ("TGSS (servicio web)", "dehu", False, 10, True), "the code is lowered"
    # Deactivating a sede takes it off every tenant's list of services.
    edited = client.post(
        "/operator/sedes/minetur",
        data={
            "code": "minetur",
            "name": "MINETUR",
            "portal_url": "https://sede.serviciosmin.gob.es/",
            "connector": "",
            "deadline_days": "",
        },
    )
    assert edited.status_code == 302
    assert _sedes(app)["minetur"] == ("MINETUR", None, False, None, False)
    page = sign_in(app, office).get("/gestoria/sedes/services").get_data(as_text=True)
    assert 'data-sede="minetur"' not in page
    # Staff of a tenant cannot reach the operator console.
    staff = app.test_client()
    login(staff, "gestoria", "manager@gestoria.test")
    assert staff.get("/operator/sedes/").status_code in (302, 403, 404)


def test_the_licence_names_the_sedes_from_the_catalogue(app, factory):
    from core.extensions import db
    from plugins.sedes.catalogue import licensed_codes
    from tenants.models import Tenant

    office = make_office(factory)
    runner = app.test_cli_runner()
    with app.app_context():
        assert licensed_codes(db.session.get(Tenant, office.tenant.id)) == set(_sedes(app)), "no limit: every sede"
    result = runner.invoke(args=["tenants", "license", "gestoria", "sedes", "--limit", "sedes=dehu,seg_social"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert licensed_codes(db.session.get(Tenant, office.tenant.id)) == {"dehu", "seg_social"}
    wrong = runner.invoke(args=["tenants", "license", "gestoria", "sedes", "--limit", "sedes=dehu,nowhere"])
    assert wrong.exit_code != 0 and "nowhere" in wrong.output
    listed = sign_in(app, office).get("/gestoria/sedes/settings/services").get_data(as_text=True)
    assert re.findall(r'<tr data-sede="([a-z_]+)"', listed) == ["dehu", "seg_social"]
