"""The audit trail: every change through the services, who and where, secrets masked, append-only."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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
    # The filter's days are the tenant's (Europe/Madrid, the default): near midnight they are not UTC's.
    today = datetime.now(ZoneInfo("Europe/Madrid")).date().isoformat()
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


# --- set-based writes (audited_write) ---------------------------------------------------------


def _comparable(events: list[dict]) -> list[tuple]:
    """What two writes of equal rows must record alike: all but the object's id."""
    return [(e["action"], e["type"], e["label"], e["actor"], e["changes"], e["parent"][0]) for e in events]


def _acting(app, tenant):
    from contextlib import contextmanager

    from tenants.context import tenant_context

    @contextmanager
    def block():
        with app.app_context(), tenant_context(tenant.id):
            yield

    return block()


def test_a_set_based_update_records_what_the_orm_would(app, factory):
    from core.audit.bulk import audited_write
    from core.clients.models import Client
    from core.extensions import db

    tenant = factory.tenant("acme")
    other = factory.tenant("other")
    by_orm = factory.client(tenant, "Twin", "B11111111", email="old@twin.test")
    by_sql = factory.client(tenant, "Twin", "B22222222", email="old@twin.test")
    theirs = factory.client(other, "Twin", "B22222222", email="old@twin.test")
    changes = {"email": "new@twin.test", "phone": "600 000 000", "active": False}
    with _acting(app, tenant):
        row = db.session.get(Client, by_orm)
        for field, value in changes.items():
            setattr(row, field, value)
        db.session.commit()
        written = audited_write(
            Client, tenant.id, values={**changes, "notes": ""}, where=[Client.tax_id == "B22222222"]
        )
        again = audited_write(Client, tenant.id, values=changes, where=[Client.tax_id == "B22222222"])
        db.session.commit()
    assert [r.id for r in written] == [by_sql] and [r.id for r in again] == [by_sql]
    orm = [e for e in _events(app, tenant, type="client", action="update") if e["id"] == by_orm]
    sql = [e for e in _events(app, tenant, type="client", action="update") if e["id"] != by_orm]
    assert [e["id"] for e in sql] == [by_sql], "a row whose audited fields stay the same records nothing"
    assert orm[0]["changes"] == {
        "email": ["old@twin.test", "new@twin.test"],
        "phone": ["", "600 000 000"],
        "active": [True, False],
    }
    assert _comparable(sql) == [("update", "client", "Twin (B22222222)", ("system", ""), orm[0]["changes"], None)]
    assert _comparable(orm)[0][2:] == ("Twin (B11111111)", ("system", ""), orm[0]["changes"], None)
    with _acting(app, other):
        assert db.session.get(Client, theirs).email == "old@twin.test", "another tenant's rows are never written"
    assert _events(app, other, type="client", action="update") == []


def test_a_set_based_update_by_id_records_each_rows_own_change_and_what_else_changed(app, factory):
    from core.audit.bulk import audited_write
    from core.clients.models import Client
    from core.extensions import db

    tenant = factory.tenant("acme")
    other = factory.tenant("other")
    first = factory.client(tenant, "First", "B11111111")
    second = factory.client(tenant, "Second", "B22222222")
    theirs = factory.client(other, "Theirs", "B33333333")
    with _acting(app, tenant):
        written = audited_write(
            Client,
            tenant.id,
            by_id=[
                {"id": first, "email": "one@x.test", "name": "First"},
                {"id": second, "email": "", "name": "Segundo"},
                {"id": theirs, "email": "stolen@x.test", "name": "Mine"},
            ],
            also={second: {"groups": [[], ["Norte"]]}},
        )
        db.session.commit()
    assert sorted(r.id for r in written) == [first, second], "a row of another tenant is left alone, by id or not"
    events = {e["id"]: e for e in _events(app, tenant, type="client", action="update")}
    assert events[first]["changes"] == {"email": ["", "one@x.test"]}
    assert events[first]["label"] == "First (B11111111)"
    assert events[second]["changes"] == {"name": ["Second", "Segundo"], "groups": [[], ["Norte"]]}
    assert events[second]["label"] == "Segundo (B22222222)", "the label is the row's as the ORM reads it after"
    with _acting(app, other):
        assert db.session.get(Client, theirs).email == ""


