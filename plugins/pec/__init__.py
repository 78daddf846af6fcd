"""The PEC reseller panel (seed 003, issue 12): holders, certified boxes, agents, packages,
domains, assistants.

The tenant is a reseller (rivenditore/postmaster); the platform operator is the gestore, who owns
the domains and activates boxes in the operator console or through a provider reached over HTTP
(the plugin's own hookspec ``pec_activation_providers``); the reseller's assistants see only the
boxes they entered. Holders are core clients. The rules (codice fiscale, comuni, phones, box
names, states, packages, CSV) are pure modules; ``models``, the service modules, ``views`` and
``console`` build the panel on them.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.api import (
    NUMBER,
    ClientColumn,
    ClientTab,
    LicenceLimit,
    LoginIdentifier,
    NavItem,
    Permission,
    PluginInfo,
    SearchResult,
    SettingsSection,
    Widget,
    has_permission,
    hookimpl,
)
from plugins.pec import hookspecs

NAME = "pec"
SERVICE = "pec.service:view"
HOLDERS_VIEW = "pec.holders:view"
HOLDERS_MANAGE = "pec.holders:manage"
BOXES_VIEW = "pec.boxes:view"
BOXES_VIEW_ALL = "pec.boxes:view_all"
BOXES_CREATE = "pec.boxes:create"
BOXES_MANAGE = "pec.boxes:manage"
BOXES_EXPORT = "pec.boxes:export"
DOCUMENTS = "pec.documents:manage"
DOMAINS_VIEW = "pec.domains:view"
AGENTS_VIEW = "pec.agents:view"
AGENTS_MANAGE = "pec.agents:manage"
ASSISTANTS_MANAGE = "pec.assistants:manage"
IMPORTS = "pec.imports:run"
SETTINGS = "pec.settings:manage"

POSTMASTER_LIMIT = "postmaster_boxes"


@hookimpl
def ventanilla_plugin():
    return PluginInfo(
        name=NAME,
        title=_l("PEC reseller panel"),
        version="1.0",
        description=_l(
            "Certified e-mail (PEC) boxes for a reseller: holders, box registration and activation by the "
            "gestore, expiry and renewal, documents, sales agents and packages, domains, assistants, CSV."
        ),
        limits={
            POSTMASTER_LIMIT: LicenceLimit(
                _l("Pacchetto postmaster (boxes the reseller may give its assistants)"),
                NUMBER,
                help=_l("Empty: no limit."),
            )
        },
        hookspecs=hookspecs,
    )


@hookimpl
def pec_activation_providers():
    from plugins.pec.activation.contract import ManualProvider
    from plugins.pec.activation.http_api import HttpActivationProvider

    return [ManualProvider, HttpActivationProvider]


@hookimpl
def register_blueprints(app):
    from plugins.pec.views import bp

    return [bp]


@hookimpl
def operator_views(app):
    from plugins.pec.console import console

    return [console]


@hookimpl
def operator_navigation():
    return [NavItem(_l("PEC activations"), "pec_console.index", icon="envelope-check")]


@hookimpl
def register_permissions():
    everyone = ("manager", "operator", "assistant")
    staff = ("manager", "operator")
    return [
        Permission(SERVICE, _l("See the PEC service summary (Info Servizio)"), everyone),
        Permission(HOLDERS_VIEW, _l("See PEC holders"), everyone),
        Permission(HOLDERS_MANAGE, _l("Change PEC holders' addresses, activities and data"), everyone),
        Permission(BOXES_VIEW, _l("See PEC boxes"), everyone),
        Permission(BOXES_VIEW_ALL, _l("See every PEC box, not only those one entered"), staff),
        Permission(BOXES_CREATE, _l("Register PEC boxes"), everyone),
        Permission(BOXES_MANAGE, _l("Renew, suspend and close PEC boxes; agents and packages of a box"), everyone),
        Permission(BOXES_EXPORT, _l("Export PEC boxes to CSV"), everyone),
        Permission(DOCUMENTS, _l("Upload and download the documents of PEC boxes"), everyone),
        Permission(DOMAINS_VIEW, _l("See the certified domains"), everyone),
        Permission(AGENTS_VIEW, _l("See sales agents and their packages"), everyone),
        Permission(AGENTS_MANAGE, _l("Manage sales agents, their domains and packages"), ("manager",)),
        Permission(ASSISTANTS_MANAGE, _l("Manage assistants and their packages"), ("manager",)),
        Permission(IMPORTS, _l("Import PEC holders and boxes from CSV"), ("manager",)),
        Permission(SETTINGS, _l("Choose who holds the reseller's panel code"), ("manager",)),
    ]


@hookimpl
def register_jobs(jobs):
    from plugins.pec import bulk
    from plugins.pec import jobs as pec_jobs
    from plugins.pec.activation import service

    jobs.add(
        "pec.daily",
        pec_jobs.run_daily,
        title=_l("PEC boxes: expiry, suspension, deletion and reminders"),
        cron="20 2 * * *",
        timeout=3600,
    )
    jobs.add(service.SUBMIT_JOB, service.run_submit, queue="sync", title=_l("Send a PEC box to the gestore"))
    jobs.add(bulk.JOB, bulk.run_import, queue="bulk", title=_l("Import PEC holders or boxes"), timeout=3600)


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Service info"), "pec.index", SERVICE, icon="envelope-check", order=10),
        NavItem(_l("Holder records"), "pec.holders_list", HOLDERS_VIEW, icon="person-lines-fill", order=11),
        NavItem(_l("Certified accounts"), "pec.boxes_list", BOXES_VIEW, icon="envelope-at", order=12),
        NavItem(_l("Domain management"), "pec.domains_list", DOMAINS_VIEW, icon="globe", order=13),
        NavItem(_l("Sales agent management"), "pec.agents_list", AGENTS_VIEW, icon="briefcase", order=14),
        NavItem(_l("Agents' package management"), "pec.agent_packages", AGENTS_VIEW, icon="boxes", order=15),
        NavItem(_l("Assistant management"), "pec.assistants_list", ASSISTANTS_MANAGE, icon="people", order=16),
        NavItem(_l("PEC import"), "pec.imports", IMPORTS, icon="upload", order=47, section="admin"),
    ]


@hookimpl
def dashboard_widgets(tenant, user):
    from plugins.pec import service_info

    summary = service_info.widget_counts(tenant, user)
    return [
        Widget(
            _l("PEC boxes awaiting activation"),
            "pec/widget.html",
            {"count": summary["pending"], "state": "pending"},
            BOXES_VIEW,
            order=30,
        ),
        Widget(
            _l("PEC boxes expiring within 30 days"),
            "pec/widget.html",
            {"count": summary["expiring"], "expiring": 30},
            BOXES_VIEW,
            order=31,
        ),
    ]


@hookimpl
def client_tabs(client, user):
    from plugins.pec.views import client_tab_context

    return [ClientTab("pec", _l("PEC"), "pec/client_tab.html", client_tab_context(client, user), HOLDERS_VIEW, 30)]


@hookimpl
def client_fields(tenant):
    from plugins.pec.holders import holder_fields

    return [holder_fields()]


@hookimpl
def client_list(tenant, user):
    from plugins.pec.service_info import live_boxes_of_client

    return [ClientColumn("pec_boxes", _l("PEC boxes"), live_boxes_of_client, BOXES_VIEW_ALL, order=40, badge="info")]


@hookimpl
def settings_sections(tenant, user):
    return [SettingsSection("pec", _l("PEC panel"), "pec.settings", SETTINGS, "envelope-check", order=60)]


@hookimpl
def plugin_enabled(tenant):
    from plugins.pec import accounts

    account = accounts.ensure_reseller_account(tenant)
    if account.credentials_sent_at is None:
        accounts.send_credentials(tenant, account)


@hookimpl
def global_search(tenant, user, query):
    from flask import url_for

    from plugins.pec import service_info

    if not has_permission(user, BOXES_VIEW):
        return []
    return [
        SearchResult(box.address, url_for("pec.box_detail", box_id=box.id), _l("PEC box"), box.holder.name)
        for box in service_info.search_boxes(user, query)
    ]


@hookimpl
def demo_data(tenant):
    from plugins.pec.demo import load

    return load(tenant)


@hookimpl
def demo_services(app):
    from plugins.pec.demo import services

    return services(app)


@hookimpl
def demo_logins():
    from plugins.pec.demo import logins

    return logins()


@hookimpl
def login_identifiers(tenant):
    from plugins.pec.accounts import user_for_login_identifier

    # The seed: a reseller's users sign in with the panel's 10-digit code as well as their e-mail.
    return [LoginIdentifier(_l("panel code"), user_for_login_identifier)]
