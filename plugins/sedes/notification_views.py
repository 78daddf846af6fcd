"""Notifications pages (blueprint ``sedes_notifications``, under ``/<tenant>/sedes/notifications``):
the list with its filters and CSV export, the deadline calendar, a notification with its documents,
assignment, workflow and comparecencia; and the sync requests with the run's progress page
("Consultar buzón" posts to ``sync_mailbox``; a sede's or a client's mailboxes to ``sync_sede`` and
``sync_client``). Views parse, call ``notifications``/``sync`` and render."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from core.api import (
    DomainError,
    JobRun,
    csv_response,
    current_tenant,
    db,
    get_visible_client,
    has_permission,
    live_progress,
    requires,
    send_stored_file,
    tenant_today,
    user_language,
    visible_client_ids,
)
from plugins.sedes import deadlines, notifications, sync
from plugins.sedes.models import SYNC_RESULTS, WORKFLOW_STATES, Sede, SedeMailbox, SedeNotification

bp = Blueprint("sedes_notifications", __name__, url_prefix="/sedes/notifications")

VIEW = notifications.VIEW
MANAGE = notifications.MANAGE
OPEN = notifications.OPEN
EXPORT = notifications.EXPORT
SUPERVISE = notifications.SUPERVISE
SYNC = sync.SYNC_PERMISSION
MAILBOXES_VIEW = "sedes.mailboxes:view"


def _sedes() -> list[Sede]:
    """The sedes of the tenant's licence (the catalogue is the operator's, shared by every tenant)."""
    from plugins.sedes.catalogue import licensed_sedes

    return licensed_sedes(current_tenant())


def _labels() -> dict:
    return {
        "kinds": notifications.KINDS,
        "sede_states": notifications.SEDE_STATES,
        "sede_state_styles": notifications.SEDE_STATE_STYLES,
        "states": WORKFLOW_STATES,
        "state_styles": notifications.WORKFLOW_STYLES,
        "windows": notifications.WINDOWS,
    }


def _notification_or_404(notification_id: int) -> SedeNotification:
    notification = notifications.get_visible(current_user, notification_id)
    if notification is None:
        abort(404)
    return notification


@bp.route("/")
@requires(VIEW)
def index():
    tenant = current_tenant()
    today = tenant_today(tenant)
    filters = notifications.Filters.from_args(request.args)
    page = notifications.list_page(current_user, filters, today, request.args.get("after"))
    return render_template(
        "sedes/notifications/index.html",
        page=page,
        filters=filters,
        today=today,
        sedes=_sedes(),
        can_export=has_permission(current_user, EXPORT),
        **_labels(),
    )


@bp.route("/export.csv")
@requires(EXPORT)
def export():
    tenant = current_tenant()
    filters = notifications.Filters.from_args(request.args)
    rows = notifications.export_rows(current_user, filters, tenant_today(tenant), user_language(current_user, tenant))
    return csv_response(rows, "notificaciones.csv")


@bp.route("/calendar")
@requires(VIEW)
def calendar():
    today = tenant_today(current_tenant())
    year, month = notifications.month_of(request.args.get("month"), today)
    filters = notifications.Filters.from_args(request.args)
    month_data = notifications.month_calendar(current_user, year, month, filters)
    return render_template(
        "sedes/notifications/calendar.html", month=month_data, today=today, filters=filters, **_labels()
    )


@bp.route("/<int:notification_id>")
@requires(VIEW)
def show(notification_id: int):
    notification = _notification_or_404(notification_id)
    today = tenant_today(current_tenant())
    left = deadlines.days_left(notification.deadline_on, today) if notification.deadline_on else None
    return render_template(
        "sedes/notifications/show.html",
        notification=notification,
        today=today,
        days_left=left,
        assignable=notifications.assignable_users(notification) if has_permission(current_user, MANAGE) else [],
        can_fetch=notifications.can_fetch_documents(notification),
        can_open=notification.opened_at is None
        and notification.sede_state in ("pendiente", "desconocido")
        and has_permission(current_user, OPEN),
        **_labels(),
    )


@bp.route("/<int:notification_id>/read", methods=["POST"])
@requires(VIEW)
def mark_read(notification_id: int):
    notification = _notification_or_404(notification_id)
    notifications.mark_read(current_user, notification)
    return redirect(url_for(".show", notification_id=notification_id))


@bp.route("/<int:notification_id>/assign", methods=["POST"])
@requires(MANAGE)
def assign(notification_id: int):
    notification = _notification_or_404(notification_id)
    raw = request.form.get("assignee", "")
    try:
        notifications.assign(current_user, notification, int(raw) if raw.isdigit() else None)
        flash(_l("Assignment saved."), "success")
    except DomainError as error:
        flash(error.message, "danger")
    return redirect(url_for(".show", notification_id=notification_id))


@bp.route("/<int:notification_id>/state", methods=["POST"])
@requires(MANAGE)
def set_state(notification_id: int):
    notification = _notification_or_404(notification_id)
    try:
        notifications.set_state(current_user, notification, request.form.get("state", ""))
        flash(_l("State saved."), "success")
    except DomainError as error:
        flash(error.message, "danger")
    return redirect(url_for(".show", notification_id=notification_id))


@bp.route("/<int:notification_id>/open", methods=["POST"])
@requires(OPEN)
def open_notification(notification_id: int):
    notification = _notification_or_404(notification_id)
    try:
        notifications.open_notification(
            current_tenant(), current_user, notification, confirmed=request.form.get("confirm") == "yes"
        )
        flash(_l("The notification has been opened at the sede; its documents are below."), "success")
    except DomainError as error:
        flash(error.message, "danger")
    return redirect(url_for(".show", notification_id=notification_id))


@bp.route("/<int:notification_id>/documents/fetch", methods=["POST"])
@requires(VIEW)
def fetch_documents(notification_id: int):
    """Bring the documents of a notification realised at the sede (no comparecencia)."""
    notification = _notification_or_404(notification_id)
    try:
        notifications.fetch_documents(current_tenant(), current_user, notification)
        flash(_l("The documents have been brought from the sede."), "success")
    except DomainError as error:
        flash(error.message, "danger")
    return redirect(url_for(".show", notification_id=notification_id))


@bp.route("/<int:notification_id>/documents/<int:notification_document_id>")
@requires(VIEW)
def document(notification_id: int, notification_document_id: int):
    notification = _notification_or_404(notification_id)
    found = notifications.document_of(notification, notification_document_id)
    if found is None or found.file is None:
        abort(404)
    return send_stored_file(found.file, download_name=found.name)


# --- syncing --------------------------------------------------------------------------------------


def _after_sync(runs: list[JobRun], back: str):
    if not runs:
        flash(_l("Those mailboxes are already being checked, or there are none."), "info")
        return redirect(back)
    if len(runs) == 1:
        return redirect(url_for(".sync_run", sync_run_id=runs[0].id, back=back))
    flash(_l("%(count)s syncs have started.", count=len(runs)), "success")
    return redirect(back)


def _back(default: str) -> str:
    target = request.form.get("back") or request.args.get("back") or ""
    return target if target.startswith("/") and not target.startswith("//") else default


@bp.route("/sync/mailbox/<int:mailbox_id>", methods=["POST"])
@requires(SYNC)
def sync_mailbox(mailbox_id: int):
    """ "Consultar buzón"."""
    mailbox = db.session.scalar(
        select(SedeMailbox).where(
            SedeMailbox.id == mailbox_id, SedeMailbox.client_id.in_(visible_client_ids(current_user))
        )
    )
    if mailbox is None:
        abort(404)
    back = _back(url_for("clients.show", client_id=mailbox.client_id, tab="sedes_mailboxes"))
    try:
        run = sync.request_mailbox_sync(current_tenant(), current_user, mailbox)
    except DomainError as error:
        flash(error.message, "warning")
        return redirect(back)
    return _after_sync([run], back)


@bp.route("/sync/client/<int:client_id>", methods=["POST"])
@requires(SYNC)
def sync_client(client_id: int):
    if get_visible_client(current_user, client_id) is None:
        abort(404)
    back = _back(url_for("clients.show", client_id=client_id, tab="sedes_mailboxes"))
    return _after_sync(sync.request_client_sync(current_tenant(), current_user, client_id), back)


@bp.route("/sync/sede", methods=["POST"])
@requires(SYNC)
def sync_sede():
    """Every mailbox of a sede (form field ``sede``) the user may see."""
    code = request.form.get("sede", "")
    if code not in {sede.code for sede in _sedes()}:
        abort(404)
    back = _back(url_for(".index"))
    return _after_sync(sync.request_sede_sync(current_tenant(), current_user, code), back)


@bp.route("/sync/runs/<int:sync_run_id>")
@requires(MAILBOXES_VIEW)
def sync_run(sync_run_id: int):
    """A sync's progress, then its mailboxes' outcome and the notifications it found."""
    run = db.session.scalar(select(JobRun).where(JobRun.id == sync_run_id, JobRun.name == sync.JOB))
    if run is None:
        abort(404)
    ids = [int(i) for i in (run.arguments or {}).get("mailbox_ids", [])]
    mailboxes = list(
        db.session.scalars(
            select(SedeMailbox)
            .where(SedeMailbox.id.in_(ids), SedeMailbox.client_id.in_(visible_client_ids(current_user)))
            .order_by(SedeMailbox.id)
        )
    )
    if not mailboxes and ids:
        abort(404)
    progress, message = live_progress(run)
    found = []
    if not run.is_open and run.started_at is not None:
        found = list(
            db.session.scalars(
                notifications.visible(current_user)
                .where(
                    SedeNotification.mailbox_id.in_([m.id for m in mailboxes]),
                    SedeNotification.first_seen_at >= run.started_at - timedelta(seconds=1),
                )
                .order_by(SedeNotification.made_available_at.desc())
                .limit(100)
            )
        )
    return render_template(
        "sedes/notifications/sync_run.html",
        run=run,
        progress=progress,
        message=message,
        mailboxes=mailboxes,
        states=sync.mailbox_states(mailboxes),
        results=SYNC_RESULTS,
        found=found,
        back=_back(""),
        today=tenant_today(current_tenant()),
        workflow_states=WORKFLOW_STATES,
        **{k: v for k, v in _labels().items() if k != "states"},
    )


# --- what the plugin's hooks show elsewhere ----------------------------------------------------------


def widgets(tenant, user) -> list:
    """The dashboard cards: notifications due this week, expired without being opened, and, for a
    supervisor, those at risk (nobody has handled them and two days or fewer are left)."""
    from core.api import Widget

    if not has_permission(user, VIEW):
        return []
    today = tenant_today(tenant)
    counts = notifications.widget_counts(user, today)
    supervised = []
    if has_permission(user, SUPERVISE):
        supervised.append(
            Widget(
                _l("Notifications at risk"),
                "sedes/notifications/at_risk_widget.html",
                {
                    "count": counts["at_risk"],
                    "rows": notifications.at_risk(user, today) if counts["at_risk"] else [],
                    "args": {"window": "risk"},
                },
                SUPERVISE,
                order=9,
            )
        )
    return [
        *supervised,
        Widget(
            _l("Notifications due this week"),
            "sedes/notifications/widget.html",
            {
                "key": "sedes-week",
                "count": counts["week"],
                "text": _l("to open before their deadline"),
                "args": {"window": "week", "sede_state": "pendiente"},
            },
            VIEW,
            order=10,
        ),
        Widget(
            _l("Notifications expired unopened"),
            "sedes/notifications/widget.html",
            {
                "key": "sedes-expired",
                "count": counts["expired"],
                "text": _l("deadline passed without opening them"),
                "args": {"window": "expired"},
            },
            VIEW,
            order=11,
        ),
    ]


def client_tab(client, user):
    """The client's **Notificaciones** tab: its latest notifications, newest first."""
    from core.api import ClientTab

    tenant = current_tenant()
    today = tenant_today(tenant)
    filters = notifications.Filters(client_id=client.id)
    page = notifications.list_page(user, filters, today, None, per_page=25)
    mailbox_count = db.session.scalar(select(func.count(SedeMailbox.id)).where(SedeMailbox.client_id == client.id))
    context = {
        "client": client,
        "page": page,
        "today": today,
        "mailbox_count": mailbox_count,
        "can_sync": has_permission(user, SYNC),
        **_labels(),
    }
    return ClientTab(
        "sedes_notifications", _l("Notifications"), "sedes/notifications/client_tab.html", context, VIEW, 30
    )
