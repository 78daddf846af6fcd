"""Packages: only ATTIVA boxes join an agent's package, never more than its size, only a package of
the box's agent; assistants' packages never exceed the pacchetto postmaster, and an assistant "a
pacchetto" registers only within their packages ("a consumo": without numeric limits)."""

from __future__ import annotations

import pytest

from tests.conftest import login
from tests.plugins.pec.conftest import (
    BIANCHI_CF,
    activate_box,
    box_row,
    in_tenant,
    make_assistant,
    make_box,
    make_holder,
    tenant_row,
)


def agent_with_package(app, reseller, size: int, email: str = "paolo@agenti.test") -> tuple[int, int]:
    from core.api import db
    from plugins.pec import agents

    with in_tenant(app, reseller.tenant):
        agent = agents.create_agent(agents.AgentData("Agenzia Nord", email=email), [reseller.domain_id])
        package = agents.add_package(agent, f"Pacchetto {email}", size, 1)
        db.session.commit()
        return agent.id, package.id


def test_only_active_boxes_join_a_package_and_never_more_than_its_size(app, client, reseller):
    agent, package = agent_with_package(app, reseller, size=2)
    rossi, address = make_holder(app, reseller.tenant)
    boxes = [make_box(app, reseller, f"casella{i}", rossi, address) for i in range(3)]
    login(client, reseller.slug, "admin@rivendita.test")
    for box in boxes:
        client.post(f"/rivendita/pec/boxes/{box}/agent", data={"agent_id": agent})
        assert box_row(app, reseller.tenant, box)["agent_id"] == agent

    refused = client.post(f"/rivendita/pec/boxes/{boxes[0]}/package", data={"package_id": package})
    assert "Only an active box can join a package." in refused.get_data(as_text=True)
    for box in boxes:
        activate_box(app, reseller, box)
    for box in boxes[:2]:
        response = client.post(f"/rivendita/pec/boxes/{box}/package", data={"package_id": package})
        assert response.status_code == 302
    full = client.post(f"/rivendita/pec/boxes/{boxes[2]}/package", data={"package_id": package})
    assert "The package is full: 2 of 2 boxes." in full.get_data(as_text=True)
    assert [box_row(app, reseller.tenant, b)["package_id"] for b in boxes] == [package, package, None]

    # Removing the association frees a place; suspending a box takes it out of the package too.
    client.post(f"/rivendita/pec/boxes/{boxes[0]}/package/remove")
    client.post(f"/rivendita/pec/boxes/{boxes[1]}/action", data={"action": "suspend"})
    assert client.post(f"/rivendita/pec/boxes/{boxes[2]}/package", data={"package_id": package}).status_code == 302
    assert [box_row(app, reseller.tenant, b)["package_id"] for b in boxes] == [None, None, package]


def test_a_package_of_another_agent_is_refused_and_replacing_the_agent_drops_the_package(app, client, reseller):
    north, north_package = agent_with_package(app, reseller, size=5)
    south, _south_package = agent_with_package(app, reseller, size=5, email="rosa@agenti.test")
    rossi, address = make_holder(app, reseller.tenant)
    box = make_box(app, reseller, "casella", rossi, address)
    activate_box(app, reseller, box)
    login(client, reseller.slug, "admin@rivendita.test")
    client.post(f"/rivendita/pec/boxes/{box}/agent", data={"agent_id": south})
    wrong = client.post(f"/rivendita/pec/boxes/{box}/package", data={"package_id": north_package})
    assert "Only a package of the box&#39;s agent can be chosen" in wrong.get_data(as_text=True)
    client.post(f"/rivendita/pec/boxes/{box}/agent", data={"agent_id": north})
    client.post(f"/rivendita/pec/boxes/{box}/package", data={"package_id": north_package})
    assert box_row(app, reseller.tenant, box)["package_id"] == north_package
    # "Applica subentro agente": another agent, whose packages the old one's is not.
    client.post(f"/rivendita/pec/boxes/{box}/agent", data={"agent_id": south})
    assert box_row(app, reseller.tenant, box)["agent_id"] == south
    assert box_row(app, reseller.tenant, box)["package_id"] is None
    # "Elimina associazione agente".
    client.post(f"/rivendita/pec/boxes/{box}/agent/remove")
    assert box_row(app, reseller.tenant, box)["agent_id"] is None


def test_an_agent_requested_at_registration_can_be_withdrawn(app, client, reseller):
    make_holder(app, reseller.tenant)
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(
        "/rivendita/pec/boxes/new",
        data={
            "local_part": "con.agente",
            "domain_id": reseller.domain_id,
            "codice_fiscale": "RSSMRA78D15H501U",
            "want_agent": "yes",
            "action": "save",
        },
    )
    box = int(response.location.split("/boxes/")[1].split("/")[0])
    assert box_row(app, reseller.tenant, box)["agent_requested"] is True
    client.post(f"/rivendita/pec/boxes/{box}/agent/cancel-request")
    assert box_row(app, reseller.tenant, box)["agent_requested"] is False


def set_postmaster(app, reseller, size: int | None) -> None:
    from core.api import Tenant, db
    from tenants import licensing

    with app.app_context():
        licensing.set_licence(db.session.get(Tenant, reseller.tenant.id), "pec", True, {"postmaster_boxes": size})


