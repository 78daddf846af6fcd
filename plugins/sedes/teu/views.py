"""The one page action of the board: "Search the TEU now" (the daily job does it every morning)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.api import DomainError, current_tenant, has_permission, requires
from plugins.sedes.teu import board

bp = Blueprint("sedes_teu", __name__, url_prefix="/sedes/teu")


@bp.route("/search", methods=["POST"])
@requires(board.SYNC_PERMISSION)
def search():
    try:
        run = board.request_search(current_tenant(), current_user)
    except DomainError as error:
        flash(error.message, "warning")
        return redirect(url_for("sedes_notifications.index"))
    flash(_l("The Tablón Edictal Único is being searched for your clients; what it names arrives here."), "success")
    if has_permission(current_user, "core.jobs:view"):
        return redirect(url_for("jobs.show", run_id=run.id))
    return redirect(url_for("sedes_notifications.index"))
