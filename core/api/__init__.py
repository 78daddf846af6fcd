"""Ventanilla's plugin API, version 1: the one module a plugin imports from core.

A plugin imports from here and from no other module of ``core`` or ``tenants`` (import-linter
checks it: ``make lint``); third-party libraries (flask, flask_babel, flask_login, sqlalchemy,
wtforms...) it imports as it likes. Everything below is stable: names are added, never renamed
or removed without a new API version.

**Hooks.** Implement the hooks of ``core.hookspecs`` with ``@hookimpl`` in the package's
``__init__.py``; they return the types listed under *What hooks return*. Per-tenant hooks are only
called for tenants that license and enable the plugin.

**Models.** A table of the plugin is named ``<plugin>_<thing>``, its model subclasses
``TenantScoped`` (a ``tenant_id`` that isolation fills and enforces), ``Audited`` when its changes
belong in the audit trail, and ``db.Model``. A foreign key to core names the table:
``ForeignKey("core_clients.id")``, ``ForeignKey("core_users.id")``, ``ForeignKey("core_stored_files.id")``;
a relationship names the class: ``relationship("Client")``. Migrations live in the plugin's own
Alembic branch: each table gets ``enable_row_level_security``, a table others point at gets
``tenant_key`` and every reference to a tenant table gets ``same_tenant_references`` (a row can
never point at another tenant's row; tests/tenants/test_isolation.py checks every one). Set-based
writes go through ``update_by_id`` and ``tenant_sql`` (isolation refuses what its criteria cannot
reach). Time is stored in UTC (``utcnow``); show it in the tenant's zone.

**Views.** Blueprints named after the plugin; every view declares its access with ``requires``,
``authenticated``, ``public``, ``portal`` or ``operator_only`` (a view without one is refused).
Inside a request ``current_tenant()`` is the tenant of the URL and ``flask_login.current_user``
the user. Views call the plugin's services; services raise ``DomainError`` with a translatable
message (and the form field it concerns) for whatever the user did wrong.

**Jobs.** Register them in ``register_jobs(jobs)`` with ``jobs.add``; a job is
``func(ctx, **arguments)`` where ``ctx`` is a ``JobContext`` (``ctx.tenant``, ``ctx.run``,
``ctx.progress(done, total, message)``); it runs in the tenant's context, only while the tenant
holds the plugin. Raise ``TransientJobError`` (or let a connection error out) to be retried.

**Set-based writes.** A bulk ``UPDATE … WHERE``, an update of many rows by id, or an ``INSERT …
SELECT`` of an audited model goes through ``audited_write``: it writes only the rows of the tenant
it is given (the condition is in its statements) and records in the same transaction, set-based,
the events the ORM would record for those rows, naming each object with the model's
``audit_label_sql``/``audit_parent_sql`` (override them with ``audit_label``/``audit_parent``).
Its statements bypass the ORM's tenant criteria, so every other tenant table that its conditions
or its SELECT read must compare its ``tenant_id`` there (as ``active_client_ids`` does); it refuses
them otherwise (``TenantNotNamed``).
``audit_row``/``audit_rows`` remain for events that are not a write of a model's rows.

**Names that are not functions or classes** (each function and class documents itself):

- ``hookimpl``: the marker of a hook implementation (``@hookimpl``).
- ``db``: Flask-SQLAlchemy (``db.Model``, ``db.session``).
- ``public``, ``authenticated``, ``portal``, ``operator_only``: access of a view (anyone; any
  signed-in user of the tenant; the client's own portal account; platform operators); with
  ``requires(code)``, the only decorators a view may carry.
- ``NUMBER``, ``LIST``, ``TEXT``: kinds of ``LicenceLimit``.
- ``TEXT_FIELD``, ``TEXTAREA_FIELD``, ``BOOLEAN_FIELD``, ``CHOICE_FIELD``, ``LIST_FIELD``: kinds of
  ``ClientField``.
- ``CLIENT_FIELDS``: the client's own fields a ``clients_updated`` change may name.
- ``CREATE``, ``UPDATE``, ``DELETE``: actions of an ``audit_row``.
- ``JPEG``, ``PNG``, ``HEIC``, ``PDF``: content types an ``UploadKind`` may accept; ``MB``: a
  megabyte, for its size limit.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import g, has_request_context
from sqlalchemy import Select, select

from core.audit.bulk import audited_write
from core.audit.models import CREATE, DELETE, UPDATE
from core.audit.recorder import Audited, acting_as, make_row, record_many
from core.audit.services import history
from core.auth.models import User
from core.auth.services import has_permission
from core.cache import remember
from core.clients import services as _clients
from core.clients.fields import ModelClientFields
from core.clients.models import Client, ClientAddress, GroupClient
from core.clients.services import CLIENT_FIELDS, ClientData, matching
from core.crypto import EncryptedBytes, EncryptedText
from core.csvstream import csv_response
from core.errors import DomainError
from core.extensions import UTCDateTime, csrf, db, utcnow
from core.files.downloads import send_stored_file, send_thumbnail
from core.files.kinds import HEIC, JPEG, MB, PDF, PNG, UploadKind, register_kind
from core.files.models import StoredFile
from core.files.services import (
    accept_image_or_pdf,
    accept_upload,
    delete_stored_file,
    open_stored,
    read_stored,
    thumbnail,
)
from core.forms import CheckboxListField, choices, kept_choices
from core.groups.models import Group, GroupUser
from core.hookspecs import hookimpl
from core.hooktypes import (
    BOOLEAN_FIELD,
    CHOICE_FIELD,
    LIST,
    LIST_FIELD,
    NUMBER,
    TEXT,
    TEXT_FIELD,
    TEXTAREA_FIELD,
    ClientColumn,
    ClientField,
    ClientFieldSet,
    ClientFilter,
    ClientTab,
    DemoService,
    HeldNotices,
    LicenceLimit,
    LoginIdentifier,
    NavItem,
    PluginInfo,
    SearchResult,
    SettingsSection,
    Widget,
)
from core.i18n.dates import format_date
from core.jobs import TransientJobError
from core.jobs.models import JobRun
from core.jobs.registry import PluginJobs
from core.jobs.runner import JobContext
from core.jobs.services import enqueue, finish_run, has_open_run, live_progress, set_run_progress
from core.mail.services import SmtpSettings, new_message_id, record_bounce, send_composed_email, send_email
from core.maintenance import analyse
from core.netcheck import checked_address, pinned_http_connection
from core.pagination import Page, keyset_page
from core.permissions import Permission, authenticated, operator_only, portal, public, requires
from core.plugins import host
from core.push.services import Push, send_later, send_to_user
from core.redis_connection import get_redis
from core.urls import external_url
from core.users import services as _users
from tenants.context import all_tenants, current_tenant_id, tenant_context
from tenants.isolation import (
    TenantScoped,
    drop_same_tenant_references,
    drop_tenant_key,
    enable_row_level_security,
    same_tenant_references,
    tenant_key,
    tenant_sql,
)
from tenants.isolation import update_by_id as _update_by_id
from tenants.licensing import is_enabled, licence_value, limit, plugin_settings, update_plugin_settings
from tenants.models import Tenant

# --- plugins ----------------------------------------------------------------------------------


def call_plugins(hook: str, **kwargs) -> list:
    """Call a hook of a plugin's own ``hookspecs`` (``PluginInfo.hookspecs``) on every installed
    package that implements it, and flatten the lists they return (such as every sede connector)."""
    return host().call_all(hook, **kwargs)


def csrf_exempt(view):
    """Take a view out of the CSRF check: only for a machine calling back with its own signature
    (a provider's webhook), which the view must verify."""
    return csrf.exempt(view)


# --- tenants ----------------------------------------------------------------------------------


def current_tenant() -> Tenant | None:
    """The tenant the running code acts for: the tenant of the request's URL, or the one a job or
    ``tenant_context`` entered; None outside any tenant (operator pages)."""
    if has_request_context() and g.get("tenant") is not None:
        return g.tenant
    tenant_id = current_tenant_id()
    return db.session.get(Tenant, tenant_id) if tenant_id is not None else None


def tenant_today(tenant: Tenant) -> date:
    """Today's date in the tenant's time zone (validity dates and deadlines are days there)."""
    return datetime.now(ZoneInfo(tenant.timezone)).date()


# --- clients ---------------------------------------------------------------------------------


def sees_every_client(user) -> bool:
    """Whether ``user``'s roles let them see every client, not only those of their groups."""
    return _clients.sees_every_client(user)


def visible_clients(user, stmt: Select | None = None) -> Select:
    """``stmt`` over clients (``select(Client)`` by default) limited to those ``user`` may see:
    every client with ``core.clients:view_all``, else those sharing a group with the user."""
    return _clients.visible(user, stmt if stmt is not None else select(Client))


def visible_client_ids(user):
    """The ids of the clients ``user`` may see, as a subquery for ``Model.client_id.in_(...)``."""
    return _clients.visible(user, select(Client.id)).scalar_subquery()


def get_visible_client(user, client_id: int) -> Client | None:
    """The client, if ``user`` may see it; None otherwise (answer 404)."""
    return _clients.get_visible(user, client_id)


def clients_matching(query: str):
    """The WHERE condition of the clients whose name, tax id, e-mail or phone contains ``query``
    (case and accents aside), as the client list searches."""
    return matching(query)


def client_ids_in_groups(group_ids) -> Select:
    """The ids of the clients in any of ``group_ids`` (for an IN)."""
    return select(GroupClient.client_id).where(GroupClient.group_id.in_(list(group_ids)))


def active_client_ids(tenant_id: int, group_ids=None) -> Select:
    """The ids of the tenant's active clients (of ``group_ids`` when given): a SELECT that also
    works inside an ``INSERT … SELECT`` (the tenant key is written out, so it holds where the
    ORM's tenant criteria do not reach)."""
    stmt = select(Client.id).where(Client.tenant_id == tenant_id, Client.active.is_(True))
    if group_ids is not None:
        members = select(GroupClient.client_id).where(
            GroupClient.tenant_id == tenant_id, GroupClient.group_id.in_(list(group_ids))
        )
        stmt = stmt.where(Client.id.in_(members))
    return stmt


def own_group_ids(user) -> set[int]:
    """The ids of the groups ``user`` belongs to."""
    return _clients.own_group_ids(user)


def assignable_groups(user) -> list[Group]:
    """The groups ``user`` may choose from: every group with ``core.clients:view_all``, else their own."""
    return _clients.assignable_groups(user)


def group_choices(user) -> list:
    """``assignable_groups`` as a filter offers them: ``(id, name)`` pairs with those attributes,
    kept until the tenant's data next changes."""
    return _clients.group_choices(user)


def portal_accounts(client_ids) -> dict[int, User]:
    """The active portal account of each of these clients that has one: ``{client_id: user}``."""
    accounts = db.session.scalars(select(User).where(User.client_id.in_(list(client_ids)), User.active.is_(True)))
    return {account.client_id: account for account in accounts}


def users_with_permission(code: str, group_ids=None) -> list[User]:
    """The tenant's active staff users whose roles grant ``code`` (members of ``group_ids`` only,
    when given): whom to tell of something (a deadline, an expiring certificate)."""
    stmt = select(User).where(User.active.is_(True), User.client_id.is_(None), User.password_hash.is_not(None))
    if group_ids is not None:
        stmt = stmt.where(User.id.in_(select(GroupUser.user_id).where(GroupUser.group_id.in_(list(group_ids)))))
    return [user for user in db.session.scalars(stmt.order_by(User.name)) if has_permission(user, code)]


def create_client(tenant, user, data: ClientData, *, by_plugin_rule: bool = False) -> Client:
    """Create a client with core's checks (tax id, names, e-mail, groups the user may use, plugin
    fields in ``data.extra``), committed; the tenant's plugins then hear of it (``clients_created``).
    ``data.group_ids`` empty: the user's own groups when they do not see every client.
    ``by_plugin_rule``: the plugin decides who sees the client by a rule of its own, so the user
    need not put it in one of their groups. Raises ``DomainError`` naming the field."""
    if not data.group_ids and user is not None and not _clients.sees_every_client(user):
        data.group_ids = sorted(_clients.own_group_ids(user))
    return _clients.create_client(tenant, user, data, by_plugin_rule=by_plugin_rule)


def create_staff_account(
    tenant, email: str, name: str, role_key: str, *, password: str | None = None, actor=None
) -> tuple[User, str]:
    """A staff account of the tenant with its default role ``role_key`` and a first password (made
    up when not given, and returned in clear once, to be e-mailed; the platform's length rule
    applies). An existing account with that e-mail is returned as it is, with an empty password.
    ``actor`` may only give a role they could grant themselves."""
    return _users.create_with_password(tenant, email, name, role_key, password=password, actor=actor)


def set_user_active(user, active: bool, actor=None) -> None:
    """Deactivate (its sessions end, it cannot sign in) or reactivate a staff account; committed."""
    if active:
        _users.reactivate_user(user)
    else:
        _users.deactivate_user(user, actor)


def user_language(user, tenant: Tenant) -> str:
    """The language to write to ``user`` in: their own choice, else the tenant's."""
    return user.language_in(tenant)


# --- audit ------------------------------------------------------------------------------------


def audit_rows(rows: list[dict]) -> None:
    """Write audit events prepared with ``audit_row`` in one statement, in the caller's
    transaction: for events that are not a write of a model's rows (those go through
    ``audited_write``, which records them itself)."""
    record_many(db.session, rows)


def update_by_id(model, rows: list[dict]) -> None:
    """Set-based UPDATE of many rows of a tenant model, each by its primary key, in the current
    tenant only (``session.execute(update(model), rows)`` is refused: the tenant criteria cannot
    reach it). Every row has the same keys: the primary key and the columns to set."""
    _update_by_id(db.session, model, rows)


audit_row = make_row
"""``audit_row(tenant_id, action, object_type, object_id, label, changes, parent=None)``: one event
attributed to whoever is acting now (``action`` is ``CREATE``, ``UPDATE`` or ``DELETE``;
``changes`` is ``{field: [before, after]}``; ``parent`` ``(type, id)`` files it under another
object's history, such as ``("client", client_id)``)."""

__all__ = [
    "BOOLEAN_FIELD",
    "CHOICE_FIELD",
    "CLIENT_FIELDS",
    "CREATE",
    "DELETE",
    "HEIC",
    "JPEG",
    "LIST",
    "LIST_FIELD",
    "MB",
    "NUMBER",
    "PDF",
    "PNG",
    "TEXT",
    "TEXTAREA_FIELD",
    "TEXT_FIELD",
    "UPDATE",
    "Audited",
    "CheckboxListField",
    "Client",
    "ClientAddress",
    "ClientColumn",
    "ClientData",
    "ClientField",
    "ClientFieldSet",
    "ClientFilter",
    "ClientTab",
    "DemoService",
    "DomainError",
    "EncryptedBytes",
    "EncryptedText",
    "Group",
    "HeldNotices",
    "JobContext",
    "JobRun",
    "LicenceLimit",
    "LoginIdentifier",
    "ModelClientFields",
    "NavItem",
    "Page",
    "Permission",
    "PluginInfo",
    "PluginJobs",
    "Push",
    "SearchResult",
    "SettingsSection",
    "SmtpSettings",
    "StoredFile",
    "Tenant",
    "TenantScoped",
    "TransientJobError",
    "UTCDateTime",
    "UploadKind",
    "User",
    "Widget",
    "accept_image_or_pdf",
    "accept_upload",
    "acting_as",
    "active_client_ids",
    "all_tenants",
    "analyse",
    "assignable_groups",
    "audit_row",
    "audit_rows",
    "audited_write",
    "authenticated",
    "call_plugins",
    "checked_address",
    "choices",
    "client_ids_in_groups",
    "clients_matching",
    "create_client",
    "create_staff_account",
    "csrf_exempt",
    "csv_response",
    "current_tenant",
    "db",
    "delete_stored_file",
    "drop_same_tenant_references",
    "drop_tenant_key",
    "enable_row_level_security",
    "enqueue",
    "external_url",
    "finish_run",
    "format_date",
    "get_redis",
    "get_visible_client",
    "group_choices",
    "has_open_run",
    "has_permission",
    "history",
    "hookimpl",
    "is_enabled",
    "kept_choices",
    "keyset_page",
    "licence_value",
    "limit",
    "live_progress",
    "new_message_id",
    "open_stored",
    "operator_only",
    "own_group_ids",
    "pinned_http_connection",
    "plugin_settings",
    "portal",
    "portal_accounts",
    "public",
    "read_stored",
    "record_bounce",
    "register_kind",
    "remember",
    "requires",
    "same_tenant_references",
    "sees_every_client",
    "send_composed_email",
    "send_email",
    "send_later",
    "send_stored_file",
    "send_thumbnail",
    "send_to_user",
    "set_run_progress",
    "set_user_active",
    "tenant_context",
    "tenant_key",
    "tenant_sql",
    "tenant_today",
    "thumbnail",
    "update_by_id",
    "update_plugin_settings",
    "user_language",
    "users_with_permission",
    "utcnow",
    "visible_client_ids",
    "visible_clients",
]
