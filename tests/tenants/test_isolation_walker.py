"""The isolation walker: every route, called by a user of tenant A with what belongs to tenant B.

It enumerates the URL map, so a new route is walked without anyone adding it here; a route
with an argument the walker cannot fill makes it fail (tests/walker.py says what to pass).
"""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import PASSWORD, login
from tests.walker import OPERATOR_ROW_ARGUMENTS, ROW_ARGUMENTS, plugin_rows, plugin_snapshot, routes, uncovered

MARKER_A = "ALPHA-c41f"
MARKER_B = "BETA-7f3a"
# Walked last: they change the walking user's own session or tenant.
LAST = ("settings.toggle_plugin", "i18n.switch_in_tenant", "auth.logout")


def populate(app, factory, slug: str, marker: str) -> dict:
    from core.auth.models import TOKEN_INVITE, User
    from core.auth.services import issue_token
    from core.clients.models import ClientAddress, ClientImport
    from core.extensions import db
    from core.jobs.services import enqueue
    from core.push.models import PushSubscription
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = factory.tenant(slug, name=f"{marker} Organisation")
    admin = factory.user(tenant, f"admin@{slug}.test", role_key="admin", name=f"{marker} Admin")
    other = factory.user(tenant, f"other@{slug}.test", permissions=["core.users:view"], name=f"{marker} Other")
    invited = factory.user(tenant, f"invited@{slug}.test", password=None, name=f"{marker} Invited")
    role = factory.role(tenant, f"{marker} Role", ["core.groups:view"])
    group = factory.group(tenant, f"{marker} Group", [other])
    note = factory.note(tenant, f"{marker} Note")
    client = factory.client(tenant, f"{marker} Client", groups=[group], email=f"{slug}@client.test")
    portal_user = factory.portal_user(tenant, client, f"portal@{slug}.test", password=PASSWORD)
    with app.app_context():
        tenant_row = db.session.get(Tenant, tenant.id)
        run = enqueue(tenant_row, "sample.count_notes").id
        with tenant_context(tenant.id):
            token = issue_token(db.session.get(User, invited), TOKEN_INVITE)
            address = db.session.scalar(select(ClientAddress.id).where(ClientAddress.client_id == client))
            client_import = ClientImport(
                filename=f"{marker}.csv",
                data=f"NIF\n{marker}\n".encode(),
                problems=[[2, "tax_id", marker]],
                created_by_id=admin,
            )
            db.session.add(client_import)
            db.session.add(
                PushSubscription(
                    user_id=portal_user,
                    endpoint=f"https://fcm.googleapis.com/fcm/send/{slug}-{marker}",
                    p256dh=f"{marker}-key",
                    auth=f"{marker}-auth",
                )
            )
            db.session.commit()
            client_import = client_import.id
    _mail_of(app, tenant.id, slug, marker)
    return {
        **plugin_rows(app, tenant.id, client, marker),
        "tenant": tenant,
        "admin": admin,
        "user": other,
        "invited": invited,
        "role": role,
        "group": group,
        "note": note,
        "run": run,
        "token": token,
        "client": client,
        "address": address,
        "client_import": client_import,
        "portal_user": portal_user,
    }


