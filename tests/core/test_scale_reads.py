"""Reads at scale (issue 10): what the fixes of the load benchmark must keep true, without timing
anything: the same number of statements whatever the size of a list, the database settings the
application relies on, and the bench-only instrumentation staying off unless asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import login


def _statements(app):
    from sqlalchemy import event

    from core.extensions import db

    seen = []

    def count(_connection, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def test_the_application_runs_postgresql_without_jit(app, database):
    if database["engine"] != "postgresql":
        pytest.skip("JIT is a PostgreSQL matter (TEST_DATABASE_URL unset)")
    from core.extensions import db

    with app.app_context():
        assert db.session.execute(text("SHOW jit")).scalar() == "off"


def test_the_sql_trace_header_is_off_unless_configured(app, factory, client):
    tenant = factory.tenant("acme", plugins=[])
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    assert "X-Sql" not in client.get("/acme/").headers


@pytest.mark.parametrize("path", ["/acme/", "/acme/clients/", "/acme/audit/", "/acme/search?q=empresa"])
def test_a_page_runs_as_many_statements_for_60_clients_as_for_3(app, factory, client, path):
    tenant = factory.tenant("acme")
    group = factory.group(tenant, "Centro 1")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    factory.user(tenant, "staff@acme.test", permissions=["core.clients:view", "core.audit:view"], groups=[group])
    for n in range(3):
        factory.client(tenant, f"Empresa {n}", groups=[group])
    staff = app.test_client()
    login(client, "acme", "admin@acme.test")
    login(staff, "acme", "staff@acme.test")
    counts = {}
    for size in (3, 60):
        if size == 60:
            for n in range(57):
                factory.client(tenant, f"Empresa más {n}", groups=[group])
        for who, browser in (("admin", client), ("staff", staff)):
            browser.get(path)  # the first request of a page may load what later ones reuse
            seen, stop = _statements(app)
            try:
                response = browser.get(path)
            finally:
                stop()
            assert response.status_code == 200, (who, path, response.status_code)
            counts[who, size] = len(seen)
    assert counts["admin", 3] == counts["admin", 60] and counts["staff", 3] == counts["staff", 60], counts


def test_a_remembered_figure_is_computed_again_after_any_change_of_its_tenant(app, factory):
    from core.cache import remember
    from core.extensions import db
    from core.groups.models import Group
    from tenants.context import tenant_context

    acme = factory.tenant("acme", plugins=[])
    beta = factory.tenant("beta", plugins=[])
    computed = []

    def groups_of_acme():
        computed.append(1)
        return db.session.query(Group).count()

    with app.app_context():
        with tenant_context(acme.id):
            assert remember("groups", groups_of_acme) == 0
            assert remember("groups", groups_of_acme) == 0
            assert len(computed) == 1, "kept while nothing changed"
        with tenant_context(beta.id):
            db.session.add(Group(name="Theirs"))
            db.session.commit()
        with tenant_context(acme.id):
            assert remember("groups", groups_of_acme) == 0
            assert len(computed) == 1, "another tenant's change is not this one's"
            db.session.add(Group(name="Ours"))
            db.session.commit()
            assert remember("groups", groups_of_acme) == 1
            assert len(computed) == 2
            assert remember("other figure", lambda: "apart") == "apart"


def test_only_a_transaction_that_wrote_forgets_the_remembered_figures(app, factory, client):
    from sqlalchemy import update

    from core.cache import remember
    from core.extensions import db
    from core.groups.models import Group
    from tenants.context import tenant_context

    tenant = factory.tenant("acme")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    group = factory.group(tenant, "Centro")
    login(client, "acme", "admin@acme.test")
    computed = []

    def figure():
        computed.append(1)
        return len(computed)

    def kept(expected_computations):
        with app.app_context(), tenant_context(tenant.id):
            remember("probe", figure)
        return len(computed) == expected_computations

    assert kept(1)
    for path in ("/acme/", "/acme/clients/", "/acme/audit/", "/acme/groups/"):
        assert client.get(path).status_code == 200
    assert kept(1), "pages that only read keep the figures"
    with app.app_context(), tenant_context(tenant.id):
        db.session.execute(update(Group).where(Group.id == group).values(name="Rolled back"))
        db.session.rollback()
        with db.session.begin_nested():
            db.session.execute(update(Group).where(Group.id == group).values(name="Savepoint"))
        db.session.rollback()
    assert kept(1), "a write rolled back, inside a savepoint or not, changed nothing"
    with app.app_context(), tenant_context(tenant.id):
        db.session.execute(update(Group).where(Group.id == group).values(name="Set-based"))
        db.session.commit()
    assert kept(2), "a set-based write, which flushes nothing, is a change"
    with app.app_context(), tenant_context(tenant.id):
        db.session.get(Group, group).name = "By the ORM"
        with db.session.begin_nested():
            db.session.flush()
        assert kept(2), "a savepoint released is not yet a commit"
        db.session.commit()
    assert kept(3)
    client.post(f"/acme/groups/{group}/edit", data={"name": "By a form"})
    assert kept(4)


def test_analyse_refreshes_the_statistics_of_the_tables_it_names_only(app, factory, database, owner_engine):
    from core.maintenance import analyse
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", plugins=[])
    factory.client(tenant, "Empresa", groups=[factory.group(tenant, "Centro")])
    postgres = database["engine"] == "postgresql"
    with owner_engine.connect() as connection:
        before = connection.execute(text("SELECT clock_timestamp()")).scalar() if postgres else None
    with app.app_context(), tenant_context(tenant.id):
        analyse("core_clients", "core_group_clients")
        with pytest.raises(ValueError):
            analyse("pg_authid")
    with owner_engine.connect() as connection:
        if postgres:
            analysed = connection.execute(
                text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze >= :before"), {"before": before}
            ).scalars()
        else:
            analysed = connection.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1")).scalars()
        assert {"core_clients", "core_group_clients"} <= set(analysed)


def test_figures_kept_in_the_process_are_forgotten_at_another_process_change(app, factory):
    """Another process's commit raises the version in Redis: the copy kept here is not used."""
    from core.cache import _GLOBAL, _VERSION, remember
    from core.redis_connection import get_redis
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", plugins=[])
    computed = []

    def figure():
        computed.append(1)
        return {"computed": len(computed)}

    def ask():
        with tenant_context(tenant.id):
            return remember("figure", figure)["computed"]

    with app.app_context():
        redis = get_redis()
        assert ask() == 1 and ask() == 1
        redis.incr(f"{_VERSION}{tenant.id}")
        assert ask() == 2 and ask() == 2
        redis.incr(_GLOBAL)
        assert ask() == 3
        # A Redis that lost its data counts from 0 again: what this process kept before is not met.
        redis.flushdb()
        assert ask() == 4
        redis.flushdb()
        assert ask() == 5 and ask() == 5


