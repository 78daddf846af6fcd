"""Clients: who may see them, creating and changing them, the list, search and export."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from core.auth.services import has_permission
from core.clients import fields
from core.clients.models import COMPANY, PERSON, Client, ClientAddress, GroupClient
from core.clients.taxids import parse_tax_id
from core.config import LANGUAGES
from core.errors import DomainError
from core.extensions import db
from core.forms import Choice, kept_choices
from core.groups.models import Group, GroupUser
from core.plugins import host
from tenants.licensing import enabled_for

VIEW_ALL = "core.clients:view_all"


def fold(text: str) -> str:
    """Lower-case without accents: 'Álamo' and 'alamo' match on every database."""
    if text is None or text.isascii():  # nothing to decompose: the common case, ten times faster
        return (text or "").lower()
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


# Every field of a client a change can touch, in one list: the form's snapshot, the import's
# merge and comparison, and the ``changes`` that ``clients_updated`` reports all come from it.
COLUMN_FIELDS = (
    "kind",
    "tax_id",
    "country",
    "first_name",
    "last_name",
    "company_name",
    "name",
    "email",
    "phone",
    "notes",
    "locale",
)
CLIENT_FIELDS = (*COLUMN_FIELDS, "active", "groups", "addresses")


@dataclass
class ClientData:
    """What a person types about a client, before it is checked."""

    tax_id: str
    country: str = "ES"
    kind: str = ""
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    email: str = ""
    phone: str = ""
    notes: str = ""
    locale: str = ""
    group_ids: list[int] = field(default_factory=list)
    # Plugin fields, ``{"<plugin>.<key>": value}``: only those given are checked and saved.
    extra: dict = field(default_factory=dict)


@dataclass
class CheckedClient:
    tax_id: str
    tax_id_type: str
    country: str
    kind: str
    first_name: str
    last_name: str
    company_name: str
    name: str
    email: str
    phone: str
    notes: str
    locale: str

    @property
    def search_text(self) -> str:
        return fold(" ".join((self.name, self.tax_id, self.email, self.phone)))

    def columns(self) -> dict:
        values = {name: getattr(self, name) for name in (*COLUMN_FIELDS, "tax_id_type")}
        values["search_text"] = self.search_text
        return values


_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def check(data: ClientData) -> CheckedClient:
    """Validate and normalise client data; the first problem raises a ``DomainError`` naming the field."""
    tax = parse_tax_id(data.country, data.tax_id)
    kind = data.kind or tax.kind or PERSON
    if kind not in (PERSON, COMPANY):
        raise DomainError(_l("Choose whether the client is a person or a company."), field="kind")
    if tax.kind is not None and kind != tax.kind:
        raise DomainError(
            _l("That tax id belongs to a person.") if tax.kind == PERSON else _l("That tax id belongs to a company."),
            field="kind",
        )
    first, last, company = (
        (data.first_name or "").strip(),
        (data.last_name or "").strip(),
        (data.company_name or "").strip(),
    )
    if kind == PERSON:
        if not first:
            raise DomainError(_l("The first name is required."), field="first_name")
        if not last:
            raise DomainError(_l("The last name is required."), field="last_name")
        name, company = f"{first} {last}", ""
    else:
        if not company:
            raise DomainError(_l("The company name is required."), field="company_name")
        name, first, last = company, "", ""
    email = (data.email or "").strip()
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError as error:
            raise DomainError(_l("The e-mail %(email)s is not valid.", email=email), field="email") from error
    phone = re.sub(r"[\s().\-]", "", data.phone or "")
    if phone and not _PHONE.match(phone):
        raise DomainError(_l("The phone must have 6 to 15 digits, with an optional + in front."), field="phone")
    locale = (data.locale or "").strip().lower()
    if locale and locale not in LANGUAGES:
        raise DomainError(_l("Choose Spanish, Italian or English, or the organisation's language."), field="locale")
    return CheckedClient(
        tax.value,
        tax.type,
        (data.country or "").upper(),
        kind,
        first[:120],
        last[:200],
        company[:250],
        name[:320],
        email,
        phone,
        (data.notes or "").strip(),
        locale,
    )


# --- visibility -------------------------------------------------------------------------


def sees_every_client(user) -> bool:
    """With ``core.clients:view_all``, or the system itself (``user`` None: a job, the demo)."""
    return user is None or has_permission(user, VIEW_ALL)


def own_group_ids(user) -> set[int]:
    return set(db.session.scalars(select(GroupUser.group_id).where(GroupUser.user_id == user.id)))


def visible(user, stmt: Select) -> Select:
    """Limit a statement over clients to those ``user`` may see."""
    if sees_every_client(user):
        return stmt
    # An uncorrelated IN: both engines build the set of the user's clients once. (A correlated
    # EXISTS made SQLite re-read the memberships for every client: seconds per page at 100,000.)
    shared = (
        select(GroupClient.client_id)
        .join(GroupUser, GroupUser.group_id == GroupClient.group_id)
        .where(GroupUser.user_id == user.id)
    )
    return stmt.where(Client.id.in_(shared))


def visible_audit_events(user, stmt: Select) -> Select:
    """Limit a statement over audit events to those that tell ``user`` nothing about clients they
    cannot see: events of such a client, of what belongs to it (its addresses, a plugin's records
    of it) and of its portal account are left out."""
    from core.audit.models import AuditEvent
    from core.auth.models import User

    if sees_every_client(user):
        return stmt
    shown = visible(user, select(Client.id))
    hidden_accounts = select(User.id).where(User.client_id.is_not(None), User.client_id.not_in(shown))
    return stmt.where(
        or_(AuditEvent.object_type != "client", AuditEvent.object_id.in_(shown)),
        or_(AuditEvent.parent_type.is_(None), AuditEvent.parent_type != "client", AuditEvent.parent_id.in_(shown)),
        or_(AuditEvent.object_type != "user", AuditEvent.object_id.not_in(hidden_accounts)),
    )


def _client_list_fields(object_type: str) -> frozenset[str]:
    """The recorded collections of an audited type whose members are clients (a group's clients)."""
    from sqlalchemy import inspect

    from core.audit.recorder import audited_types

    cls = audited_types().get(object_type)
    if cls is None:
        return frozenset()
    relationships = inspect(cls).relationships
    return frozenset(
        key for key in cls.__audit_relations__ if key in relationships and relationships[key].mapper.class_ is Client
    )


def readable_changes(user, event) -> dict:
    """The recorded changes of an audit event as ``user`` may read them: lists of clients (who joined
    or left a group) only for those who see every client."""
    changes = event.changes or {}
    if getattr(user, "is_operator", False) or sees_every_client(user):
        return changes
    hidden = _client_list_fields(event.object_type)
    return {field: pair for field, pair in changes.items() if field not in hidden}


def matching(q: str):
    """The condition on clients whose name, tax id, e-mail or phone contains ``q`` (accents and
    case aside)."""
    return Client.search_text.contains(fold(q.strip()), autoescape=True)


def members_of(group_id: int) -> Select:
    """The ids of the clients in the group, for an IN."""
    return select(GroupClient.client_id).where(GroupClient.group_id == group_id)


def get_visible(user, client_id: int) -> Client | None:
    return db.session.scalar(visible(user, select(Client).where(Client.id == client_id)))


def assignable_groups(user) -> list[Group]:
    """Groups the user may put a client in: every group, or only their own."""
    stmt = select(Group).order_by(Group.name)
    if not sees_every_client(user):
        stmt = stmt.where(Group.id.in_(select(GroupUser.group_id).where(GroupUser.user_id == user.id)))
    return list(db.session.scalars(stmt))


def group_choices(user) -> list[Choice]:
    """The groups of ``assignable_groups`` as a filter offers them, kept until the tenant's data
    next changes."""
    return kept_choices(f"group choices of {user.id}", lambda: assignable_groups(user))


def _groups_for(user, group_ids, current: list[Group] | None = None) -> list[Group]:
    allowed = {g.id: g for g in assignable_groups(user)}
    chosen = [allowed[i] for i in group_ids if i in allowed]
    if set(group_ids) - set(allowed):
        raise DomainError(_l("You cannot put clients in a group you do not belong to."), field="groups")
    # Groups the user cannot manage stay as they were.
    kept = [g for g in (current or []) if g.id not in allowed]
    if not sees_every_client(user) and not chosen:
        raise DomainError(
            _l("Choose at least one of your groups, or you would lose sight of the client."), field="groups"
        )
    return sorted(kept + chosen, key=lambda g: g.name)


# --- changes ----------------------------------------------------------------------------


def tax_id_unavailable(tax_id: str):
    """What a user who cannot see the client holding ``tax_id`` is told: that the tax id cannot be
    used here, not that it belongs to a client of the organisation (nor whose). The refusal itself
    cannot be avoided while a tax id is unique in the organisation."""
    return _l("The tax id %(tax_id)s cannot be used. Ask someone who manages every client.", tax_id=tax_id)


def _check_tax_id_free(user, tax_id: str, except_id: int | None = None) -> None:
    existing = db.session.scalar(select(Client).where(Client.tax_id == tax_id))
    if existing is not None and existing.id != except_id:
        if get_visible(user, existing.id) is not None:
            message = _l(
                "The tax id %(tax_id)s already belongs to the client %(name)s.", tax_id=tax_id, name=existing.name
            )
        else:
            message = tax_id_unavailable(tax_id)
        raise DomainError(message, field="tax_id")


ANNOUNCE_BATCH = 1000


def announce_created(tenant, client_ids: list[int], *, notify: bool = True, held_for: str = "") -> None:
    """``clients_created`` for clients already committed, a batch of ids at a time (a plugin's
    failure is logged: it cannot undo the clients). ``notify`` False (a bulk import the person
    chose not to announce): the plugins hold back their messages under ``held_for``."""
    enabled = enabled_for(tenant)
    for start in range(0, len(client_ids), ANNOUNCE_BATCH):
        host().announce(
            "clients_created",
            enabled,
            tenant=tenant,
            client_ids=client_ids[start : start + ANNOUNCE_BATCH],
            notify=notify,
            held_for="" if notify else held_for,
        )


def announce_updated(tenant, changes_by_id: dict[int, dict]) -> None:
    """``clients_updated`` with ``{client_id: {field: (before, after)}}``, a batch at a time."""
    enabled = enabled_for(tenant)
    ids = [client_id for client_id, changes in changes_by_id.items() if changes]
    for start in range(0, len(ids), ANNOUNCE_BATCH):
        batch = {client_id: changes_by_id[client_id] for client_id in ids[start : start + ANNOUNCE_BATCH]}
        host().announce("clients_updated", enabled, tenant=tenant, changes=batch)


def _commit_unless_tax_id_taken(user, tax_id: str, except_id: int | None = None, *, flush_only: bool = False) -> None:
    """Commit (or only flush); when another request saved the same tax id a moment earlier the
    unique index refuses, and the person gets the same clear message as when it was there before."""
    try:
        if flush_only:
            db.session.flush()
        else:
            db.session.commit()
    except IntegrityError:
        db.session.rollback()
        _check_tax_id_free(user, tax_id, except_id)
        raise


def create_client(tenant, user, data: ClientData, *, by_plugin_rule: bool = False) -> Client:
    """Create a client for ``user``. ``by_plugin_rule``: a plugin decides who sees this client by a
    rule of its own (a PEC assistant sees the holders of their boxes), so the client goes in the
    groups given, if any, without requiring one of the user's."""
    checked = check(data)
    sets = fields.field_sets(tenant, user)
    plugin_values = fields.validate(sets, data.extra, None)
    _check_tax_id_free(user, checked.tax_id)
    client = Client(**checked.columns(), created_by_id=getattr(user, "id", None))
    client.groups = _groups_for(None if by_plugin_rule else user, data.group_ids)
    db.session.add(client)
    _commit_unless_tax_id_taken(user, checked.tax_id, flush_only=True)
    fields.save(sets, {client.id: plugin_values})
    _commit_unless_tax_id_taken(user, checked.tax_id)
    announce_created(tenant, [client.id])
    return client


def snapshot(client: Client, extra: dict | None = None) -> dict:
    """Every field of ``client`` as ``clients_updated`` reports it (plugin fields from ``extra``)."""
    values = {key: getattr(client, key) for key in (*COLUMN_FIELDS, "active")}
    values["groups"] = sorted(g.name for g in client.groups)
    values["addresses"] = [a.one_line for a in sorted(client.addresses, key=lambda a: a.id or 0)]
    values.update(extra or {})
    return values


def differences(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after[k]) for k in after if before.get(k) != after[k]}