def test_assistant_packages_never_exceed_the_pacchetto_postmaster(app, client, reseller):
    set_postmaster(app, reseller, 10)
    anna, _ = make_assistant(app, reseller, "anna@rivendita.test", package_mode="pacchetto")
    bruno, _ = make_assistant(app, reseller, "bruno@rivendita.test", package_mode="pacchetto")
    login(client, reseller.slug, "admin@rivendita.test")
    assert (
        client.post(
            f"/rivendita/pec/assistants/{anna}/packages", data={"name": "A", "size": 6, "years": "1"}
        ).status_code
        == 302
    )
    over = client.post(f"/rivendita/pec/assistants/{bruno}/packages", data={"name": "B", "size": 5, "years": "1"})
    assert over.status_code == 400
    assert "Only 4 boxes of the pacchetto postmaster (10) are left to assign." in over.get_data(as_text=True)
    assert (
        client.post(
            f"/rivendita/pec/assistants/{bruno}/packages", data={"name": "B", "size": 4, "years": "1"}
        ).status_code
        == 302
    )

    # A suspended package frees its boxes; resuming it must fit again.
    from core.api import db
    from plugins.pec.models import Package

    with in_tenant(app, reseller.tenant):
        first = db.session.scalar(db.select(Package).where(Package.assistant_id == anna))
        first_id = first.id
    client.post(f"/rivendita/pec/assistants/{anna}/packages/{first_id}/state", data={"active": "0"})
    assert (
        client.post(
            f"/rivendita/pec/assistants/{bruno}/packages", data={"name": "C", "size": 6, "years": "1"}
        ).status_code
        == 302
    )
    resumed = client.post(f"/rivendita/pec/assistants/{anna}/packages/{first_id}/state", data={"active": "1"})
    assert resumed.status_code == 302
    page = client.get(f"/rivendita/pec/assistants/{anna}").get_data(as_text=True)
    assert "Only 0 boxes of the pacchetto postmaster (10) are left to assign." in page or "Suspended" in page


def test_an_assistant_by_package_registers_only_within_their_packages(app, client, reseller):
    from core.api import User, db
    from plugins.pec import assistants, boxes
    from plugins.pec.errors import PecError
    from plugins.pec.models import Assistant

    set_postmaster(app, reseller, 100)
    anna_id, anna_user = make_assistant(app, reseller, "anna@rivendita.test", package_mode="pacchetto")
    make_holder(app, reseller.tenant)

    def register(name):
        with in_tenant(app, reseller.tenant):
            try:
                box = boxes.register_box(
                    tenant_row(reseller.tenant),
                    db.session.get(User, anna_user),
                    boxes.Registration(name, reseller.domain_id, "RSSMRA78D15H501U"),
                )
            except PecError as error:
                db.session.rollback()
                return error.code
            db.session.commit()
            return box.id

    assert register("nessuno") == "assistant.package_full"
    with in_tenant(app, reseller.tenant):
        assistants.add_package(tenant_row(reseller.tenant), db.session.get(Assistant, anna_id), "Due", 2, 1)
        db.session.commit()
    assert isinstance(register("prima"), int)
    assert isinstance(register("seconda"), int)
    assert register("terza") == "assistant.package_full"
    # "a consumo": no numeric limit.
    with in_tenant(app, reseller.tenant):
        assistants.disable_packages(db.session.get(Assistant, anna_id))
        db.session.commit()
    assert isinstance(register("terza"), int)


def test_a_deactivated_assistant_cannot_sign_in_nor_register(app, client, reseller):
    anna, _ = make_assistant(app, reseller, "anna@rivendita.test")
    admin = app.test_client()
    login(admin, reseller.slug, "admin@rivendita.test")
    admin.post(f"/rivendita/pec/assistants/{anna}/active", data={"active": "0"})
    response = client.post("/rivendita/login", data={"email": "anna@rivendita.test", "password": "assistant-pass-1"})
    assert response.status_code == 200  # the login page again, saying the account is deactivated
    admin.post(f"/rivendita/pec/assistants/{anna}/active", data={"active": "1"})
    login(client, reseller.slug, "anna@rivendita.test", "assistant-pass-1")


@pytest.mark.parametrize("size", ["0", "-3", "abc", "100001"])
def test_a_package_has_a_sensible_size(app, client, reseller, size):
    agent, _ = agent_with_package(app, reseller, size=1)
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post(f"/rivendita/pec/agents/{agent}/packages", data={"name": "X", "size": size, "years": "1"})
    assert response.status_code == 400


def test_holders_of_other_assistants_stay_invisible_in_the_package_pages(app, reseller):
    # Packages are the reseller's business: an assistant has no access to the assistants' pages.
    _anna, _ = make_assistant(app, reseller, "anna@rivendita.test")
    make_holder(app, reseller.tenant, BIANCHI_CF, email="laura@cliente.test")
    client = app.test_client()
    login(client, reseller.slug, "anna@rivendita.test", "assistant-pass-1")
    assert client.get("/rivendita/pec/assistants/").status_code == 403