def test_a_transaction_that_has_written_keeps_no_figure(app, factory):
    """What it computes sees its own writes, which it may yet roll back."""
    from core.cache import remember
    from core.extensions import db
    from core.groups.models import Group
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", plugins=[])
    with app.app_context(), tenant_context(tenant.id):
        db.session.add(Group(name="Not yet"))
        db.session.flush()
        assert remember("groups", lambda: db.session.query(Group).count()) == 1
        db.session.rollback()
        assert remember("groups", lambda: db.session.query(Group).count()) == 0
        assert remember("groups", lambda: "kept, not computed") == 0


def test_a_page_reads_the_versions_once(app, factory, client, monkeypatch):
    """A page asks for several figures (enabled plugins, permissions, the dashboard's counts): the
    versions they are kept under are read once, and the figures this process already has are not
    asked for again."""
    from redis import Redis

    tenant = factory.tenant("acme")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    assert client.get("/acme/").status_code == 200
    calls = []

    def counted(name):
        original = getattr(Redis, name)

        def call(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)

        return call

    for name in ("mget", "get", "pipeline"):
        monkeypatch.setattr(Redis, name, counted(name))
    assert client.get("/acme/").status_code == 200
    assert calls.count("mget") == 1, calls
    assert "pipeline" not in calls, calls


