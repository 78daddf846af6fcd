"""Roles: which permissions each one grants."""

from __future__ import annotations

from itertools import groupby

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from core.audit.services import history
from core.errors import DomainError
from core.extensions import db
from core.permissions import requires
from core.plugins import host
from core.roles import services
from core.roles.forms import RoleForm
from core.roles.models import Role, RolePermission, UserRole
from tenants.licensing import enabled_for_current_tenant

bp = Blueprint("roles", __name__)


def _permissions():
    return services.usable_permissions(host().permissions, enabled_for_current_tenant())


def _grouped(permissions):
    """Permissions grouped by plugin, with the plugin's title, core first."""
    infos = host().infos
    ordered = sorted(permissions, key=lambda p: (p.plugin != "core", p.plugin, p.code))
    groups = []
    for plugin, items in groupby(ordered, key=lambda p: p.plugin):
        title = _("Platform") if plugin == "core" else infos[plugin].title
        groups.append((plugin, title, list(items)))
    return groups


@bp.route("/")
@requires("core.roles:manage")
def index():
    holders = dict(db.session.execute(select(UserRole.role_id, func.count()).group_by(UserRole.role_id)).all())
    grants = dict(
        db.session.execute(select(RolePermission.role_id, func.count()).group_by(RolePermission.role_id)).all()
    )
    roles = db.session.scalars(select(Role).order_by(Role.name)).all()
    return render_template("roles/index.html", roles=roles, holders=holders, grants=grants)


def _form_page(form, role=None):
    events = history("role", role.id) if role is not None else []
    return render_template("roles/form.html", form=form, role=role, grouped=_grouped(_permissions()), events=events)


@bp.route("/new", methods=["GET", "POST"])
@requires("core.roles:manage")
def new():
    permissions = _permissions()
    form = RoleForm(permissions=permissions)
    if form.validate_on_submit():
        try:
            services.create_role(
                form.name.data,
                form.description.data,
                form.permissions.data,
                {p.code for p in permissions},
                actor=current_user,
            )
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "name").errors.append(str(error.message))
        else:
            flash(_("The role has been created."), "success")
            return redirect(url_for("roles.index"))
    return _form_page(form)


@bp.route("/<int:role_id>", methods=["GET", "POST"])
@requires("core.roles:manage")
def edit(role_id: int):
    role = db.get_or_404(Role, role_id)
    permissions = _permissions()
    form = RoleForm(obj=role, permissions=permissions)
    if not form.is_submitted():
        form.permissions.data = sorted(role.codes)
    if form.validate_on_submit():
        try:
            services.update_role(
                role,
                form.name.data,
                form.description.data,
                form.permissions.data,
                {p.code for p in permissions},
                actor=current_user,
            )
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "name").errors.append(str(error.message))
        else:
            flash(_("The role has been saved."), "success")
            return redirect(url_for("roles.index"))
    return _form_page(form, role)


@bp.route("/<int:role_id>/delete", methods=["POST"])
@requires("core.roles:manage")
def delete(role_id: int):
    role = db.get_or_404(Role, role_id)
    try:
        services.delete_role(role)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return redirect(url_for("roles.edit", role_id=role_id))
    flash(_("The role has been deleted."), "success")
    return redirect(url_for("roles.index"))
