"""The tenant's audit trail: filters, pages, CSV export."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, g, render_template, request
from sqlalchemy import select

from core.audit import services
from core.audit.models import CREATE, DELETE, UPDATE, AuditEvent
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


@bp.route("/")
@requires("core.audit:view")
def index():
    filters = filter_arguments()
    stmt = services.filtered(select(AuditEvent), **filters, zone=g.tenant.timezone)
    page = keyset_page(db.session, stmt, [AuditEvent.id], request.args.get("after"), per_page=50, descending=True)
    return render_template(
        "audit/index.html",
        page=page,
        filters=filters,
        actors=services.actors(),
        object_types=services.object_types(),
        actions=ACTIONS,
    )


@bp.route("/export.csv")
@requires("core.audit:view")
def export():
    stmt = services.filtered(select(AuditEvent), **filter_arguments(), zone=g.tenant.timezone)
    return csv_response(services.export_rows(stmt, {g.tenant.id: g.tenant.slug}), f"audit-{g.tenant.slug}.csv")