def test_a_set_based_insert_records_a_creation_per_row_as_the_orm_does(app, factory):
    from sqlalchemy import literal

    from core.audit.bulk import audited_write
    from core.clients.models import Client, ClientAddress
    from core.extensions import db

    tenant = factory.tenant("acme")
    client_id = factory.client(tenant, "Casa", "B11111111", address=False)
    address = {"street": "Calle Mayor 1", "postal_code": "", "city": "Valencia", "province": "", "country": "ES"}
    with _acting(app, tenant):
        db.session.add(ClientAddress(client_id=client_id, **address))
        db.session.commit()
        rows = audited_write(ClientAddress, tenant.id, insert_from=[{"client_id": client_id, "label": "", **address}])
        copied = audited_write(
            ClientAddress,
            tenant.id,
            insert_from=select(
                literal(client_id).label("client_id"),
                literal("Casa 2").label("street"),
                Client.country.label("country"),
            ).where(Client.tenant_id == tenant.id, Client.id == client_id),
            returning=("id", "street"),
        )
        db.session.commit()
    (created,) = rows
    assert [tuple(r) for r in copied] == [(copied[0][0], "Casa 2")]
    events = _events(app, tenant, type="client_address")
    assert len(events) == 3
    orm, sql, by_select = events
    assert sql["id"] == created.id and sql["parent"] == ("client", client_id)
    assert _comparable([sql]) == _comparable([orm])
    assert orm["changes"] == {
        "street": [None, "Calle Mayor 1"],
        "city": [None, "Valencia"],
        "country": [None, "ES"],
    }
    assert by_select["label"] == "Casa 2" and by_select["changes"]["street"] == [None, "Casa 2"]


def test_secrets_written_set_based_are_masked(app, factory):
    from core.audit.bulk import audited_write
    from core.audit.models import MASK
    from core.auth.models import User
    from core.extensions import db

    tenant = factory.tenant("acme")
    user_id = factory.user(tenant, "ana@acme.test", name="Ana")
    with _acting(app, tenant):
        audited_write(
            User, tenant.id, values={"password_hash": "$argon2id$new", "locale": "it"}, where=[User.id == user_id]
        )
        db.session.commit()
    (event,) = [e for e in _events(app, tenant, type="user", action="update") if "password_hash" in e["changes"]]
    assert event["changes"] == {"password_hash": [MASK, MASK], "locale": [None, "it"]}
    assert "argon2" not in str(event)


def test_a_set_based_write_takes_the_same_statements_for_3_rows_as_for_30(app, factory):
    from core.api.testing import count_queries
    from core.audit.bulk import audited_write
    from core.clients.models import Client
    from core.extensions import db

    tenant = factory.tenant("acme")
    ids = [factory.client(tenant, f"C{n}", address=False) for n in range(30)]

    def statements(chosen: list[int], email: str) -> int:
        with count_queries(app) as seen, _acting(app, tenant):
            audited_write(Client, tenant.id, values={"email": email}, where=[Client.id.in_(chosen)])
            audited_write(Client, tenant.id, by_id=[{"id": i, "phone": email} for i in chosen])
            db.session.commit()
        return len(seen)

    assert statements(ids[:3], "a@x.test") == statements(ids, "b@x.test")
    assert len(_events(app, tenant, type="client", action="update")) == 3 * 2 + 30 * 2


def test_a_set_based_write_refuses_another_tenant_an_unscoped_read_and_an_undescribed_label(app, factory):
    import gc

    from sqlalchemy.orm import aliased

    from core.audit.bulk import TenantNotNamed, audited_write
    from core.audit.recorder import Audited, audited_types
    from core.clients.models import Client, ClientAddress
    from tenants.context import TenantMismatch

    tenant = factory.tenant("acme")
    other = factory.tenant("other")
    with _acting(app, tenant):
        with pytest.raises(TenantMismatch):
            audited_write(Client, other.id, values={"notes": "x"})
        # Tables the statement reads must name the tenant too (nothing else restricts them on SQLite).
        other_client = aliased(Client)
        with pytest.raises(TenantNotNamed, match="core_clients"):
            audited_write(
                Client,
                tenant.id,
                values={"notes": "x"},
                where=[Client.tax_id.in_(select(other_client.tax_id).where(other_client.active))],
            )
        with pytest.raises(TenantNotNamed, match="core_clients"):
            audited_write(ClientAddress, tenant.id, insert_from=select(Client.id.label("client_id")))
        audited_write(
            Client,
            tenant.id,
            values={"notes": "x"},
            where=[
                Client.tax_id.in_(
                    select(other_client.tax_id).where(other_client.tenant_id == tenant.id, other_client.active)
                )
            ],
        )

    # A model that names its objects in Python only (a plain class: a mapped one would stay registered).
    class Unnamed(Audited):
        __audit_type__ = "unnamed"

        def audit_label(self) -> str:
            return "something else"

    try:
        with _acting(app, tenant), pytest.raises(TypeError, match="audit_label_sql"):
            audited_write(Unnamed, tenant.id, values={"notes": "x"})
    finally:
        del Unnamed
        gc.collect()
    assert "unnamed" not in audited_types()


