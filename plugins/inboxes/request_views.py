"""Requests (solicitudes): the list per contract, the thread with its attachments, replies, the status."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.api import DomainError, db, has_permission, keyset_page, requires
from plugins.inboxes import REPLY, REQUESTS, attachments, contracts, requests
from plugins.inboxes.forms import ReplyForm, StatusForm
from plugins.inboxes.ingest import reason_message
from plugins.inboxes.mail.sanitize import rewrite_cid_images
from plugins.inboxes.models import (
    INBOUND,
    STATUS_LABELS,
    STATUS_STYLES,
    STATUSES,
    Attachment,
    Mailbox,
    Request,
    RequestMessage,
)

bp = Blueprint("inboxes_requests", __name__, template_folder="templates", url_prefix="/requests")

bp.record_once(
    lambda state: state.app.jinja_env.globals.update(
        INBOX_STATUS_LABELS=STATUS_LABELS, INBOX_STATUS_STYLES=STATUS_STYLES
    )
)

MAX_REPLY_ATTACHMENTS = 10 * 1024 * 1024
# The body of a message is shown in a sandboxed frame: no scripts, no requests but our own images.
HTML_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


def _request_or_404(inbox_request_id: int) -> Request:
    found = requests.get_visible(current_user, inbox_request_id)
    if found is None:
        abort(404)
    return found


@bp.route("/")
@requires(REQUESTS)
def index():
    contract_id = request.args.get("contract", type=int)
    inbox_id = request.args.get("mailbox", type=int)
    status = request.args.get("status", "open")
    q = request.args.get("q", "").strip()
    contract = contracts.get_visible(current_user, contract_id) if contract_id else None
    stmt = requests.list_statement(
        current_user, contract_id=contract.id if contract else None, status=status, q=q, mailbox_id=inbox_id
    )
    page = keyset_page(db.session, stmt, [Request.id], request.args.get("after"), per_page=50, descending=True)
    return render_template(
        "inboxes/requests.html",
        page=page,
        contract=contract,
        contracts=db.session.scalars(contracts.visible(current_user).order_by("name")).all(),
        inbound=db.session.scalars(select(Mailbox).where(Mailbox.direction == INBOUND).order_by(Mailbox.name)).all(),
        inbox_id=inbox_id,
        status=status,
        statuses=STATUSES,
        q=q,
    )


@bp.route("/<int:inbox_request_id>")
@requires(REQUESTS)
def show(inbox_request_id: int):
    found = _request_or_404(inbox_request_id)
    reply_form = ReplyForm()
    reply_form.to.data = found.requester_email
    status_form = StatusForm(status=found.status)
    return _show(found, reply_form, status_form)


def _show(found: Request, reply_form: ReplyForm, status_form: StatusForm, code: int = 200):
    return (
        render_template(
            "inboxes/request.html",
            request_row=found,
            messages=requests.thread(found),
            reply_form=reply_form,
            status_form=status_form,
            can_reply=has_permission(current_user, REPLY),
            reply_mode=requests.reply_mode(found),
            reason_message=reason_message,
        ),
        code,
    )


@bp.route("/<int:inbox_request_id>/reply", methods=["POST"])
@requires(REPLY)
def reply(inbox_request_id: int):
    found = _request_or_404(inbox_request_id)
    form = ReplyForm()
    if form.validate_on_submit():
        files = []
        total = 0
        for upload in request.files.getlist(form.files.name):
            if not upload or not upload.filename:
                continue
            data = upload.read(MAX_REPLY_ATTACHMENTS + 1)
            total += len(data)
            files.append((upload.filename, data, upload.mimetype or None))
        if total > MAX_REPLY_ATTACHMENTS:
            form.files.errors = [_("The attachments together may not exceed 10 MB.")]
        else:
            try:
                entry = requests.reply(
                    found,
                    current_user,
                    form.text.data or "",
                    to=form.to.data or "",
                    cc=form.cc.data or "",
                    status=form.status.data or None,
                    attachments=files,
                )
            except DomainError as error:
                db.session.rollback()
                getattr(form, error.field or "text").errors = [str(error.message)]
            else:
                flash(_("The answer has been sent to %(to)s.", to=", ".join(entry.to_addresses)), "success")
                return redirect(url_for("inboxes_requests.show", inbox_request_id=found.id) + f"#message-{entry.id}")
    found = _request_or_404(inbox_request_id)
    return _show(found, form, StatusForm(status=found.status), 400)


@bp.route("/<int:inbox_request_id>/status", methods=["POST"])
@requires(REPLY)
def status(inbox_request_id: int):
    found = _request_or_404(inbox_request_id)
    form = StatusForm()
    if form.validate_on_submit():
        try:
            requests.set_status(found, form.status.data)
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "danger")
        else:
            flash(_("The status is now %(status)s.", status=STATUS_LABELS[found.status]), "success")
    else:
        flash(_("Choose a status from the list."), "danger")
    return redirect(url_for("inboxes_requests.show", inbox_request_id=found.id))


def _message_or_404(found: Request, inbox_message_id: int) -> RequestMessage:
    entry = db.session.get(RequestMessage, inbox_message_id)
    if entry is None or entry.request_id != found.id:
        abort(404)
    return entry


@bp.route("/<int:inbox_request_id>/messages/<int:inbox_message_id>/html")
@requires(REQUESTS)
def message_html(inbox_request_id: int, inbox_message_id: int):
    """The message's HTML (sanitised when it arrived), in a sandboxed frame with its own policy."""
    found = _request_or_404(inbox_request_id)
    entry = _message_or_404(found, inbox_message_id)
    by_cid = {a.content_id: a for a in entry.attachments if a.content_id and attachments.is_image(a)}

    def image_url(content_id: str) -> str | None:
        attachment = by_cid.get(content_id)
        if attachment is None:
            return None
        return url_for(
            "inboxes_requests.attachment",
            inbox_request_id=found.id,
            inbox_attachment_id=attachment.id,
            inline=1,
        )

    body = rewrite_cid_images(entry.html_body or "", image_url)
    page = f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'
    return Response(
        page,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": HTML_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


@bp.route("/<int:inbox_request_id>/attachments/<int:inbox_attachment_id>")
@requires(REQUESTS)
def attachment(inbox_request_id: int, inbox_attachment_id: int):
    found = _request_or_404(inbox_request_id)
    item = db.session.get(Attachment, inbox_attachment_id)
    if item is None or item.message.request_id != found.id:
        abort(404)
    return attachments.response(item, inline=request.args.get("inline") == "1")
