"""Every hook a Ventanilla plugin may implement.

Plugins write ``from core.api import hookimpl`` and implement any of these functions in their
package's ``__init__.py``; an implementation may accept only some of the arguments. The types
they return are in ``core.api`` too. From plugin API v1 on, specs gain arguments over time but
never rename or drop one.

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

    :return: a ``PluginInfo`` (name, translatable title, version, description, and the licence
        limits it understands as ``{key: LicenceLimit}``: numbers, lists of codes or text). The
        name must match the entry-point name.
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

    :return: a list of ``core.api.Permission`` with codes namespaced
        ``<plugin>.<area>:<verb>``, a translatable title and the keys of the default roles
        (``manager``, ``operator``, ``assistant``, ``client``) that receive it in new tenants.
    """


@hookspec
def register_jobs(jobs):
    """Register background jobs and their schedules. Called at start-up with a ``PluginJobs``.

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


@hookspec
def operator_navigation():
    """Entries of the operator console's menu for the plugin's operator pages (``operator_views``),
    such as the PEC gestore's activation queue. Called on every operator page.

    :return: a list of ``NavItem`` (title, endpoint; no permission: operators see every entry).
    """


# --- per tenant: dispatched only to plugins the tenant licenses and has enabled ---------


@hookspec
def navigation(tenant, user):
    """Menu entries for ``user`` in ``tenant``. Called while rendering every staff page.

    Entries whose ``permission`` the user lacks are dropped by core.

    :return: a list of ``NavItem``.
    """


@hookspec
def dashboard_widgets(tenant, user):
    """Cards for the home page. Called when ``user`` opens the dashboard of ``tenant``.

    :return: a list of ``Widget`` (title, template, context, permission, order).
    """


@hookspec
def client_tabs(client, user):
    """Tabs for the client page. Called when ``user`` opens ``client`` (its tenant is the current one).

    :return: a list of ``ClientTab`` (key, title, template, context, permission).
    """


@hookspec
def clients_created(tenant, client_ids, notify, held_for):
    """React to new clients. Called after the transaction that created them committed, with the
    ``tenant`` and the list of their ids: one id for a client made on the form, up to a thousand
    for each batch of an import, so that a plugin can react set-based (one INSERT … SELECT, not a
    query per client). Runs in the tenant's context; a failure is logged and rolled back, and
    cannot undo the clients nor keep other plugins from hearing of them.

    ``notify`` says whether the clients may be told (e-mail, push) of what the plugin does for
    them: True for a client made on the form; for an import, only when the person importing chose
    so. When False, a plugin sends nothing to these clients because of their creation and keeps
    what it would have sent as held back under the key ``held_for`` (the import's, e.g.
    ``"core.clients_import:17"``; empty when ``notify``): core asks for it with ``held_notices``.
    Later messages (reminders, expiry) follow the plugin's usual rules.

    :return: nothing.
    """


@hookspec
def held_notices(tenant, held_for):
    """Messages to clients the plugin held back for the bulk action ``held_for`` (a
    ``clients_created`` with ``notify`` False). Called when the person who started the action
    looks at it (the import report) and when they confirm sending them.

    :return: a list of ``HeldNotices``: how many messages would go now and how to send them
        (``release()``, once: a second call sends nothing).
    """


@hookspec
def clients_updated(tenant, changes):
    """React to changed clients. Called after commit with ``changes``: ``{client_id: {field:
    (before, after)}}``, the same shape wherever the change came from (the form, an address, a
    group, the import). Fields are ``core.api.CLIENT_FIELDS`` (``addresses`` as lists of one-line
    addresses, ``groups`` as sorted lists of names) and plugin fields as ``<plugin>.<key>``.
    Per tenant; as ``clients_created``.

    :return: nothing.
    """


@hookspec
def client_fields(tenant):
    """Values the plugin keeps about every client, edited with the client. Called whenever the
    client form, the data tab, the import or the export of ``tenant`` is drawn or read.

    :return: a list of ``ClientFieldSet`` (usually one ``ModelClientFields``): a titled section of
        ``ClientField`` s with ``load``, ``validate`` and ``save``. Core puts the section on the
        create and edit form, a panel on the data tab, its columns in the CSV import (with the
        same per-row report) and in the export, and saves it in the client's transaction.
    """


@hookspec
def client_list(tenant, user):
    """Columns and filters the plugin adds to the client list of ``user``. Called when the list,
    its JSON API or its export is drawn.

    :return: a list of ``ClientColumn`` (a SQL expression selected in the list's single query)
        and ``ClientFilter`` (a select whose value becomes a WHERE condition).
    """


@hookspec
def settings_sections(tenant, user):
    """Sections of the organisation's settings page (such as sedes' "Servicios y buzones").
    Called when the settings page's menu is drawn for ``user``.

    :return: a list of ``SettingsSection`` (key, title, endpoint of a plugin view whose template
        extends ``settings/layout.html``, permission, order).
    """


@hookspec
def login_identifiers(tenant):
    """Other identifiers than the e-mail with which the tenant's users may sign in (a PEC
    reseller's 10-digit code). Called when the tenant's login page is drawn and when someone signs
    in with something that is not an e-mail address. Per tenant.

    :return: a list of ``LoginIdentifier`` (label, ``find(text) -> user or None``).
    """


@hookspec
def plugin_enabled(tenant):
    """Seed per-tenant data. Called on the one plugin a tenant administrator has just enabled.

    Runs in the tenant's context, inside the transaction that enables it.

    :return: nothing.
    """


@hookspec
def plugin_disabled(tenant):
    """Stop the plugin's work for ``tenant``. Called on the one plugin a tenant administrator has
    just switched off, or whose licence the operator revoked, in the tenant's context and inside
    that transaction. Data stays (switching the plugin on again brings it back); this is where a
    plugin cancels what it had scheduled or pending for the tenant.

    :return: nothing.
    """


@hookspec
def mail_transport(tenant, key):
    """The SMTP server that carries a message the plugin stored with ``transport="<plugin>:<key>"``
    (``core.api.send_email`` / ``send_composed_email``), such as the outbound mailbox of a contract.
    Called by the delivery job of each such message, in ``tenant``'s context, on this plugin only.

    :return: a ``SmtpSettings`` (or None when there is none any more: the delivery fails visibly
        and is retried with back-off).
    """


@hookspec
def global_search(tenant, user, query):
    """Results for the search box. Called with the text ``query`` the user typed.

    :return: a list of ``SearchResult`` the user is allowed to see.
    """


@hookspec
def portal_navigation(tenant, user, client):
    """Sections of the client portal for ``client`` (``user`` is the client's own portal account).

    Called when the portal home page and menu are drawn. Only portal pages of the plugin may
    be linked (views declared with ``core.api.portal``).

    :return: a list of ``NavItem`` (title, endpoint, icon, order; no permission).
    """


@hookspec
def demo_services(app):
    """Processes ``make run`` starts for the demo beside the web server and the worker (and stops
    with them), such as a simulator of an outside system the demo tenants talk to. Called once per
    installed plugin by ``python -m core.serve`` (after ``flask demo load``), with the ``app``.

    :return: a list of ``DemoService`` (name, argv, extra environment, lines to print).
    """


@hookspec
def demo_logins():
    """Further demo logins to print with core's (a reseller's 10-digit code, say). Called once per
    installed plugin by ``make run``.

    :return: a list of one-line strings.
    """


@hookspec
def demo_data(tenant):
    """Add the plugin's demonstration data to ``tenant``: ``flask demo load`` (and ``make run``)
    calls it in the tenant's context, after core's demo users, groups and clients exist.

    Must be idempotent: a second call adds nothing. Per tenant.

    :return: a list of lines saying what was created (empty when nothing was).
    """
