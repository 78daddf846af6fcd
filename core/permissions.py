"""Permissions as data, and the access every view declares.

Plugins declare ``Permission`` objects; roles grant their codes; every view says which access
it needs with one of the decorators below, and one ``before_request`` (``core.access``) enforces
it. A view that declares nothing is refused: access fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")

PUBLIC = "public"
AUTHENTICATED = "authenticated"
PERMISSION = "permission"
OPERATOR = "operator"
PORTAL = "portal"
ACCESS_ATTRIBUTE = "__ventanilla_access__"


@dataclass(frozen=True)
class Permission:
    code: str
    title: object  # a lazy translatable string
    default_roles: tuple[str, ...] = ()
    description: object = ""
    plugin: str = field(default="core", compare=False)

    @property
    def namespace(self) -> str:
        return self.code.split(".", 1)[0]

    @property
    def area(self) -> str:
        return self.code.split(".", 1)[1].split(":", 1)[0]


@dataclass(frozen=True)
class Access:
    kind: str
    permission: str | None = None


def _declare(access: Access, doc: str = "") -> Callable:
    def decorator(view: Callable) -> Callable:
        setattr(view, ACCESS_ATTRIBUTE, access)
        return view

    decorator.__doc__ = doc
    return decorator


public = _declare(Access(PUBLIC), "Anyone, logged in or not (login page, password reset, a signed webhook).")
authenticated = _declare(Access(AUTHENTICATED), "Any active user of the tenant in the URL (dashboard, own profile).")
operator_only = _declare(Access(OPERATOR), "Platform operators only (the operator console).")
portal = _declare(Access(PORTAL), "A client's own portal account in the tenant of the URL (and nobody else).")


def requires(code: str) -> Callable:
    """A user of the tenant whose roles grant ``code``."""
    if not CODE_PATTERN.match(code):
        raise ValueError(f"malformed permission code {code!r}")
    return _declare(Access(PERMISSION, code))


def access_of(view: Callable | None) -> Access | None:
    return getattr(view, ACCESS_ATTRIBUTE, None)


class PermissionRegistry:
    """Every permission the installed plugins declared, by code."""

    def __init__(self) -> None:
        self._by_code: dict[str, Permission] = {}

    def add(self, permission: Permission, plugin: str) -> None:
        if not CODE_PATTERN.match(permission.code):
            raise ValueError(f"permission {permission.code!r} is not of the form <plugin>.<area>:<verb>")
        if permission.namespace != plugin:
            raise ValueError(f"plugin {plugin!r} declared permission {permission.code!r} outside its namespace")
        if permission.code in self._by_code:
            raise ValueError(f"permission {permission.code!r} declared twice")
        self._by_code[permission.code] = Permission(
            permission.code, permission.title, tuple(permission.default_roles), permission.description, plugin
        )

    def get(self, code: str) -> Permission | None:
        return self._by_code.get(code)

    def __contains__(self, code: str) -> bool:
        return code in self._by_code

    def all(self) -> list[Permission]:
        return sorted(self._by_code.values(), key=lambda p: p.code)

    def for_plugins(self, plugins: set[str]) -> list[Permission]:
        return [p for p in self.all() if p.plugin in plugins]
