"""Which plugins each tenant may use: licensed by the operator, enabled by the tenant administrator.

A licence also carries the operator's limits (numbers, lists of codes or text, as the plugin's
``LicenceLimit`` s say) and the tenant's own settings of the plugin.
"""

from __future__ import annotations

import re

from flask import g, has_request_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.cache import remember
from core.errors import DomainError
from core.extensions import db
from core.hooktypes import LIST, NUMBER, LicenceLimit
from tenants.context import current_tenant_id, tenant_context
from tenants.models import Tenant, TenantPlugin


def _host():
    from core.plugins import host

    return host()


def installed_plugins() -> list[str]:
    return _host().installed


def enabled_plugins(tenant: Tenant) -> set[str]:
    """Installed plugins the tenant has licensed and enabled (core is implied, not listed)."""
    with tenant_context(tenant):
        names = db.session.scalars(
            select(TenantPlugin.plugin).where(TenantPlugin.licensed.is_(True), TenantPlugin.enabled.is_(True))
        ).all()
    return set(names) & set(installed_plugins())


def enabled_for(tenant: Tenant | None) -> set[str]:
    """``enabled_plugins``, memoised for the request's own tenant (read once per request, and from
    the figures ``core.cache`` keeps while the tenant's data does not change)."""
    if tenant is None:
        return set()
    if has_request_context() and tenant is g.get("tenant"):
        if "enabled_plugins" not in g:
            # Licences change seldom and pages read them on every request: kept until the tenant's next
            # change, under that tenant's figures (only while it is the tenant in context).
            if current_tenant_id() == tenant.id:
                g.enabled_plugins = set(remember("enabled plugins", lambda: sorted(enabled_plugins(tenant))))
            else:
                g.enabled_plugins = enabled_plugins(tenant)
        return g.enabled_plugins
    return enabled_plugins(tenant)


def enabled_for_current_tenant() -> set[str]:
    """Plugins the tenant in this request has licensed and enabled (memoised per request)."""
    return enabled_for(g.get("tenant"))


def is_enabled(tenant: Tenant, plugin: str) -> bool:
    """Whether ``tenant`` has ``plugin`` licensed and enabled (core always is)."""
    return plugin == "core" or plugin in enabled_plugins(tenant)


def licences(tenant: Tenant) -> dict[str, TenantPlugin]:
    with tenant_context(tenant):
        rows = db.session.scalars(select(TenantPlugin)).all()
    return {row.plugin: row for row in rows}


def _row(tenant: Tenant, plugin: str) -> TenantPlugin:
    if plugin not in installed_plugins():
        raise DomainError(_l("The plugin %(plugin)s is not installed.", plugin=plugin))
    row = db.session.scalar(select(TenantPlugin).where(TenantPlugin.plugin == plugin))
    if row is None:
        row = TenantPlugin(tenant_id=tenant.id, plugin=plugin, licensed=False, enabled=False, limits={}, settings={})
        db.session.add(row)
    return row


_CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def parse_limit(limit: LicenceLimit, raw) -> int | list[str] | str | None:
    """The value of a limit from what the operator typed (a form field, ``--limit key=value``), or
    an already-typed value; empty means no limit. Raises ``DomainError`` naming the problem."""
    if raw is None or (isinstance(raw, str | list | tuple) and not raw):
        return None
    if limit.kind == NUMBER:
        text = str(raw).strip()
        if not text:
            return None
        if not text.isdigit():
            raise DomainError(_l("%(limit)s must be a whole number, or empty for no limit.", limit=limit.label))
        return int(text)
    if limit.kind == LIST:
        items = raw if isinstance(raw, list | tuple) else re.split(r"[,\s]+", str(raw))
        codes = list(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
        bad = [code for code in codes if not _CODE.match(code)]
        if bad:
            raise DomainError(_l("%(limit)s: %(codes)s is not a code.", limit=limit.label, codes=", ".join(bad)))
        if limit.choices is not None:
            known = {str(code) for code, _label in limit.choices()}
            unknown = [code for code in codes if code not in known]
            if unknown:
                raise DomainError(
                    _l(
                        "%(limit)s: %(codes)s is not one of %(known)s.",
                        limit=limit.label,
                        codes=", ".join(unknown),
                        known=", ".join(sorted(known)),
                    )
                )
        return codes or None
    text = " ".join(str(raw).split())
    return text[:500] or None


def parse_limits(plugin: str, raw: dict) -> dict:
    """Every limit of ``plugin`` named in ``raw`` (``{key: typed text}``), checked; unknown keys refused."""
    info = _host().infos.get(plugin)
    known = info.limits if info else {}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise DomainError(
            _l(
                "%(keys)s is not a limit of %(plugin)s (it has: %(known)s).",
                keys=", ".join(unknown),
                plugin=plugin,
                known=", ".join(sorted(known)) or "-",
            )
        )
    return {key: parse_limit(known[key], value) for key, value in raw.items()}


def set_licence(tenant: Tenant, plugin: str, licensed: bool, limits: dict | None = None, operator_id=None):
    """The operator grants or revokes a plugin. A new licence starts enabled for the tenant; a
    revoked one tells the plugin (``plugin_disabled``) when it was enabled. ``limits`` are typed
    values (``parse_limits`` makes them from text); None keeps the stored ones."""
    with tenant_context(tenant):
        row = _row(tenant, plugin)
        newly = licensed and not row.licensed
        lost = row.licensed and row.enabled and not licensed
        row.licensed = licensed
        if limits is not None:
            row.limits = {k: v for k, v in limits.items() if v is not None}
        row.licensed_by_id = operator_id
        if newly:
            row.enabled = True
        db.session.flush()
        if newly:
            _tell(tenant, plugin, "plugin_enabled")
        elif lost:
            _tell(tenant, plugin, "plugin_disabled")
        db.session.commit()
    return row


def set_enabled(tenant: Tenant, plugin: str, enabled: bool) -> TenantPlugin:
    """The tenant administrator switches a licensed plugin on or off."""
    with tenant_context(tenant):
        row = _row(tenant, plugin)
        if enabled and not row.licensed:
            raise DomainError(_l("Your organisation has no licence for this plugin."))
        was_enabled = row.enabled
        row.enabled = enabled
        db.session.flush()
        if enabled and not was_enabled:
            _tell(tenant, plugin, "plugin_enabled")
        elif was_enabled and not enabled and row.licensed:
            _tell(tenant, plugin, "plugin_disabled")
        db.session.commit()
    return row


def _tell(tenant: Tenant, plugin: str, hook: str) -> None:
    _host().call_one(plugin, hook, tenant=tenant)


def limit(tenant: Tenant, plugin: str, key: str) -> int | None:
    """The number limit ``key`` of a plugin for a tenant: None when unlimited, 0 without a licence."""
    value = licence_value(tenant, plugin, key)
    if value is False:
        return 0
    return None if value in (None, "") else int(value)


def licence_value(tenant: Tenant, plugin: str, key: str):
    """The limit ``key`` of the tenant's licence of ``plugin`` as the operator set it (a number, a
    list of codes or text); None when no limit is set, False when the tenant has no licence."""
    row = licences(tenant).get(plugin)
    if row is None or not row.licensed:
        return False
    return (row.limits or {}).get(key)


def plugin_settings(plugin: str) -> dict:
    """The current tenant's own settings of ``plugin`` (a copy; empty when it has none)."""
    row = db.session.scalar(select(TenantPlugin).where(TenantPlugin.plugin == plugin))
    return dict(row.settings or {}) if row is not None else {}


def update_plugin_settings(plugin: str, values: dict) -> dict:
    """Merge ``values`` into the current tenant's settings of ``plugin`` (a key set to None is
    removed); audited as a change of the licence, committed by the caller."""
    row = db.session.scalar(select(TenantPlugin).where(TenantPlugin.plugin == plugin))
    if row is None or not row.licensed:
        raise DomainError(_l("Your organisation has no licence for this plugin."))
    merged = {**(row.settings or {}), **values}
    row.settings = {key: value for key, value in merged.items() if value is not None}
    return dict(row.settings)
