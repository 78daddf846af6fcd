"""Sedes electrónicas (seeds 000 and 001, issue 11): the official electronic mailboxes of a gestoría's
clients, read with their digital certificates.

The office uploads its clients' certificates (PKCS#12, kept encrypted); for each sede the tenant's
licence allows it opens mailboxes (a client, a sede, a certificate) that are synced on a schedule or on
demand; the notifications found are listed by client, sede, state and deadline, assigned to staff,
and opened (comparecencia) only after an explicit confirmation. The operator keeps the catalogue of
sedes; a sede is read by a connector (``contract``), found through the plugin's own hookspec
``sede_connectors`` (``hookspecs``).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.api import (
    LIST,
    NUMBER,
    ClientColumn,
    ClientFilter,
    LicenceLimit,
    NavItem,
    Permission,
    PluginInfo,
    SettingsSection,
    hookimpl,
)
from plugins.sedes import hookspecs

NAME = "sedes"
CERTIFICATES_VIEW = "sedes.certificates:view"
CERTIFICATES_MANAGE = "sedes.certificates:manage"
CERTIFICATES_DOWNLOAD = "sedes.certificates:download"
MAILBOXES_VIEW = "sedes.mailboxes:view"
MAILBOXES_MANAGE = "sedes.mailboxes:manage"
MAILBOXES_SYNC = "sedes.mailboxes:sync"
NOTIFICATIONS_VIEW = "sedes.notifications:view"
NOTIFICATIONS_MANAGE = "sedes.notifications:manage"
NOTIFICATIONS_OPEN = "sedes.notifications:open"
NOTIFICATIONS_EXPORT = "sedes.notifications:export"
NOTIFICATIONS_SUPERVISE = "sedes.notifications:supervise"
SETTINGS = "sedes.settings:manage"
WEBHOOKS_MANAGE = "sedes.webhooks:manage"

SEDES_LIMIT = "sedes"
MAILBOXES_LIMIT = "mailboxes"

# The seed's "gestor" is core's operator role: the office's staff who are not managers.
MANAGER = ("manager",)
STAFF = ("manager", "operator")


def _sede_choices():
    from plugins.sedes.catalogue import licence_choices

    return licence_choices()


@hookimpl
def ventanilla_plugin():
    return PluginInfo(
        name=NAME,
        title=_l("Sedes electrónicas"),
        version="1.0",
        description=_l(
            "The official electronic mailboxes (DEHú and other sedes) of the clients, read with their "
            "digital certificates: certificates, mailboxes, scheduled syncs, notifications with their "
            "legal deadlines, comparecencia after confirmation, alerts."
        ),
        limits={
            SEDES_LIMIT: LicenceLimit(
                _l("Sedes the tenant may sync with"),
                LIST,
                help=_l("Empty: every sede of the catalogue."),
                choices=_sede_choices,
            ),
            MAILBOXES_LIMIT: LicenceLimit(_l("Electronic mailboxes"), NUMBER, help=_l("Empty: no limit.")),
        },
        hookspecs=hookspecs,
    )


@hookimpl
def register_blueprints(app):
    from plugins.sedes.calendar_views import bp as calendar_bp
    from plugins.sedes.notification_views import bp as notifications_bp
    from plugins.sedes.teu.views import bp as teu_bp
    from plugins.sedes.views import bp
    from plugins.sedes.webhook_views import bp as webhooks_bp

    return [bp, notifications_bp, teu_bp, calendar_bp, webhooks_bp]


@hookimpl
def operator_views(app):
    from plugins.sedes.console import console

    return [console]


@hookimpl
def operator_navigation():
    return [NavItem(_l("Sede catalogue"), "sedes_console.index", icon="bank")]


@hookimpl
def plugin_enabled(tenant):
    from plugins.sedes.catalogue import ensure_catalogue

    ensure_catalogue()


@hookimpl
def client_fields(tenant):
    from plugins.sedes.client_fields import client_fields as fields

    return [fields()]


@hookimpl
def register_permissions():
    return [
        Permission(CERTIFICATES_VIEW, _l("See the clients' digital certificates"), STAFF),
        Permission(CERTIFICATES_MANAGE, _l("Upload and delete digital certificates"), MANAGER),
        Permission(CERTIFICATES_DOWNLOAD, _l("Download digital certificates (PKCS#12 with its key)"), MANAGER),
        Permission(MAILBOXES_VIEW, _l("See the electronic mailboxes"), STAFF),
        Permission(MAILBOXES_MANAGE, _l("Create, change and delete electronic mailboxes"), MANAGER),
        Permission(MAILBOXES_SYNC, _l("Check electronic mailboxes now (Consultar buzón)"), STAFF),
        Permission(NOTIFICATIONS_VIEW, _l("See the notifications of the electronic mailboxes"), STAFF),
        Permission(NOTIFICATIONS_MANAGE, _l("Assign notifications and change their state"), STAFF),
        Permission(NOTIFICATIONS_OPEN, _l("Open notifications at the sede (comparecencia)"), STAFF),
        Permission(NOTIFICATIONS_EXPORT, _l("Export notifications to CSV"), MANAGER),
        Permission(
            NOTIFICATIONS_SUPERVISE,
            _l("Receive escalated deadline alerts and see the notifications at risk of the clients of one's groups"),
            MANAGER,
        ),
        Permission(SETTINGS, _l("Configure the sedes: services and mailboxes"), MANAGER),
        # Only the administrator role (which holds every permission): a hook sends clients' data out.
        Permission(WEBHOOKS_MANAGE, _l("Manage the webhooks that send notifications to other systems"), ()),
    ]


# --- notifications and the sync engine (notifications.py, sync.py, jobs.py, demo.py) -----------


@hookimpl
def register_jobs(jobs):
    from plugins.sedes import certificates, webhooks
    from plugins.sedes.jobs import register
    from plugins.sedes.teu import board

    register(jobs)
    certificates.register_jobs(jobs)
    board.register_jobs(jobs)
    webhooks.register_jobs(jobs)


@hookimpl
def navigation(tenant, user):
    return [
        NavItem(_l("Notifications"), "sedes_notifications.index", NOTIFICATIONS_VIEW, icon="bell", order=15),
        NavItem(
            _l("Digital certificates"), "sedes.certificates_list", CERTIFICATES_VIEW, icon="person-vcard", order=16
        ),
        NavItem(
            _l("Services with a digital certificate"),
            "sedes.services",
            CERTIFICATES_VIEW,
            icon="box-arrow-up-right",
            order=17,
        ),
    ]


@hookimpl
def dashboard_widgets(tenant, user):
    from plugins.sedes import views
    from plugins.sedes.notification_views import widgets

    return widgets(tenant, user) + views.widgets(tenant, user)


@hookimpl
def client_tabs(client, user):
    from plugins.sedes import views
    from plugins.sedes.notification_views import client_tab

    return [client_tab(client, user), views.client_tab(client, user)]


@hookimpl
def settings_sections(tenant, user):
    return [
        SettingsSection(
            "sedes", _l("Services and mailboxes"), "sedes.settings_services", MAILBOXES_VIEW, "mailbox", 50
        ),
        SettingsSection("sedes_webhooks", _l("Webhooks"), "sedes_webhooks.index", WEBHOOKS_MANAGE, "broadcast", 51),
    ]


@hookimpl
def client_list(tenant, user):
    from plugins.sedes import notifications

    return [
        ClientColumn(
            "pending",
            _l("Notifications pending"),
            notifications.pending_count_expression,
            NOTIFICATIONS_VIEW,
            order=60,
            badge="primary",
        ),
        ClientFilter(
            "pending",
            _l("Notifications pending"),
            lambda: [("", _l("Any")), ("yes", _l("With notifications pending")), ("no", _l("Without"))],
            notifications.pending_condition,
            NOTIFICATIONS_VIEW,
            order=60,
        ),
    ]


@hookimpl
def sede_connectors():
    from plugins.sedes.connectors.dehu import DehuConnector
    from plugins.sedes.connectors.seguridad_social import SeguridadSocialConnector

    return [DehuConnector, SeguridadSocialConnector]


@hookimpl
def demo_data(tenant):
    from plugins.sedes.demo import load

    return load(tenant)


@hookimpl
def demo_services(app):
    from plugins.sedes.demo import services

    return services(app)