def _announce_changes(tenant, client: Client, before: dict, extra: dict | None = None) -> None:
    changes = differences(before, snapshot(client, extra))
    if changes:
        announce_updated(tenant, {client.id: changes})


def update_client(tenant, user, client: Client, data: ClientData) -> Client:
    checked = check(data)
    sets = fields.field_sets(tenant, user)
    plugin_values = fields.validate(sets, data.extra, client.id)
    _check_tax_id_free(user, checked.tax_id, except_id=client.id)
    before = snapshot(client, fields.load(sets, [client.id])[client.id])
    for key, value in checked.columns().items():
        setattr(client, key, value)
    client.groups = _groups_for(user, data.group_ids, client.groups)
    fields.save(sets, {client.id: plugin_values})
    _commit_unless_tax_id_taken(user, checked.tax_id, except_id=client.id)
    _announce_changes(tenant, client, before, fields.flat(plugin_values))
    return client


def set_active(tenant, client: Client, active: bool) -> Client:
    """Activate or deactivate a client; deactivating closes its portal account."""
    from core.clients.portal import revoke_portals

    before = snapshot(client)
    client.active = active
    if not active:
        revoke_portals([client.id])
    db.session.commit()
    _announce_changes(tenant, client, before)
    return client


@dataclass
class AddressData:
    street: str
    postal_code: str = ""
    city: str = ""
    province: str = ""
    country: str = "ES"
    label: str = ""


