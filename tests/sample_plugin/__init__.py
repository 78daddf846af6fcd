"""A small plugin that exercises the whole plugin contract in the test suite.

It is loaded through ``EXTRA_PLUGINS`` (exactly as an entry point would load it) and has a
gated blueprint, a menu entry, permissions, a licence limit, a cron job, a widget, a client
tab, an operator console, search results, its own table and its own migration branch.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core import hookimpl
from core.permissions import Permission
from core.plugins import ClientTab, NavItem, PluginInfo, SearchResult, Widget

NAME = "sample"


@hookimpl
def ventanilla_plugin():
    return PluginInfo(
        name=NAME,
        title=_l("Sample notes"),
        version="1.0",
        description=_l("Notes that prove the plugin contract."),
        limits={"notes": _l("Maximum notes")},
    )


@hookimpl
def register_blueprints(app):
    from tests.sample_plugin.views import bp, portal_bp

    return [bp, portal_bp]


@hookimpl
def operator_views(app):
    from tests.sample_plugin.views import console

    return [console]


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
def plugin_enabled(tenant):
    from tests.sample_plugin.services import add_welcome_note

    add_welcome_note(tenant)


@hookimpl
def demo_data(tenant):
    from tests.sample_plugin.services import add_demo_note

    return ["sample demo note created"] if add_demo_note() else []


@hookimpl
def global_search(tenant, user, query):
    from flask import url_for

    from core.auth.services import has_permission
    from tests.sample_plugin.services import search

    if not has_permission(user, "sample.notes:view"):
        return []
    return [SearchResult(n.title, url_for("sample.show", note_id=n.id), _l("Sample note")) for n in search(query)]


@hookimpl
def client_created(client):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote
    from tests.sample_plugin.services import note_about

    if "Faulty" in client.name:
        # A plugin that breaks half-way: tests check it cannot undo or fail the client's creation.
        db.session.add(SampleNote(title="half-written", body=""))
        raise RuntimeError("the sample plugin fails on purpose")
    note_about(f"Client {client.name} created")


@hookimpl
def client_updated(client, changes):
    from tests.sample_plugin.services import note_about

    note_about(f"Client {client.name} changed: {', '.join(sorted(changes))}")


@hookimpl
def portal_navigation(tenant, user, client):
    return [NavItem(_l("Sample notes"), "sample_portal.notes", icon="journal-text", order=50)]
