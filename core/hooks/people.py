"""Users, roles and groups: their permissions, menu entries, the people widget, search, and the
job that offers new permissions' default grants."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.auth.models import User
from core.auth.services import has_permission
from core.cache import remember
from core.extensions import db
from core.groups.models import Group
from core.hookspecs import hookimpl
from core.hooktypes import NavItem, SearchResult, Widget
from core.permissions import Permission
from core.provisioning import offer_default_grants


@hookimpl
def register_permissions():
    return [
        Permission("core.users:view", _l("See the users"), ("manager",)),
        Permission("core.users:manage", _l("Invite, edit and deactivate users")),
        Permission("core.roles:manage", _l("Manage roles and their permissions")),
        Permission("core.groups:view", _l("See the groups"), ("manager",)),
        Permission("core.groups:manage", _l("Manage groups and their members"), ("manager",)),
    ]


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Home"), "dashboard.index", icon="house", order=0),
        NavItem(_l("Users"), "users.index", "core.users:view", icon="people", order=10, section="admin"),
        NavItem(_l("Roles"), "roles.index", "core.roles:manage", icon="shield-lock", order=20, section="admin"),
        NavItem(_l("Groups"), "groups.index", "core.groups:view", icon="diagram-3", order=30, section="admin"),
    ]


@hookimpl
def register_jobs(jobs):
    # After an upgrade the new permissions' default grants reach existing tenants within the hour.
    jobs.add(
        "core.offer_default_grants",
        offer_default_grants,
        title=_l("Give the default roles the default grants of new permissions"),
        cron="7 * * * *",
        timeout=600,
        per_tenant=False,
    )


def _people_counts() -> list[int]:
    return list(
        db.session.execute(
            select(
                func.count().filter(User.active.is_(True), User.password_hash.is_not(None)),
                func.count().filter(User.active.is_(True), User.password_hash.is_(None)),
            ).where(User.client_id.is_(None))
        ).one()
    )


@hookimpl
def dashboard_widgets(tenant, user):
    if not has_permission(user, "core.users:view"):
        return []
    active_users, invited_users = remember("people widget", _people_counts)
    return [
        Widget(
            _l("People"),
            "dashboard/widget_people.html",
            {"active": active_users, "invited": invited_users},
            "core.users:view",
            order=90,
        )
    ]


@hookimpl
def global_search(tenant, user, query):
    like = f"%{query.lower()}%"
    results = []
    if has_permission(user, "core.users:view"):
        users = db.session.scalars(
            select(User)
            .where(User.client_id.is_(None), func.lower(User.name).like(like) | func.lower(User.email).like(like))
            .order_by(User.name)
            .limit(20)
        )
        results += [SearchResult(u.name, url_for("users.show", user_id=u.id), _("User"), u.email) for u in users]
    if has_permission(user, "core.groups:view"):
        groups = db.session.scalars(
            select(Group).where(func.lower(Group.name).like(like)).order_by(Group.name).limit(20)
        )
        results += [
            SearchResult(grp.name, url_for("groups.show", group_id=grp.id), _("Group"), grp.description)
            for grp in groups
        ]
    return results
