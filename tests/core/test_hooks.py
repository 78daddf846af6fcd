"""Every hookspec is documented and has a test here named ``test_hook_<name>``.

The sample plugin (tests/sample_plugin) implements every hook; each test proves the hook is
called when documented, and only for tenants that have the plugin.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from sqlalchemy import select

from core import hookspecs
from tests.conftest import login, login_operator

SPECS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "ventanilla_spec")]


def test_every_hookspec_is_documented_and_tested():
    assert SPECS, "no hookspecs found"
    undocumented = [n for n in SPECS if len(inspect.getdoc(getattr(hookspecs, n)) or "") < 40]
    untested = [n for n in SPECS if f"test_hook_{n}" not in globals()]
    assert undocumented == [] and untested == []


def _tenant_row(app, tenant):
    from core.extensions import db
    from tenants.models import Tenant

    return db.session.get(Tenant, tenant.id)


def _dispatch(app, tenant, hook, **kwargs):
    """Call a per-tenant hook the way core does: only for the tenant's enabled plugins."""
    from tenants.context import tenant_context
    from tenants.licensing import enabled_plugins

    with app.app_context(), tenant_context(tenant.id):
        host = app.extensions["ventanilla_plugins"]
        return host.call_for_tenant(hook, enabled_plugins(_tenant_row(app, tenant)), **kwargs)


def _notes(app, tenant) -> list[str]:
    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    with app.app_context(), tenant_context(tenant.id):
        return list(db.session.scalars(select(SampleNote.title).order_by(SampleNote.id)))


def test_hook_ventanilla_plugin(app):
    info = app.extensions["ventanilla_plugins"].infos["sample"]
    assert info.name == "sample" and info.version == "1.0"
    assert "notes" in info.limits


