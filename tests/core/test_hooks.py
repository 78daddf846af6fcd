"""Every hookspec is documented and has a test here named ``test_hook_<name>``.

The sample plugin (tests/sample_plugin) implements every hook; each test proves the hook is
called when documented, and only for tenants that have the plugin.
"""

from __future__ import annotations

import inspect
import re
from types import SimpleNamespace

from sqlalchemy import select

from core import hookspecs
from tests.conftest import login, login_operator
from tests.core.mail.conftest import smtp_server  # noqa: F401 (the fixture, for test_hook_mail_transport)

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


def _dispatch(app, tenant, hook, with_tenant=False, **kwargs):
    """Call a per-tenant hook the way core does: only for the tenant's enabled plugins (with the
    tenant's row as the ``tenant`` argument when ``with_tenant``)."""
    from tenants.context import tenant_context
    from tenants.licensing import enabled_plugins

    with app.app_context(), tenant_context(tenant.id):
        host = app.extensions["ventanilla_plugins"]
        row = _tenant_row(app, tenant)
        if with_tenant:
            kwargs["tenant"] = row
        return host.call_for_tenant(hook, enabled_plugins(row), **kwargs)


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


def test_hook_operator_navigation(factory, client):
    factory.operator()
    login_operator(client)
    page = client.get("/operator/").get_data(as_text=True)
    assert 'href="/operator/notes/" data-plugin-entry="sample_console.overview"' in page


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


def test_hook_clients_created(app, factory):
    acme = factory.tenant("acme", plugins=("sample",))
    bare = factory.tenant("bare", plugins=())
    ana = factory.client(acme, "Ana SL")
    luis = factory.client(acme, "Luis SL")
    other = factory.client(bare, "Other SL")
    _dispatch(app, acme, "clients_created", with_tenant=True, client_ids=[ana, luis], notify=True, held_for="")
    _dispatch(app, bare, "clients_created", with_tenant=True, client_ids=[other], notify=True, held_for="")
    assert {"Client Ana SL created", "Client Luis SL created"} <= set(_notes(app, acme))
    assert _notes(app, bare) == []


def test_hook_held_notices(app, factory):
    """A bulk action not announced: the plugin holds back what it would tell the clients under the
    action's key; ``held_notices`` counts it and releases it once."""
    acme = factory.tenant("acme", plugins=("sample",))
    bare = factory.tenant("bare", plugins=())
    ana = factory.client(acme, "Ana SL")
    luis = factory.client(acme, "Luis SL")
    held = {"notify": False, "held_for": "core.clients_import:1"}
    _dispatch(app, acme, "clients_created", with_tenant=True, client_ids=[ana, luis], **held)
    [notices] = _dispatch(app, acme, "held_notices", with_tenant=True, held_for="core.clients_import:1")
    assert notices.count == 2 and str(notices.label) == "Sample notes"
    assert _dispatch(app, acme, "held_notices", with_tenant=True, held_for="core.clients_import:2") == []
    assert _dispatch(app, bare, "held_notices", with_tenant=True, held_for="core.clients_import:1") == []
    with app.app_context():
        from tenants.context import tenant_context

        with tenant_context(acme.id):
            assert notices.release() == 2
            assert notices.release() == 0, "released once"
    assert _dispatch(app, acme, "held_notices", with_tenant=True, held_for="core.clients_import:1") == []


def test_hook_clients_updated(app, factory):
    acme = factory.tenant("acme", plugins=("sample",))
    ana = factory.client(acme, "Ana SL")
    _dispatch(
        app,
        acme,
        "clients_updated",
        with_tenant=True,
        changes={ana: {"email": ("a@x.test", "b@x.test"), "phone": ("", "1")}},
    )
    assert "Client Ana SL changed: email, phone" in _notes(app, acme)


CLIENT = {"kind": "company", "country": "ES", "tax_id": "B12345674", "company_name": "Ana SL"}


