"""The tenant's audit trail: filters, pages, CSV export."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from core.audit import services
from core.audit.models import CREATE, DELETE, UPDATE, AuditEvent
from core.clients.services import readable_changes, visible_audit_events
from core.csvstream import csv_response
from core.extensions import db
from core.pagination import keyset_page
from core.permissions import requires

bp = Blueprint("audit", __name__)

ACTIONS = (CREATE, UPDATE, DELETE)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def filter_arguments() -> dict:
    args = request.args
    return {
        "actor": args.get("actor") or None,
        "object_type": args.get("object_type") or None,
        "action": args.get("action") or None,
        "since": _day(args.get("since")),
        "until": _day(args.get("until")),
    }


def _readable_events():
    """The tenant's events this user may read: nothing about clients they cannot see."""
    return visible_audit_events(current_user, select(AuditEvent))


@bp.route("/")
@requires("core.audit:view")
def index():
    filters = filter_arguments()
    stmt = services.filtered(_readable_events(), **filters, zone=g.tenant.timezone)
    page = keyset_page(db.session, stmt, [AuditEvent.id], request.args.get("after"), per_page=50, descending=True)
    actors, object_types = services.filter_choices()
    return render_template(
        "audit/index.html",
        page=page,
        filters=filters,
        actors=actors,
        object_types=object_types,
        actions=ACTIONS,
    )


@bp.route("/export.csv")
@requires("core.audit:view")
def export():
    stmt = services.filtered(_readable_events(), **filter_arguments(), zone=g.tenant.timezone)
    user = current_user._get_current_object()
    rows = services.export_rows(stmt, {g.tenant.id: g.tenant.slug}, changes=lambda event: readable_changes(user, event))
    return csv_response(rows, f"audit-{g.tenant.slug}.csv")
