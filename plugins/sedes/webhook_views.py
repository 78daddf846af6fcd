"""Configuración → Webhooks: the tenant administrator's hooks, their secrets, and their deliveries' log.

Views parse, call ``webhooks``' services, render; a ``DomainError`` goes back onto the form.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, Length, Optional

from core.api import CheckboxListField, DomainError, choices, current_tenant, db, requires
from plugins.sedes import webhooks
from plugins.sedes.webhooks import PERMISSION

bp = Blueprint("sedes_webhooks", __name__, template_folder="templates", url_prefix="/sedes/settings/webhooks")

SETTINGS_KEY = "sedes_webhooks"


class WebhookForm(FlaskForm):
    url = StringField(
        _l("Address (URL)"),
        validators=[InputRequired(), Length(max=500)],
        description=_l("Where each delivery is sent with a POST, such as https://dms.example.com/hooks/sedes."),
    )
    description = StringField(_l("Description"), validators=[Optional(), Length(max=200)])
    events = CheckboxListField(_l("Events"))
    active = BooleanField(_l("Active"), default=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events.choices = choices(list(webhooks.EVENTS.items()))


def _data(form: WebhookForm) -> webhooks.WebhookData:
    return webhooks.WebhookData(
        form.url.data or "", form.description.data or "", form.events.data or [], form.active.data
    )


def _show_errors(form: WebhookForm, error: DomainError) -> None:
    db.session.rollback()
    field = form._fields.get(error.field or "")
    if field is not None and field.name != "csrf_token":
        field.errors = [*field.errors, str(error.message)]
    else:
        flash(str(error.message), "danger")


def _hook_or_404(hook_id: int) -> webhooks.Webhook:
    hook = webhooks.get_hook(hook_id)
    if hook is None:
        abort(404)
    return hook


def _render(template: str, **context):
    return render_template(
        f"sedes/webhooks/{template}",
        settings_active=SETTINGS_KEY,
        events=webhooks.EVENT_NAMES,
        statuses=webhooks.STATUSES,
        errors=webhooks.ERRORS,
        **context,
    )


@bp.get("/")
@requires(PERMISSION)
def index():
    hooks = webhooks.hooks()
    return _render("list.html", hooks=hooks, counts=webhooks.delivery_counts([h.id for h in hooks]))


@bp.route("/new", methods=["GET", "POST"])
@requires(PERMISSION)
def new():
    form = WebhookForm()
    if request.method == "GET":
        form.events.data = list(webhooks.EVENTS)
    if form.validate_on_submit():
        try:
            hook = webhooks.create_hook(current_user, _data(form))
        except DomainError as error:
            _show_errors(form, error)
        else:
            flash(
                _("The webhook has been added. Copy its secret into your receiver to verify the signatures."), "success"
            )
            return redirect(url_for(".show", webhook_id=hook.id))
    return _render("form.html", form=form, hook=None)


@bp.get("/<int:webhook_id>")
@requires(PERMISSION)
def show(webhook_id: int):
    hook = _hook_or_404(webhook_id)
    page = webhooks.deliveries_page(hook, request.args.get("after"))
    return _render("show.html", hook=hook, page=page, previous_valid=webhooks.previous_secret_valid(hook))


@bp.route("/<int:webhook_id>/edit", methods=["GET", "POST"])
@requires(PERMISSION)
def edit(webhook_id: int):
    hook = _hook_or_404(webhook_id)
    form = WebhookForm()
    if request.method == "GET":
        form.url.data, form.description.data = hook.url, hook.description
        form.events.data, form.active.data = list(hook.events or []), hook.active
    if form.validate_on_submit():
        try:
            webhooks.update_hook(current_user, hook, _data(form))
        except DomainError as error:
            _show_errors(form, error)
        else:
            flash(_("The webhook has been saved."), "success")
            return redirect(url_for(".show", webhook_id=hook.id))
    return _render("form.html", form=form, hook=hook)


@bp.post("/<int:webhook_id>/pause")
@requires(PERMISSION)
def pause(webhook_id: int):
    hook = _hook_or_404(webhook_id)
    webhooks.set_active(current_user, hook, not hook.active)
    flash(_("The webhook is active again.") if hook.active else _("The webhook is paused."), "success")
    return redirect(url_for(".show", webhook_id=hook.id))


@bp.post("/<int:webhook_id>/rotate")
@requires(PERMISSION)
def rotate(webhook_id: int):
    hook = _hook_or_404(webhook_id)
    at_once = request.form.get("at_once") == "1"
    webhooks.rotate_secret(current_user, hook, keep_previous=not at_once)
    if at_once:
        flash(_("A new secret signs the deliveries from now on, and the old one no longer does."), "warning")
    else:
        flash(_("A new secret signs the deliveries from now on; the old one signs them too for 24 hours."), "warning")
    return redirect(url_for(".show", webhook_id=hook.id))


@bp.post("/<int:webhook_id>/delete")
@requires(PERMISSION)
def delete(webhook_id: int):
    hook = _hook_or_404(webhook_id)
    webhooks.delete_hook(current_user, hook)
    flash(_("The webhook and its deliveries have been deleted."), "success")
    return redirect(url_for(".index"))


@bp.post("/<int:webhook_id>/ping")
@requires(PERMISSION)
def ping(webhook_id: int):
    hook = _hook_or_404(webhook_id)
    try:
        webhooks.ping(current_tenant(), current_user, hook)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
    else:
        flash(_("A test event is on its way; its delivery is at the top of the list."), "success")
    return redirect(url_for(".show", webhook_id=hook.id))


def _delivery_or_404(hook: webhooks.Webhook, delivery_id: int) -> webhooks.Delivery:
    delivery = webhooks.get_delivery(hook, delivery_id)
    if delivery is None:
        abort(404)
    return delivery


@bp.get("/<int:webhook_id>/deliveries/<int:webhook_delivery_id>")
@requires(PERMISSION)
def delivery(webhook_id: int, webhook_delivery_id: int):
    hook = _hook_or_404(webhook_id)
    found = _delivery_or_404(hook, webhook_delivery_id)
    return _render(
        "delivery.html",
        hook=hook,
        delivery=found,
        attempts=webhooks.attempts_of(found),
        # Indented to be read; what is sent (and signed) is the compact form.
        body=json.dumps(json.loads(webhooks.body_of(found)), indent=2, ensure_ascii=False),
    )


@bp.post("/<int:webhook_id>/deliveries/<int:webhook_delivery_id>/redeliver")
@requires(PERMISSION)
def redeliver(webhook_id: int, webhook_delivery_id: int):
    hook = _hook_or_404(webhook_id)
    found = _delivery_or_404(hook, webhook_delivery_id)
    try:
        webhooks.redeliver(current_tenant(), current_user, found)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
    else:
        flash(_("The delivery will be sent again, with the same id."), "success")
    return redirect(url_for(".delivery", webhook_id=hook.id, webhook_delivery_id=found.id))
