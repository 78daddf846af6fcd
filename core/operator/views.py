"""The operator console: tenants, their licences and first administrators, jobs across tenants."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core import provisioning as tenant_services
from core.auth import services as auth_services
from core.auth import sessions
from core.auth.models import User
from core.errors import DomainError
from core.extensions import db
from core.hooktypes import LIST
from core.jobs.models import STATUSES, JobRun
from core.operator.forms import AdministratorForm, NewTenantForm, OperatorLoginForm, TenantForm
from core.pagination import keyset_page
from core.permissions import operator_only, public
from core.plugins import host
from core.roles.models import ROLE_ADMIN, Role
from core.templating import safe_next
from tenants import licensing
from tenants.context import all_tenants, tenant_context
from tenants.models import Tenant

bp = Blueprint("operator", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated and current_user.is_operator:
        return redirect(url_for("operator.index"))
    form = OperatorLoginForm()
    if form.validate_on_submit():
        try:
            operator = auth_services.authenticate_operator(
                form.email.data, form.password.data, request.remote_addr or "unknown"
            )
        except DomainError as error:
            flash(str(error.message), "danger")
        else:
            session.clear()
            login_user(operator)
            sessions.open_session(operator.get_id())
            session.permanent = True
            return redirect(safe_next(request.args.get("next"), url_for("operator.index")))
    return render_template("operator/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@operator_only
def logout():
    sessions.close_session()
    logout_user()
    session.clear()
    return redirect(url_for("operator.login"))


@bp.route("/")
@operator_only
def index():
    q = (request.args.get("q") or "").strip().lower()
    stmt = select(Tenant).order_by(Tenant.name)
    if q:
        stmt = stmt.where(Tenant.slug.contains(q, autoescape=True) | Tenant.name.icontains(q, autoescape=True))
    tenants = db.session.scalars(stmt).all()
    return render_template("operator/index.html", tenants=tenants, users=tenant_services.counts(), q=q)


@bp.route("/tenants/new", methods=["GET", "POST"])
@operator_only
def new_tenant():
    form = NewTenantForm()
    if form.validate_on_submit():
        try:
            tenant = tenant_services.create_tenant(
                form.slug.data, form.name.data, form.language.data, form.timezone.data
            )
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "slug").errors.append(str(error.message))
        else:
            flash(_("The organisation %(name)s has been created.", name=tenant.name), "success")
            if form.admin_email.data:
                _invite_admin(tenant, form.admin_email.data, form.admin_name.data or form.admin_email.data)
            return redirect(url_for("operator.tenant", tenant_id=tenant.id))
    return render_template("operator/new_tenant.html", form=form)


def _invite_admin(tenant: Tenant, email: str, name: str) -> bool:
    try:
        tenant_services.invite_administrator(tenant, email, name, current_user.name)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return False
    flash(_("We have sent an invitation to %(email)s.", email=email), "success")
    return True


def _administrators(tenant: Tenant):
    with tenant_context(tenant):
        return db.session.scalars(select(User).join(User.roles).where(Role.key == ROLE_ADMIN).order_by(User.name)).all()


@bp.route("/tenants/<int:tenant_id>", methods=["GET", "POST"])
@operator_only
def tenant(tenant_id: int):
    tenant = db.get_or_404(Tenant, tenant_id)
    form = TenantForm(obj=tenant)
    if form.validate_on_submit():
        try:
            tenant_services.update_tenant(tenant, form.name.data, form.language.data, form.timezone.data)
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "name").errors.append(str(error.message))
        else:
            flash(_("The organisation has been saved."), "success")
            return redirect(url_for("operator.tenant", tenant_id=tenant.id))
    plugins = host()
    return render_template(
        "operator/tenant.html",
        tenant=tenant,
        form=form,
        admin_form=AdministratorForm(),
        administrators=_administrators(tenant),
        licences=licensing.licences(tenant),
        infos=plugins.infos,
    )


@bp.route("/tenants/<int:tenant_id>/status", methods=["POST"])
@operator_only
def tenant_status(tenant_id: int):
    tenant = db.get_or_404(Tenant, tenant_id)
    suspend = request.form.get("suspend") == "1"
    tenant_services.set_status(tenant, suspend)
    flash(_("The organisation has been suspended.") if suspend else _("The organisation is active again."), "success")
    return redirect(url_for("operator.tenant", tenant_id=tenant.id))


@bp.route("/tenants/<int:tenant_id>/licences/<plugin>", methods=["POST"])
@operator_only
def licence(tenant_id: int, plugin: str):
    tenant = db.get_or_404(Tenant, tenant_id)
    info = host().infos.get(plugin)
    if info is None:
        abort(404)
    try:
        limits = licensing.parse_limits(
            plugin,
            {
                key: request.form.getlist(f"limit_{key}") if limit.kind == LIST else request.form.get(f"limit_{key}")
                for key, limit in info.limits.items()
            },
        )
    except DomainError as error:
        flash(str(error.message), "danger")
        return redirect(url_for("operator.tenant", tenant_id=tenant.id))
    licensed = request.form.get("licensed") == "1"
    licensing.set_licence(tenant, plugin, licensed, limits, operator_id=current_user.id)
    flash(_("The licence has been saved."), "success")
    return redirect(url_for("operator.tenant", tenant_id=tenant.id))


@bp.route("/tenants/<int:tenant_id>/administrators", methods=["POST"])
@operator_only
def invite_administrator(tenant_id: int):
    tenant = db.get_or_404(Tenant, tenant_id)
    form = AdministratorForm()
    if form.validate_on_submit():
        _invite_admin(tenant, form.email.data, form.name.data)
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(error, "danger")
    return redirect(url_for("operator.tenant", tenant_id=tenant.id))


@bp.route("/jobs")
@operator_only
def jobs():
    status = request.args.get("status", "")
    with all_tenants():
        stmt = select(JobRun).options(selectinload(JobRun.started_by))
        if status in STATUSES:
            stmt = stmt.where(JobRun.status == status)
        page = keyset_page(db.session, stmt, [JobRun.id], request.args.get("after"), per_page=100, descending=True)
        tenants = {t.id: t for t in db.session.scalars(select(Tenant))}
    return render_template("operator/jobs.html", page=page, tenants=tenants, status=status, statuses=STATUSES)


@bp.route("/audit")
@operator_only
def audit():
    from core.audit import services as audit_services
    from core.audit.models import AuditEvent
    from core.audit.views import ACTIONS, filter_arguments

    filters = filter_arguments()
    tenant_id = request.args.get("tenant", type=int)
    with all_tenants():
        stmt = audit_services.filtered(select(AuditEvent), **filters, tenant_id=tenant_id)
        page = keyset_page(db.session, stmt, [AuditEvent.id], request.args.get("after"), per_page=100, descending=True)
        object_types = audit_services.object_types()
        actors = audit_services.actors(tenant_id)
    tenants = {t.id: t for t in db.session.scalars(select(Tenant).order_by(Tenant.name))}
    return render_template(
        "operator/audit.html",
        page=page,
        filters=filters,
        tenants=tenants,
        tenant_id=tenant_id,
        object_types=object_types,
        actors=actors,
        actions=ACTIONS,
    )


@bp.route("/audit/export.csv")
@operator_only
def audit_export():
    from core.audit import services as audit_services
    from core.audit.models import AuditEvent
    from core.audit.views import filter_arguments
    from core.csvstream import csv_response

    tenant_id = request.args.get("tenant", type=int)
    slugs = dict(db.session.execute(select(Tenant.id, Tenant.slug)).all())

    def rows():
        with all_tenants():
            stmt = audit_services.filtered(select(AuditEvent), **filter_arguments(), tenant_id=tenant_id)
            yield from audit_services.export_rows(stmt, slugs)

    return csv_response(rows(), "audit.csv")