def save_address(tenant, client: Client, data: AddressData, address: ClientAddress | None = None) -> ClientAddress:
    if not (data.street or "").strip():
        raise DomainError(_l("The street is required."), field="street")
    before = snapshot(client)
    if address is None:
        address = ClientAddress(client=client)
        db.session.add(address)
    for key in ("street", "postal_code", "city", "province", "label"):
        setattr(address, key, (getattr(data, key) or "").strip())
    address.country = (data.country or "ES").upper()[:2]
    db.session.commit()
    _announce_changes(tenant, client, before)
    return address


def delete_address(tenant, client: Client, address: ClientAddress) -> None:
    before = snapshot(client)
    client.addresses.remove(address)
    db.session.delete(address)
    db.session.commit()
    _announce_changes(tenant, client, before)


# --- list, search, export ---------------------------------------------------------------


def list_statement(user, q: str | None = None, group_id: int | None = None, active: str | None = "yes") -> Select:
    """The clients ``user`` sees, searched by name, tax id or e-mail and filtered by group and state."""
    stmt = visible(user, select(Client))
    if q:
        stmt = stmt.where(matching(q))
    if group_id:
        stmt = stmt.where(Client.id.in_(members_of(group_id)))
    if active == "yes":
        stmt = stmt.where(Client.active.is_(True))
    elif active == "no":
        stmt = stmt.where(Client.active.is_(False))
    return stmt


