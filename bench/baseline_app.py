"""The baseline of ``bench/load.py``: the same views, queries (tenant filter included) and templates
as the platform, without the platform's pipeline, as a plain Flask application would run them.

Taken away: PostgreSQL row-level security (it connects as a role that bypasses it) and the
per-transaction tenant setting, the server-side session records in Redis (the signed cookie
alone signs a user in) and the central access check (only "signed in or sent to the login
page" is left). Kept: the ORM's tenant criteria, which put ``tenant_id = ...`` in every query as a
hand-written ``filter_by(tenant_id=...)`` would, the views, the hooks and the templates.

    gunicorn --workers 4 'bench.baseline_app:create_app()'    # with the environment of the real app
"""

from __future__ import annotations

from flask import g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.orm import Session


def create_app():
    from core.app import create_app as create_platform

    return strip(create_platform())


def strip(app):
    """Take the pipeline out of ``app``. The tenant setting goes for the whole process: measure the
    platform before stripping an app of the same process."""
    from core import access
    from core.auth.models import User
    from core.extensions import db, login_manager
    from tenants import context, isolation

    if event.contains(Session, "after_begin", isolation._set_transaction_tenant):
        event.remove(Session, "after_begin", isolation._set_transaction_tenant)
    context._on_change.clear()

    def load_user(identity: str):
        parts = identity.split(":")
        tenant = g.get("tenant")
        if parts[0] == "t" and len(parts) == 4 and tenant is not None and int(parts[1]) == tenant.id:
            return db.session.get(User, int(parts[2]))
        return None

    login_manager.user_loader(load_user)

    def login_required():
        endpoint = request.endpoint or ""
        if endpoint in ("auth.login", "static") or endpoint.endswith(".static") or g.get("tenant") is None:
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        return None

    functions = app.before_request_funcs[None]
    functions[functions.index(access._enforce_access)] = login_required
    return app
