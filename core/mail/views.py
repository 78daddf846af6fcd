"""Mail screens: the tenant's SMTP settings (with a test button) and the operator's outbox."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.errors import DomainError
from core.extensions import db
from core.files.store import StorageUnavailable
from core.mail import delivery, outbox, services
from core.mail.forms import MailSettingsForm
from core.mail.models import (
    SOURCE_SYSTEM,
    SOURCE_TENANT,
    STATUS_LABELS,
    STATUS_STYLES,
    STATUSES,
    OutboundMessage,
)
from core.mail.validation import check_from_address, check_host, check_port
from core.pagination import keyset_page
from core.permissions import operator_only, requires
from tenants.context import all_tenants
from tenants.models import Tenant

bp = Blueprint("mail", __name__)
operator_bp = Blueprint("mail_operator", __name__)


# --- tenant settings -----------------------------------------------------------------------


def _render_settings(form: MailSettingsForm, stored, test_result=None):
    return render_template(
        "settings/mail.html",
        form=form,
        stored=stored,
        system=delivery.system_transport(),
        test_result=test_result,
        default_rate=current_app.config["MAIL_RATE_PER_MINUTE"],
        max_rate=current_app.config["MAIL_RATE_MAX_PER_MINUTE"],
    )


def _field_error(form: MailSettingsForm, error: DomainError) -> None:
    getattr(form, error.field or "host").errors.append(str(error.message))


@bp.route("/", methods=["GET", "POST"])
@requires("core.mail:manage")
def settings():
    stored = services.tenant_settings()
    form = MailSettingsForm(obj=stored) if request.method == "GET" and stored else MailSettingsForm()
    if form.validate_on_submit():
        try:
            services.save_tenant_settings(
                g.tenant,
                form.host.data,
                form.port.data,
                form.security.data,
                form.username.data,
                form.password.data,
                form.from_address.data,
                form.rate_per_minute.data,
            )
        except DomainError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            flash(_("The mail settings have been saved."), "success")
            return redirect(url_for("mail.settings"))
    return _render_settings(form, stored)


def _transport_from_form(form: MailSettingsForm, stored):
    """The server the form describes (not saved); with no host, what mail would use without one.

    An empty password field means the stored password only for the stored server and user: it
    is never sent to a host (or as a user) the form has just changed.
    """
    if not (form.host.data or "").strip():
        return delivery.system_transport()
    host = check_host(form.host.data)
    port = check_port(form.port.data)
    from_address = check_from_address(form.from_address.data, required=True)
    username = (form.username.data or "").strip() or None
    password = form.password.data
    if not password and services.same_server(stored, host, username):
        password = stored.password
    return services.SmtpSettings(
        host=host,
        port=port,
        security=form.security.data,
        username=username,
        password=password if username else None,
        from_address=services.sender_for(g.tenant.name, from_address),
        source=SOURCE_TENANT,
    )


@bp.route("/test", methods=["POST"])
@requires("core.mail:manage")
def test():
    """Send a test message to the signed-in user now, through the settings in the form (not saved)."""
    stored = services.tenant_settings()
    form = MailSettingsForm()
    if not form.validate_on_submit():
        return _render_settings(form, stored)
    try:
        transport = _transport_from_form(form, stored)
    except DomainError as error:
        _field_error(form, error)
        return _render_settings(form, stored)
    email = current_user.email
    try:
        source = delivery.send_test_message(g.tenant, current_user, transport)
    except DomainError as error:  # the server's address was refused before connecting
        _field_error(form, error)
        return _render_settings(form, stored)
    except Exception as exc:
        # What kind of failure, never what the other end said: it could be any service.
        result = {
            "ok": False,
            "message": delivery.explain_error(exc),
            "detail": delivery.classify_error(exc),
        }
        return _render_settings(form, stored, result)
    host = transport.host if transport else ""
    if source == SOURCE_TENANT:
        message = _(
            "We have sent a test message to %(email)s through %(host)s. Check that it arrived.", email=email, host=host
        )
    elif source == SOURCE_SYSTEM:
        message = _(
            "With no server of your own, the test message to %(email)s went through the platform's server.",
            email=email,
        )
    else:
        message = _(
            "No mail server is configured on this platform: the test message to %(email)s was written to the "
            "outbox as an .eml file instead of being sent.",
            email=email,
        )
    result = {"ok": True, "message": message}
    return _render_settings(form, stored, result)


# --- operator console ----------------------------------------------------------------------


@operator_bp.route("/mail")
@operator_only
def messages():
    status = request.args.get("status", "")
    with all_tenants():
        stmt = select(OutboundMessage)
        if status in STATUSES:
            stmt = stmt.where(OutboundMessage.status == status)
        page = keyset_page(
            db.session, stmt, [OutboundMessage.id], request.args.get("after"), per_page=100, descending=True
        )
        tenants = {t.id: t for t in db.session.scalars(select(Tenant))}
    return render_template(
        "operator/mail.html",
        page=page,
        tenants=tenants,
        status=status,
        statuses=STATUSES,
        labels=STATUS_LABELS,
        styles=STATUS_STYLES,
    )


@operator_bp.route("/outbox")
@operator_only
def outbox_files():
    try:
        files, next_cursor = outbox.list_files(request.args.get("after"))
    except StorageUnavailable as error:  # says which bucket and what to check, never a credential
        flash(_("The outbox cannot be read: %(error)s", error=str(error)), "danger")
        files, next_cursor = [], None
    return render_template(
        "operator/outbox.html", files=files, next_cursor=next_cursor, first=not request.args.get("after")
    )


@operator_bp.route("/outbox/<eml>")
@operator_only
def outbox_file(eml: str):
    try:
        message = outbox.read_file(eml)
    except StorageUnavailable as error:
        flash(_("The outbox cannot be read: %(error)s", error=str(error)), "danger")
        return redirect(url_for("mail_operator.messages"))
    if message is None:
        abort(404)
    return render_template("operator/outbox_file.html", message=message)
