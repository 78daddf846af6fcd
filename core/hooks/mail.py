"""Outbound mail: its permission, menu entry and the job that sends what is due."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.hookspecs import hookimpl
from core.hooktypes import NavItem
from core.mail.delivery import flush_due_messages
from core.permissions import Permission


@hookimpl
def register_permissions():
    return [Permission("core.mail:manage", _l("Set up the mail server and send test messages"))]


@hookimpl
def navigation(tenant, user):
    return [NavItem(_l("E-mail"), "mail.settings", "core.mail:manage", icon="envelope", order=55, section="admin")]


@hookimpl
def register_jobs(jobs):
    jobs.add(
        "core.mail_flush",
        flush_due_messages,
        queue="mail",
        title=_l("Send the e-mail that is due"),
        cron="* * * * *",
        timeout=300,
        per_tenant=False,
    )
