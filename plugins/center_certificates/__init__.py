"""Certificates a centre requests from its clients: documents with a validity date.

Templates say what is asked for; each client's certificate goes Falta información → Pendiente
de aprobación → Aprobado → Caduca pronto → Caducado; clients upload from the client portal and
are told by e-mail and web push. Centres are core groups: staff manage the certificates of the
clients of their centres.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.api import ClientTab, NavItem, Permission, PluginInfo, Widget, hookimpl

NAME = "center_certificates"
MANAGE = "center_certificates.certificates:manage"
VIEW = "center_certificates.certificates:view"
TEMPLATES = "center_certificates.templates:manage"
REPORT = "center_certificates.reports:view"


@hookimpl
def ventanilla_plugin():
    return PluginInfo(
        name=NAME,
        title=_l("Client certificates"),
        version="1.0",
        description=_l(
            "Documents with a validity date that a centre asks its clients for: templates, approval, "
            "expiry, a client portal, e-mail and push notices."
        ),
    )


@hookimpl
def register_blueprints(app):
    from plugins.center_certificates.portal import bp as portal_bp
    from plugins.center_certificates.views import bp

    return [bp, portal_bp]


@hookimpl
def register_permissions():
    return [
        Permission(VIEW, _l("See the certificates of the clients of one's centres"), ("manager", "operator")),
        # The seed's wording: "Acceso para administrar los perfiles de los clientes de los centros indicados".
        Permission(
            MANAGE,
            _l("Access to manage the profiles (certificates) of the clients of the indicated centres"),
            ("manager", "operator"),
        ),
        Permission(TEMPLATES, _l("Manage certificate templates and generate certificates in bulk"), ("manager",)),
        Permission(REPORT, _l("See who is missing which certificate"), ("manager",)),
    ]


@hookimpl
def register_jobs(jobs):
    from plugins.center_certificates import jobs as plugin_jobs

    jobs.add(
        "center_certificates.transitions",
        plugin_jobs.run_transitions,
        title=_l("Update certificate states"),
        cron="*/15 * * * *",
        timeout=1800,
    )
    jobs.add(
        "center_certificates.notify",
        plugin_jobs.run_notify,
        queue="mail",
        title=_l("Tell clients about their certificates"),
        timeout=1800,
    )
    jobs.add(
        "center_certificates.generate",
        plugin_jobs.run_generation,
        queue="bulk",
        title=_l("Generate certificates"),
        timeout=3600,
    )


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Certificates"), "center_certificates.index", VIEW, icon="patch-check", order=20),
        NavItem(
            _l("Certificate templates"),
            "center_certificates.templates",
            TEMPLATES,
            icon="file-earmark-text",
            order=45,
            section="admin",
        ),
    ]


@hookimpl
def dashboard_widgets(tenant, user):
    from plugins.center_certificates.views import widget_counts

    counts = widget_counts(user)
    return [
        Widget(
            _l("Certificates pending approval"),
            "center_certificates/widget.html",
            {"count": counts["pending_approval"], "status": "pending_approval"},
            VIEW,
            order=20,
        ),
        Widget(
            _l("Certificates expiring soon"),
            "center_certificates/widget.html",
            {"count": counts["expiring"], "status": "expiring"},
            VIEW,
            order=21,
        ),
        Widget(
            _l("Expired certificates"),
            "center_certificates/widget.html",
            {"count": counts["expired"], "status": "expired"},
            VIEW,
            order=22,
        ),
    ]


@hookimpl
def client_tabs(client, user):
    from plugins.center_certificates.views import client_tab_context

    return [
        ClientTab(
            "certificates",
            _l("Certificates"),
            "center_certificates/client_tab.html",
            client_tab_context(client),
            VIEW,
            order=20,
        )
    ]


@hookimpl
def clients_created(tenant, client_ids, notify, held_for):
    from plugins.center_certificates.services import request_for_new_clients

    request_for_new_clients(tenant, client_ids, notify=notify, held_for=held_for)


@hookimpl
def held_notices(tenant, held_for):
    from plugins.center_certificates.services.notices import held_notices as held

    return held(tenant, held_for)


@hookimpl
def portal_navigation(tenant, user, client):
    return [NavItem(_l("Certificates"), "center_certificates_portal.index", icon="patch-check", order=10)]


@hookimpl
def demo_data(tenant):
    from plugins.center_certificates.demo import load

    return load(tenant)
