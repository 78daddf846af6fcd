"""Background jobs: their permission, menu entry and widget, the settling of abandoned runs and
the nightly purge of spent links, old job history and old import files."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from core.auth.models import AuthToken
from core.auth.services import has_permission
from core.cache import remember
from core.clients.models import ClientImport
from core.extensions import db, utcnow
from core.hookspecs import hookimpl
from core.hooktypes import NavItem, Widget
from core.jobs.models import FAILED, OPEN_STATUSES, JobRun
from core.jobs.services import settle_abandoned_runs
from core.permissions import Permission


@hookimpl
def register_permissions():
    return [Permission("core.jobs:view", _l("See background jobs and their progress"), ("manager", "operator"))]


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(
            _l("Background jobs"), "jobs.index", "core.jobs:view", icon="hourglass-split", order=60, section="admin"
        )
    ]


def _days_ago(days: int):
    return utcnow() - timedelta(days=days)


def _job_counts() -> list[int]:
    return list(
        db.session.execute(
            select(
                func.count().filter(JobRun.status.in_(OPEN_STATUSES)),
                func.count().filter(JobRun.status == FAILED, JobRun.created_at >= _days_ago(7)),
            )
        ).one()
    )


@hookimpl
def dashboard_widgets(tenant, user):
    if not has_permission(user, "core.jobs:view"):
        return []
    # A job's start and end are commits of the tenant: the figures are kept until the next one
    # (the seven days' edge moves on by the expiry of what is kept, five minutes at most).
    open_runs, failed_runs = remember("jobs widget", _job_counts)
    return [
        Widget(
            _l("Background jobs"),
            "dashboard/widget_jobs.html",
            {"open": open_runs, "failed": failed_runs},
            "core.jobs:view",
            order=95,
        )
    ]


def purge_expired_records(ctx):
    """Remove spent one-time links, and job history and client import files (with their rows'
    personal data) older than 90 days, for this tenant."""
    tokens = db.session.execute(
        delete(AuthToken).where(AuthToken.expires_at < _days_ago(1)), execution_options={"synchronize_session": False}
    ).rowcount
    runs = db.session.execute(
        delete(JobRun).where(
            JobRun.created_at < _days_ago(90), JobRun.status.not_in(OPEN_STATUSES), JobRun.id != ctx.run.id
        ),
        execution_options={"synchronize_session": False},
    ).rowcount
    imports = db.session.execute(
        delete(ClientImport).where(ClientImport.created_at < _days_ago(90)),
        execution_options={"synchronize_session": False},
    ).rowcount
    db.session.commit()
    return {"tokens_removed": tokens, "runs_removed": runs, "imports_removed": imports}


@hookimpl
def register_jobs(jobs):
    jobs.add(
        "core.purge_expired",
        purge_expired_records,
        title=_l("Clean up expired links and old job history"),
        cron="17 3 * * *",
    )
    jobs.add(
        "core.jobs_settle",
        settle_abandoned_runs,
        title=_l("Close the job runs whose worker stopped"),
        cron="*/5 * * * *",
        timeout=300,
        per_tenant=False,
    )
