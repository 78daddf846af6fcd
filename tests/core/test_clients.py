"""Clients: tax ids, who sees whom, the list, the page with its tabs, export, import, hooks."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from core.clients.taxids import parse_tax_id
from core.errors import DomainError
from tests.conftest import login


def _admin(factory, client, slug="acme", language="en"):
    tenant = factory.tenant(slug, language=language)
    factory.user(tenant, f"admin@{slug}.test", role_key="admin", name="Ada Admin")
    login(client, slug, f"admin@{slug}.test")
    return tenant


PERSON = {
    "kind": "person",
    "country": "ES",
    "tax_id": "12345678-z",
    "first_name": "Ana",
    "last_name": "Álamo Ruiz",
    "email": "Ana@Example.test",
    "phone": "+34 600 11 22 33",
}


def _create(client, slug="acme", **changes):
    return client.post(f"/{slug}/clients/new", data={**PERSON, **changes})


# --- tax ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "raw", "value", "kind"),
    [
        ("ES", "12345678-z", "12345678Z", "es_nif"),
        ("ES", "x 1234567 l", "X1234567L", "es_nie"),
        ("ES", "B-12345674", "B12345674", "es_cif"),
        ("IT", "rssmra85t10a562s", "RSSMRA85T10A562S", "it_cf"),
        ("IT", "IT 00743110157", "00743110157", "it_piva"),
        ("FR", "fr 40 303 265 045", "FR40303265045", "other"),
        ("DE", "123/456/78901", "12345678901", "other"),
        ("ES", "k0867756n", "K0867756N", "es_nif"),
        ("ES", "M2812345C", "M2812345C", "es_nif"),
    ],
)
def test_tax_ids_are_validated_and_normalised(country, raw, value, kind):
    tax = parse_tax_id(country, raw)
    assert (tax.value, tax.type) == (value, kind)


@pytest.mark.parametrize(
    ("country", "raw", "value", "kind"),
    [
        ("ES", "12.345.678-Z", "12345678Z", "es_nif"),
        ("ES", "12.345.678 z", "12345678Z", "es_nif"),
        ("ES", "12\u00a0345\u00a0678-Z", "12345678Z", "es_nif"),
        ("ES", "X.1234567-L", "X1234567L", "es_nie"),
        ("ES", "B-12.345.674", "B12345674", "es_cif"),
        ("IT", "RSSMRA.85T10.A562S", "RSSMRA85T10A562S", "it_cf"),
        ("IT", "007.431.101.57", "00743110157", "it_piva"),
        ("FR", "FR-40.303.265.045", "FR40303265045", "other"),
    ],
)
def test_dots_spaces_and_hyphens_are_accepted_in_every_tax_id(country, raw, value, kind):
    """As Spanish spreadsheets write DNIs: 12.345.678-Z."""
    tax = parse_tax_id(country, raw)
    assert (tax.value, tax.type) == (value, kind)


@pytest.mark.parametrize(
    ("country", "raw", "message"),
    [
        ("ES", "12345678A", "The DNI 12345678A is not valid: its check character is wrong."),
        ("ES", "X1234567A", "The NIE X1234567A is not valid: its check character is wrong."),
        ("IT", "00743110158", "The partita IVA 00743110158 is not valid: its check character is wrong."),
        ("IT", "RSSMRA85T10A562", "has the wrong length"),
        ("ES", "", "The tax id is required."),
        ("", "ABC123", "Choose the country of the tax id."),
        ("ZZ", "ABC123", "Choose the country of the tax id."),
        ("FR", "FR00000000000", "The VAT number FR00000000000 is not valid"),
        ("ES", "K0867756A", "The NIF K0867756A is not valid: its check character is wrong."),
    ],
)
def test_a_wrong_tax_id_gets_a_precise_message(app, country, raw, message):
    with app.test_request_context(headers={"Accept-Language": "en"}), pytest.raises(DomainError) as raised:
        parse_tax_id(country, raw)
    assert message in str(raised.value.message)


def test_creating_a_client_normalises_and_shows_it(factory, client):
    _admin(factory, client)
    response = _create(client)
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Ana Álamo Ruiz" in page and "12345678Z" in page and "ana@example.test" in page and "+34600112233" in page


def test_a_taken_tax_id_names_the_client_that_has_it(factory, client):
    _admin(factory, client)
    _create(client)
    page = _create(client, tax_id="12345678Z", first_name="Otra").get_data(as_text=True)
    assert "The tax id 12345678Z already belongs to the client Ana Álamo Ruiz." in page


def test_two_people_saving_the_same_tax_id_at_once_get_a_clear_message(app, factory, monkeypatch):
    from core.auth.models import User
    from core.clients import services
    from core.extensions import db
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = factory.tenant("acme", language="en")
    admin_id = factory.user(tenant, "admin@acme.test", role_key="admin")
    factory.client(tenant, "First Come SL", tax_id="B12345674")
    checked_before_the_other_commit = iter([True])
    real_check = services._check_tax_id_free

    def racing_check(user, tax_id, except_id=None):
        # The first check runs before the other person's commit, so it finds nothing.
        if next(checked_before_the_other_commit, False):
            return
        real_check(user, tax_id, except_id)

    monkeypatch.setattr(services, "_check_tax_id_free", racing_check)
    with app.test_request_context(), tenant_context(tenant.id), pytest.raises(DomainError) as raised:
        admin = db.session.get(User, admin_id)
        data = services.ClientData(tax_id="B12345674", kind="company", company_name="Second SL")
        services.create_client(db.session.get(Tenant, tenant.id), admin, data)
    assert "already belongs to the client First Come SL" in str(raised.value.message)


def test_a_company_tax_id_for_a_person_is_refused(factory, client):
    _admin(factory, client)
    page = _create(client, tax_id="B12345674").get_data(as_text=True)
    assert "That tax id belongs to a company." in page


def test_a_company_needs_its_name_and_a_person_their_names(factory, client):
    _admin(factory, client)
    page = _create(client, kind="company", tax_id="B12345674", first_name="", last_name="").get_data(as_text=True)
    assert "The company name is required." in page
    page = _create(client, last_name="").get_data(as_text=True)
    assert "The last name is required." in page


def test_form_errors_speak_the_users_language(factory, client):
    _admin(factory, client, language="es")
    page = _create(client, tax_id="12345678A").get_data(as_text=True)
    assert "12345678A" in page and "is not valid" not in page


# --- visibility -------------------------------------------------------------------------


def _two_centres(app, factory):
    tenant = factory.tenant("acme", language="en")
    north_staff = factory.user(
        tenant, "north@acme.test", permissions=["core.clients:view", "core.clients:manage", "core.clients:export"]
    )
    north = factory.group(tenant, "North", [north_staff])
    south = factory.group(tenant, "South")
    mine = factory.client(tenant, "Northern Client", groups=[north], email="n@client.test")
    theirs = factory.client(tenant, "Southern Client", groups=[south], email="s@client.test")
    factory.user(
        tenant, "boss@acme.test", permissions=["core.clients:view", "core.clients:view_all", "core.clients:export"]
    )
    return tenant, north, south, mine, theirs


def test_staff_see_only_the_clients_of_their_groups_everywhere(app, factory, client):
    _tenant, _north, _south, mine, theirs = _two_centres(app, factory)
    login(client, "acme", "north@acme.test")
    listing = client.get("/acme/clients/").get_data(as_text=True)
    assert "Northern Client" in listing and "Southern Client" not in listing
    assert ">North</option>" in listing and ">South</option>" not in listing
    assert client.get(f"/acme/clients/{mine}").status_code == 200
    assert client.get(f"/acme/clients/{theirs}").status_code == 404
    assert client.get(f"/acme/clients/{theirs}/edit").status_code == 404
    assert client.get(f"/acme/clients/{theirs}?tab=history").status_code == 404
    export = client.get("/acme/clients/export.csv").get_data(as_text=True)
    assert "Northern Client" in export and "Southern Client" not in export
    assert "Southern" not in client.get("/acme/clients/?q=client").get_data(as_text=True)
    api = client.get("/acme/clients/api/?q=client").get_json()
    assert [c["name"] for c in api["clients"]] == ["Northern Client"]
    assert client.get(f"/acme/clients/api/{mine}").get_json()["email"] == "n@client.test"
    assert client.get(f"/acme/clients/api/{theirs}").status_code == 404


def test_a_tax_id_of_a_client_one_cannot_see_is_refused_without_saying_it_is_a_client(app, factory, client):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant, _north, _south, _mine, theirs = _two_centres(app, factory)
    with app.app_context(), tenant_context(tenant.id):
        hidden_tax_id = db.session.get(Client, theirs).tax_id
    login(client, "acme", "north@acme.test")
    page = _create(client, kind="company", tax_id=hidden_tax_id, company_name="Mine Now SL").get_data(as_text=True)
    assert f"The tax id {hidden_tax_id} cannot be used. Ask someone who manages every client." in page
    for word in ("already belongs", "client of the organisation", "Southern Client"):
        assert word not in page, page[max(0, page.find(word) - 300) : page.find(word) + 100]


def test_the_audit_trail_says_nothing_about_clients_one_cannot_see(app, factory, client):
    tenant, north, south, mine, theirs = _two_centres(app, factory)
    factory.user(
        tenant,
        "auditor@acme.test",
        permissions=["core.clients:view", "core.audit:view", "core.groups:view"],
        groups=[north],
    )
    factory.user(tenant, "admin@acme.test", role_key="admin", name="Ada Admin")
    admin = app.test_client()
    login(admin, "acme", "admin@acme.test")
    # The administrator writes both clients' tax ids and notes, adds an address to each and
    # touches the group of the one the auditor cannot see.
    for client_id, name, tax_id, group in (
        (mine, "Northern Client", "B11111119", north),
        (theirs, "Southern Client", "B22222228", south),
    ):
        response = admin.post(
            f"/acme/clients/{client_id}/edit",
            data={
                "kind": "company",
                "country": "ES",
                "tax_id": tax_id,
                "company_name": name,
                "notes": f"private notes of {name}",
                "groups": [str(group)],
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        admin.post(f"/acme/clients/{client_id}/addresses/new", data={"street": f"Calle {name} 9", "country": "ES"})
    # A group holding both clients is deleted: its event lists the clients it held.
    temporary = factory.group(tenant, "Temporary")
    _add_to_group(app, tenant, temporary, [mine, theirs])
    assert admin.post(f"/acme/groups/{temporary}/delete").status_code == 302

    login(client, "acme", "auditor@acme.test")
    trail = client.get("/acme/audit/").get_data(as_text=True).split("audit-events")[1]
    export = client.get("/acme/audit/export.csv").get_data(as_text=True)
    group_page = client.get(f"/acme/groups/{south}").get_data(as_text=True)
    for text in (trail, export, group_page):
        for secret in ("Southern Client (", "B22222228", "private notes of Southern", "Calle Southern"):
            assert secret not in text, secret
    assert "Northern Client" in trail and "private notes of Northern" in export and "Calle Northern" in trail
    boss = app.test_client()
    login(boss, "acme", "admin@acme.test")
    everything = boss.get("/acme/audit/export.csv").get_data(as_text=True)
    assert "B22222228" in everything and "private notes of Southern" in everything, "all of it, for who sees all"
    assert "Southern Client (B22222228)" in boss.get("/acme/audit/?object_type=group").get_data(as_text=True)
    assert "Temporary" in trail, "the group's own event stays, without the clients"


def _add_to_group(app, tenant, group_id: int, client_ids) -> None:
    from core.clients.models import GroupClient
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        db.session.add_all(GroupClient(group_id=group_id, client_id=client_id) for client_id in client_ids)
        db.session.commit()


def test_view_all_sees_every_client(app, factory, client):
    _two_centres(app, factory)
    login(client, "acme", "boss@acme.test")
    listing = client.get("/acme/clients/").get_data(as_text=True)
    assert "Northern Client" in listing and "Southern Client" in listing


def test_the_client_api_pages_with_a_cursor_and_filters_like_the_list(app, factory, client):
    tenant, north, _south, _mine, _theirs = _two_centres(app, factory)
    for name in ("Alfa SL", "Beta SL", "Gamma SL"):
        factory.client(tenant, name, groups=[north])
    login(client, "acme", "boss@acme.test")
    first = client.get("/acme/clients/api/?limit=2").get_json()
    assert [c["name"] for c in first["clients"]] == ["Alfa SL", "Beta SL"] and first["next"]
    rest = client.get(f"/acme/clients/api/?limit=2&after={first['next']}").get_json()
    assert [c["name"] for c in rest["clients"]] == ["Gamma SL", "Northern Client"]
    south = client.get(f"/acme/clients/api/?group={_south}").get_json()
    assert [(c["name"], c["groups"]) for c in south["clients"]] == [("Southern Client", ["South"])]
    assert south["next"] is None and south["clients"][0]["url"].startswith("/acme/clients/")


def test_staff_must_put_new_clients_in_one_of_their_groups(app, factory, client):
    _tenant, north, south, _mine, _theirs = _two_centres(app, factory)
    login(client, "acme", "north@acme.test")
    page = _create(client).get_data(as_text=True)
    assert "Choose at least one of your groups" in page
    page = _create(client, groups=[str(south)]).get_data(as_text=True)
    assert "is not a valid choice" in page
    assert _create(client, groups=[str(north)]).status_code == 302


def test_editing_keeps_groups_the_editor_cannot_manage(app, factory, client):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant, north, south, mine, _theirs = _two_centres(app, factory)
    with app.app_context(), tenant_context(tenant.id):
        from core.clients.models import GroupClient

        db.session.add(GroupClient(group_id=south, client_id=mine))
        db.session.commit()
    login(client, "acme", "north@acme.test")
    client.post(
        f"/acme/clients/{mine}/edit",
        data={
            "kind": "company",
            "country": "ES",
            "tax_id": _tax_id(app, tenant, mine),
            "company_name": "Renamed",
            "groups": [str(north)],
        },
    )
    with app.app_context(), tenant_context(tenant.id):
        renamed = db.session.get(Client, mine)
        assert renamed.name == "Renamed" and {g.id for g in renamed.groups} == {north, south}


def _tax_id(app, tenant, client_id):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return db.session.get(Client, client_id).tax_id


# --- list -------------------------------------------------------------------------------


def test_the_list_searches_filters_and_pages(app, factory, client):
    tenant = _admin(factory, client)
    group = factory.group(tenant, "Centro")
    for n in range(55):
        factory.client(tenant, f"Empresa {n:02d}", groups=[group] if n % 2 else [])
    factory.client(tenant, "Ñandú Álvarez SL", email="nandu@acme.test")
    factory.client(tenant, "Old Company", active=False)
    first = client.get("/acme/clients/").get_data(as_text=True)
    assert "Empresa 00" in first and "Empresa 49" in first and "Empresa 50" not in first
    assert "Old Company" not in first
    next_link = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(next_link).get_data(as_text=True)
    assert "Empresa 50" in second and "Ñandú" in second and "Empresa 00" not in second
    assert "Ñandú Álvarez SL" in client.get("/acme/clients/?q=nandu alvarez").get_data(as_text=True)
    assert "Ñandú Álvarez SL" in client.get("/acme/clients/?q=NANDU@acme").get_data(as_text=True)
    in_group = client.get(f"/acme/clients/?group={group}").get_data(as_text=True)
    assert "Empresa 01" in in_group and "Empresa 02" not in in_group
    assert "Old Company" in client.get("/acme/clients/?active=no").get_data(as_text=True)
    assert client.get("/acme/clients/?q=100%25").status_code == 200


def test_export_streams_every_matching_client_as_csv(app, factory, client):
    tenant = _admin(factory, client)
    for n in range(3):
        factory.client(tenant, f"Cliente {n:04d}", address=n == 0)
    _bulk_clients(app, tenant, 1200)
    response = client.get("/acme/clients/export.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "tax_id" and len(rows) == 1 + 1203
    by_name = {row[6]: row for row in rows[1:]}
    street = rows[0].index("street")
    assert by_name["Cliente 0000"][street] == "Calle Cliente 0000 1" and by_name["Bulk 00000"][street] == ""


def _bulk_clients(app, tenant, count: int) -> None:
    from sqlalchemy import insert

    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        db.session.execute(
            insert(Client),
            [
                {
                    "kind": "company",
                    "tax_id": f"ZZ{n:06d}",
                    "tax_id_type": "other",
                    "country": "FR",
                    "company_name": f"Bulk {n:05d}",
                    "name": f"Bulk {n:05d}",
                    "search_text": f"bulk {n:05d}",
                }
                for n in range(count)
            ],
        )
        db.session.commit()


# --- page, addresses, state, hooks ------------------------------------------------------


def test_the_client_page_has_data_plugin_and_history_tabs(app, factory, client):
    _admin(factory, client)
    client_id = _create(client).location.rsplit("/", 1)[1]
    page = client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    assert 'data-tab="sample"' in page and "?tab=history" in page
    tab = client.get(f"/acme/clients/{client_id}?tab=sample").get_data(as_text=True)
    assert "Sample notes: Ana Álamo Ruiz" in tab
    assert client.get(f"/acme/clients/{client_id}?tab=nope").status_code == 404


def test_a_plugin_tab_is_absent_when_the_plugin_is_off(app, factory, client):
    _admin(factory, client)
    client_id = _create(client).location.rsplit("/", 1)[1]
    client.post("/acme/settings/plugins/sample", data={"enabled": "0"})
    assert 'data-tab="sample"' not in client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    assert client.get(f"/acme/clients/{client_id}?tab=sample").status_code == 404


def test_addresses_are_added_edited_and_deleted(app, factory, client):
    tenant = _admin(factory, client)
    client_id = int(_create(client).location.rsplit("/", 1)[1])
    other = factory.client(tenant, "Other SL")
    client.post(
        f"/acme/clients/{client_id}/addresses/new",
        data={
            "label": "Oficina",
            "street": "Calle Mayor 1",
            "postal_code": "28013",
            "city": "Madrid",
            "country": "ES",
        },
    )
    page = client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    assert "Calle Mayor 1, 28013 Madrid, ES" in page
    address_id = re.search(rf"/acme/clients/{client_id}/addresses/(\d+)", page).group(1)
    assert client.get(f"/acme/clients/{other}/addresses/{address_id}").status_code == 404
    client.post(f"/acme/clients/{client_id}/addresses/{address_id}", data={"street": "Calle Menor 2", "country": "ES"})
    assert "Calle Menor 2" in client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    empty = client.post(f"/acme/clients/{client_id}/addresses/new", data={"street": " ", "country": "ES"})
    assert "The street is required." in empty.get_data(as_text=True)
    client.post(f"/acme/clients/{client_id}/addresses/{address_id}/delete")
    assert "Calle Menor 2" not in client.get(f"/acme/clients/{client_id}").get_data(as_text=True)


def test_deactivating_hides_the_client_from_the_active_list(factory, client):
    _admin(factory, client)
    client_id = _create(client).location.rsplit("/", 1)[1]
    client.post(f"/acme/clients/{client_id}/deactivate")
    assert "Ana Álamo Ruiz" not in _table(client.get("/acme/clients/"))
    client.post(f"/acme/clients/{client_id}/reactivate")
    assert "Ana Álamo Ruiz" in _table(client.get("/acme/clients/"))


def _table(response) -> str:
    return response.get_data(as_text=True).split('id="client-list"')[1]


def test_plugins_hear_of_new_and_changed_clients_after_the_commit(app, factory, client):
    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    tenant = _admin(factory, client)
    client_id = _create(client).location.rsplit("/", 1)[1]
    client.post(f"/acme/clients/{client_id}/edit", data={**PERSON, "phone": "600999888"})
    client.post(f"/acme/clients/{client_id}/edit", data={**PERSON, "phone": "600999888"})
    client.post(f"/acme/clients/{client_id}/addresses/new", data={"street": "Calle Mayor 1", "country": "ES"})
    with app.app_context(), tenant_context(tenant.id):
        from core.clients.models import ClientAddress

        address_id = db.session.scalar(select(ClientAddress.id))
    client.post(f"/acme/clients/{client_id}/addresses/{address_id}/delete")
    with app.app_context(), tenant_context(tenant.id):
        titles = db.session.scalars(select(SampleNote.title).order_by(SampleNote.id)).all()
    assert titles == [
        "Welcome note",
        "Client Ana Álamo Ruiz created",
        "Client Ana Álamo Ruiz changed: phone",
        "Client Ana Álamo Ruiz changed: addresses",
        "Client Ana Álamo Ruiz changed: addresses",
    ]


def test_deleting_a_group_tells_plugins_its_clients_left_it(app, factory, client):
    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    tenant = _admin(factory, client)
    north = factory.group(tenant, "North")
    factory.client(tenant, "Stays SL", groups=[north])
    client.post(f"/acme/groups/{north}/delete")
    with app.app_context(), tenant_context(tenant.id):
        titles = db.session.scalars(select(SampleNote.title)).all()
    assert "Client Stays SL changed: groups" in titles
    assert "Stays SL" in client.get("/acme/clients/").get_data(as_text=True)


def test_a_failing_plugin_cannot_fail_or_undo_the_change_it_hears_of(app, factory, client, run_jobs):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    tenant = _admin(factory, client)
    response = _create(client, kind="company", tax_id="Q2826000H", company_name="Faulty Works SL")
    assert response.status_code == 302
    assert "Faulty Works SL" in client.get(response.location).get_data(as_text=True)
    _import(client, "NIF,Razón social\nA58818501,Faulty Imports SA\n")
    run_jobs()
    # The plugin's failure is its own batch's: the next clients reach it as usual.
    _import(client, "NIF,Razón social\nB12345674,Sound SL\n")
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        titles = db.session.scalars(select(SampleNote.title)).all()
        names = set(db.session.scalars(select(Client.name)))
    assert "half-written" not in titles and "Client Sound SL created" in titles
    assert names == {"Faulty Works SL", "Faulty Imports SA", "Sound SL"}


def test_the_group_page_lists_its_clients(app, factory, client):
    tenant = _admin(factory, client)
    group = factory.group(tenant, "Centro Norte")
    factory.client(tenant, "Grouped SL", groups=[group])
    page = client.get(f"/acme/groups/{group}").get_data(as_text=True)
    assert "Grouped SL" in page


# --- import -----------------------------------------------------------------------------


IMPORT_CSV = (
    "NIF;Tipo;Nombre;Apellidos;Razón social;Email;Teléfono;Grupos;Dirección;CP;Ciudad\n"
    "12345678Z;persona;Ana;García;;ana@x.test;600111222;Centro;Calle A 1;46001;Valencia\n"
    "B12345674;empresa;;;Construcciones SL;info@c.test;;;;;\n"
    "12345678A;persona;Mal;DNI;;;;;;;\n"
    "X1234567L;persona;Li;;;;;;;;\n"
    "B12345674;empresa;;;Duplicada SL;;;;;;\n"
    "Y1234567X;persona;Yan;Ke;;not-an-email;;;;;\n"
    "Z1234567R;persona;Zoe;Li;;;;Inexistente;;;\n"
)


def _import(client, text: str, slug="acme", group=""):
    return client.post(
        f"/{slug}/clients/import",
        data={"file": (io.BytesIO(text.encode()), "clientes.csv"), "group": group},
        content_type="multipart/form-data",
    )


def test_import_writes_valid_rows_and_reports_each_bad_one(app, factory, client, run_jobs):
    tenant = _admin(factory, client, language="es")
    factory.group(tenant, "Centro")
    response = _import(client, IMPORT_CSV)
    assert response.status_code == 302
    run_jobs()
    page = client.get(response.location).get_data(as_text=True)
    summary = page.split('id="import-summary"')[1]
    assert '<div class="display-6">7</div>' in summary and 'text-success">2</div>' in summary
    problems = page.split('id="import-problems"')[1]
    for row in ("4", "5", "6", "7", "8"):
        assert f"<td>{row}</td>" in problems, row
    assert "<td>Identificación fiscal</td>" in problems and "<td>Grupos</td>" in problems
    assert "12345678A" in problems and "Inexistente" in problems
    rejected = client.get(f"{response.location}/rejected.csv").get_data(as_text=True).lstrip("\ufeff")
    lines = list(csv.reader(io.StringIO(rejected), delimiter=","))
    assert lines[0][-1] == "error" and len(lines) == 6
    listing = client.get("/acme/clients/?active=all").get_data(as_text=True)
    assert "Ana García" in listing and "Construcciones SL" in listing and "Duplicada" not in listing


def test_importing_the_same_file_again_creates_no_duplicates(app, factory, client, run_jobs):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    factory.group(tenant, "Centro")
    for _ in range(2):
        _import(client, IMPORT_CSV)
        run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        assert db.session.scalar(select(func.count()).select_from(Client)) == 2
    latest = client.get("/acme/clients/import").get_data(as_text=True)
    assert latest.count("/acme/clients/imports/") == 2


def test_an_import_updates_what_changed_and_keeps_the_rest(app, factory, client, run_jobs):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    _import(client, "NIF,Nombre,Apellidos,Email\n12345678Z,Ana,García,ana@x.test\nX1234567L,Li,Wei,li@x.test\n")
    run_jobs()
    _import(client, "NIF,Nombre,Apellidos,Email\n12345678Z,Ana,García,ana@new.test\nX1234567L,Li,Wei,li@x.test\n")
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        emails = dict(db.session.execute(select(Client.tax_id, Client.email)).all())
    assert emails == {"12345678Z": "ana@new.test", "X1234567L": "li@x.test"}
    report = client.get("/acme/clients/imports/2").get_data(as_text=True)
    assert '<div class="display-6">1 / 1</div>' in report


def test_plugins_hear_of_the_clients_an_import_creates_and_changes(app, factory, client, run_jobs):
    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    tenant = _admin(factory, client)
    factory.group(tenant, "Centro")
    _import(client, "NIF,Nombre,Apellidos,Email\n12345678Z,Ana,García,ana@x.test\nX1234567L,Li,Wei,li@x.test\n")
    run_jobs()
    _import(
        client,
        "NIF,Nombre,Apellidos,Email,Grupos\n12345678Z,Ana,García,ana@new.test,\nX1234567L,Li,Wei,li@x.test,Centro\n"
        "Y1234567X,Yan,Ke,,\n",
    )
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        titles = db.session.scalars(select(SampleNote.title).order_by(SampleNote.id)).all()
    assert titles[1:3] == ["Client Ana García created", "Client Li Wei created"]
    assert sorted(titles[3:]) == [
        "Client Ana García changed: email",
        "Client Li Wei changed: groups",
        "Client Yan Ke created",
    ]


def test_an_import_tells_the_plugins_to_hold_their_messages_unless_chosen(app, factory, client, run_jobs):
    """Off by default: the plugins hold back what the new clients would be told, the report says
    how many and sends them on confirmation, once; ticked, nothing is held."""
    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    tenant = _admin(factory, client)
    form = client.get("/acme/clients/import").get_data(as_text=True)
    assert 'name="notify" type="checkbox" value="y">' in form
    report_url = _import(client, "NIF,Nombre,Apellidos\n12345678Z,Ana,García\nX1234567L,Li,Wei\n").location
    run_jobs()

    def bodies() -> list[str]:
        with app.app_context(), tenant_context(tenant.id):
            return db.session.scalars(
                select(SampleNote.body).where(SampleNote.title.like("Client %")).order_by(SampleNote.id)
            ).all()

    import_id = report_url.rsplit("/", 1)[1]
    assert bodies() == [f"held for core.clients_import:{import_id}"] * 2
    report = client.get(report_url).get_data(as_text=True)
    assert "2 messages to the new clients were held back" in report
    client.post(f"{report_url}/notices", data={"counted": "2"})
    client.post(f"{report_url}/notices", data={"counted": "2"})
    assert bodies() == ["released"] * 2, "sent once"
    assert "held back" not in client.get(report_url).get_data(as_text=True)

    told = client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(b"NIF,Nombre,Apellidos\nY1234567X,Yan,Ke\n"), "c.csv"), "notify": "y"},
        content_type="multipart/form-data",
    )
    run_jobs()
    assert bodies()[-1] == "", "chosen: nothing held"
    assert "held back" not in client.get(told.location).get_data(as_text=True)


def test_a_file_with_fewer_columns_changes_only_what_it_has(app, factory, client, run_jobs):
    from core.audit.models import AuditEvent
    from core.clients.models import Client, ClientAddress
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    _import(
        client,
        "NIF,Nombre,Apellidos,Email,Teléfono,Notas,Dirección,CP,Activo\n"
        "12345678Z,Ana,García,ana@x.test,600111222,VIP,Calle A 1,46001,no\n",
    )
    run_jobs()
    _import(client, "NIF;Email;Dirección;CP\n12345678-z;ana@new.test;Calle B 2;46002\n")
    run_jobs()
    _import(client, "NIF;Email;Dirección;CP\n12345678Z;ana@new.test;calle b 2;46002\n")
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        ana = db.session.scalar(select(Client))
        streets = db.session.scalars(select(ClientAddress.street).order_by(ClientAddress.id)).all()
        address_events = db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.object_type == "client_address")
        )
        created = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "client"))
    assert (ana.name, ana.email, ana.phone, ana.notes, ana.active) == (
        "Ana García",
        "ana@new.test",
        "600111222",
        "VIP",
        False,
    )
    assert streets == ["Calle A 1", "Calle B 2"] and address_events == 2
    assert created.changes["active"] == [None, False]
    third = client.get("/acme/clients/imports/3").get_data(as_text=True)
    assert '<div class="display-6">0 / 1</div>' in third


def test_an_italian_organisation_imports_codici_fiscali_without_a_country_column(app, factory, client, run_jobs):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client, language="it")
    _import(client, "Codice fiscale,Nome,Cognome\nRSSMRA85T10A562S,Mario,Rossi\n")
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        assert db.session.execute(select(Client.country, Client.tax_id_type)).one() == ("IT", "it_cf")


def test_a_client_has_a_language_of_its_own_for_mail_and_portal(app, factory, client, run_jobs, outbox):
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client, language="es")
    client_id = _create(client, locale="it").location.rsplit("/", 1)[1]
    assert "Italiano" in client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    assert client.get(f"/acme/clients/api/{client_id}").get_json()["language"] == "it"
    client.post(f"/acme/clients/{client_id}/portal/invite")
    (mail,) = outbox()
    assert mail.language == "it"
    with app.app_context(), tenant_context(tenant.id):
        assert db.session.scalar(select(User.locale).where(User.client_id == int(client_id))) == "it"
    refused = _create(client, tax_id="X1234567L", locale="fr")
    assert refused.status_code == 200

    response = _import(client, "NIF;Nombre;Apellidos;Idioma\nY1234567X;Yan;Ke;Inglés\nZ1234567R;Zoe;Li;francés\n")
    run_jobs()
    problems = client.get(response.location).get_data(as_text=True).split('id="import-problems"')[1]
    assert "<td>Idioma</td>" in problems and "<td>3</td>" in problems
    export = list(
        csv.reader(io.StringIO(client.get("/acme/clients/export.csv").get_data(as_text=True).lstrip("\ufeff")))
    )
    language = export[0].index("language")
    first_name = export[0].index("first_name")
    assert {row[first_name]: row[language] for row in export[1:]} == {"Ana": "it", "Yan": "en"}


def test_the_form_and_the_import_take_a_dni_written_with_dots_and_store_it_compact(app, factory, client, run_jobs):
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    assert _create(client, tax_id="12.345.678-Z").status_code == 302
    _import(client, "NIF;Nombre;Apellidos\nX.1234567-L;Li;Wei\n12.345.678-z;Ana;Álamo Ruiz\n")
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        stored = dict(db.session.execute(select(Client.tax_id, Client.name)).all())
    assert stored == {"12345678Z": "Ana Álamo Ruiz", "X1234567L": "Li Wei"}, "the import found the same client"


def test_an_import_without_a_tax_id_column_says_so(factory, client, run_jobs):
    _admin(factory, client)
    response = _import(client, "name,email\nAna,ana@x.test\n")
    run_jobs()
    assert "The file has no tax id column" in client.get(response.location).get_data(as_text=True)


def test_staff_import_into_one_of_their_groups_only(app, factory, client, run_jobs):
    tenant = factory.tenant("acme", language="en")
    staff = factory.user(tenant, "north@acme.test", permissions=["core.clients:view", "core.clients:import"])
    north = factory.group(tenant, "North", [staff])
    factory.client(tenant, "Hidden SL", tax_id="B12345674")
    login(client, "acme", "north@acme.test")
    refused = _import(client, "NIF\n12345678Z\n")
    assert refused.status_code == 200 and "Choose one of your groups" in refused.get_data(as_text=True)
    response = _import(
        client, "NIF,Nombre,Apellidos,Razón social\n12345678Z,Ana,García,\nB12345674,,,Hidden SL\n", group=str(north)
    )
    run_jobs()
    page = client.get(response.location).get_data(as_text=True)
    assert "The tax id B12345674 cannot be used. Ask someone who manages every client." in page
    assert "already belongs" not in page and "Hidden SL" not in page.split('id="import-problems"')[1]
    assert "Ana García" in client.get("/acme/clients/").get_data(as_text=True)


def test_the_search_box_finds_only_visible_clients(app, factory, client):
    _two_centres(app, factory)
    login(client, "acme", "north@acme.test")
    page = client.get("/acme/search?q=client").get_data(as_text=True)
    assert "Northern Client" in page and "Southern Client" not in page


def test_an_imports_changes_are_in_each_clients_history_as_the_form_records_them(app, factory, client, run_jobs):
    """The import writes set-based (audited_write): each changed client gets one event with its
    fields before and after and its groups by name, as an edit on the form records them."""
    from core.audit.models import AuditEvent
    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    factory.group(tenant, "Centro")
    _import(client, "NIF,Nombre,Apellidos,Email\n12345678Z,Ana,García,ana@x.test\nX1234567L,Li,Wei,li@x.test\n")
    run_jobs()
    _import(
        client,
        "NIF,Nombre,Apellidos,Email,Grupos,Dirección,CP,Ciudad\n"
        "12345678Z,Ana,García,ana@new.test,Centro,Calle Mayor 1,46001,Valencia\n"
        "X1234567L,Li,Wei,li@x.test,,,,\n",
    )
    run_jobs()
    with app.app_context(), tenant_context(tenant.id):
        ana = db.session.scalar(select(Client.id).where(Client.tax_id == "12345678Z"))
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "update").order_by(AuditEvent.id)
        ).all()
        address = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "client_address"))
        updates = [(e.object_type, e.object_id, e.object_label, e.actor_name, e.changes) for e in events]
        address_event = (address.object_label, address.parent_type, address.parent_id, address.changes)
    assert updates == [
        (
            "client",
            ana,
            "Ana García (12345678Z)",
            "Ada Admin",
            {"email": ["ana@x.test", "ana@new.test"], "groups": [[], ["Centro"]]},
        )
    ], "one event for Ana; Li, unchanged, has none"
    assert address_event == (
        "Calle Mayor 1, 46001, Valencia",
        "client",
        ana,
        {
            "street": [None, "Calle Mayor 1"],
            "postal_code": [None, "46001"],
            "city": [None, "Valencia"],
            "country": [None, "ES"],
        },
    )
    history = client.get(f"/acme/clients/{ana}?tab=history").get_data(as_text=True)
    assert "ana@new.test" in history and "Centro" in history


def test_an_import_updates_only_the_clients_of_its_own_organisation(app, factory, client, run_jobs):
    from sqlalchemy import event

    from core.clients.models import Client
    from core.extensions import db
    from tenants.context import tenant_context

    _admin(factory, client)
    _import(client, "NIF,Nombre,Apellidos,Email\n12345678Z,Ana,García,ana@x.test\n")
    run_jobs()
    other = factory.tenant("other")
    theirs = factory.client(other, "Ana García", "12345678Z", email="ana@other.test")
    statements = []

    def seen(connection, cursor, statement, *args):
        if "UPDATE core_clients" in statement:
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        _import(client, "NIF,Nombre,Apellidos,Email\n12345678Z,Ana,García,ana@new.test\n")
        run_jobs()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    (update,) = statements
    assert re.search(r"core_clients\.tenant_id = ", update), "the statement names the tenant itself"
    with app.app_context(), tenant_context(other.id):
        assert db.session.get(Client, theirs).email == "ana@other.test"


def test_a_large_import_refreshes_the_planners_statistics_itself(
    app, factory, client, run_jobs, database, owner_engine
):
    from sqlalchemy import text

    from core.clients.imports import ANALYSE_AFTER

    factory.group(_admin(factory, client), "Centro")
    letters = "TRWAGMYFPDXBNJZSQVHLCKE"
    rows = [
        f"{n:08d}{letters[n % 23]};persona;Nombre {n};Apellido;;;;Centro;Calle {n};46001;Valencia"
        for n in range(1, ANALYSE_AFTER + 2)
    ]
    postgres = database["engine"] == "postgresql"
    with owner_engine.connect() as connection:
        before = connection.execute(text("SELECT clock_timestamp()")).scalar() if postgres else None
    assert _import(client, IMPORT_CSV.splitlines()[0] + "\n" + "\n".join(rows) + "\n").status_code == 302
    run_jobs()
    with owner_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM core_clients")).scalar() == len(rows)
        if postgres:
            analysed = connection.execute(
                text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze >= :before"), {"before": before}
            ).scalars()
        else:
            analysed = connection.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1")).scalars()
        assert {"core_clients", "core_group_clients", "core_client_addresses"} <= set(analysed)
