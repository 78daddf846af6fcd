"""The tenant administrator's user screens."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.audit.services import history
from core.auth.models import User
from core.errors import DomainError
from core.extensions import db
from core.forms import choices
from core.groups.models import Group
from core.pagination import keyset_page
from core.permissions import requires
from core.roles.models import Role
from core.users import services
from core.users.forms import InviteUserForm, UserFilterForm, UserForm

bp = Blueprint("users", __name__)


def _choices():
    roles = db.session.scalars(select(Role).order_by(Role.name)).all()
    groups = db.session.scalars(select(Group).order_by(Group.name)).all()
    return roles, groups


@bp.route("/")
@requires("core.users:view")
def index():
    roles, _groups = _choices()
    filters = UserFilterForm(request.args)
    filters.role.choices = choices([("", _("All"))] + [(str(r.id), r.name) for r in roles])
    filters.validate()
    role_id = int(filters.role.data) if (filters.role.data or "").isdigit() else None
    stmt = services.search_statement(filters.q.data, filters.status.data, role_id).options(selectinload(User.roles))
    page = keyset_page(db.session, stmt, [User.name, User.id], request.args.get("after"), per_page=50)
    return render_template("users/index.html", page=page, filters=filters)


@bp.route("/invite", methods=["GET", "POST"])
@requires("core.users:manage")
def invite():
    roles, groups = _choices()
    form = InviteUserForm(roles=roles, groups=groups)
    if form.validate_on_submit():
        try:
            user = services.invite_user(
                g.tenant,
                form.email.data,
                form.name.data,
                form.roles.data,
                form.groups.data,
                form.locale.data,
                inviter_id=current_user.id,
                inviter_name=current_user.name,
                actor=current_user,
            )
        except DomainError as error:
            getattr(form, error.field or "email").errors.append(str(error.message))
        else:
            flash(_("We have sent an invitation to %(email)s.", email=user.email), "success")
            return redirect(url_for("users.show", user_id=user.id))
    return render_template("users/invite.html", form=form)


@bp.route("/<int:user_id>")
@requires("core.users:view")
def show(user_id: int):
    user = db.get_or_404(User, user_id)
    return render_template("users/show.html", user=user, events=history("user", user.id))


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@requires("core.users:manage")
def edit(user_id: int):
    user = db.get_or_404(User, user_id)
    roles, groups = _choices()
    form = UserForm(obj=user, roles=roles, groups=groups)
    if request.method == "GET":
        form.roles.data = [r.id for r in user.roles]
        form.groups.data = [grp.id for grp in user.groups]
        form.locale.data = user.locale or ""
    if form.validate_on_submit():
        try:
            services.update_user(
                user, form.name.data, form.roles.data, form.groups.data, form.locale.data, actor=current_user
            )
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "danger")
        else:
            flash(_("The user has been saved."), "success")
            return redirect(url_for("users.show", user_id=user.id))
    return render_template("users/edit.html", form=form, user=user)


def _act(user_id: int, action, done_message: str):
    user = db.get_or_404(User, user_id)
    try:
        action(user)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
    else:
        flash(done_message, "success")
    return redirect(url_for("users.show", user_id=user_id))


@bp.route("/<int:user_id>/deactivate", methods=["POST"])
@requires("core.users:manage")
def deactivate(user_id: int):
    return _act(user_id, lambda u: services.deactivate_user(u, current_user), _("The user has been deactivated."))


@bp.route("/<int:user_id>/reactivate", methods=["POST"])
@requires("core.users:manage")
def reactivate(user_id: int):
    return _act(user_id, services.reactivate_user, _("The user has been reactivated."))


@bp.route("/<int:user_id>/resend-invitation", methods=["POST"])
@requires("core.users:manage")
def resend_invitation(user_id: int):
    return _act(
        user_id,
        lambda u: services.resend_invitation(g.tenant, u, current_user.name),
        _("The invitation has been sent again."),
    )
