"""Tenant administrators manage users, roles and groups."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import login, path_of


def _admin(factory, client, slug="acme", language="en"):
    tenant = factory.tenant(slug, language=language)
    factory.user(tenant, f"admin@{slug}.test", role_key="admin", name="Ada Admin")
    login(client, slug, f"admin@{slug}.test")
    return tenant


def _role_id(app, tenant, key):
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return db.session.scalar(select(Role.id).where(Role.key == key))


def test_inviting_a_user_mails_a_link_in_their_language_that_creates_the_account(app, factory, client, outbox):
    tenant = _admin(factory, client)
    manager = _role_id(app, tenant, "manager")
    response = client.post(
        "/acme/users/invite",
        data={
            "email": "Nora@Acme.test",
            "name": "Nora New",
            "roles": [str(manager)],
            "locale": "it",
        },
    )
    assert response.status_code == 302
    (mail,) = outbox()
    assert mail.to == "nora@acme.test" and mail.language == "it"
    assert "Ada Admin" in mail.text
    page = client.get(response.location).get_data(as_text=True)
    assert "Nora New" in page and ">Invited</span>" in page
    link = path_of(mail.link())
    assert link.startswith("/acme/invitation/")
    newcomer = app.test_client()
    newcomer.post(link, data={"password": "nora-password-1", "confirm": "nora-password-1"})
    login(newcomer, "acme", "nora@acme.test", "nora-password-1")
    assert newcomer.get("/acme/users/").status_code == 200, "the manager role lets her see the users"


def test_inviting_an_existing_email_names_the_existing_user(factory, client):
    _admin(factory, client)
    page = client.post("/acme/users/invite", data={"email": "ADMIN@acme.test", "name": "Again"})
    assert "There is already a user with the e-mail admin@acme.test (Ada Admin)." in page.get_data(as_text=True)


def test_resending_an_invitation_makes_the_old_link_stop_working(factory, client, outbox):
    _admin(factory, client)
    response = client.post("/acme/users/invite", data={"email": "late@acme.test", "name": "Late"})
    user_id = int(response.location.rsplit("/", 1)[1])
    first = path_of(outbox()[0].link())
    client.post(f"/acme/users/{user_id}/resend-invitation")
    mails = outbox()
    second = path_of(mails[-1].link())
    assert len(mails) == 2 and first != second
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200


def test_users_are_searched_filtered_and_paged(app, factory, client):
    tenant = _admin(factory, client)
    for n in range(60):
        factory.user(tenant, f"person{n:02d}@acme.test", name=f"Person {n:02d}", permissions=[])
    factory.user(tenant, "gone@acme.test", name="Gone Person", active=False, permissions=[])
    first = client.get("/acme/users/").get_data(as_text=True)
    assert ">Ada Admin</a>" in first and "Gone Person" in first and "Person 47" in first and "Person 48" not in first
    next_link = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(next_link).get_data(as_text=True)
    assert "Person 48" in second and "Person 59" in second and ">Ada Admin</a>" not in second
    found = client.get("/acme/users/?q=person 0").get_data(as_text=True)
    assert "Person 07" in found and "Person 10" not in found
    inactive = client.get("/acme/users/?status=inactive").get_data(as_text=True)
    assert "Gone Person" in inactive and "Person 01" not in inactive
    admins = client.get(f"/acme/users/?role={_role_id(app, tenant, 'admin')}").get_data(as_text=True)
    assert "Ada Admin" in admins and "Person 01" not in admins


def test_an_administrator_cannot_deactivate_themselves_or_the_last_administrator(app, factory, client):
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client)
    with app.app_context(), tenant_context(tenant.id):
        me = db.session.scalar(select(User.id).where(User.email == "admin@acme.test"))
    page = client.post(f"/acme/users/{me}/deactivate", follow_redirects=True).get_data(as_text=True)
    assert "You cannot deactivate your own account." in page
    second = factory.user(tenant, "second@acme.test", role_key="admin")
    other = app.test_client()
    login(other, "acme", "second@acme.test")
    other.post(f"/acme/users/{me}/deactivate")
    page = client.get("/acme/").status_code
    assert page == 302, "the first administrator was deactivated and logged out"
    alone = other.post(f"/acme/users/{second}/edit", data={"name": "Second", "roles": []}, follow_redirects=True)
    assert "The organisation must keep at least one active administrator." in alone.get_data(as_text=True)


def test_editing_a_user_changes_roles_groups_and_language(app, factory, client):
    tenant = _admin(factory, client)
    group = factory.group(tenant, "Centro Norte")
    user = factory.user(tenant, "staff@acme.test", permissions=[])
    operator = _role_id(app, tenant, "operator")
    client.post(
        f"/acme/users/{user}/edit",
        data={
            "name": "Stefano Staff",
            "roles": [str(operator)],
            "groups": [str(group)],
            "locale": "it",
        },
    )
    page = client.get(f"/acme/users/{user}").get_data(as_text=True)
    assert "Stefano Staff" in page and "Operator" in page and "Centro Norte" in page and "Italiano" in page


def test_a_role_grants_permissions_chosen_by_plugin_and_names_are_unique(app, factory, client):
    tenant = _admin(factory, client)
    form = client.get("/acme/roles/new").get_data(as_text=True)
    assert 'data-plugin="core"' in form and 'data-plugin="sample"' in form
    client.post(
        "/acme/roles/new",
        data={
            "name": "Reader",
            "description": "reads",
            "permissions": ["core.groups:view", "sample.notes:view"],
        },
    )
    listing = client.get("/acme/roles/").get_data(as_text=True)
    assert "Reader" in listing
    duplicate = client.post("/acme/roles/new", data={"name": "reader"}).get_data(as_text=True)
    assert "There is already a role called reader." in duplicate
    forged = client.post("/acme/roles/new", data={"name": "Forged", "permissions": ["core.root:all"]})
    assert forged.status_code == 200 and "Forged" not in client.get("/acme/roles/").get_data(as_text=True)

    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        role = db.session.scalar(select(Role).where(Role.name == "Reader"))
        assert role.codes == {"core.groups:view", "sample.notes:view"}


def test_a_role_held_by_users_cannot_be_deleted_and_the_administrator_role_never(app, factory, client):
    tenant = _admin(factory, client)
    held = factory.role(tenant, "Held", ["core.groups:view"])
    factory.user(tenant, "holder@acme.test", permissions=None)
    from core.auth.models import User
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        holder = db.session.scalar(select(User).where(User.email == "holder@acme.test"))
        holder.roles = [db.session.get(Role, held)]
        db.session.commit()
    page = client.post(f"/acme/roles/{held}/delete", follow_redirects=True).get_data(as_text=True)
    assert "1 user holds this role" in page
    admin_role = _role_id(app, tenant, "admin")
    page = client.post(f"/acme/roles/{admin_role}/delete", follow_redirects=True).get_data(as_text=True)
    assert "The administrator role cannot be deleted." in page
    spare = factory.role(tenant, "Spare", [])
    client.post(f"/acme/roles/{spare}/delete")
    assert "Spare" not in client.get("/acme/roles/").get_data(as_text=True)


def test_a_role_change_applies_to_its_holders_at_their_next_request(app, factory, client):
    tenant = _admin(factory, client)
    factory.user(tenant, "reader@acme.test", permissions=["core.groups:view"])
    reader = app.test_client()
    login(reader, "acme", "reader@acme.test")
    assert reader.get("/acme/groups/").status_code == 200
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        role_id = db.session.scalar(select(Role.id).where(Role.name == "role for reader@acme.test"))
    client.post(f"/acme/roles/{role_id}", data={"name": "role for reader@acme.test", "permissions": []})
    assert reader.get("/acme/groups/").status_code == 403


def test_groups_gather_users_and_names_are_unique(factory, client):
    tenant = _admin(factory, client)
    member = factory.user(tenant, "member@acme.test", name="Mia Member", permissions=[])
    response = client.post("/acme/groups/new", data={"name": "Centro Sur", "users": [str(member)]})
    page = client.get(response.location).get_data(as_text=True)
    assert "Centro Sur" in page and "Mia Member" in page
    duplicate = client.post("/acme/groups/new", data={"name": "centro sur"}).get_data(as_text=True)
    assert "There is already a group called centro sur." in duplicate
    group_id = response.location.rsplit("/", 1)[1]
    client.post(f"/acme/groups/{group_id}/delete")
    assert "Centro Sur" not in client.get("/acme/groups/").get_data(as_text=True)


def test_new_tenants_start_with_the_default_roles_in_their_language(app, factory):
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    for slug, language in (("es-org", "es"), ("it-org", "it"), ("en-org", "en")):
        tenant = factory.tenant(slug, language=language)
        with app.app_context(), tenant_context(tenant.id):
            names = {r.key: r.name for r in db.session.scalars(select(Role))}
        assert set(names) == {"admin", "manager", "operator", "assistant", "client"}
        if language == "en":
            assert names["admin"] == "Administrator"
        else:
            assert names["admin"] != "Administrator", f"{language} roles are not translated"


# --- nobody grants what they do not hold --------------------------------------------------------


def _user_roles(app, tenant, user_id) -> list[str]:
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return sorted(role.key or role.name for role in db.session.get(User, user_id).roles)


def _role_codes(app, tenant, role_id) -> set[str]:
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return db.session.get(Role, role_id).codes


def test_a_user_manager_cannot_grant_the_administrator_role_or_any_role_beyond_their_own(app, factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    me = factory.user(tenant, "hr@acme.test", permissions=["core.users:view", "core.users:manage"])
    login(client, "acme", "hr@acme.test")
    admin_role = _role_id(app, tenant, "admin")
    manager_role = _role_id(app, tenant, "manager")
    for role in (admin_role, manager_role):
        page = client.post(f"/acme/users/{me}/edit", data={"name": "Me", "roles": [str(role)]}, follow_redirects=True)
        assert "it grants permissions you do not hold" in page.get_data(as_text=True)
        assert _user_roles(app, tenant, me) == ["role for hr@acme.test"]
        invited = client.post("/acme/users/invite", data={"email": "x@acme.test", "name": "X", "roles": [str(role)]})
        assert invited.status_code == 200 and "it grants permissions you do not hold" in invited.get_data(as_text=True)
    admin = factory.user(tenant, "boss@acme.test", role_key="admin")
    page = client.post(f"/acme/users/{admin}/edit", data={"name": "Boss"}, follow_redirects=True)
    assert "it grants permissions you do not hold" in page.get_data(as_text=True), "nor take it away"
    assert _user_roles(app, tenant, admin) == ["admin"]
    # A role within one's own permissions can be given.
    viewer = factory.role(tenant, "Viewer", ["core.users:view"])
    assert (
        client.post(
            "/acme/users/invite", data={"email": "v@acme.test", "name": "V", "roles": [str(viewer)]}
        ).status_code
        == 302
    )


def test_a_role_manager_cannot_put_into_a_role_a_permission_they_do_not_hold(app, factory, client):
    tenant = factory.tenant("acme", language="en")
    me = factory.user(tenant, "roles@acme.test", permissions=["core.roles:manage", "core.users:view"])
    login(client, "acme", "roles@acme.test")
    from core.auth.models import User
    from core.extensions import db
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        own_role = db.session.get(User, me).roles[0].id
    page = client.post(
        f"/acme/roles/{own_role}",
        data={"name": "Mine", "permissions": ["core.roles:manage", "core.users:view", "core.users:manage"]},
    )
    assert "You cannot grant permissions you do not hold: core.users:manage." in page.get_data(as_text=True)
    assert _role_codes(app, tenant, own_role) == {"core.roles:manage", "core.users:view"}
    page = client.post("/acme/roles/new", data={"name": "Escalator", "permissions": ["core.audit:view"]})
    assert "You cannot grant permissions you do not hold: core.audit:view." in page.get_data(as_text=True)
    assert client.post("/acme/roles/new", data={"name": "Fine", "permissions": ["core.users:view"]}).status_code == 302
    # Taking a permission away is not granting: allowed.
    assert (
        client.post(f"/acme/roles/{own_role}", data={"name": "Mine", "permissions": ["core.roles:manage"]}).status_code
        == 302
    )


def test_a_submitted_value_in_an_error_message_is_escaped(factory, client):
    _admin(factory, client)
    page = client.post(
        "/acme/roles/new", data={"name": "Sneaky", "permissions": ["<script>alert('x')</script>"]}
    ).get_data(as_text=True)
    assert "<script>alert('x')</script>" not in page, "a lazy translated message is text, not markup"
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; is not a valid choice." in page
