"""The home page: every enabled plugin's widgets the user may see."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request
from flask_login import current_user

from core.permissions import authenticated
from core.plugins import host
from core.templating import can
from tenants.licensing import enabled_for_current_tenant

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@authenticated
def index():
    widgets = host().call_for_tenant(
        "dashboard_widgets", enabled_for_current_tenant(), tenant=g.tenant, user=current_user
    )
    visible = sorted((w for w in widgets if not w.permission or can(w.permission)), key=lambda w: w.order)
    return render_template("dashboard/index.html", widgets=visible)


@bp.route("/search")
@authenticated
def search():
    query = (request.args.get("q") or "").strip()[:100]
    results = []
    if len(query) >= 2:
        results = host().call_for_tenant(
            "global_search", enabled_for_current_tenant(), tenant=g.tenant, user=current_user, query=query
        )
    return render_template("dashboard/search.html", query=query, results=results)
