"""Every hook a Ventanilla plugin may implement.

Plugins write ``from core import hookimpl`` and implement any of these functions in their
package's ``__init__.py``; an implementation may accept only some of the arguments. Specs
gain arguments over time but never rename or drop one.

Hooks marked *per tenant* are dispatched only to the plugins the tenant has licensed and
enabled (core always answers); the others are called once per installed plugin.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ventanilla")
hookimpl = pluggy.HookimplMarker("ventanilla")


# --- start-up: called once per installed plugin while the application is built ---------


@hookspec
def ventanilla_plugin():
    """Describe the plugin. Called at start-up, once per plugin.

    :return: a ``core.plugins.PluginInfo`` (name, translatable title, version, description,
        licence limits it understands). The name must match the entry-point name.
    """


@hookspec
def register_blueprints(app):
    """Give the plugin's tenant-scoped blueprints. Called at start-up with the Flask ``app``.

    Core mounts each returned blueprint under ``/<tenant>/<url_prefix>``, records that it belongs
    to the plugin (so the licensing gate can answer 404 for tenants without it) and checks its
    name (the plugin's name, or ``<plugin>_<part>``) and template folder.

    :return: a list of ``flask.Blueprint``.
    """


@hookspec
def register_permissions():
    """Declare the plugin's permissions. Called at start-up.

    :return: a list of ``core.permissions.Permission`` with codes namespaced
        ``<plugin>.<area>:<verb>``, a translatable title and the keys of the default roles
        (``manager``, ``operator``, ``assistant``, ``client``) that receive it in new tenants.
    """


@hookspec
def register_jobs(jobs):
    """Register background jobs and their schedules. Called at start-up with a ``core.jobs.PluginJobs``.

    Call ``jobs.add(name, func, queue=..., cron=... | interval=...)``. Names are namespaced
    ``<plugin>.<job>``; a scheduled job is run once per tenant that has the plugin enabled, and
    the worker skips a tenant whose licence was revoked while the job was queued.

    :return: nothing.
    """


@hookspec
def operator_views(app):
    """Give operator-console blueprints. Called at start-up with the Flask ``app``.

    They are mounted under ``/operator/<url_prefix>`` and only operators can open them.

    :return: a list of ``flask.Blueprint``.
    """


# --- per tenant: dispatched only to plugins the tenant licenses and has enabled ---------


@hookspec
def navigation(tenant, user):
    """Menu entries for ``user`` in ``tenant``. Called while rendering every staff page.

    Entries whose ``permission`` the user lacks are dropped by core.

    :return: a list of ``core.plugins.NavItem``.
    """


@hookspec
def dashboard_widgets(tenant, user):
    """Cards for the home page. Called when ``user`` opens the dashboard of ``tenant``.

    :return: a list of ``core.plugins.Widget`` (title, template, context, permission, order).
    """


@hookspec
def client_tabs(client, user):
    """Tabs for the client page. Called when ``user`` opens ``client`` (its tenant is the current one).

    :return: a list of ``core.plugins.ClientTab`` (key, title, template, context, permission).
    """


@hookspec
def client_created(client):
    """React to a new client. Called after the transaction that created ``client`` committed.

    :return: nothing.
    """


@hookspec
def client_updated(client, changes):
    """React to a changed client. Called after commit with ``changes``: ``{field: (before, after)}``.

    :return: nothing.
    """


@hookspec
def plugin_enabled(tenant):
    """Seed per-tenant data. Called on the one plugin a tenant administrator has just enabled.

    Runs in the tenant's context, inside the transaction that enables it.

    :return: nothing.
    """


@hookspec
def global_search(tenant, user, query):
    """Results for the search box. Called with the text ``query`` the user typed.

    :return: a list of ``core.plugins.SearchResult`` the user is allowed to see.
    """


@hookspec
def portal_navigation(tenant, user, client):
    """Sections of the client portal for ``client`` (``user`` is the client's own portal account).

    Called when the portal home page and menu are drawn. Only portal pages of the plugin may
    be linked (views declared with ``core.permissions.portal``).

    :return: a list of ``core.plugins.NavItem`` (title, endpoint, icon, order; no permission).
    """


@hookspec
def demo_data(tenant):
    """Add the plugin's demonstration data to ``tenant``: ``flask demo load`` (and ``make run``)
    calls it in the tenant's context, after core's demo users, groups and clients exist.

    Must be idempotent: a second call adds nothing. Per tenant.

    :return: a list of lines saying what was created (empty when nothing was).
    """