def _mail_of(app, tenant_id: int, slug: str, marker: str) -> None:
    """The tenant's SMTP settings and one queued message, both carrying its marker."""
    from core.extensions import db
    from core.mail.services import save_tenant_settings, send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context(), tenant_context(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        save_tenant_settings(
            tenant, f"smtp.{slug}.test", 587, "starttls", f"{marker}-user", f"{marker}-pw", f"{slug}@mail.test"
        )
        reader = {"name": f"{marker} Reader"}
        send_email(tenant, f"{slug}@mail.test", f"{marker} Subject", "test_message", "en", user=reader, host="")


def snapshot(app, tenant_id: int) -> dict:
    """Everything of a tenant that a leaking write could change."""
    from core.auth.models import AuthToken, User
    from core.clients.models import Client, ClientImport
    from core.extensions import db
    from core.groups.models import Group
    from core.jobs.models import JobRun
    from core.mail.models import OutboundMessage, TenantMailSettings
    from core.push.models import PushSubscription
    from core.roles.models import Role
    from tenants.context import tenant_context
    from tenants.models import TenantPlugin
    from tests.sample_plugin.models import SampleNote

    with app.app_context(), tenant_context(tenant_id):
        return {
            "users": sorted(
                (
                    u.id,
                    u.name,
                    u.email,
                    u.active,
                    u.locale,
                    u.session_nonce,
                    u.password_hash,
                    u.client_id,
                    tuple(r.id for r in u.roles),
                    tuple(g.id for g in u.groups),
                )
                for u in db.session.scalars(select(User))
            ),
            "roles": sorted(
                (r.id, r.name, r.description, tuple(sorted(r.codes))) for r in db.session.scalars(select(Role))
            ),
            "groups": sorted(
                (g.id, g.name, g.description, tuple(u.id for u in g.users)) for g in db.session.scalars(select(Group))
            ),
            "plugins": sorted((p.plugin, p.licensed, p.enabled) for p in db.session.scalars(select(TenantPlugin))),
            "notes": sorted((n.id, n.title) for n in db.session.scalars(select(SampleNote))),
            "runs": sorted((r.id, r.status) for r in db.session.scalars(select(JobRun))),
            "tokens": sorted((t.id, t.used_at) for t in db.session.scalars(select(AuthToken))),
            "mail": sorted(
                (m.host, m.username, m.password, m.from_address) for m in db.session.scalars(select(TenantMailSettings))
            ),
            "outbound": sorted((m.id, m.status, m.attempts) for m in db.session.scalars(select(OutboundMessage))),
            "clients": sorted(
                (
                    c.id,
                    c.name,
                    c.tax_id,
                    c.email,
                    c.active,
                    c.notes,
                    tuple(g.id for g in c.groups),
                    tuple((a.id, a.street) for a in c.addresses),
                )
                for c in db.session.scalars(select(Client))
            ),
            "imports": sorted((i.id, i.created, i.finished_at) for i in db.session.scalars(select(ClientImport))),
            "push": sorted(
                (p.id, p.user_id, p.endpoint, p.p256dh, p.auth, p.last_sent_at)
                for p in db.session.scalars(select(PushSubscription))
            ),
            "plugins_rows": plugin_snapshot(app, tenant_id),
        }


def values_for(data: dict, slug: str) -> dict:
    values = {name: data[kind] for name, kind in ROW_ARGUMENTS.items()}
    values.update(tenant=slug, plugin="sample", token=data["token"])
    return values


def test_every_route_is_covered_by_the_walker(app):
    assert uncovered(routes(app)) == []


def test_a_user_of_one_tenant_reaches_nothing_of_another(app, factory, client):
    a = populate(app, factory, "alpha", MARKER_A)
    b = populate(app, factory, "beta", MARKER_B)
    before = snapshot(app, b["tenant"].id)
    login(client, "alpha", "admin@alpha.test")

    all_routes = routes(app)
    tenant_routes = sorted((r for r in all_routes if r.tenant_scoped), key=lambda r: (r.endpoint in LAST, r.endpoint))
    walked = 0

    # Own ids first: proves each id route really serves a row, so the 404s below mean isolation.
    own = values_for(a, "alpha")
    for route in tenant_routes:
        if route.row_arguments and "GET" in route.methods:
            response = client.get(route.build(own))
            assert response.status_code != 404, f"{route.rule} does not find tenant A's own row"

    # B's ids and tokens in A's URLs.
    foreign = values_for(b, "alpha")
    for route in tenant_routes:
        for method in route.methods:
            response = client.open(route.build(foreign), method=method, data={} if method == "POST" else None)
            body = response.get_data(as_text=True)
            if route.access is not None and route.access.kind == "portal":
                # Staff never reach portal pages (the portal walk below tries them with B's ids).
                assert response.status_code == 302 and response.location == "/alpha/", f"{method} {route.rule}"
            elif route.row_arguments or "token" in route.arguments:
                assert response.status_code == 404, f"{method} {route.rule} with B's ids: {response.status_code}"
            assert MARKER_B not in body, f"{method} {route.rule} leaked tenant B's data"
            walked += 1

    # Routes outside any tenant: the operator console and the site pages.
    login(client, "alpha", "admin@alpha.test")
    outside = [r for r in all_routes if not r.tenant_scoped]
    for route in outside:
        values = {"tenant_id": b["tenant"].id, "plugin": "sample", "eml": "none.eml"}
        values.update({name: b[kind] for name, kind in OPERATOR_ROW_ARGUMENTS.items()})
        for method in route.methods:
            response = client.open(route.build(values), method=method, data={} if method == "POST" else None)
            assert MARKER_B not in response.get_data(as_text=True), f"{method} {route.rule} leaked tenant B"
            if route.access is not None and route.access.kind == "operator":
                assert response.status_code == 302 and "/operator/login" in response.location
            walked += 1

    assert snapshot(app, b["tenant"].id) == before, "a request of tenant A changed tenant B"
    assert walked >= len(all_routes)


def test_a_portal_account_of_one_tenant_reaches_nothing_of_another(app, factory, client):
    a = populate(app, factory, "alpha", MARKER_A)
    b = populate(app, factory, "beta", MARKER_B)
    before = snapshot(app, b["tenant"].id)
    login(client, "alpha", "portal@alpha.test")
    portal_routes = [r for r in routes(app) if r.access is not None and r.access.kind == "portal"]
    assert portal_routes and all(r.tenant_scoped for r in portal_routes)

    own = values_for(a, "alpha")
    for route in portal_routes:
        if route.row_arguments and "GET" in route.methods:
            assert client.get(route.build(own)).status_code != 404, f"{route.rule} does not find A's own row"

    foreign = values_for(b, "alpha")
    for route in portal_routes:
        for method in route.methods:
            response = client.open(route.build(foreign), method=method, data={} if method == "POST" else None)
            if route.row_arguments or "token" in route.arguments:
                assert response.status_code == 404, f"{method} {route.rule} with B's ids: {response.status_code}"
            if response.status_code == 302:
                assert response.location.startswith("/alpha/portal/"), f"{method} {route.rule} sent A's account away"
            assert MARKER_B not in response.get_data(as_text=True), f"{method} {route.rule} leaked tenant B's data"

    # B's push subscription named from A: nothing of B is removed or taken over.
    endpoint = f"https://fcm.googleapis.com/fcm/send/beta-{MARKER_B}"
    json_post = {"without_csrf": True, "headers": {"X-CSRFToken": client.csrf_token()}}
    client.post("/alpha/portal/push/subscriptions/delete", json={"endpoint": endpoint}, **json_post)
    subscription = {"endpoint": endpoint, "keys": {"p256dh": "QUxQSEE", "auth": "QUxQSEE"}}
    assert client.post("/alpha/portal/push/subscriptions", json=subscription, **json_post).status_code == 201
    # A's session does not open B's portal.
    response = client.get("/beta/portal/")
    assert response.status_code == 302 and response.location.startswith("/beta/login")

    assert snapshot(app, b["tenant"].id) == before, "a request of tenant A's portal account changed tenant B"
    assert a["portal_user"] != b["portal_user"]


def test_a_session_of_one_tenant_is_not_a_session_in_another(factory, client):
    alpha = factory.tenant("alpha")
    factory.tenant("beta")
    factory.user(alpha, "admin@alpha.test", role_key="admin")
    login(client, "alpha", "admin@alpha.test")
    assert client.get("/alpha/users/").status_code == 200
    response = client.get("/beta/users/")
    assert response.status_code == 302
    assert response.location.startswith("/beta/login")
