"""What every template can use: the tenant, the menu, permission checks, safe redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, g, request
from flask_babel import get_locale
from flask_login import current_user

from core import links
from core.auth.services import has_permission
from core.hooktypes import NavItem
from core.plugins import host
from tenants.licensing import enabled_for_current_tenant


def safe_next(target: str | None, default: str) -> str:
    """A redirect target only when it stays on this site (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def can(code: str) -> bool:
    return has_permission(current_user._get_current_object(), code)


def menu() -> dict[str, list[tuple[NavItem, str]]]:
    """The menu of the current user, from every enabled plugin's ``navigation`` hook."""
    tenant = g.get("tenant")
    user = current_user._get_current_object()
    if tenant is None or not user.is_authenticated or user.is_operator:
        return {"main": [], "admin": []}
    if "menu" not in g:
        items = host().call_for_tenant("navigation", enabled_for_current_tenant(), tenant=tenant, user=user)
        sections: dict[str, list] = {"main": [], "admin": []}
        for item in sorted(items, key=lambda i: (i.order, str(i.title))):
            if item.permission and not can(item.permission):
                continue
            sections.setdefault(item.section, []).append((item, links.url_for(item.endpoint, **item.url_values)))
        g.menu = sections
    return g.menu


def operator_menu() -> list[tuple]:
    """``(entry, url)`` of the plugins' operator pages, for the operator console's menu."""
    if not current_user.is_authenticated or not current_user.is_operator:
        return []
    items = sorted(host().call_all("operator_navigation"), key=lambda i: (i.order, str(i.title)))
    return [(item, links.url_for(item.endpoint, **item.url_values)) for item in items]


def settings_sections() -> list:
    """The sections of the settings page the current user may open (core's and the plugins')."""
    tenant = g.get("tenant")
    if tenant is None or not current_user.is_authenticated or current_user.is_operator:
        return []
    if "settings_sections" not in g:
        sections = host().call_for_tenant(
            "settings_sections", enabled_for_current_tenant(), tenant=tenant, user=current_user
        )
        g.settings_sections = sorted(
            (s for s in sections if not s.permission or can(s.permission)), key=lambda s: (s.order, str(s.title))
        )
    return g.settings_sections


def settings_menu() -> list[tuple]:
    """``(section, url, is the current page)`` for the settings page's own menu."""
    return [
        (section, links.url_for(section.endpoint, **section.url_values), request.endpoint == section.endpoint)
        for section in settings_sections()
    ]


def audit_changes(event) -> dict:
    """The changes of an audit event as the signed-in person may read them."""
    from core.clients.services import readable_changes

    return readable_changes(current_user._get_current_object(), event)


def init_app(app: Flask) -> None:
    from core.audit.recorder import audit_titles, field_label, value_label
    from core.jobs.models import STATUS_LABELS, STATUS_STYLES

    app.jinja_env.globals.update(
        audit_titles=audit_titles, audit_field=field_label, audit_value=value_label, audit_changes=audit_changes
    )
    app.jinja_env.globals.update(
        url_for=links.url_for,
        can=can,
        menu=menu,
        settings_menu=settings_menu,
        operator_menu=operator_menu,
        get_locale=get_locale,
        JOB_STATUS_LABELS=STATUS_LABELS,
        JOB_STATUS_STYLES=STATUS_STYLES,
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _tenant():
        return {"tenant": g.get("tenant")}