def test_the_dashboards_people_and_jobs_follow_every_change(app, factory, client):
    """Kept between pages (``remember``), and counted again once anything of the tenant changed."""
    import re

    from core.extensions import db
    from core.jobs.models import FAILED, JobRun
    from tenants.context import tenant_context

    tenant = factory.tenant("acme", plugins=[])
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")

    def figures():
        page = client.get("/acme/").get_data(as_text=True)
        found = {}
        for what in ("users", "jobs"):
            match = re.search(
                rf'display-6 mb-0">(\d+)</p>\s*<p class="text-body-secondary">([^\n]*?)</p>\s*<a href="/acme/{what}/"',
                page,
            )
            found[what] = (int(match[1]), re.sub(r"\D", "", match[2]))
        return found

    before = figures()
    open_runs = before["jobs"][0]
    assert before == {"users": (1, ""), "jobs": (open_runs, "")}
    assert figures() == before
    factory.user(tenant, "second@acme.test", role_key="admin")
    factory.user(tenant, "invited@acme.test", role_key="admin", password=None)
    with app.app_context(), tenant_context(tenant.id):
        db.session.add(JobRun(tenant_id=tenant.id, name="core.clients_import", queue="bulk", status=FAILED))
        db.session.commit()
    assert figures() == {"users": (2, "1"), "jobs": (open_runs, "1")}

    # Someone who may not see them costs no query for them.
    factory.user(tenant, "reader@acme.test", permissions=["core.clients:view"])
    reader = app.test_client()
    login(reader, "acme", "reader@acme.test")
    reader.get("/acme/")
    seen, stop = _statements(app)
    try:
        page = reader.get("/acme/").get_data(as_text=True)
    finally:
        stop()
    assert '/acme/jobs/"' not in page and '/acme/users/"' not in page
    assert not [s for s in seen if "core_job_runs" in s or ("count(" in s.lower() and "core_users" in s)], seen


def test_a_page_takes_its_tenant_as_last_read_until_anything_of_it_changes(app, factory, client):
    """The tenant of the URL is read once per process and data version: its own change (in the
    tenant or by the operator), another process's change and a Redis that lost its data are seen."""
    from core.cache import _GLOBAL
    from core.extensions import db
    from core.redis_connection import get_redis
    from tenants.context import tenant_context
    from tenants.models import TENANT_ACTIVE, TENANT_SUSPENDED, Tenant

    tenant = factory.tenant("acme", plugins=[])
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")

    def page(path="/acme/"):
        seen, stop = _statements(app)
        try:
            response = client.get(path)
        finally:
            stop()
        return response, [s for s in seen if "FROM tenants" in s]

    def change(**values):
        with app.app_context():
            for key, value in values.items():
                setattr(db.session.get(Tenant, tenant.id), key, value)
            db.session.commit()

    page()
    page()
    response, read = page()
    assert response.status_code == 200 and read == []

    with app.app_context(), tenant_context(tenant.id):
        db.session.get(Tenant, tenant.id).name = "Acme Asesores"
        db.session.commit()
    response, read = page()
    assert "Acme Asesores" in response.get_data(as_text=True) and read
    assert page()[1] == []

    change(status=TENANT_SUSPENDED)  # the operator's change: outside any tenant
    assert page()[0].status_code == 404
    change(status=TENANT_ACTIVE)
    assert page()[0].status_code == 200
    assert page()[1] == []

    with app.app_context():
        redis = get_redis()
        redis.incr(_GLOBAL)
        assert page()[1]
        redis.flushdb()
    login(client, "acme", "admin@acme.test")  # the session records went with the data
    response, read = page()
    assert response.status_code == 200 and read

    change(slug="acme-asesores")
    factory.tenant("acme", plugins=[])
    assert page("/acme-asesores/")[0].status_code == 200
    moved, read = page("/acme/")
    assert moved.status_code == 302 and read, "the slug names the new tenant, where this user is nobody"


