"""The audit trail: every change through the services, who and where, secrets masked, append-only."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from core.extensions import utcnow
from tests.conftest import login, login_operator


def _events(app, tenant, **where):
    from core.audit.models import AuditEvent
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, {"type": "object_type"}.get(key, key)) == value)
        return [
            {
                "action": e.action,
                "type": e.object_type,
                "id": e.object_id,
                "label": e.object_label,
                "actor": (e.actor_kind, e.actor_name),
                "changes": e.changes,
                "address": e.address,
                "parent": (e.parent_type, e.parent_id),
            }
            for e in db.session.scalars(stmt)
        ]


def _admin(factory, client, slug="acme"):
    tenant = factory.tenant(slug, language="en")
    factory.user(tenant, f"admin@{slug}.test", role_key="admin", name="Ada Admin")
    login(client, slug, f"admin@{slug}.test")
    return tenant


def test_creating_changing_and_deleting_is_recorded_with_who_and_where(app, factory, client):
    tenant = _admin(factory, client)
    response = client.post(
        "/acme/groups/new", data={"name": "Centro", "description": "uno"}, environ_base={"REMOTE_ADDR": "203.0.113.7"}
    )
    group_id = int(response.location.rsplit("/", 1)[1])
    client.post(f"/acme/groups/{group_id}/edit", data={"name": "Centro Norte", "description": "uno"})
    client.post(f"/acme/groups/{group_id}/delete")
    events = _events(app, tenant, type="group")
    assert [e["action"] for e in events] == ["create", "update", "delete"]
    assert all(e["actor"] == ("user", "Ada Admin") and e["id"] == group_id for e in events)
    assert events[0]["address"] == "203.0.113.7"
    assert events[0]["changes"]["name"] == [None, "Centro"]
    assert events[1]["changes"] == {"name": ["Centro", "Centro Norte"]}
    assert events[2]["changes"]["name"] == ["Centro Norte", None]


def test_a_client_history_shows_its_changes_and_its_addresses(app, factory, client):
    tenant = _admin(factory, client)
    response = client.post(
        "/acme/clients/new",
        data={
            "kind": "company",
            "country": "ES",
            "tax_id": "B12345674",
            "company_name": "Obras SL",
        },
    )
    client_id = int(response.location.rsplit("/", 1)[1])
    client.post(
        f"/acme/clients/{client_id}/edit",
        data={
            "kind": "company",
            "country": "ES",
            "tax_id": "B12345674",
            "company_name": "Obras y Reformas SL",
        },
    )
    client.post(f"/acme/clients/{client_id}/addresses/new", data={"street": "Calle Luna 3", "country": "ES"})
    history = client.get(f"/acme/clients/{client_id}?tab=history").get_data(as_text=True)
    assert "Obras SL" in history and "Obras y Reformas SL" in history and "Calle Luna 3" in history
    address_events = _events(app, tenant, type="client_address")
    assert address_events[0]["parent"] == ("client", client_id)


def test_role_grants_and_user_roles_are_recorded_by_name(app, factory, client):
    tenant = _admin(factory, client)
    client.post("/acme/roles/new", data={"name": "Lector", "permissions": ["core.groups:view"]})
    user = factory.user(tenant, "u@acme.test", permissions=[])
    role_id = _role(app, tenant, "Lector")
    client.post(f"/acme/users/{user}/edit", data={"name": "U", "roles": [str(role_id)]})
    role_event = _events(app, tenant, type="role", action="create", object_label="Lector")[-1]
    assert role_event["changes"]["grants"] == [[], ["core.groups:view"]]
    user_event = _events(app, tenant, type="user", action="update")[-1]
    assert user_event["changes"]["roles"] == [["role for u@acme.test"], ["Lector"]]


def _role(app, tenant, name):
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return db.session.scalar(select(Role.id).where(Role.name == name))


def test_secrets_never_reach_the_trail(app, factory, client, outbox):
    tenant = _admin(factory, client)
    client.post(
        "/acme/profile",
        data={
            "password-current": "correct-horse-battery",
            "password-password": "a-brand-new-secret",
            "password-confirm": "a-brand-new-secret",
        },
    )
    events = _events(app, tenant, type="user", action="update")
    changes = events[-1]["changes"]["password_hash"]
    assert changes == ["••••••", "••••••"]
    from core.audit.models import AuditEvent
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        dumped = " ".join(str(e.changes) for e in db.session.scalars(select(AuditEvent)))
    assert "argon2" not in dumped and "a-brand-new-secret" not in dumped


def test_the_trail_cannot_be_edited_or_deleted_through_the_application(app, factory, client):
    from core.audit.models import AuditEvent
    from core.audit.recorder import AuditTrailIsReadOnly
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    client.post("/acme/groups/new", data={"name": "Centro"})
    with app.app_context(), tenant_context(tenant.id):
        event = db.session.scalar(select(AuditEvent))
        event.object_label = "forged"
        with pytest.raises(AuditTrailIsReadOnly):
            db.session.flush()
        db.session.rollback()
        db.session.delete(db.session.scalar(select(AuditEvent)))
        with pytest.raises(AuditTrailIsReadOnly):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(AuditTrailIsReadOnly):
            db.session.execute(update(AuditEvent).values(action="x"))


def test_the_database_refuses_to_change_the_trail_for_the_application_role(app, factory, client, database):
    if database["engine"] != "postgresql":
        pytest.skip("privileges are a PostgreSQL matter (TEST_DATABASE_URL unset)")
    from sqlalchemy.exc import ProgrammingError

    from core.extensions import db

    tenant = _admin(factory, client)
    client.post("/acme/groups/new", data={"name": "Centro"})
    with app.app_context():
        for statement in ("UPDATE core_audit_events SET action = 'x'", "DELETE FROM core_audit_events"):
            with pytest.raises(ProgrammingError, match="permission denied"), db.engine.connect() as connection:
                connection.execute(text("SELECT set_config('app.tenant_id', :t, false)"), {"t": str(tenant.id)})
                connection.execute(text(statement))


def test_the_audit_page_filters_and_exports(app, factory, client, owner_engine):
    tenant = _admin(factory, client)
    helper = factory.user(
        tenant, "helper@acme.test", permissions=["core.groups:manage", "core.groups:view"], name="Hugo Helper"
    )
    other = app.test_client()
    login(other, "acme", "helper@acme.test")
    client.post("/acme/groups/new", data={"name": "By Ada"})
    other.post("/acme/groups/new", data={"name": "By Hugo"})
    other.post("/acme/groups/new", data={"name": "Later"})
    with owner_engine.begin() as connection:
        connection.execute(
            text("UPDATE core_audit_events SET at = :at WHERE object_label = 'Later'"),
            {"at": (utcnow() + timedelta(days=3)).replace(tzinfo=None)},
        )
    page = client.get(f"/acme/audit/?actor=user:{helper}&object_type=group").get_data(as_text=True)
    assert "By Hugo" in page and "By Ada" not in page and "Later" in page
    today = utcnow().date().isoformat()
    page = client.get(f"/acme/audit/?object_type=group&since={today}&until={today}").get_data(as_text=True)
    assert "By Ada" in page and "Later" not in page
    export = client.get(f"/acme/audit/export.csv?actor=user:{helper}").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(export)))
    assert rows[0][:3] == ["id", "at", "tenant"]
    assert {r[9] for r in rows[1:]} == {"By Hugo", "Later"}


def test_operators_see_every_tenants_trail_and_their_own_actions_are_recorded(app, factory, client):
    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    factory.operator()
    login_operator(client)
    client.post(
        f"/operator/tenants/{acme.id}", data={"name": "Acme Renamed", "language": "es", "timezone": "Europe/Madrid"}
    )
    event = _events(app, acme, type="tenant", action="update")[-1]
    assert event["actor"][0] == "operator" and event["changes"]["name"] == ["Org acme", "Acme Renamed"]
    page = client.get("/operator/audit").get_data(as_text=True).split("audit-events")[1]
    assert "Acme Renamed" in page and "<code>beta</code>" in page
    only_beta = client.get(f"/operator/audit?tenant={beta.id}").get_data(as_text=True).split("audit-events")[1]
    assert "Acme Renamed" not in only_beta and "<code>beta</code>" in only_beta
    export = client.get("/operator/audit/export.csv").get_data(as_text=True)
    assert "acme" in export and "beta" in export
    filters = client.get("/operator/audit").get_data(as_text=True).split('name="actor"')[1].split("</select>")[0]
    operator_value = re.search(r'<option value="(operator:\d+)">Op</option>', filters).group(1)
    theirs = client.get(f"/operator/audit?actor={operator_value}").get_data(as_text=True).split("audit-events")[1]
    assert "Acme Renamed" in theirs and "<code>beta</code>" not in theirs


def test_a_tenant_user_cannot_read_another_tenants_trail(app, factory, client):
    factory.tenant("beta")
    tenant = _admin(factory, client)
    client.post("/acme/groups/new", data={"name": "Mine"})
    page = client.get("/acme/audit/").get_data(as_text=True)
    assert "Mine" in page and "Org beta" not in page
    assert all(e["type"] != "tenant" or e["id"] == tenant.id for e in _events(app, tenant))
