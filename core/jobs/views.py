"""The tenant's background jobs: history, and a live progress bar for a running one."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_babel import format_datetime
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.extensions import db
from core.jobs.models import STATUS_LABELS, STATUS_STYLES, STATUSES, JobRun
from core.jobs.services import live_progress, registry
from core.pagination import keyset_page
from core.permissions import requires

bp = Blueprint("jobs", __name__)


def job_title(name: str) -> str:
    spec = registry().get(name)
    return str(spec.title) if spec is not None else name


@bp.route("/")
@requires("core.jobs:view")
def index():
    status = request.args.get("status", "")
    stmt = select(JobRun).options(selectinload(JobRun.started_by))
    if status in STATUSES:
        stmt = stmt.where(JobRun.status == status)
    page = keyset_page(db.session, stmt, [JobRun.id], request.args.get("after"), per_page=50, descending=True)
    # Open runs show a live bar (what the worker published), polled like the run's own page.
    live = {run.id: live_progress(run)[0] for run in page.items if run.is_open}
    return render_template(
        "jobs/index.html", page=page, status=status, statuses=STATUSES, job_title=job_title, live=live
    )


@bp.route("/<int:run_id>")
@requires("core.jobs:view")
def show(run_id: int):
    run = db.get_or_404(JobRun, run_id)
    progress, message = live_progress(run)
    return render_template("jobs/show.html", run=run, progress=progress, message=message, job_title=job_title)


@bp.route("/<int:run_id>/progress")
@requires("core.jobs:view")
def progress(run_id: int):
    run = db.get_or_404(JobRun, run_id)
    percent, message = live_progress(run)
    return jsonify(
        id=run.id,
        status=run.status,
        status_label=str(STATUS_LABELS[run.status]),
        status_style=STATUS_STYLES[run.status],
        progress=percent,
        message=message,
        open=run.is_open,
        error=run.error_text or None,
        result=run.result,
        finished_at=format_datetime(run.finished_at) if run.finished_at else None,
    )