def test_a_tenant_change_redis_failed_to_mark_is_seen_within_the_figures_bound(app, factory, client, monkeypatch):
    """If the version cannot be raised (Redis refusing writes but serving reads), the process
    serves the tenant as it read it for at most as long as remember() keeps a figure."""
    import time

    from redis import Redis
    from redis.exceptions import ResponseError

    from core import access
    from core.extensions import db
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = factory.tenant("acme", plugins=[])
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    for _ in range(2):
        client.get("/acme/")

    def refused(*_args, **_kwargs):
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    with monkeypatch.context() as failing:
        failing.setattr(Redis, "incr", refused)
        with app.app_context(), tenant_context(tenant.id):
            db.session.get(Tenant, tenant.id).name = "Acme Asesores"
            db.session.commit()
    assert "Acme Asesores" not in client.get("/acme/").get_data(as_text=True), "kept: no version moved"
    started = time.monotonic()
    monkeypatch.setattr(access.time, "monotonic", lambda: started + access._SERVED_TENANT_SECONDS + 1)
    assert "Acme Asesores" in client.get("/acme/").get_data(as_text=True)


def test_the_client_list_and_audit_filters_offer_a_group_or_actor_as_soon_as_it_exists(app, factory, client):
    """Kept between pages until the tenant's data changes: a new group, a new person in the trail."""
    tenant = factory.tenant("acme", plugins=[], language="en")
    north = factory.group(tenant, "North")
    factory.user(tenant, "admin@acme.test", role_key="admin", name="Ada Admin")
    factory.user(tenant, "staff@acme.test", permissions=["core.clients:view"], groups=[north])
    login(client, "acme", "admin@acme.test")
    staff = app.test_client()
    login(staff, "acme", "staff@acme.test")
    for path in ("/acme/clients/", "/acme/audit/"):
        client.get(path)
    staff.get("/acme/clients/")
    seen, stop = _statements(app)
    try:
        assert ">Bea Boss</option>" not in client.get("/acme/audit/").get_data(as_text=True)
        client.get("/acme/clients/")
    finally:
        stop()
    assert not [s for s in seen if "core_audit_choices" in s or "FROM core_groups WHERE" in s], "kept, not read"

    factory.group(tenant, "South")
    factory.user(tenant, "boss@acme.test", role_key="admin", name="Bea Boss")
    boss = app.test_client()
    login(boss, "acme", "boss@acme.test")
    boss.post("/acme/groups/new", data={"name": "East", "description": ""})
    listing = client.get("/acme/clients/").get_data(as_text=True)
    assert ">South</option>" in listing and ">East</option>" in listing
    assert ">South</option>" not in staff.get("/acme/clients/").get_data(as_text=True), "only their own groups"
    assert ">Bea Boss</option>" in client.get("/acme/audit/").get_data(as_text=True)


def test_a_page_tells_postgresql_its_tenant_once(app, factory, client, database):
    """The tenant is known before the page's transaction has a connection: the connection gets the
    setting as it joins, and entering the tenant does not write it a second time."""
    if database["engine"] != "postgresql":
        pytest.skip("the tenant setting is a PostgreSQL matter (TEST_DATABASE_URL unset)")
    tenant = factory.tenant("acme", plugins=[])
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    for _ in range(2):
        client.get("/acme/clients/")
    seen, stop = _statements(app)
    try:
        assert client.get("/acme/clients/").status_code == 200
    finally:
        stop()
    assert [s for s in seen if "set_config" in s] == [seen[0]], seen
