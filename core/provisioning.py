"""Provisioning and looking after tenants (the operator's work): a tenant is made with its
default roles and its first administrator, so this sits above core's roles and users."""

from __future__ import annotations

import zoneinfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core.auth.models import User, new_session_nonce
from core.config import LANGUAGES
from core.errors import DomainError
from core.extensions import db
from core.plugins import host
from core.roles.models import ROLE_ADMIN, OfferedDefault, Role
from core.roles.services import create_default_roles, offer_new_defaults
from core.users.services import invite_user
from tenants.context import all_tenants, tenant_context
from tenants.models import RESERVED_SLUGS, SLUG_PATTERN, TENANT_ACTIVE, TENANT_SUSPENDED, Tenant


def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _validate(slug: str | None, name: str, language: str, timezone: str) -> None:
    if slug is not None:
        if not SLUG_PATTERN.match(slug) or slug in RESERVED_SLUGS:
            raise DomainError(
                _l("The code may have lowercase letters, digits and hyphens (at most 40), and not be a reserved word."),
                field="slug",
            )
        if db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
            raise DomainError(_l("The code %(slug)s is already taken.", slug=slug), field="slug")
    if not name.strip():
        raise DomainError(_l("The name is required."), field="name")
    if language not in LANGUAGES:
        raise DomainError(_l("Unknown language."), field="language")
    if timezone not in zoneinfo.available_timezones():
        raise DomainError(_l("Unknown time zone."), field="timezone")


def create_tenant(slug: str, name: str, language: str = "es", timezone: str = "Europe/Madrid") -> Tenant:
    """A new tenant with its default roles, named in its language."""
    slug = (slug or "").strip().lower()
    _validate(slug, name, language, timezone)
    tenant = Tenant(slug=slug, name=name.strip(), language=language, timezone=timezone, status=TENANT_ACTIVE)
    db.session.add(tenant)
    db.session.flush()
    with tenant_context(tenant):
        create_default_roles(language, host().permissions)
        db.session.commit()
    return tenant


def update_tenant(tenant: Tenant, name: str, language: str, timezone: str) -> Tenant:
    _validate(None, name, language, timezone)
    tenant.name = name.strip()
    tenant.language = language
    tenant.timezone = timezone
    db.session.commit()
    return tenant


def set_status(tenant: Tenant, suspended: bool) -> Tenant:
    """Suspend (every session of the tenant ends, its pages and jobs stop) or reactivate a tenant."""
    tenant.status = TENANT_SUSPENDED if suspended else TENANT_ACTIVE
    if suspended:
        with tenant_context(tenant):
            # One statement for every user; the nonce only has to differ from the sessions' one.
            db.session.execute(update(User).values(session_nonce=new_session_nonce()))
    db.session.commit()
    return tenant


def find(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise DomainError(_l("There is no organisation with the code %(slug)s.", slug=slug))
    return tenant


def invite_administrator(tenant: Tenant, email: str, name: str, inviter_name: str):
    """Invite a user holding the tenant's administrator role (the first one, or another)."""
    with tenant_context(tenant):
        admin_role = db.session.scalar(select(Role).where(Role.key == ROLE_ADMIN))
        return invite_user(tenant, email, name, [admin_role.id], inviter_name=inviter_name)


def counts() -> dict[int, int]:
    """Users per tenant, for the operator's list (one query)."""
    with all_tenants():
        return dict(db.session.execute(select(User.tenant_id, func.count()).group_by(User.tenant_id)).all())


def offer_default_grants(tenant_ids: list[int]) -> dict:
    """The ``core.offer_default_grants`` sweep: the default roles of every tenant get the default
    grants of permissions added since they were made. One query finds the tenants that lack an
    offer; only those are visited, each in its own context."""
    registry = host().permissions
    codes = [permission.code for permission in registry.all()]
    if not tenant_ids or not codes:
        return {"tenants": 0, "granted": 0}
    complete = set(
        db.session.scalars(
            select(OfferedDefault.tenant_id)
            .where(OfferedDefault.tenant_id.in_(tenant_ids), OfferedDefault.code.in_(codes))
            .group_by(OfferedDefault.tenant_id)
            .having(func.count() == len(codes))
        )
    )
    visited = granted = 0
    for tenant_id in tenant_ids:
        if tenant_id in complete:
            continue
        with tenant_context(tenant_id):
            granted += len(offer_new_defaults(registry))
        visited += 1
    return {"tenants": visited, "granted": granted}
