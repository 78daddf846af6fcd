"""The permission walker: every route declares its access, and that access is what it enforces.

For each route guarded by a permission, a user holding every permission *but that one* is
refused (403) and a user holding *only that one* gets through; open, operator and public
routes are checked the same way. A route that declares nothing fails this test.
"""

from __future__ import annotations

from core.access import PORTAL_ALSO
from core.permissions import AUTHENTICATED, OPERATOR, PERMISSION, PORTAL, PUBLIC
from tests.conftest import login, login_operator
from tests.walker import OPERATOR_ROW_ARGUMENTS, ROW_ARGUMENTS, plugin_rows, routes


def _all_codes(app) -> list[str]:
    return [p.code for p in app.extensions["ventanilla_plugins"].permissions.all()]


def own_values(app, factory, tenant) -> dict:
    from core.auth.models import TOKEN_INVITE, TOKEN_RESET, User
    from core.auth.services import issue_token
    from core.extensions import db
    from core.jobs.services import enqueue
    from tenants.context import tenant_context
    from tenants.models import Tenant

    victim = factory.user(tenant, "victim@perm.test", permissions=[])
    invited = factory.user(tenant, "invited@perm.test", password=None)
    with app.app_context():
        run = enqueue(db.session.get(Tenant, tenant.id), "sample.count_notes").id
        with tenant_context(tenant.id):
            token = issue_token(db.session.get(User, invited), TOKEN_INVITE)
            reset_token = issue_token(db.session.get(User, victim), TOKEN_RESET)
            db.session.commit()
    eml = _outbox_file(app, tenant.id, victim)
    return {
        "reset_token": reset_token,
        "tenant": tenant.slug,
        "user_id": victim,
        "role_id": factory.role(tenant, "Spare role", []),
        "group_id": factory.group(tenant, "Spare group"),
        "run_id": run,
        "note_id": factory.note(tenant, "A note"),
        **_client_values(app, factory, tenant),
        "plugin": "sample",
        "token": token,
        "tenant_id": tenant.id,
        "eml": eml,
    }


def _client_values(app, factory, tenant) -> dict:
    from sqlalchemy import select

    from core.clients.models import ClientAddress, ClientImport
    from core.extensions import db
    from tenants.context import tenant_context

    client_id = factory.client(tenant, "Spare client")
    with app.app_context(), tenant_context(tenant.id):
        address_id = db.session.scalar(select(ClientAddress.id).where(ClientAddress.client_id == client_id))
        client_import = ClientImport(filename="spare.csv", data=b"NIF\n", problems=[])
        db.session.add(client_import)
        db.session.commit()
        import_id = client_import.id
    rows = plugin_rows(app, tenant.id, client_id, "Spare")
    by_argument = {
        name: rows[kind] for name, kind in {**ROW_ARGUMENTS, **OPERATOR_ROW_ARGUMENTS}.items() if kind in rows
    }
    return {"client_id": client_id, "address_id": address_id, "import_id": import_id, **by_argument}


def _outbox_file(app, tenant_id: int, user_id: int) -> str:
    """A message delivered into the outbox folder (no SMTP in the tests): the name of its .eml file."""
    from pathlib import Path

    from core.auth.models import User
    from core.extensions import db
    from core.mail.delivery import deliver_now
    from core.mail.services import send_email
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context(), tenant_context(tenant_id):
        user = db.session.get(User, user_id)
        tenant = db.session.get(Tenant, tenant_id)
        message = send_email(tenant, user.email, "Walk", "test_message", "en", user=user, host="")
        assert deliver_now(message.id) == "sent"
    return max(Path(app.config["OUTBOX_DIR"]).glob("*.eml")).name


def test_every_route_declares_a_known_access(app):
    registry = app.extensions["ventanilla_plugins"].permissions
    problems = []
    for route in routes(app):
        if route.access is None:
            problems.append(f"{route.rule} ({route.endpoint}) declares no access")
        elif route.access.kind == PERMISSION and route.access.permission not in registry:
            problems.append(f"{route.rule} needs undeclared permission {route.access.permission}")
        elif route.access.kind in (AUTHENTICATED, PERMISSION, PORTAL) and not route.tenant_scoped:
            problems.append(f"{route.rule} needs a tenant user but has no tenant in its URL")
    assert problems == []


def test_each_permission_route_refuses_without_it_and_admits_with_it(app, factory):
    tenant = factory.tenant("perm")
    values = own_values(app, factory, tenant)
    guarded = [r for r in routes(app) if r.access and r.access.kind == PERMISSION]
    codes = _all_codes(app)
    assert guarded, "no permission routes found"
    clients: dict[str, tuple] = {}
    for route in guarded:
        code = route.access.permission
        if code not in clients:
            without, only = app.test_client(), app.test_client()
            slug = code.replace(".", "-").replace(":", "-").replace("_", "-")
            factory.user(tenant, f"all-but-{slug}@perm.test", permissions=[c for c in codes if c != code])
            factory.user(tenant, f"only-{slug}@perm.test", permissions=[code])
            login(without, "perm", f"all-but-{slug}@perm.test")
            login(only, "perm", f"only-{slug}@perm.test")
            clients[code] = (without, only)
        without, only = clients[code]
        url = route.build(values)
        for method in route.methods:
            refused = without.open(url, method=method, data={} if method == "POST" else None)
            assert refused.status_code == 403, f"{method} {route.rule} without {code}: {refused.status_code}"
        if "GET" in route.methods:
            admitted = only.get(url)
            assert admitted.status_code not in (302, 403), f"GET {route.rule} with only {code}: {admitted.status_code}"
        else:
            admitted = only.post(url, data={})
            assert admitted.status_code != 403, f"POST {route.rule} with only {code} was refused"


