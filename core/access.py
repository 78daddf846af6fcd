"""The request pipeline: find the tenant, load the user, gate plugins, enforce declared access.

All of it is central (one ``url_value_preprocessor``, one ``before_request``), never repeated
in views: a view only declares what it needs (``core.permissions``).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, abort, g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached

from core.auth import sessions
from core.auth.models import User
from core.auth.services import has_permission, load_operator
from core.cache import data_versions
from core.extensions import db, login_manager
from core.permissions import AUTHENTICATED, OPERATOR, PERMISSION, PORTAL, PUBLIC, access_of
from core.plugins import host
from tenants.context import enter_tenant, leave_tenant
from tenants.licensing import enabled_for_current_tenant
from tenants.models import Tenant

log = logging.getLogger(__name__)

# Pages for any signed-in user that portal accounts need too (the portal menu logs out).
PORTAL_ALSO = frozenset({"auth.logout"})


def is_static_endpoint(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


def current_tenant() -> Tenant | None:
    return g.get("tenant")


# The tenants this process has served, by slug: their id, the data versions (``core.cache``) they
# were read at, their columns, and until when they may be used. Every page starts from its tenant,
# and a tenant changes rarely.
_SERVED_TENANTS: dict[str, tuple[int, str, dict, float]] = {}
_SERVED_TENANTS_MOST = 4096
# As long as remember()'s figures: the bound on what a change that Redis failed to mark leaves stale.
_SERVED_TENANT_SECONDS = 300


def _tenant_by_slug(slug: str) -> Tenant | None:
    """The tenant of a URL: as this process last read it while the tenant's data (its own row
    among them, written in the tenant or by the operator) is still at the same versions; else read
    now. A row read after the versions is at least as new as they are, so it is kept under them."""
    served = _SERVED_TENANTS.get(slug)
    versions = data_versions(served[0]) if served is not None else None
    if served is not None and versions is not None and served[1] == versions and served[3] > time.monotonic():
        tenant = Tenant(**served[2])
        make_transient_to_detached(tenant)
        return db.session.merge(tenant, load=False)
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        _SERVED_TENANTS.pop(slug, None)
    elif versions is not None and served[0] == tenant.id:
        if len(_SERVED_TENANTS) >= _SERVED_TENANTS_MOST:
            _SERVED_TENANTS.clear()
        columns = {column.key: getattr(tenant, column.key) for column in Tenant.__mapper__.column_attrs}
        _SERVED_TENANTS[slug] = (tenant.id, versions, columns, time.monotonic() + _SERVED_TENANT_SECONDS)
    else:
        # First seen (or the slug moved to another tenant): the versions to keep it under come next time.
        _SERVED_TENANTS[slug] = (tenant.id, "", {}, 0.0)
    return tenant


def _pull_tenant(endpoint: str | None, values: dict | None) -> None:
    if not values or "tenant" not in values:
        return
    slug = values.pop("tenant")
    tenant = _tenant_by_slug(slug)
    if tenant is None or not tenant.is_active:
        abort(404)
    g.tenant = tenant
    g.tenant_token = enter_tenant(tenant.id)


def _leave_tenant(exc=None) -> None:
    token = g.pop("tenant_token", None)
    if token is not None:
        leave_tenant(token)


def _add_tenant_to_urls(endpoint: str, values: dict) -> None:
    tenant = g.get("tenant")
    if tenant is None or "tenant" in values:
        return
    from flask import current_app

    # Asked for every link of a page (a list builds one per row): the rules do not change once served.
    expecting = current_app.extensions.setdefault("ventanilla_tenant_endpoints", {})
    if endpoint not in expecting:
        expecting[endpoint] = current_app.url_map.is_endpoint_expecting(endpoint, "tenant")
    if expecting[endpoint]:
        values["tenant"] = tenant.slug


@login_manager.user_loader
def _load_user(identity: str):
    parts = identity.split(":")
    tenant = g.get("tenant")
    if parts[0] == "op" and len(parts) == 3 and tenant is None:
        operator = load_operator(int(parts[1]), parts[2])
        return operator if operator is not None and sessions.is_live(identity) else None
    if parts[0] == "t" and len(parts) == 4 and tenant is not None and int(parts[1]) == tenant.id:
        user = db.session.get(User, int(parts[2]))
        if user is None or not user.is_active or user.session_nonce != parts[3]:
            return None
        if user.is_portal and not user.client.active:
            return None  # a deactivated client's portal account is closed
        if sessions.is_live(identity):
            return user
    return None


def login_url_for_request() -> str:
    tenant = g.get("tenant")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    if tenant is None:
        return url_for("operator.login", next=target)
    return url_for("auth.login", next=target)


def _enforce_access():
    endpoint = request.endpoint
    if endpoint is None or is_static_endpoint(endpoint):
        return None
    from flask import current_app

    tenant = g.get("tenant")
    plugin = host().plugin_of_blueprint(request.blueprint)
    if plugin is not None and tenant is not None and plugin not in enabled_for_current_tenant():
        abort(404)
    access = access_of(current_app.view_functions.get(endpoint))
    if access is None:
        log.error("view %s declares no access; refused", endpoint)
        abort(403)
    if access.kind == PUBLIC:
        return None
    if access.kind == OPERATOR:
        if not (current_user.is_authenticated and current_user.is_operator):
            return redirect(login_url_for_request())
        return None
    if tenant is None:
        abort(404)
    user = current_user._get_current_object()
    if not user.is_authenticated or user.is_operator:
        return redirect(login_url_for_request())
    if access.kind == PORTAL:
        return None if user.is_portal else redirect(url_for("dashboard.index"))
    if user.is_portal and endpoint not in PORTAL_ALSO:
        # A client's portal account never reaches staff pages, whatever its roles grant.
        return redirect(url_for("portal.home"))
    if access.kind == AUTHENTICATED:
        return None
    if access.kind == PERMISSION and has_permission(user, access.permission):
        return None
    abort(403)


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.endpoint and not is_static_endpoint(request.endpoint):
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.url_value_preprocessor(_pull_tenant)
    app.url_defaults(_add_tenant_to_urls)
    app.before_request(_enforce_access)
    app.teardown_request(_leave_tenant)
    app.after_request(_security_headers)
    login_manager.login_view = None
    login_manager.session_protection = "basic"

    @login_manager.unauthorized_handler
    def _unauthorized():
        return redirect(login_url_for_request())
