"""A permission a release adds reaches the default roles of tenants made before it, once."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import select


@contextmanager
def new_permission(app, code: str, default_roles: tuple[str, ...]):
    """A permission as a newer release would declare it, for the length of the block."""
    from core.permissions import Permission
    from core.plugins import host

    with app.app_context():
        registry = host().permissions
        registry.add(Permission(code, "A permission of a newer release", default_roles), "core")
    try:
        yield
    finally:
        registry._by_code.pop(code)


def _codes_by_role(app, tenant) -> dict[str, set[str]]:
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return {role.key or role.name: role.codes for role in db.session.scalars(select(Role))}


def _sweep(app) -> dict:
    from core.jobs.runner import sweep

    with app.app_context():
        return sweep("core.offer_default_grants")


def _offered(app, tenant) -> set[str]:
    from core.extensions import db
    from core.roles.models import OfferedDefault
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        return set(db.session.scalars(select(OfferedDefault.code)))


def test_a_new_tenant_has_every_permission_offered_and_the_sweep_leaves_it_alone(app, factory):
    from core.plugins import host

    tenant = factory.tenant("fresh")
    with app.app_context():
        codes = {permission.code for permission in host().permissions.all()}
    assert _offered(app, tenant) == codes
    before = _codes_by_role(app, tenant)

    assert _sweep(app) == {"tenants": 0, "granted": 0}
    assert _codes_by_role(app, tenant) == before


def test_a_permission_added_later_reaches_its_default_roles_once_and_a_removal_sticks(app, factory):
    from core.extensions import db
    from core.roles.models import Role
    from tenants.context import tenant_context

    older = factory.tenant("older")
    other = factory.tenant("other")
    with new_permission(app, "core.probe:use", ("manager", "operator")):
        assert _sweep(app) == {"tenants": 2, "granted": 2}
        for tenant in (older, other):
            roles = _codes_by_role(app, tenant)
            assert "core.probe:use" in roles["manager"]
            assert "core.probe:use" in roles["operator"]
            assert "core.probe:use" not in roles["assistant"]
            assert "core.probe:use" not in roles["client"]
            assert "core.probe:use" in _offered(app, tenant)

        # The administrator of one tenant takes it away again: the next sweeps do not give it back.
        with app.app_context(), tenant_context(older.id):
            manager = db.session.scalar(select(Role).where(Role.key == "manager"))
            manager.grants = [grant for grant in manager.grants if grant.code != "core.probe:use"]
            db.session.commit()
        assert _sweep(app) == {"tenants": 0, "granted": 0}
        assert "core.probe:use" not in _codes_by_role(app, older)["manager"]
        assert "core.probe:use" in _codes_by_role(app, other)["manager"]


def test_a_tenant_without_a_record_of_offers_is_marked_offered_and_given_nothing(app, factory):
    from core.extensions import db
    from core.roles.models import OfferedDefault
    from tenants.context import tenant_context

    tenant = factory.tenant("legacy")
    with app.app_context(), tenant_context(tenant.id):
        db.session.execute(OfferedDefault.__table__.delete().where(OfferedDefault.tenant_id == tenant.id))
        db.session.commit()
    before = _codes_by_role(app, tenant)

    with new_permission(app, "core.probe:use", ("manager",)):
        assert _sweep(app) == {"tenants": 1, "granted": 0}
        assert "core.probe:use" in _offered(app, tenant)
        assert _codes_by_role(app, tenant) == before