def test_signed_in_routes_send_strangers_to_the_login_page(app, factory):
    tenant = factory.tenant("perm")
    values = own_values(app, factory, tenant)
    factory.user(tenant, "nobody@perm.test", permissions=[])
    anonymous, member = app.test_client(), app.test_client()
    login(member, "perm", "nobody@perm.test")
    for route in routes(app):
        if route.access is None or route.access.kind not in (AUTHENTICATED, PERMISSION):
            continue
        url = route.build(values)
        for method in route.methods:
            response = anonymous.open(url, method=method, data={} if method == "POST" else None)
            assert response.status_code == 302 and "/perm/login" in response.location, f"{method} {route.rule}"
        if route.access.kind == AUTHENTICATED and "GET" in route.methods:
            assert member.get(url).status_code == 200, f"GET {route.rule} refused a signed-in user"


def test_operator_routes_admit_only_operators(app, factory):
    tenant = factory.tenant("perm")
    values = own_values(app, factory, tenant)
    factory.user(tenant, "admin@perm.test", role_key="admin")
    factory.operator()
    staff, operator = app.test_client(), app.test_client()
    login(staff, "perm", "admin@perm.test")
    login_operator(operator)
    operator_routes = [r for r in routes(app) if r.access and r.access.kind == OPERATOR]
    assert operator_routes
    for route in operator_routes:
        url = route.build(values)
        for method in route.methods:
            response = staff.open(url, method=method, data={} if method == "POST" else None)
            assert response.status_code == 302 and "/operator/login" in response.location, f"{method} {route.rule}"
        if "GET" in route.methods:
            assert operator.get(url).status_code == 200, f"GET {route.rule} refused an operator"


def test_public_routes_need_no_login(app, factory):
    tenant = factory.tenant("perm")
    values = own_values(app, factory, tenant)
    anonymous = app.test_client()
    for route in routes(app):
        if route.access is None or route.access.kind != PUBLIC or "GET" not in route.methods:
            continue
        token = values["reset_token"] if route.endpoint == "auth.reset_password" else values["token"]
        response = anonymous.get(route.build({**values, "token": token}))
        assert response.status_code in (200, 301, 302), f"GET {route.rule}: {response.status_code}"
        if response.status_code != 200:
            assert "/login" not in response.location or route.endpoint.endswith("login"), route.rule


# --- the client portal ------------------------------------------------------------------


def test_portal_routes_admit_only_portal_accounts(app, factory):
    tenant = factory.tenant("perm")
    values = own_values(app, factory, tenant)
    factory.user(tenant, "admin@perm.test", role_key="admin")
    factory.portal_user(tenant, values["client_id"], "portal@perm.test")
    anonymous, staff, member = app.test_client(), app.test_client(), app.test_client()
    login(staff, "perm", "admin@perm.test")
    login(member, "perm", "portal@perm.test")
    portal_routes = [r for r in routes(app) if r.access and r.access.kind == PORTAL]
    assert portal_routes, "no portal routes found"
    for route in portal_routes:
        url = route.build(values)
        for method in route.methods:
            data = {} if method == "POST" else None
            response = anonymous.open(url, method=method, data=data)
            assert response.status_code == 302 and response.location.startswith("/perm/login"), f"{method} {route.rule}"
            response = staff.open(url, method=method, data=data)
            assert response.status_code == 302 and response.location == "/perm/", f"{method} {route.rule} (staff)"
        if "GET" in route.methods:
            assert member.get(url).status_code == 200, f"GET {route.rule} refused the portal account"


def test_portal_accounts_reach_no_staff_route_whatever_their_role_grants(app, factory):
    from sqlalchemy import select

    from core.extensions import db
    from core.roles.models import ROLE_CLIENT, Role
    from tenants.context import tenant_context

    tenant = factory.tenant("perm")
    values = own_values(app, factory, tenant)
    factory.portal_user(tenant, values["client_id"], "portal@perm.test")
    with app.app_context(), tenant_context(tenant.id):
        db.session.scalar(select(Role).where(Role.key == ROLE_CLIENT)).all_permissions = True
        db.session.commit()
    member = app.test_client()
    login(member, "perm", "portal@perm.test")
    walked = 0
    for route in routes(app):
        if route.access is None or route.access.kind not in (AUTHENTICATED, PERMISSION):
            continue
        if route.endpoint in PORTAL_ALSO:
            continue
        url = route.build(values)
        for method in route.methods:
            response = member.open(url, method=method, data={} if method == "POST" else None)
            assert response.status_code == 302 and response.location == "/perm/portal/", f"{method} {route.rule}"
            walked += 1
    assert walked
    assert member.get("/perm/portal/").status_code == 200, "still signed in to the portal"
