"""The demo: ``demo-it`` becomes a reseller with holders, boxes in every state, two agents with
packages and an assistant who can sign in; loading it twice adds nothing."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from tests.conftest import login
from tests.plugins.pec.conftest import in_tenant, tenant_row


def test_the_demo_reseller_has_something_of_everything_and_loads_once(app, factory):
    from core.api import db
    from plugins.pec import demo
    from plugins.pec.lifecycle import BoxState
    from plugins.pec.models import Agent, Assistant, Box, Package

    tenant = factory.tenant("demo-it", name="Studio Demo", language="it")
    factory.user(tenant, "admin@demo-it.test", role_key="admin", password="demo-admin")
    with in_tenant(app, tenant):
        assert demo.load(tenant_row(tenant))
        assert demo.load(tenant_row(tenant)) == []
        states = set(db.session.scalars(select(Box.state)))
        assert states == {state.value for state in BoxState}
        assert db.session.scalar(select(func.count()).select_from(Agent)) == 2
        assert db.session.scalar(select(func.count()).select_from(Package).where(Package.agent_id.is_not(None))) >= 2
        assistant = db.session.scalar(select(Assistant))
        assert assistant.package_mode == "pacchetto"
        db.session.rollback()
    with app.app_context():
        lines = demo.logins()
    assert re.search(r"reseller code \d{10}", lines[0])
    assert "assistente@demo-it.test / demo-assistant" in lines[1]

    assistant_client = app.test_client()
    login(assistant_client, "demo-it", "assistente@demo-it.test", "demo-assistant")
    listing = assistant_client.get("/demo-it/pec/boxes/").get_data(as_text=True)
    assert "anna.clienti@" in listing and "mario.rossi@" not in listing
    admin = app.test_client()
    login(admin, "demo-it", "admin@demo-it.test", "demo-admin")
    assert "mario.rossi@" in admin.get("/demo-it/pec/boxes/").get_data(as_text=True)


def test_another_tenant_gets_no_pec_demo(app, factory):
    from plugins.pec import demo

    tenant = factory.tenant("demo", language="es")
    with in_tenant(app, tenant):
        assert demo.load(tenant_row(tenant)) == []


def test_the_demo_starts_the_loopback_gestore(app):
    from plugins.pec import demo

    with app.app_context():
        (service,) = demo.services(app)
    assert service.argv[1:3] == ("-m", "plugins.pec.test_provider")
    assert str(demo.PROVIDER_PORT) in service.argv
