"""Registering a box ("Inserisci nuovo account certificato") through the panel, as the seed describes:
box name, domain and the holder's codice fiscale (found and filled in, or entered), an optional
agent; then address and activity; the box is saved "in attesa di attivazione"."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import login
from tests.plugins.pec.conftest import (
    BIANCHI_CF,
    ROSSI_CF,
    box_row,
    in_tenant,
    make_box,
    make_holder,
)


def boxes_of(app, tenant) -> list:
    from core.api import db
    from plugins.pec.models import Box

    with in_tenant(app, tenant):
        return [(b.address, b.state, b.holder_id) for b in db.session.scalars(select(Box).order_by(Box.id))]


def test_an_existing_holder_is_found_by_codice_fiscale_and_the_box_waits_for_activation(app, client, reseller):
    holder_id, address_id = make_holder(app, reseller.tenant)
    login(client, reseller.slug, "admin@rivendita.test")

    found = client.get(f"/rivendita/pec/holders/lookup?cf={ROSSI_CF.lower()}").get_json()
    assert found["holder"]["name"] == "Mario Rossi"
    page = client.post(
        "/rivendita/pec/boxes/new",
        data={
            "local_part": "mario.rossi",
            "domain_id": reseller.domain_id,
            "codice_fiscale": ROSSI_CF,
            "action": "verify",
        },
    )
    assert page.status_code == 200 and "Mario Rossi" in page.get_data(as_text=True)

    response = client.post(
        "/rivendita/pec/boxes/new",
        data={
            "local_part": "Mario.Rossi",
            "domain_id": reseller.domain_id,
            "codice_fiscale": ROSSI_CF,
            "box_type": "pro",
            "years": "2",
            "renewal": "tacit",
            "want_agent": "no",
            "action": "save",
        },
    )
    assert response.status_code == 302 and response.location.endswith("/address")
    assert boxes_of(app, reseller.tenant) == [("mario.rossi@pec.rivendita.example", "pending", holder_id)]

    box_path = response.location.removesuffix("/address")
    response = client.post(response.location, data={"choose-address_id": address_id, "action": "choose"})
    assert response.status_code == 302 and response.location.endswith("/activity")
    response = client.post(response.location, data={"action": "skip"})
    assert response.status_code == 302 and response.location == box_path
    detail = client.get(box_path).get_data(as_text=True)
    assert "Via Appia Nuova 120" in detail and 'data-state="pending"' in detail


def test_a_new_holder_is_entered_with_the_box_and_their_birth_data_come_from_the_codice_fiscale(app, client, reseller):
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(
        "/rivendita/pec/boxes/new",
        data={
            "local_part": "laura",
            "domain_id": reseller.domain_id,
            "codice_fiscale": BIANCHI_CF,
            "kind": "person",
            "first_name": "laura",
            "last_name": "BIANCHI",
            "email": "laura@cliente.test",
            "box_type": "standard",
            "years": "1",
            "renewal": "manual",
            "want_agent": "no",
            "action": "save",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    from core.api import Client, db
    from plugins.pec.holders import profile_of

    with in_tenant(app, reseller.tenant):
        client_row = db.session.scalar(select(Client).where(Client.tax_id == BIANCHI_CF))
        assert client_row.name == "Laura Bianchi" and client_row.email == "laura@cliente.test"
        profile = profile_of(client_row.id)
        assert (profile.birth_date, profile.sex, profile.birth_comune, profile.birth_provincia) == (
            "1980-01-01",
            "F",
            "Milano",
            "MI",
        )

    # Step 2: a new address, every field mandatory but fax and mobile; a fake phone is refused.
    address_url = response.location
    refused = client.post(
        address_url,
        data={
            "address-street": "Corso Buenos Aires 18",
            "address-comune": "Milano",
            "address-provincia": "MI",
            "address-cap": "20124",
            "address-phone": "0000000000",
            "action": "add",
        },
    )
    assert refused.status_code == 200
    assert "is not a real phone number" in refused.get_data(as_text=True)
    saved = client.post(
        address_url,
        data={
            "address-street": "Corso Buenos Aires 18",
            "address-comune": "Milano",
            "address-provincia": "MI",
            "address-cap": "20124",
            "address-phone": "02 2951 8463",
            "action": "add",
        },
    )
    assert saved.status_code == 302


def test_every_problem_of_the_form_is_shown_on_its_field_at_once(app, client, reseller):
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(
        "/rivendita/pec/boxes/new",
        data={
            "local_part": "-bad..name",
            "domain_id": reseller.domain_id,
            "codice_fiscale": "RSSMRA78D15H501X",
            "years": "9",
            "action": "save",
        },
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "does not match the other characters" in body  # the codice fiscale's check letter
    assert "letter or a digit" in body  # the box name
    assert boxes_of(app, reseller.tenant) == []


def test_a_name_is_unique_on_its_domain_and_a_deleted_name_stays_with_its_holder(app, reseller):
    from core.api import User, db
    from plugins.pec import boxes
    from plugins.pec.errors import PecErrors
    from plugins.pec.lifecycle import Action
    from plugins.pec.models import Box
    from tests.plugins.pec.conftest import tenant_row

    rossi, rossi_address = make_holder(app, reseller.tenant)
    make_holder(app, reseller.tenant, BIANCHI_CF, email="laura@cliente.test")
    box_id = make_box(app, reseller, "info", rossi, rossi_address)

    def register(codice_fiscale):
        with in_tenant(app, reseller.tenant):
            user = db.session.get(User, reseller.admin)
            try:
                boxes.register_box(
                    tenant_row(reseller.tenant), user, boxes.Registration("INFO", reseller.domain_id, codice_fiscale)
                )
            except PecErrors as error:
                db.session.rollback()
                return [e.code for e in error.errors]
            db.session.rollback()
            return []

    assert register(BIANCHI_CF) == ["name.taken"]
    assert register(ROSSI_CF) == ["name.own"]
    with in_tenant(app, reseller.tenant):
        boxes.act(tenant_row(reseller.tenant), db.session.get(Box, box_id), Action.DELETE)
        db.session.commit()
    assert box_row(app, reseller.tenant, box_id)["state"] == "deleted"
    assert register(BIANCHI_CF) == ["name.reserved_for_holder"]
    assert register(ROSSI_CF) == []  # the same codice fiscale takes its name back


def test_an_assistant_registers_only_on_their_domain(app, client, reseller):
    from core.api import db
    from plugins.pec.models import Domain
    from tests.plugins.pec.conftest import make_assistant

    with in_tenant(app, reseller.tenant):
        other = Domain(name="altro.rivendita.example")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    make_holder(app, reseller.tenant)
    make_assistant(app, reseller, "anna@rivendita.test")
    login(client, reseller.slug, "anna@rivendita.test", "assistant-pass-1")
    page = client.get("/rivendita/pec/boxes/new").get_data(as_text=True)
    assert "pec.rivendita.example" in page and "altro.rivendita.example" not in page
    response = client.post(
        "/rivendita/pec/boxes/new",
        data={"local_part": "anna", "domain_id": other_id, "codice_fiscale": ROSSI_CF, "action": "save"},
    )
    assert response.status_code == 200 and "Choose one of your domains." in response.get_data(as_text=True)


def test_the_comuni_endpoint_proposes_provincia_and_cap_and_tells_homonyms_apart(client, reseller):
    login(client, reseller.slug, "admin@rivendita.test")
    found = client.get("/rivendita/pec/comuni?q=samone").get_json()["comuni"]
    assert {(c["name"], c["sigla"]) for c in found} >= {("Samone", "TO"), ("Samone", "TN")}
    roma = client.get("/rivendita/pec/comuni?q=roma").get_json()["comuni"][0]
    assert roma["label"] == "Roma (RM)" and roma["cap"] is None and len(roma["caps"]) > 50
    single = next(c for c in client.get("/rivendita/pec/comuni?q=samone").get_json()["comuni"] if c["sigla"] == "TO")
    assert single["cap"] == "10010" and single["cap_editable"] is False


def test_an_address_without_cap_gets_the_only_cap_of_its_comune_and_homonyms_need_the_provincia(app, reseller):
    from core.api import Client, db
    from plugins.pec import holders
    from plugins.pec.errors import PecErrors

    client_id, _ = make_holder(app, reseller.tenant)
    with in_tenant(app, reseller.tenant):
        client = db.session.get(Client, client_id)
        row = holders.add_address(client, holders.AddressData("Via Roma 3", "Samone", "TO", "", "IT", "0125 53 2917"))
        assert (row.cap, row.provincia) == ("10010", "TO")
        try:
            holders.add_address(client, holders.AddressData("Via Roma 3", "Samone", "", "", "IT", "0125 53 2917"))
        except PecErrors as error:
            assert "comune.ambiguous" in [e.code for e in error.errors]
        else:
            raise AssertionError("a homonymous comune without provincia was accepted")
        db.session.rollback()
