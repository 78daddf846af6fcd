"""The calendar feed's pages (blueprint ``sedes_calendar``, under ``/<tenant>/sedes/calendar``): the
user's own page to make, regenerate or revoke their link, and the feed itself, which a calendar
application fetches without a session (the secret in its URL is what authenticates it)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.api import current_tenant, public, requires
from plugins.sedes import calendar_feed

bp = Blueprint("sedes_calendar", __name__, url_prefix="/sedes/calendar")

VIEW = calendar_feed.VIEW


@bp.route("/feed")
@requires(VIEW)
def feed_page():
    return render_template("sedes/calendar_feed.html", feed=calendar_feed.feed_of(current_user), link=None)


@bp.route("/feed", methods=["POST"])
@requires(VIEW)
def issue():
    """Make the link, or a new one in place of the old: shown on this answer only (its hash is kept)."""
    secret = calendar_feed.issue(current_user)
    return render_template(
        "sedes/calendar_feed.html",
        feed=calendar_feed.feed_of(current_user),
        link=calendar_feed.link(current_tenant(), secret),
    )


@bp.route("/feed/revoke", methods=["POST"])
@requires(VIEW)
def revoke():
    if calendar_feed.revoke(current_user):
        flash(_l("The calendar link has been revoked: calendars subscribed to it get nothing more."), "success")
    return redirect(url_for(".feed_page"))


@bp.route("/<feed_token>.ics")
@public
def feed(feed_token: str):
    tenant = current_tenant()
    user = calendar_feed.owner(feed_token)
    if user is None:
        abort(404)
    return Response(
        calendar_feed.calendar(tenant, user),
        mimetype="text/calendar",
        headers={"Content-Disposition": 'inline; filename="plazos.ics"'},
    )
