"""Which plugins each tenant may use: licensed by the operator, enabled by the tenant administrator."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.errors import DomainError
from core.extensions import db
from tenants.context import tenant_context
from tenants.models import Tenant, TenantPlugin


def installed_plugins() -> list[str]:
    return current_app.extensions["ventanilla_plugins"].installed


def enabled_plugins(tenant: Tenant) -> set[str]:
    """Installed plugins the tenant has licensed and enabled (core is implied, not listed)."""
    with tenant_context(tenant):
        names = db.session.scalars(
            select(TenantPlugin.plugin).where(TenantPlugin.licensed.is_(True), TenantPlugin.enabled.is_(True))
        ).all()
    return set(names) & set(installed_plugins())


def is_enabled(tenant: Tenant, plugin: str) -> bool:
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


def set_licence(tenant: Tenant, plugin: str, licensed: bool, limits: dict | None = None, operator_id=None):
    """The operator grants or revokes a plugin. A new licence starts enabled for the tenant."""
    with tenant_context(tenant):
        row = _row(tenant, plugin)
        newly = licensed and not row.licensed
        row.licensed = licensed
        if limits is not None:
            row.limits = {k: v for k, v in limits.items() if v is not None}
        row.licensed_by_id = operator_id
        if newly:
            row.enabled = True
            db.session.flush()
            _announce_enabled(tenant, plugin)
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
            _announce_enabled(tenant, plugin)
        db.session.commit()
    return row


def _announce_enabled(tenant: Tenant, plugin: str) -> None:
    current_app.extensions["ventanilla_plugins"].call_one(plugin, "plugin_enabled", tenant=tenant)


def limit(tenant: Tenant, plugin: str, key: str) -> int | None:
    """The licence limit ``key`` of a plugin for a tenant, or None when unlimited."""
    row = licences(tenant).get(plugin)
    if row is None or not row.licensed:
        return 0
    value = (row.limits or {}).get(key)
    return None if value in (None, "") else int(value)
