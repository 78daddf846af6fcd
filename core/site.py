"""Pages outside any tenant: the landing page and the health check."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select, text

from core.extensions import db
from core.permissions import public
from core.redis_connection import get_redis
from tenants.models import SLUG_PATTERN, Tenant

bp = Blueprint("site", __name__)


@bp.route("/")
@public
def home():
    slug = (request.args.get("organisation") or "").strip().lower()
    if slug and SLUG_PATTERN.match(slug):
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is not None and tenant.is_active:
            return redirect(url_for("auth.login", tenant=slug))
        return render_template("site/home.html", unknown=slug), 404
    return render_template("site/home.html", unknown=None)


@bp.route("/favicon.ico")
@public
def favicon():
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.route("/healthz")
@public
def health():
    try:
        db.session.execute(text("SELECT 1"))
        get_redis().ping()
    except Exception:
        abort(503)
    return {"status": "ok"}
