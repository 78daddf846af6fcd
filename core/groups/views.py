"""Groups of users."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from core.audit.services import history
from core.auth.models import User
from core.auth.services import has_permission
from core.clients.models import Client, GroupClient
from core.clients.services import members_of, visible
from core.errors import DomainError
from core.extensions import db
from core.groups import services
from core.groups.forms import GroupForm
from core.groups.models import Group, GroupUser
from core.permissions import requires

bp = Blueprint("groups", __name__)


def _active_users():
    return db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)).all()


@bp.route("/")
@requires("core.groups:view")
def index():
    members = dict(db.session.execute(select(GroupUser.group_id, func.count()).group_by(GroupUser.group_id)).all())
    groups = db.session.scalars(select(Group).order_by(Group.name)).all()
    return render_template("groups/index.html", groups=groups, members=members)


@bp.route("/<int:group_id>")
@requires("core.groups:view")
def show(group_id: int):
    group = db.get_or_404(Group, group_id)
    clients = []
    if has_permission(current_user, "core.clients:view"):
        stmt = visible(current_user, select(Client).where(Client.id.in_(members_of(group.id))))
        clients = db.session.scalars(stmt.order_by(Client.name).limit(50)).all()
    client_count = db.session.scalar(
        select(func.count()).select_from(GroupClient).where(GroupClient.group_id == group.id)
    )
    return render_template(
        "groups/show.html", group=group, clients=clients, client_count=client_count, events=history("group", group.id)
    )


def _save(form, group=None):
    try:
        saved = services.save_group(group, form.name.data, form.description.data, form.users.data)
    except DomainError as error:
        db.session.rollback()
        getattr(form, error.field or "name").errors.append(str(error.message))
        return None
    flash(_("The group has been saved."), "success")
    return redirect(url_for("groups.show", group_id=saved.id))


@bp.route("/new", methods=["GET", "POST"])
@requires("core.groups:manage")
def new():
    form = GroupForm(users=_active_users())
    if form.validate_on_submit():
        response = _save(form)
        if response is not None:
            return response
    return render_template("groups/form.html", form=form, group=None)


@bp.route("/<int:group_id>/edit", methods=["GET", "POST"])
@requires("core.groups:manage")
def edit(group_id: int):
    group = db.get_or_404(Group, group_id)
    form = GroupForm(obj=group, users=_active_users())
    if not form.is_submitted():
        form.users.data = [u.id for u in group.users]
    if form.validate_on_submit():
        response = _save(form, group)
        if response is not None:
            return response
    return render_template("groups/form.html", form=form, group=group)


@bp.route("/<int:group_id>/delete", methods=["POST"])
@requires("core.groups:manage")
def delete(group_id: int):
    group = db.get_or_404(Group, group_id)
    services.delete_group(g.tenant, group)
    flash(_("The group has been deleted."), "success")
    return redirect(url_for("groups.index"))
