"""Core's own hook implementations: core uses the same extension points as every plugin."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from core.hookspecs import hookimpl
from core.hooktypes import NavItem, SearchResult, SettingsSection, Widget
from core.permissions import Permission


@hookimpl
def register_permissions():
    return [
        Permission("core.users:view", _l("See the users"), ("manager",)),
        Permission("core.users:manage", _l("Invite, edit and deactivate users")),
        Permission("core.roles:manage", _l("Manage roles and their permissions")),
        Permission("core.groups:view", _l("See the groups"), ("manager",)),
        Permission("core.groups:manage", _l("Manage groups and their members"), ("manager",)),
        Permission("core.plugins:manage", _l("Switch the organisation's plugins on and off")),
        Permission("core.settings:manage", _l("Change the organisation's settings")),
        Permission("core.jobs:view", _l("See background jobs and their progress"), ("manager", "operator")),
        Permission("core.mail:manage", _l("Set up the mail server and send test messages")),
        Permission(
            "core.clients:view_all",
            _l("See every client, not only those of one's groups"),
            ("manager",),
        ),
        Permission("core.clients:view", _l("See clients"), ("manager", "operator", "assistant")),
        Permission("core.clients:manage", _l("Create, edit and deactivate clients"), ("manager", "operator")),
        Permission("core.clients:export", _l("Export clients to CSV"), ("manager",)),
        Permission("core.clients:import", _l("Import clients from CSV"), ("manager",)),
        Permission("core.audit:view", _l("See the organisation's audit trail")),
    ]


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Home"), "dashboard.index", icon="house", order=0),
        NavItem(_l("Clients"), "clients.index", "core.clients:view", icon="person-vcard", order=5),
        NavItem(_l("Audit trail"), "audit.index", "core.audit:view", icon="journal-check", order=70, section="admin"),
        NavItem(_l("Users"), "users.index", "core.users:view", icon="people", order=10, section="admin"),
        NavItem(_l("Roles"), "roles.index", "core.roles:manage", icon="shield-lock", order=20, section="admin"),
        NavItem(_l("Groups"), "groups.index", "core.groups:view", icon="diagram-3", order=30, section="admin"),
        NavItem(_l("Plugins"), "settings.plugins", "core.plugins:manage", icon="puzzle", order=40, section="admin"),
        NavItem(
            _l("Background jobs"), "jobs.index", "core.jobs:view", icon="hourglass-split", order=60, section="admin"
        ),
        NavItem(_l("E-mail"), "mail.settings", "core.mail:manage", icon="envelope", order=55, section="admin"),
        *_settings_entry(user),
    ]


def _settings_entry(user) -> list[NavItem]:
    """ "Settings" in the menu of whoever may open one of its sections (core's or a plugin's)."""
    from core.templating import settings_sections

    if not settings_sections():
        return []
    return [NavItem(_l("Settings"), "settings.index", icon="gear", order=50, section="admin")]


@hookimpl
def settings_sections(tenant, user):
    return [
        SettingsSection(
            "organisation", _l("Organisation"), "settings.organisation", "core.settings:manage", "building", 0
        ),
        SettingsSection("mail", _l("E-mail"), "mail.settings", "core.mail:manage", "envelope", 10),
        SettingsSection("plugins", _l("Plugins"), "settings.plugins", "core.plugins:manage", "puzzle", 20),
    ]


@hookimpl
def dashboard_widgets(tenant, user):
    from core.auth.models import User
    from core.extensions import db
    from core.jobs.models import FAILED, OPEN_STATUSES, JobRun

    since = _days_ago(7)
    open_runs, failed_runs = db.session.execute(
        select(
            func.count().filter(JobRun.status.in_(OPEN_STATUSES)),
            func.count().filter(JobRun.status == FAILED, JobRun.created_at >= since),
        )
    ).one()
    active_users, invited_users = db.session.execute(
        select(
            func.count().filter(User.active.is_(True), User.password_hash.is_not(None)),
            func.count().filter(User.active.is_(True), User.password_hash.is_(None)),
        ).where(User.client_id.is_(None))
    ).one()
    return [
        Widget(
            _l("People"),
            "dashboard/widget_people.html",
            {"active": active_users, "invited": invited_users},
            "core.users:view",
            order=90,
        ),
        Widget(
            _l("Background jobs"),
            "dashboard/widget_jobs.html",
            {"open": open_runs, "failed": failed_runs},
            "core.jobs:view",
            order=95,
        ),
    ]


def _days_ago(days: int):
    from core.extensions import utcnow

    return utcnow() - timedelta(days=days)


def purge_expired_records(ctx):
    """Remove spent one-time links, and job history and client import files (with their rows'
    personal data) older than 90 days, for this tenant."""
    from core.auth.models import AuthToken
    from core.clients.models import ClientImport
    from core.extensions import db
    from core.jobs.models import OPEN_STATUSES, JobRun

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
    from core.mail.delivery import flush_due_messages

    jobs.add(
        "core.mail_flush",
        flush_due_messages,
        queue="mail",
        title=_l("Send the e-mail that is due"),
        cron="* * * * *",
        timeout=300,
        per_tenant=False,
    )
    from core.jobs.services import settle_abandoned_runs

    jobs.add(
        "core.jobs_settle",
        settle_abandoned_runs,
        title=_l("Close the job runs whose worker stopped"),
        cron="*/5 * * * *",
        timeout=300,
        per_tenant=False,
    )
    from core.clients.imports import run_import

    jobs.add(
        "core.clients_import", run_import, queue="bulk", title=_l("Import clients from a CSV file"), timeout=3 * 3600
    )


@hookimpl
def global_search(tenant, user, query):
    from flask import url_for
    from flask_babel import gettext as _

    from core.auth.models import User
    from core.auth.services import has_permission
    from core.clients.models import Client
    from core.extensions import db
    from core.groups.models import Group

    like = f"%{query.lower()}%"
    results = []
    if has_permission(user, "core.clients:view"):
        from core.clients.services import list_statement

        clients = db.session.scalars(list_statement(user, query, active="all").order_by(Client.name).limit(20))
        results += [
            SearchResult(c.name, url_for("clients.show", client_id=c.id), _("Client"), f"{c.tax_id} {c.email}".strip())
            for c in clients
        ]
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
