"""Switching the interface language."""

from __future__ import annotations

from flask import Blueprint, g, redirect, request, session, url_for
from flask_login import current_user

from core.config import LANGUAGES
from core.extensions import db
from core.permissions import public
from core.templating import safe_next

bp = Blueprint("i18n", __name__)


@bp.route("/language", methods=["POST"])
@bp.route("/<tenant>/language", methods=["POST"], endpoint="switch_in_tenant")
@public
def switch():
    language = request.form.get("language", "")
    if language in LANGUAGES:
        session["lang"] = language
        if current_user.is_authenticated:
            current_user.locale = language
            db.session.commit()
    home = url_for("dashboard.index") if g.get("tenant") is not None else url_for("site.home")
    return redirect(safe_next(request.form.get("next"), home))
