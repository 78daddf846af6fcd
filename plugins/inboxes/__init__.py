"""E-mail mailboxes per contract: inbound mail becomes requests, outbound mail leaves by contract and flow.

Seed 002 (CITSmart "Configurar buzón de correo electrónico"): *Parametrización → Buzón de correo
electrónico* holds Entrada (IMAP/POP3) and Salida (SMTP) mailboxes; a contract links its *Bandeja de
Salida* and its inbound mailboxes; a flow's "Envío de Mensaje - E-mail" step leaves through the
contract's mailbox (*Específica*) or the system's default one, which keeps working when nothing is
linked.

- ``connectors``: IMAP/POP3 fetchers and an SMTP test, TLS, errors in words, provider presets.
- ``mail``: parsing, automation (auto-replies, loops, bounces), sanitising, threading, our headers.
- ``mailboxes``, ``contracts``, ``flows``, ``requests``: the services (rules, no request objects).
- ``ingest`` (a fetched message → a request, a follow-up or the quarantine), ``sync`` (the job:
  lease, fetch, back-off, alert), ``outbound`` (sending through the resolved mailbox, the
  ``mail_transport`` answer), ``attachments`` (where attachment bytes go).
- ``views`` (Parametrización: mailboxes, quarantine, contracts, flows), ``request_views`` (requests).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.api import NavItem, Permission, PluginInfo, SearchResult, Widget, has_permission, hookimpl

NAME = "inboxes"
MAILBOXES = "inboxes.mailboxes:manage"
CONTRACTS = "inboxes.contracts:manage"
FLOWS = "inboxes.flows:manage"
REQUESTS = "inboxes.requests:view"
REPLY = "inboxes.requests:reply"


@hookimpl
def ventanilla_plugin():
    return PluginInfo(
        name=NAME,
        title=_l("E-mail mailboxes"),
        version="1.0",
        description=_l(
            "Inbound and outbound e-mail mailboxes per contract: mail to an inbound mailbox becomes a "
            "request of its contract; flows and replies leave through the contract's outbound mailbox "
            "or the system's default one."
        ),
    )


@hookimpl
def register_blueprints(app):
    from plugins.inboxes.request_views import bp as requests_bp
    from plugins.inboxes.views import bp

    return [bp, requests_bp]


@hookimpl
def register_permissions():
    return [
        Permission(MAILBOXES, _l("Set up e-mail mailboxes and look after their quarantine"), ("manager",)),
        Permission(CONTRACTS, _l("Manage contracts and link their mailboxes"), ("manager",)),
        Permission(FLOWS, _l("Manage flows and their e-mail steps"), ("manager",)),
        Permission(REQUESTS, _l("See the requests of the contracts of one's clients"), ("manager", "operator")),
        Permission(REPLY, _l("Answer requests and change their status"), ("manager", "operator")),
    ]


@hookimpl
def register_jobs(jobs):
    from plugins.inboxes import sync

    jobs.add("inboxes.sync", sync.run_sync, queue="sync", title=_l("Read an e-mail mailbox"), timeout=sync.JOB_TIMEOUT)
    # Every minute, one light sweep over the tenants: each mailbox whose polling interval has
    # passed gets its own "inboxes.sync" run.
    jobs.add(
        "inboxes.poll",
        sync.poll_due_mailboxes,
        queue="sync",
        title=_l("Start the reading of due mailboxes"),
        cron="* * * * *",
        per_tenant=False,
    )


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Requests"), "inboxes_requests.index", REQUESTS, icon="envelope-paper", order=30),
        # Parametrización: mailboxes, contracts, flows.
        NavItem(_l("E-mail mailboxes"), "inboxes.index", MAILBOXES, icon="mailbox", order=50, section="admin"),
        NavItem(
            _l("Contracts"),
            "inboxes.contracts_index",
            CONTRACTS,
            icon="file-earmark-richtext",
            order=51,
            section="admin",
        ),
        NavItem(_l("Flows"), "inboxes.flows_index", FLOWS, icon="diagram-3", order=52, section="admin"),
    ]


@hookimpl
def dashboard_widgets(tenant, user):
    from plugins.inboxes import mailboxes, requests

    widgets = []
    if has_permission(user, REQUESTS):
        widgets.append(
            Widget(
                _l("New requests"), "inboxes/widget_requests.html", {"count": requests.new_count(user)}, REQUESTS, 30
            )
        )
    if has_permission(user, MAILBOXES):
        widgets.append(
            Widget(
                _l("E-mail mailboxes"),
                "inboxes/widget_mailboxes.html",
                mailboxes.health_summary(),
                MAILBOXES,
                31,
            )
        )
    return widgets


@hookimpl
def global_search(tenant, user, query):
    from flask import url_for

    from plugins.inboxes import requests

    if not has_permission(user, REQUESTS):
        return []
    return [
        SearchResult(
            f"#{r.id} {r.subject}",
            url_for("inboxes_requests.show", inbox_request_id=r.id),
            _l("Request"),
            r.requester_email,
        )
        for r in requests.search(user, query, limit=10)
    ]


@hookimpl
def mail_transport(tenant, key):
    from plugins.inboxes.outbound import transport_for

    return transport_for(key)


@hookimpl
def plugin_disabled(tenant):
    from plugins.inboxes.sync import forget_queued

    forget_queued()


@hookimpl
def demo_data(tenant):
    from plugins.inboxes.demo import load

    return load(tenant)


@hookimpl
def demo_services(app):
    from plugins.inboxes.demo import services

    return services(app)