def test_every_audited_model_names_its_objects_in_sql_as_in_python(app, factory):
    """``audit_label_sql``/``audit_parent_sql`` say in SQL what ``audit_label``/``audit_parent`` say."""
    from sqlalchemy import inspect as sa_inspect

    from core.audit.recorder import audited_types
    from core.extensions import db
    from tenants.context import all_tenants

    tenant = factory.tenant("acme")
    factory.user(tenant, "ana@acme.test", name="Ana")
    factory.group(tenant, "Norte")
    factory.client(tenant, "Casa", "B11111111")
    checked = set()
    with app.app_context(), all_tenants():
        for code, model in audited_types().items():
            table = model.__table__
            parent = model.audit_parent_sql(table.c)
            columns = [model.audit_label_sql(table.c), *(parent[1:] if parent else ())]
            for obj in db.session.scalars(select(model)):
                key = sa_inspect(model).primary_key[0]
                row = db.session.execute(select(*columns).where(key == obj.id)).one()
                assert row[0] == obj.audit_label(), code
                assert ((parent[0], row[1]) if parent else None) == obj.audit_parent(), code
                checked.add(code)
    assert {"client", "client_address", "user", "group"} <= checked


def _filter_options(page: str, name: str) -> set[tuple[str, str]]:
    select_html = page.split(f'name="{name}"')[1].split("</select>")[0]
    return {
        (value, label) for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select_html)
    }


def test_the_filters_offer_every_actor_and_kind_in_the_trail_however_it_was_written(app, factory, client, owner_engine):
    from core.audit.bulk import audited_write
    from core.clients.models import ClientAddress
    from core.extensions import db

    tenant = _admin(factory, client)
    factory.user(tenant, "helper@acme.test", permissions=["core.groups:manage", "core.groups:view"], name="Hugo Helper")
    beta = factory.tenant("beta")
    factory.user(beta, "boss@beta.test", role_key="admin", name="Beta Boss")
    other = app.test_client()
    login(other, "acme", "helper@acme.test")
    client.post("/acme/groups/new", data={"name": "By Ada"})
    before = _filter_options(client.get("/acme/audit/").get_data(as_text=True), "actor")
    assert not any(label == "Hugo Helper" for _value, label in before)
    other.post("/acme/groups/new", data={"name": "By Hugo"})  # a new actor after the page was first shown
    client_id = factory.client(tenant, "Casa", "B11111111", address=False)
    with _acting(app, tenant):  # the set-based writer: its events come from one INSERT ... SELECT
        audited_write(
            ClientAddress,
            tenant.id,
            insert_from=[
                {"client_id": client_id, "label": "", "street": "Mayor 1", "city": "Valencia", "country": "ES"}
            ],
        )
        db.session.commit()
    factory.operator()
    operator = app.test_client()
    login_operator(operator)
    operator.post(f"/operator/tenants/{tenant.id}", data={"name": "Acme", "language": "en", "timezone": "UTC"})

    page = client.get("/acme/audit/").get_data(as_text=True)
    with owner_engine.connect() as connection:
        trail = connection.execute(
            text(
                "SELECT DISTINCT actor_kind, actor_id, actor_name, object_type FROM core_audit_events "
                "WHERE tenant_id = :tenant"
            ),
            {"tenant": tenant.id},
        ).all()
    actors = {(f"{kind}:{actor_id or ''}", name or kind) for kind, actor_id, name, _type in trail}
    assert {option for option in _filter_options(page, "actor") if option[0]} == actors
    assert {label for _value, label in actors} >= {"Ada Admin", "Hugo Helper", "Op"}
    assert "Beta Boss" not in page
    types = {value for value, _label in _filter_options(page, "object_type")} - {""}
    assert types == {object_type for *_actor, object_type in trail}
    assert {"group", "client", "client_address", "tenant"} <= types