def test_hook_client_fields(app, factory, client, run_jobs):
    """Form → database → data tab → export → import (with the per-row report) → hooks."""
    import csv
    import io

    acme = factory.tenant("acme", language="en")
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    form = client.get("/acme/clients/new").get_data(as_text=True)
    assert 'name="sample__reference"' in form and 'name="sample__tags"' in form and "Sample profile" in form
    wrong = client.post("/acme/clients/new", data={**CLIENT, "sample__reference": "nope"})
    assert "A reference is two letters, a hyphen and three digits (AB-123)." in wrong.get_data(as_text=True)
    made = client.post(
        "/acme/clients/new",
        data={
            **CLIENT,
            "sample__reference": "ab-123",
            "sample__vip": "y",
            "sample__tags": "One\n two ",
            "sample__tier": "gold",
        },
    )
    assert made.status_code == 302
    client_id = int(made.location.rsplit("/", 1)[1])
    with app.app_context():
        from core.extensions import db
        from tenants.context import tenant_context
        from tests.sample_plugin.models import SampleProfile

        with tenant_context(acme.id):
            profile = db.session.scalar(select(SampleProfile))
            assert (profile.client_id, profile.reference, profile.vip, profile.tags, profile.tier) == (
                client_id,
                "AB-123",
                True,
                ["one", "two"],
                "gold",
            )
    page = client.get(f"/acme/clients/{client_id}").get_data(as_text=True)
    assert 'data-field="sample.reference">AB-123<' in page and 'data-field="sample.tags">one, two<' in page
    assert 'data-field="sample.tier">Gold<' in page
    client.post(f"/acme/clients/{client_id}/edit", data={**CLIENT, "sample__reference": "CD-456", "sample__tier": ""})
    assert "Client Ana SL changed: sample.reference, sample.tags, sample.tier, sample.vip" in _notes(app, acme)
    history = client.get(f"/acme/clients/{client_id}?tab=history").get_data(as_text=True)
    assert "CD-456" in history, "the plugin's changes are in the client's history"

    exported = client.get("/acme/clients/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows[0]["sample.reference"] == "CD-456" and rows[0]["sample.vip"] == "no"

    text = (
        "nif,razon social,ref,vip,sample.tags\n"
        "B12345674,Ana SL,EF-789,si,x|y\n"
        "A58818501,Nueva SA,ZZ,no,\n"
        "Q2826000H,Otra SL,GH-000,perhaps,\n"
        "B76543214,Tercera SL,,,\n"
    )
    response = client.post(
        "/acme/clients/import",
        data={"file": (io.BytesIO(text.encode()), "clients.csv"), "group": ""},
        content_type="multipart/form-data",
    )
    run_jobs()
    report = client.get(response.location).get_data(as_text=True)
    problems = report.split('id="import-problems"')[1]
    assert "<td>3</td>" in problems and "Sample profile: Reference" in problems
    assert "<td>4</td>" in problems and "Sample profile: VIP" in problems and "Write yes or no." in problems
    exported = client.get("/acme/clients/export.csv").get_data(as_text=True).lstrip("\ufeff")
    by_tax_id = {row["tax_id"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert (by_tax_id["B12345674"]["sample.reference"], by_tax_id["B12345674"]["sample.vip"]) == ("EF-789", "yes")
    assert by_tax_id["B12345674"]["sample.tags"] == "x|y"
    assert by_tax_id["B76543214"]["sample.reference"] == "" and "A58818501" not in by_tax_id
    assert "Client Ana SL changed: sample.reference, sample.tags, sample.vip" in _notes(app, acme)
    bare = factory.tenant("bare", plugins=())
    factory.user(bare, "admin@bare.test", role_key="admin")
    other = app.test_client()
    login(other, "bare", "admin@bare.test")
    assert "sample__reference" not in other.get("/bare/clients/new").get_data(as_text=True)


def test_hook_client_list(app, factory, client):
    from tests.conftest import count_queries

    acme = factory.tenant("acme", language="en")
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    for number in range(3):
        client.post(
            "/acme/clients/new",
            data={
                **CLIENT,
                "tax_id": ["B12345674", "A58818501", "B76543214"][number],
                "company_name": f"Firm {number}",
                "sample__reference": f"AB-00{number}",
                "sample__vip": "y" if number == 1 else "",
            },
        )
    page = client.get("/acme/clients/").get_data(as_text=True)
    assert '<th data-column="sample.reference">Reference</th>' in page
    assert '<span class="badge text-bg-info">AB-001</span>' in page
    vips = client.get("/acme/clients/?sample.vip=yes").get_data(as_text=True).split('id="client-list"')[1]
    assert "Firm 1" in vips and "Firm 0" not in vips
    api = client.get("/acme/clients/api/?sample.vip=no").get_json()
    assert sorted(c["columns"]["sample.reference"] for c in api["clients"]) == ["AB-000", "AB-002"]
    exported = client.get("/acme/clients/export.csv?sample.vip=yes").get_data(as_text=True)
    assert "Firm 1" in exported and "Firm 0" not in exported
    bare = factory.tenant("bare", plugins=())
    factory.user(bare, "admin@bare.test", role_key="admin")
    for number in range(3):
        factory.client(bare, f"Bare {number}")
    other = app.test_client()
    login(other, "bare", "admin@bare.test")
    # Both warm: the first view after a change works out again what later ones reuse (permissions).
    assert "data-column" not in other.get("/bare/clients/").get_data(as_text=True)
    client.get("/acme/clients/")
    with count_queries(app) as with_plugin:
        client.get("/acme/clients/")
    with count_queries(app) as without:
        other.get("/bare/clients/")
    assert len(with_plugin) == len(without), "a plugin's column costs no statement of its own"


def test_hook_settings_sections(app, factory, client):
    acme = factory.tenant("acme", language="en")
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    page = client.get("/acme/settings/organisation").get_data(as_text=True)
    assert 'data-section="sample"' in page and 'href="/acme/notes/settings"' in page
    client.post("/acme/notes/settings", data={"greeting": "Hola"})
    settings = client.get("/acme/notes/settings").get_data(as_text=True)
    assert 'value="Hola"' in settings and 'data-section="sample" aria-current="page"' in settings
    factory.user(acme, "writer@acme.test", permissions=["sample.notes:manage"])
    writer = app.test_client()
    login(writer, "acme", "writer@acme.test")
    assert writer.get("/acme/settings/").location.endswith("/acme/notes/settings")
    assert 'href="/acme/settings/"' in writer.get("/acme/").get_data(as_text=True)
    factory.user(acme, "nobody@acme.test", permissions=[])
    nobody = app.test_client()
    login(nobody, "acme", "nobody@acme.test")
    assert "Your role lets you change no settings." in nobody.get("/acme/settings/").get_data(as_text=True)
    assert 'href="/acme/settings/"' not in nobody.get("/acme/").get_data(as_text=True)


def test_hook_login_identifiers(app, factory, client):
    from tests.conftest import PASSWORD

    acme = factory.tenant("acme", language="en")
    ana = factory.user(acme, "ana@acme.test", permissions=[])
    hint = re.search(r'<div class="form-text">([^<]*)</div>', client.get("/acme/login").get_data(as_text=True))
    assert hint and hint.group(1).startswith("You may also sign in with your sample badge")
    wrong = client.post("/acme/login", data={"email": f"SAMPLE-{ana}", "password": "nope"})
    assert wrong.status_code == 200 and "ana@acme.test" not in wrong.get_data(as_text=True)
    signed_in = client.post("/acme/login", data={"email": f"sample-{ana}", "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in.location == "/acme/"
    bare = factory.tenant("bare", plugins=())
    lone = factory.user(bare, "lone@bare.test", permissions=[])
    other = app.test_client()
    assert "sample badge" not in other.get("/bare/login").get_data(as_text=True)
    assert other.post("/bare/login", data={"email": f"SAMPLE-{lone}", "password": PASSWORD}).status_code == 200


def test_hook_plugin_disabled(app, factory, client):
    from tenants import licensing

    acme = factory.tenant("acme")
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    client.post("/acme/settings/plugins/sample", data={"enabled": "0"})
    assert _notes(app, acme)[-1] == "Switched off for Org acme"
    client.post("/acme/settings/plugins/sample", data={"enabled": "1"})
    with app.app_context():
        licensing.set_licence(_tenant_row(app, acme), "sample", False)
    assert _notes(app, acme).count("Switched off for Org acme") == 2, "a revoked licence tells the plugin too"
    with app.app_context():
        licensing.set_licence(_tenant_row(app, acme), "sample", True)
        licensing.set_licence(_tenant_row(app, acme), "sample", False)
    assert _notes(app, acme).count("Switched off for Org acme") == 3


def test_hook_mail_transport(app, factory, client, run_jobs, smtp_server):  # noqa: F811
    from core.api import send_email
    from core.extensions import db
    from tenants.context import tenant_context

    acme = factory.tenant("acme", language="en")
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    client.post("/acme/notes/settings", data={"greeting": "", "smtp_port": str(smtp_server.port)})
    with app.test_request_context(), tenant_context(acme.id):
        send_email(
            _tenant_row(app, acme),
            "someone@example.test",
            "Through the sample",
            "test_message",
            "en",
            transport="sample:desk",
            user=SimpleNamespace(name="Ada"),
            headers={"In-Reply-To": "<abc@example.test>", "Auto-Submitted": "auto-replied"},
        )
    run_jobs()
    (received,) = smtp_server.received
    message = received.message
    assert message["From"] == "desk@sample.test" and message["In-Reply-To"] == "<abc@example.test>"
    assert message["Auto-Submitted"] == "auto-replied"
    with app.app_context(), tenant_context(acme.id):
        from core.mail.models import OutboundMessage

        assert db.session.scalar(select(OutboundMessage.smtp_source)) == "sample"


def test_hook_plugin_enabled(app, factory, client):
    acme = factory.tenant("acme")
    assert _notes(app, acme) == ["Welcome note"], "the licence switched the plugin on and seeded the tenant"
    factory.user(acme, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    client.post("/acme/settings/plugins/sample", data={"enabled": "0"})
    client.post("/acme/settings/plugins/sample", data={"enabled": "1"})
    assert _notes(app, acme).count("Welcome note") == 1, "switching on again must not seed twice"


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


def test_hook_demo_logins(app):
    from core import demo

    with app.app_context():
        assert demo.logins()[-1] == "sample            a note's title is its own password"


def test_hook_demo_services(app):
    """What ``make run`` starts beside the web server and the worker."""
    with app.app_context():
        services = app.extensions["ventanilla_plugins"].call_all("demo_services", app=app)
    # Every installed plugin may add its own (the built-in ones too): the sample's is there, once.
    assert [(s.name, s.lines) for s in services if s.name == "sample-clock"] == [
        ("sample-clock", ("ticks for the demo",))
    ]


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
