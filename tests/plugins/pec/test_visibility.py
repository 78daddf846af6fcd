"""An assistant sees only the boxes entered from their own panel, even on a domain other assistants
(and the reseller) register on; the reseller sees every box."""

from __future__ import annotations

import csv
import io

from tests.conftest import login
from tests.plugins.pec.conftest import BIANCHI_CF, make_assistant, make_box, make_holder


def rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_assistant_sees_only_own_boxes(app, factory, reseller):
    _anna, anna = make_assistant(app, reseller, "anna@rivendita.test")
    _bruno, bruno = make_assistant(app, reseller, "bruno@rivendita.test")
    rossi, rossi_address = make_holder(app, reseller.tenant, user_id=anna)
    bianchi, bianchi_address = make_holder(app, reseller.tenant, BIANCHI_CF, email="laura@cliente.test", user_id=bruno)
    annas = make_box(app, reseller, "anna.box", rossi, rossi_address, user_id=anna)
    brunos = make_box(app, reseller, "bruno.box", bianchi, bianchi_address, user_id=bruno)
    resellers = make_box(app, reseller, "sede", rossi, rossi_address)

    anna_client, admin_client = app.test_client(), app.test_client()
    login(anna_client, reseller.slug, "anna@rivendita.test", "assistant-pass-1")
    login(admin_client, reseller.slug, "admin@rivendita.test")

    # The list, the detail, the history, the state and the export: the assistant's own box only.
    listing = anna_client.get("/rivendita/pec/boxes/").get_data(as_text=True)
    assert "anna.box@" in listing and "bruno.box@" not in listing and "sede@" not in listing
    assert anna_client.get(f"/rivendita/pec/boxes/{annas}").status_code == 200
    for other in (brunos, resellers):
        for path in ("", "/history", "/state", "/agent", "/package", "/documents", "/address"):
            assert anna_client.get(f"/rivendita/pec/boxes/{other}{path}").status_code == 404, path
        assert anna_client.post(f"/rivendita/pec/boxes/{other}/action", data={"action": "close"}).status_code == 404
    exported = [r[0] for r in rows(anna_client.get("/rivendita/pec/boxes/export.csv"))[1:]]
    assert exported == ["anna.box@pec.rivendita.example"]
    # A bulk action names the others' boxes: they are not touched.
    anna_client.post("/rivendita/pec/boxes/bulk", data={"action": "suspend", "box_ids": [brunos, resellers]})

    # Holders: those the assistant entered and those of their boxes; the search does not reach others.
    holders_page = anna_client.get("/rivendita/pec/holders/").get_data(as_text=True)
    assert "Mario Rossi" in holders_page and "Laura Bianchi" not in holders_page
    assert anna_client.get(f"/rivendita/pec/holders/{bianchi}").status_code == 404
    assert "Laura" not in anna_client.get("/rivendita/pec/holders/?q=bianchi").get_data(as_text=True)
    # The Info Servizio counts only what the assistant sees.
    summary = anna_client.get("/rivendita/pec/").get_data(as_text=True)
    assert 'data-count="pending">1<' in summary

    # The reseller sees all three.
    listing = admin_client.get("/rivendita/pec/boxes/").get_data(as_text=True)
    assert all(name in listing for name in ("anna.box@", "bruno.box@", "sede@"))
    assert len(rows(admin_client.get("/rivendita/pec/boxes/export.csv"))) == 4
    assert 'data-count="pending">3<' in admin_client.get("/rivendita/pec/").get_data(as_text=True)


def test_a_role_with_view_all_sees_every_box(app, factory, reseller):
    from tests.conftest import PASSWORD

    rossi, rossi_address = make_holder(app, reseller.tenant)
    make_box(app, reseller, "uno", rossi, rossi_address)
    factory.user(reseller.tenant, "clerk@rivendita.test", permissions=["pec.boxes:view"])
    factory.user(reseller.tenant, "chief@rivendita.test", permissions=["pec.boxes:view", "pec.boxes:view_all"])
    clerk, chief = app.test_client(), app.test_client()
    login(clerk, reseller.slug, "clerk@rivendita.test", PASSWORD)
    login(chief, reseller.slug, "chief@rivendita.test", PASSWORD)
    assert "uno@" not in clerk.get("/rivendita/pec/boxes/").get_data(as_text=True)
    assert "uno@" in chief.get("/rivendita/pec/boxes/").get_data(as_text=True)


def test_the_list_pages_by_keyset_in_a_constant_number_of_queries(app, reseller):
    from core.api import User, db
    from plugins.pec.models import Box
    from tests.conftest import count_queries
    from tests.plugins.pec.conftest import in_tenant

    rossi, rossi_address = make_holder(app, reseller.tenant)
    with in_tenant(app, reseller.tenant):
        db.session.add_all(
            Box(
                domain_id=reseller.domain_id,
                local_part=f"box{i:03d}",
                address=f"box{i:03d}@pec.rivendita.example",
                holder_id=rossi,
                holder_address_id=rossi_address,
                request_id=f"req-{i}",
                created_by_id=db.session.get(User, reseller.admin).id,
            )
            for i in range(120)
        )
        db.session.commit()
    client = app.test_client()
    login(client, reseller.slug, "admin@rivendita.test")
    client.get("/rivendita/pec/boxes/")  # warm up (translations, templates)
    with count_queries(app) as first:
        page = client.get("/rivendita/pec/boxes/").get_data(as_text=True)
    assert "box119@" in page and "box070@" in page and "box069@" not in page
    cursor = page.split("after=")[1].split('"')[0].replace("&amp;", "&")
    with count_queries(app) as second:
        page = client.get(f"/rivendita/pec/boxes/?after={cursor}").get_data(as_text=True)
    assert "box069@" in page and "box020@" in page and "box019@" not in page
    assert len(second) == len(first)
