"""Roles and the permissions they grant."""

from __future__ import annotations

from flask_babel import force_locale, lazy_ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.errors import DomainError
from core.extensions import db
from core.permissions import PermissionRegistry
from core.roles.models import (
    DEFAULT_ROLE_KEYS,
    ROLE_ADMIN,
    ROLE_ASSISTANT,
    ROLE_CLIENT,
    ROLE_MANAGER,
    ROLE_OPERATOR,
    OfferedDefault,
    Role,
    RolePermission,
    UserRole,
)

DEFAULT_ROLE_NAMES = {
    ROLE_ADMIN: _l("Administrator"),
    ROLE_MANAGER: _l("Manager"),
    ROLE_OPERATOR: _l("Operator"),
    ROLE_ASSISTANT: _l("Assistant"),
    ROLE_CLIENT: _l("Client"),
}


def usable_permissions(registry: PermissionRegistry, enabled_plugins: set[str]):
    return registry.for_plugins({"core"} | set(enabled_plugins))


def _check_name_free(name: str, except_id: int | None = None) -> None:
    stmt = select(Role.id).where(func.lower(Role.name) == name.strip().lower())
    if except_id is not None:
        stmt = stmt.where(Role.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise DomainError(_l("There is already a role called %(name)s.", name=name.strip()), field="name")


# --- what one may grant ------------------------------------------------------------------------


def holds_every_permission(user) -> bool:
    """Whether ``user`` holds a role with every permission (the administrator role)."""
    return any(role.all_permissions for role in user.roles)


def held_codes(user) -> set[str]:
    """Every permission code ``user``'s roles grant (also those of plugins switched off for now)."""
    return {code for role in user.roles for code in role.codes}


def can_grant(actor, role: Role) -> bool:
    """Whether ``actor`` may give ``role`` to someone (or take it away): only a role that grants
    nothing beyond what the actor holds. The administrator role, only an administrator."""
    if holds_every_permission(actor):
        return True
    return not role.all_permissions and role.codes <= held_codes(actor)


def check_can_grant_codes(actor, codes) -> None:
    """Refuse to put into a role a permission ``actor`` does not hold."""
    if actor is None or holds_every_permission(actor):
        return
    missing = set(codes) - held_codes(actor)
    if missing:
        raise DomainError(
            _l("You cannot grant permissions you do not hold: %(codes)s.", codes=", ".join(sorted(missing))),
            field="permissions",
        )


def check_can_change_roles(actor, before: list[Role], after: list[Role]) -> None:
    """Refuse to give or take away a role ``actor`` could not grant."""
    if actor is None:
        return
    changed = {role.id: role for role in before if role not in after} | {
        role.id: role for role in after if role not in before
    }
    refused = sorted(role.name for role in changed.values() if not can_grant(actor, role))
    if refused:
        raise DomainError(
            _l(
                "You cannot give or take away the role %(roles)s: it grants permissions you do not hold.",
                roles=", ".join(refused),
            ),
            field="roles",
        )


def _set_codes(role: Role, codes, allowed: set[str]) -> None:
    unknown = set(codes) - allowed
    if unknown:
        raise DomainError(_l("Unknown permission: %(code)s.", code=", ".join(sorted(unknown))), field="permissions")
    wanted = set(codes)
    role.grants = [g for g in role.grants if g.code in wanted] + [
        RolePermission(code=code) for code in sorted(wanted - role.codes)
    ]


def create_role(name: str, description: str, codes, allowed: set[str], actor=None) -> Role:
    """A new role granting ``codes`` (each of them one that ``actor`` holds)."""
    _check_name_free(name)
    check_can_grant_codes(actor, codes)
    role = Role(name=name.strip(), description=(description or "").strip())
    _set_codes(role, codes, allowed)
    db.session.add(role)
    db.session.commit()
    return role


def update_role(role: Role, name: str, description: str, codes, allowed: set[str], actor=None) -> Role:
    """Rename the role and set its permissions; what it newly grants must be held by ``actor``."""
    _check_name_free(name, except_id=role.id)
    if not role.all_permissions:
        check_can_grant_codes(actor, set(codes) - role.codes)
    role.name = name.strip()
    role.description = (description or "").strip()
    if not role.all_permissions:
        # Permissions of plugins the tenant has switched off stay granted for when they return.
        hidden = {code for code in role.codes if code not in allowed}
        _set_codes(role, set(codes) | hidden, allowed | hidden)
    db.session.commit()
    return role


def users_holding(role: Role) -> int:
    return db.session.scalar(select(func.count(UserRole.user_id)).where(UserRole.role_id == role.id))


def delete_role(role: Role) -> None:
    if role.all_permissions:
        raise DomainError(_l("The administrator role cannot be deleted."))
    holders = users_holding(role)
    if holders:
        raise DomainError(
            lazy_ngettext(
                "%(num)d user holds this role: take it from them first.",
                "%(num)d users hold this role: take it from them first.",
                holders,
            )
        )
    db.session.delete(role)
    db.session.commit()


def create_default_roles(language: str, registry: PermissionRegistry) -> dict[str, Role]:
    """The roles every tenant starts with, named in its language, with the plugins' default grants."""
    roles: dict[str, Role] = {}
    with force_locale(language):
        for key in DEFAULT_ROLE_KEYS:
            role = Role(key=key, name=str(DEFAULT_ROLE_NAMES[key]), all_permissions=(key == ROLE_ADMIN))
            if key != ROLE_ADMIN:
                role.grants = [RolePermission(code=p.code) for p in registry.all() if key in p.default_roles]
            db.session.add(role)
            roles[key] = role
    db.session.add_all(OfferedDefault(code=p.code) for p in registry.all())
    db.session.flush()
    return roles


def offer_new_defaults(registry: PermissionRegistry) -> list[str]:
    """Give the current tenant's default roles the default grants of permissions added since
    its roles were made (a new release, a new plugin version), once per permission; commits.

    A tenant from before this record was kept has every permission of today marked offered and
    nothing granted: which defaults it was given, and which an administrator took away, is not known.
    Returns the codes offered now.
    """
    offered = set(db.session.scalars(select(OfferedDefault.code)))
    new = [p for p in registry.all() if p.code not in offered]
    if not new:
        return []
    if offered:
        roles = {role.key: role for role in db.session.scalars(select(Role).where(Role.key.is_not(None)))}
        for permission in new:
            for key in permission.default_roles:
                role = roles.get(key)
                if role is not None and not role.all_permissions and permission.code not in role.codes:
                    role.grants.append(RolePermission(code=permission.code))
    db.session.add_all(OfferedDefault(code=p.code) for p in new)
    db.session.commit()
    return [p.code for p in new] if offered else []
