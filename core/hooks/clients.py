"""Clients: their permissions, menu entry, search results and import job."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.auth.services import has_permission
from core.clients.imports import run_import
from core.clients.models import Client
from core.clients.services import list_statement
from core.extensions import db
from core.hookspecs import hookimpl
from core.hooktypes import NavItem, SearchResult
from core.permissions import Permission


@hookimpl
def register_permissions():
    return [
        Permission("core.clients:view_all", _l("See every client, not only those of one's groups"), ("manager",)),
        Permission("core.clients:view", _l("See clients"), ("manager", "operator", "assistant")),
        Permission("core.clients:manage", _l("Create, edit and deactivate clients"), ("manager", "operator")),
        Permission("core.clients:export", _l("Export clients to CSV"), ("manager",)),
        Permission("core.clients:import", _l("Import clients from CSV"), ("manager",)),
    ]


@hookimpl
def navigation(tenant, user):
    return [NavItem(_l("Clients"), "clients.index", "core.clients:view", icon="person-vcard", order=5)]


@hookimpl
def register_jobs(jobs):
    jobs.add(
        "core.clients_import", run_import, queue="bulk", title=_l("Import clients from a CSV file"), timeout=3 * 3600
    )


@hookimpl
def global_search(tenant, user, query):
    if not has_permission(user, "core.clients:view"):
        return []
    clients = db.session.scalars(list_statement(user, query, active="all").order_by(Client.name).limit(20))
    return [
        SearchResult(c.name, url_for("clients.show", client_id=c.id), _("Client"), f"{c.tax_id} {c.email}".strip())
        for c in clients
    ]