def test_hook_register_blueprints(app, factory, client):
    rules = {r.rule: r.endpoint for r in app.url_map.iter_rules()}
    assert rules["/<tenant>/notes/"] == "sample.index"
    with_plugin = factory.tenant("acme")
    without = factory.tenant("bare", plugins=())
    for tenant in (with_plugin, without):
        factory.user(tenant, f"admin@{tenant.slug}.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    assert client.get("/acme/notes/").status_code == 200
    other = app.test_client()
    login(other, "bare", "admin@bare.test")
    assert other.get("/bare/notes/").status_code == 404


def test_hook_register_permissions(app, factory):
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    registry = app.extensions["ventanilla_plugins"].permissions
    assert registry.get("sample.notes:view").plugin == "sample"
    tenant = factory.tenant("acme")
    with app.app_context(), tenant_context(tenant.id):
        codes = {r.key: r.codes for r in db.session.scalars(select(Role))}
    assert {"sample.notes:view", "sample.notes:manage"} <= codes["manager"]
    assert "sample.notes:view" in codes["operator"] and "sample.notes:manage" not in codes["operator"]
    assert not any(c.startswith("sample.") for c in codes["client"])


def test_hook_register_jobs(app):
    from core.jobs.cron import build_scheduler
    from core.redis_connection import get_redis

    spec = app.extensions["ventanilla_jobs"].get("sample.count_notes")
    assert spec.plugin == "sample" and spec.cron == "*/5 * * * *"
    with app.app_context():
        scheduler = build_scheduler(app, get_redis())
    names = {job.name for job in scheduler.get_jobs()}
    assert "ventanilla:sample.count_notes" in names and "ventanilla:core.purge_expired" in names


def test_hook_operator_views(factory, client):
    acme = factory.tenant("acme")
    factory.note(acme, "one")
    factory.operator()
    assert client.get("/operator/notes/").status_code == 302
    login_operator(client)
    answer = client.get("/operator/notes/").get_json()
    assert answer["notes_per_tenant"][str(acme.id)] == 2  # the welcome note and "one"


def test_hook_navigation(app, factory, client):
    acme = factory.tenant("acme")
    bare = factory.tenant("bare", plugins=())
    factory.user(acme, "reader@acme.test", permissions=["sample.notes:view"])
    factory.user(acme, "blind@acme.test", permissions=[])
    factory.user(bare, "reader@bare.test", permissions=["sample.notes:view"])
    login(client, "acme", "reader@acme.test")
    assert 'href="/acme/notes/"' in client.get("/acme/").get_data(as_text=True)
    blind = app.test_client()
    login(blind, "acme", "blind@acme.test")
    assert "/acme/notes/" not in blind.get("/acme/").get_data(as_text=True)
    unlicensed = app.test_client()
    login(unlicensed, "bare", "reader@bare.test")
    assert "/bare/notes/" not in unlicensed.get("/bare/").get_data(as_text=True)


def test_hook_dashboard_widgets(app, factory, client):
    acme = factory.tenant("acme")
    factory.note(acme, "one")
    factory.user(acme, "reader@acme.test", permissions=["sample.notes:view"])
    login(client, "acme", "reader@acme.test")
    page = client.get("/acme/").get_data(as_text=True)
    assert '<p class="display-6 mb-0" id="sample-note-count">2</p>' in page
    bare = factory.tenant("bare", plugins=())
    factory.user(bare, "reader@bare.test", permissions=["sample.notes:view"])
    other = app.test_client()
    login(other, "bare", "reader@bare.test")
    assert "sample-note-count" not in other.get("/bare/").get_data(as_text=True)


def test_hook_client_tabs(app, factory):
    acme = factory.tenant("acme", plugins=("sample",))
    bare = factory.tenant("bare", plugins=())
    client_row = SimpleNamespace(id=1, name="Ana")
    tabs = _dispatch(app, acme, "client_tabs", client=client_row, user=None)
    assert [t.key for t in tabs] == ["sample"] and tabs[0].context["client"] is client_row
    assert _dispatch(app, bare, "client_tabs", client=client_row, user=None) == []


def test_hook_client_created(app, factory):
    acme = factory.tenant("acme", plugins=("sample",))
    bare = factory.tenant("bare", plugins=())
    for tenant in (acme, bare):
        _dispatch(app, tenant, "client_created", client=SimpleNamespace(id=1, name="Ana"))
    assert "Client Ana created" in _notes(app, acme)
    assert _notes(app, bare) == []


def test_hook_client_updated(app, factory):
    acme = factory.tenant("acme", plugins=("sample",))
    _dispatch(
        app,
        acme,
        "client_updated",
        client=SimpleNamespace(id=1, name="Ana"),
        changes={"email": ("a@x.test", "b@x.test"), "phone": (None, "1")},
    )
    assert "Client Ana changed: email, phone" in _notes(app, acme)


def test_hook_plugin_enabled(app, factory, client):
    acme = factory.tenant("acme")
    assert _notes(app, acme) == ["Welcome note"], "the licence switched the plugin on and seeded the tenant"
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    client.post("/acme/settings/plugins/sample", data={"enabled": "0"})
    client.post("/acme/settings/plugins/sample", data={"enabled": "1"})
    assert _notes(app, acme) == ["Welcome note"], "switching on again must not seed twice"


def test_hook_demo_data(app):
    from core import demo
    from core.extensions import db
    from tenants import licensing
    from tenants.models import Tenant

    with app.app_context():
        lines = demo.load()
        assert "  sample demo note created" in lines
        licensing.set_enabled(db.session.scalar(select(Tenant).where(Tenant.slug == "demo-it")), "sample", False)
        tenants = {t.slug: SimpleNamespace(id=t.id) for t in db.session.scalars(select(Tenant))}
    for slug in ("demo", "demo-it"):
        assert _notes(app, tenants[slug]).count("Demo note") == 1
    _delete_notes(app, tenants["demo-it"], "Demo note")
    with app.app_context():
        assert demo.load() == ["demo data already loaded"], "a second load adds nothing"
    assert _notes(app, tenants["demo"]).count("Demo note") == 1
    assert "Demo note" not in _notes(app, tenants["demo-it"]), "not called for a tenant without the plugin"


def _delete_notes(app, tenant, title: str) -> None:
    from sqlalchemy import delete

    from core.extensions import db
    from tenants.context import tenant_context
    from tests.sample_plugin.models import SampleNote

    with app.app_context(), tenant_context(tenant.id):
        db.session.execute(delete(SampleNote).where(SampleNote.title == title))
        db.session.commit()


def test_hook_global_search(app, factory, client):
    acme = factory.tenant("acme")
    factory.note(acme, "Quarterly taxes")
    factory.user(acme, "reader@acme.test", permissions=["sample.notes:view"])
    login(client, "acme", "reader@acme.test")
    page = client.get("/acme/search?q=Quarterly").get_data(as_text=True)
    assert "Quarterly taxes" in page and "/acme/notes/" in page
    blind = app.test_client()
    factory.user(acme, "blind@acme.test", permissions=[])
    login(blind, "acme", "blind@acme.test")
    assert "Quarterly taxes" not in blind.get("/acme/search?q=Quarterly").get_data(as_text=True)


def test_hook_portal_navigation(app, factory, client):
    acme = factory.tenant("acme")
    bare = factory.tenant("bare", plugins=())
    for tenant in (acme, bare):
        client_id = factory.client(tenant, f"Client of {tenant.slug}", email=f"c@{tenant.slug}.test")
        factory.portal_user(tenant, client_id, f"c@{tenant.slug}.test")
    login(client, "acme", "c@acme.test")
    assert 'href="/acme/portal/notes/"' in client.get("/acme/portal/").get_data(as_text=True)
    assert client.get("/acme/portal/notes/").get_json() == {"notes": 1}
    other = app.test_client()
    login(other, "bare", "c@bare.test")
    assert "/bare/portal/notes/" not in other.get("/bare/portal/").get_data(as_text=True)
    assert other.get("/bare/portal/notes/").status_code == 404
