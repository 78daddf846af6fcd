"""The audit trail: its permission and menu entry."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.hookspecs import hookimpl
from core.hooktypes import NavItem
from core.permissions import Permission


@hookimpl
def register_permissions():
    return [Permission("core.audit:view", _l("See the organisation's audit trail"))]


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Audit trail"), "audit.index", "core.audit:view", icon="journal-check", order=70, section="admin")
    ]