@dataclass
class ListExtensions:
    """The columns and filters the tenant's plugins add to ``user``'s client list, by full name
    (``<plugin>.<key>``)."""

    columns: list[tuple[str, object]]
    filters: list[tuple[str, object]]

    def select(self, stmt: Select) -> Select:
        """``stmt`` (over clients) with every plugin column added: still one query."""
        return stmt.add_columns(*(column.expression().label(_label(name)) for name, column in self.columns))

    def filtered(self, stmt: Select, chosen: dict[str, str]) -> Select:
        for name, list_filter in self.filters:
            value = (chosen.get(name) or "").strip()
            if value and value in {str(choice) for choice, _label in list_filter.choices()}:
                condition = list_filter.condition(value)
                if condition is not None:
                    stmt = stmt.where(condition)
        return stmt


def _label(name: str) -> str:
    return "plugin_" + re.sub(r"[^a-z0-9_]", "_", name.lower())


def list_extensions(tenant, user) -> ListExtensions:
    answers = host().call_by_plugin("client_list", enabled_for(tenant), tenant=tenant, user=user)
    columns, filters = [], []
    for plugin, results in answers:
        for item in results:
            if getattr(item, "permission", None) and not has_permission(user, item.permission):
                continue
            target = columns if hasattr(item, "expression") else filters
            target.append((f"{plugin}.{item.key}", item))
    order = lambda pair: (pair[1].order, pair[0])  # noqa: E731
    return ListExtensions(sorted(columns, key=order), sorted(filters, key=order))


