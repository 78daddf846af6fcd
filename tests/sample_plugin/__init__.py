"""A small plugin that exercises the whole plugin contract in the test suite.

It is loaded through ``EXTRA_PLUGINS`` (exactly as an entry point would load it) and imports
nothing of core but ``core.api``. It has a gated blueprint, a menu entry, permissions, licence
limits of every kind, a cron job, a widget, a client tab, client fields (form, data tab, import,
export), a client-list column and filter, a settings section, an operator console, search
results, a mail transport, its own tables and its own migration branch.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.api import (
    LIST,
    TEXT,
    ClientColumn,
    ClientFilter,
    ClientTab,
    DemoService,
    HeldNotices,
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
from tests.sample_plugin import hookspecs

NAME = "sample"
REGIONS = (("north", _l("North")), ("south", _l("South")), ("islands", _l("Islands")))


@hookimpl
def ventanilla_plugin():
    return PluginInfo(
        name=NAME,
        title=_l("Sample notes"),
        version="1.0",
        description=_l("Notes that prove the plugin contract."),
        limits={
            "notes": _l("Maximum notes"),
            "regions": LicenceLimit(_l("Regions"), kind=LIST, choices=lambda: REGIONS),
            "motto": LicenceLimit(_l("Motto"), kind=TEXT),
        },
        hookspecs=hookspecs,
    )


@hookimpl
def sample_stamps():
    return ["approved"]


@hookimpl
def register_blueprints(app):
    from tests.sample_plugin.views import bp, portal_bp

    return [bp, portal_bp]


@hookimpl
def operator_views(app):
    from tests.sample_plugin.views import console

    return [console]


@hookimpl
def operator_navigation():
    return [NavItem(_l("Sample notes"), "sample_console.overview", icon="journal-text")]


@hookimpl
def register_permissions():
    return [
        Permission("sample.notes:view", _l("See sample notes"), ("manager", "operator")),
        Permission("sample.notes:manage", _l("Write sample notes"), ("manager",)),
    ]


@hookimpl
def register_jobs(jobs):
    from tests.sample_plugin.services import count_notes

    jobs.add("sample.count_notes", count_notes, title=_l("Count the sample notes"), cron="*/5 * * * *")


@hookimpl
def navigation(tenant, user):
    return [NavItem(_l("Sample notes"), "sample.index", "sample.notes:view", icon="journal-text", order=50)]


@hookimpl
def dashboard_widgets(tenant, user):
    from tests.sample_plugin.services import note_count

    return [Widget(_l("Sample notes"), "sample/widget.html", {"count": note_count()}, "sample.notes:view")]


@hookimpl
def client_tabs(client, user):
    return [ClientTab("sample", _l("Sample notes"), "sample/client_tab.html", {"client": client}, "sample.notes:view")]


@hookimpl
def client_fields(tenant):
    from tests.sample_plugin.services import profile_fields

    return [profile_fields()]


@hookimpl
def client_list(tenant, user):
    from tests.sample_plugin.services import reference_of_client, vip_condition

    return [
        ClientColumn("reference", _l("Reference"), reference_of_client, "sample.notes:view", badge="info"),
        ClientFilter(
            "vip",
            _l("VIP"),
            lambda: (("yes", _l("VIP clients")), ("no", _l("Other clients"))),
            vip_condition,
            "sample.notes:view",
        ),
    ]


@hookimpl
def settings_sections(tenant, user):
    return [SettingsSection("sample", _l("Sample notes"), "sample.settings", "sample.notes:manage", "journal-text")]


@hookimpl
def login_identifiers(tenant):
    from tests.sample_plugin.services import user_of_badge

    return [LoginIdentifier(_l("sample badge"), user_of_badge)]


@hookimpl
def plugin_enabled(tenant):
    from tests.sample_plugin.services import add_welcome_note

    add_welcome_note(tenant)


@hookimpl
def plugin_disabled(tenant):
    from tests.sample_plugin.services import note_about

    note_about(f"Switched off for {tenant.name}", commit=False)


@hookimpl
def demo_data(tenant):
    from tests.sample_plugin.services import add_demo_note

    return ["sample demo note created"] if add_demo_note() else []


@hookimpl
def demo_services(app):
    import sys

    return [
        DemoService(
            "sample-clock", (sys.executable, "-c", "import time; time.sleep(3600)"), lines=("ticks for the demo",)
        )
    ]


@hookimpl
def demo_logins():
    return ["sample            a note's title is its own password"]


@hookimpl
def global_search(tenant, user, query):
    from flask import url_for

    from tests.sample_plugin.services import search

    if not has_permission(user, "sample.notes:view"):
        return []
    return [SearchResult(n.title, url_for("sample.show", note_id=n.id), _l("Sample note")) for n in search(query)]


@hookimpl
def clients_created(tenant, client_ids, notify, held_for):
    from tests.sample_plugin.services import note_new_clients

    note_new_clients(tenant, client_ids, "" if notify else held_for)


@hookimpl
def held_notices(tenant, held_for):
    from tests.sample_plugin.services import held_notes, release_notes

    count = held_notes(held_for)
    return [HeldNotices(_l("Sample notes"), count, lambda: release_notes(held_for))] if count else []


@hookimpl
def clients_updated(tenant, changes):
    from tests.sample_plugin.services import note_changed_clients

    note_changed_clients(tenant, changes)


@hookimpl
def mail_transport(tenant, key):
    from tests.sample_plugin.services import transport

    return transport(key)


@hookimpl
def portal_navigation(tenant, user, client):
    return [NavItem(_l("Sample notes"), "sample_portal.notes", icon="journal-text", order=50)]