EXPORT_COLUMNS = (
    "tax_id",
    "tax_id_type",
    "country",
    "kind",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "notes",
    "language",
    "active",
    "groups",
    "street",
    "postal_code",
    "city",
    "province",
    "address_country",
    # The client's further addresses, each on one line, separated by " | ".
    "other_addresses",
)


def export_rows(tenant, user, stmt: Select | None = None, batch: int = 1000) -> Iterator[list]:
    """The rows of the CSV export (of ``stmt``, the filtered list; all the user sees by default),
    read in keyset batches so memory stays flat however many there are; plugin fields last."""
    sets = fields.field_sets(tenant, user)
    plugin_columns = [(name, field) for bound in sets for name, field in bound.items()]
    yield [*EXPORT_COLUMNS, *(name for name, _field in plugin_columns)]
    after = None
    base = (stmt if stmt is not None else list_statement(user, active="all")).options(
        selectinload(Client.groups), selectinload(Client.addresses)
    )
    while True:
        page = base
        if after is not None:
            page = page.where((Client.name > after[0]) | ((Client.name == after[0]) & (Client.id > after[1])))
        clients = db.session.scalars(page.order_by(Client.name, Client.id).limit(batch)).all()
        if not clients:
            return
        plugin_values = fields.load(sets, [client.id for client in clients]) if sets else {}
        for client in clients:
            address = client.addresses[0] if client.addresses else None
            values = plugin_values.get(client.id, {})
            yield [
                client.tax_id,
                client.tax_id_type,
                client.country,
                client.kind,
                client.first_name,
                client.last_name,
                client.company_name,
                client.email,
                client.phone,
                client.notes,
                client.locale,
                "yes" if client.active else "no",
                "|".join(g.name for g in client.groups),
                address.street if address else "",
                address.postal_code if address else "",
                address.city if address else "",
                address.province if address else "",
                address.country if address else "",
                " | ".join(other.one_line for other in client.addresses[1:]),
                *(fields.cell(field, values.get(name, field.empty)) for name, field in plugin_columns),
            ]
        after = (clients[-1].name, clients[-1].id)
        for client in clients:
            for address in client.addresses:
                db.session.expunge(address)
            db.session.expunge(client)
