"""Certified boxes: registration ("Inserisci nuovo account certificato"), who sees which, the list
and its export, and what is done to a box afterwards (renewal, suspension, closure, agents,
packages, subentro).

Scope (DESIGN §5): a user whose role lacks ``pec.boxes:view_all`` sees only the boxes they
entered (an assistant's panel), on whatever domain. Rules of names, states and dates are the
engine's (``mailboxes``, ``lifecycle``, ``catalogue``, ``packages``); this module reads and writes
the rows they judge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError

from core.api import (
    PDF,
    UPDATE,
    Client,
    UploadKind,
    accept_upload,
    audit_row,
    audit_rows,
    db,
    has_permission,
    register_kind,
    tenant_today,
    utcnow,
)
from plugins.pec import assistants as assistant_rules
from plugins.pec import holders
from plugins.pec.catalogue import (
    DEFAULT_BOX_TYPES,
    RenewalMode,
    find_box_type,
    parse_renewal_mode,
    validate_mailbox_space,
    validate_years,
)
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.exports import BOX_COLUMNS
from plugins.pec.lifecycle import (
    DEFAULT_POLICY,
    STATE_LABELS,
    Action,
    BoxState,
    check_action,
    partition_for_action,
    renewed_expiry,
)
from plugins.pec.mailboxes import NameUse, check_holder_change, check_name_available, normalise_local_part
from plugins.pec.models import (
    DOCUMENT_KINDS,
    PACKAGE_ACTIVE,
    Agent,
    Box,
    BoxDocument,
    Domain,
    HolderActivity,
    HolderAddress,
    HolderProfile,
    Package,
)
from plugins.pec.packages import check_joins_package

VIEW_ALL = "pec.boxes:view_all"

DOCUMENT_KIND = register_kind(UploadKind("pec.document", frozenset({PDF}), 20 * 1024 * 1024, _l("a PDF")))


# --- who sees which -------------------------------------------------------------------------


def sees_all(user) -> bool:
    return has_permission(user, VIEW_ALL)


def scoped(user, stmt: Select | None = None) -> Select:
    """``stmt`` over boxes limited to those ``user`` sees: every one with ``pec.boxes:view_all``,
    else those they entered."""
    stmt = stmt if stmt is not None else select(Box)
    if sees_all(user):
        return stmt
    return stmt.where(Box.created_by_id == user.id)


def get_visible(user, box_id: int) -> Box | None:
    return db.session.scalar(scoped(user, select(Box).where(Box.id == box_id)))


def domains_for(user, active_only: bool = True) -> list[Domain]:
    """The domains ``user`` registers boxes on: an assistant's own domain when one is set, else
    every (active) domain of the reseller."""
    stmt = select(Domain).order_by(Domain.name)
    if active_only:
        stmt = stmt.where(Domain.active.is_(True))
    assistant = assistant_rules.assistant_of(user)
    if assistant is not None and assistant.domain_id is not None and not sees_all(user):
        stmt = stmt.where(Domain.id == assistant.domain_id)
    return list(db.session.scalars(stmt))


# --- names ----------------------------------------------------------------------------------


def name_uses(domain_id: int, local_part: str) -> list[NameUse]:
    """Every box that had this name on this domain, with its holder's identifiers."""
    rows = db.session.execute(
        select(Box.state, Box.deleted_on, Client.tax_id, HolderProfile.partita_iva)
        .join(Client, Client.id == Box.holder_id)
        .outerjoin(HolderProfile, HolderProfile.client_id == Box.holder_id)
        .where(Box.domain_id == domain_id, Box.local_part == local_part)
    ).all()
    return [
        NameUse(BoxState(state), frozenset(x for x in (tax_id, piva) if x), deleted_on)
        for state, deleted_on, tax_id, piva in rows
    ]


def check_name(tenant, domain: Domain, local_part: str, holder_ids: set[str]) -> str:
    name = normalise_local_part(local_part)
    check_name_available(name, domain.name, holder_ids, name_uses(domain.id, name), tenant_today(tenant))
    return name


# --- registration ---------------------------------------------------------------------------


@dataclass
class Registration:
    """The first step of "Inserisci nuovo account certificato"."""

    local_part: str
    domain_id: int | None
    codice_fiscale: str
    box_type: str = "standard"
    years: str | int = 1
    renewal: str = RenewalMode.MANUAL.value
    mailbox_mb: int | None = None
    want_agent: bool = False
    agent_id: int | None = None
    # A holder not in the database yet: the fields the wizard asks for then.
    holder: holders.HolderData | None = None


def register_box(tenant, user, data: Registration) -> Box:
    """Check everything, create the holder when new, and save the box "in attesa di attivazione".

    Every problem of the form is reported at once (``PecErrors``), each with its field.
    """
    errors: list[PecError] = []

    def attempt(check, *args):
        try:
            return check(*args)
        except PecErrors as problems:
            errors.extend(problems.errors)
        except PecError as error:
            errors.append(error)
        return None

    assistant_rules.check_may_register(tenant, user)
    domain = next((d for d in domains_for(user) if d.id == data.domain_id), None)
    if domain is None:
        errors.append(PecError(_l("Choose one of your domains."), field="domain_id", code="domain.unknown"))
    local_part = attempt(normalise_local_part, data.local_part)
    box_type = attempt(find_box_type, data.box_type or (domain.default_box_type if domain else "standard"))
    years = attempt(validate_years, data.years)
    renewal = attempt(parse_renewal_mode, data.renewal or RenewalMode.MANUAL.value)
    space = attempt(validate_mailbox_space, box_type, data.mailbox_mb) if box_type else None
    agent = None
    if data.agent_id:
        agent = db.session.get(Agent, data.agent_id)
        if agent is None or not agent.active:
            errors.append(PecError(_l("Choose an active agent."), field="agent_id", code="agent.unknown"))
    holder = holders.find_by_tax_id(data.codice_fiscale)
    if holder is None:
        cf = attempt(holders.validate_codice_fiscale, data.codice_fiscale)
        if cf is not None and data.holder is None:
            errors.append(
                PecError(
                    _l("No holder has this codice fiscale yet: fill in their data below."),
                    field="codice_fiscale",
                    code="holder.new",
                )
            )
    if errors:
        raise PecErrors(errors)
    if holder is None:
        holder = holders.create_holder(
            holders.HolderData(**{**data.holder.__dict__, "codice_fiscale": data.codice_fiscale}), user
        )
    local_part = attempt(check_name, tenant, domain, local_part, holders.tax_ids(holder))
    if errors:
        raise PecErrors(errors)
    box = Box(
        domain_id=domain.id,
        local_part=local_part,
        address=f"{local_part}@{domain.name}",
        holder_id=holder.id,
        state=BoxState.PENDING.value,
        box_type=box_type.code,
        mailbox_mb=space,
        years=years,
        renewal=renewal.value,
        request_id=uuid.uuid4().hex,
        provider=domain.provider,
        agent_id=agent.id if agent else None,
        agent_requested=bool(data.want_agent and agent is None),
        created_by_id=getattr(user, "id", None),
    )
    db.session.add(box)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as error:
        raise PecError(
            _l("%(address)s is already taken: choose another name.", address=f"{local_part}@{domain.name}"),
            field="local_part",
            code="name.taken",
        ) from error
    return box


def set_address(box: Box, address: HolderAddress) -> None:
    if address.client_id != box.holder_id:
        raise PecError(_l("Choose one of the holder's addresses."), field="address_id", code="box.address")
    box.holder_address_id = address.id


def set_activity(box: Box, activity: HolderActivity | None) -> None:
    if activity is not None and activity.client_id != box.holder_id:
        raise PecError(_l("Choose one of the holder's activities."), field="activity_id", code="box.activity")
    box.activity_id = activity.id if activity else None


# --- the list, its search and its export ----------------------------------------------------


@dataclass
class Search:
    """The search of "Gestione account certificati": by domain, box, insertion date — and by
    state, activation date, holder, agent."""

    q: str = ""
    domain_id: int | None = None
    state: str = ""
    inserted_from: date | None = None
    inserted_to: date | None = None
    activated_from: date | None = None
    activated_to: date | None = None
    holder: str = ""
    agent_id: int | None = None
    expiring_within: int | None = None


def _day_bounds(tenant, first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """UTC instants for whole days ``first``..``last`` in the tenant's time zone."""
    zone = ZoneInfo(tenant.timezone)
    start = datetime.combine(first, time.min, tzinfo=zone) if first else None
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone) if last else None
    return start, end


def search_statement(tenant, user, search: Search, stmt: Select | None = None) -> Select:
    stmt = scoped(user, stmt)
    if search.q.strip():
        stmt = stmt.where(Box.address.contains(search.q.strip().lower(), autoescape=True))
    if search.domain_id:
        stmt = stmt.where(Box.domain_id == search.domain_id)
    if search.state in {s.value for s in BoxState}:
        stmt = stmt.where(Box.state == search.state)
    for column, first, last in (
        (Box.created_at, search.inserted_from, search.inserted_to),
        (Box.activated_at, search.activated_from, search.activated_to),
    ):
        start, end = _day_bounds(tenant, first, last)
        if start is not None:
            stmt = stmt.where(column >= start)
        if end is not None:
            stmt = stmt.where(column < end)
    if search.holder.strip():
        stmt = stmt.where(Box.holder_id.in_(holders.search_statement(user, search.holder).with_only_columns(Client.id)))
    if search.agent_id:
        stmt = stmt.where(Box.agent_id == search.agent_id)
    if search.expiring_within is not None:
        today = tenant_today(tenant)
        stmt = stmt.where(
            Box.state == BoxState.ACTIVE.value,
            Box.expires_on >= today,
            Box.expires_on <= today + timedelta(days=search.expiring_within),
        )
    return stmt


EXPORT_BATCH = 1000


def export_rows(tenant, user, search: Search) -> Iterator[list]:
    """The searched boxes as rows of the export (the columns of ``exports.BOX_COLUMNS``), read
    through a server-side cursor in batches: the export's memory is that of a batch, whatever the
    number of boxes."""
    zone = ZoneInfo(tenant.timezone)
    stmt = search_statement(
        tenant,
        user,
        search,
        select(
            Box.address,
            Domain.name.label("domain"),
            Box.state,
            Box.box_type,
            Box.mailbox_mb,
            Client.name.label("holder"),
            Client.tax_id.label("codice_fiscale"),
            HolderProfile.partita_iva,
            Agent.company_name.label("agent_company"),
            Agent.last_name.label("agent_last"),
            Agent.first_name.label("agent_first"),
            Package.name.label("package"),
            Box.created_at,
            Box.activated_at,
            Box.expires_on,
            Box.renewal,
        )
        .select_from(Box)
        .join(Domain, Domain.id == Box.domain_id)
        .join(Client, Client.id == Box.holder_id)
        .outerjoin(HolderProfile, HolderProfile.client_id == Box.holder_id)
        .outerjoin(Agent, Agent.id == Box.agent_id)
        .outerjoin(Package, Package.id == Box.package_id),
    ).order_by(Box.id.desc())
    types = {t.code: t.name for t in DEFAULT_BOX_TYPES}
    # Labels in the reader's language, translated once per export rather than once per row.
    states = {state.value: str(STATE_LABELS[state]) for state in BoxState}
    renewals = {mode.value: str(mode.label) for mode in RenewalMode}
    days: dict = {}

    def local_day(moment):
        # Many boxes share a day: the zone conversion is made once per distinct instant's date.
        if moment is None:
            return None
        key = (moment.year, moment.month, moment.day, moment.hour, moment.minute)
        if key not in days:
            days[key] = moment.astimezone(zone).date()
        return days[key]

    result = db.session.execute(stmt.execution_options(yield_per=EXPORT_BATCH))
    for row in result:
        agent = row.agent_company or " ".join(x for x in (row.agent_last, row.agent_first) if x)
        # In the order of exports.BOX_COLUMNS, each cell as the export writes it.
        yield [
            row.address,
            row.domain,
            states.get(row.state, row.state),
            types.get(row.box_type, row.box_type),
            row.mailbox_mb,
            row.holder,
            row.codice_fiscale,
            row.partita_iva or "",
            agent,
            row.package or "",
            local_day(row.created_at) or "",
            local_day(row.activated_at) or "",
            row.expires_on or "",
            renewals.get(row.renewal, row.renewal),
        ]


def export_records(tenant, user, search: Search) -> Iterator[dict]:
    """``export_rows`` as mappings by column key."""
    keys = [key for key, _title in BOX_COLUMNS]
    for row in export_rows(tenant, user, search):
        yield dict(zip(keys, row, strict=True))


def state_counts(user) -> dict[str, int]:
    """Boxes the user sees, by state (one query)."""
    counts = {state.value: 0 for state in BoxState}
    stmt = scoped(user, select(Box.state, func.count()).select_from(Box)).group_by(Box.state)
    counts.update(dict(db.session.execute(stmt).all()))
    return counts


# --- actions --------------------------------------------------------------------------------


def renew(tenant, box: Box, years) -> Box:
    """More years: counted from the old expiry; an expired or suspended box is active again."""
    years = validate_years(years)
    if box.expires_on is None:
        raise PecError(_l("Only an activated box can be renewed."), field="years", code="renew.not_active")
    today = tenant_today(tenant)
    box.expires_on = renewed_expiry(box.box_state, box.expires_on, years, today, DEFAULT_POLICY)
    box.state = BoxState.ACTIVE.value
    db.session.flush()
    return box


def act(tenant, box: Box, action: Action) -> Box:
    """Suspend, reactivate or close (chiusura) one box."""
    today = tenant_today(tenant)
    box.state = check_action(action, box.box_state, box.expires_on, today).value
    if action == Action.DELETE:
        box.deleted_on = today
    if box.state != BoxState.ACTIVE.value:
        box.package_id = None
    db.session.flush()
    return box


def bulk_act(tenant, user, box_ids: list[int], action: Action) -> tuple[int, dict[int, PecError]]:
    """Suspend or reactivate a selection: one UPDATE over the boxes the action applies to (and one
    INSERT of their audit events); the others are left as they are, each with its reason."""
    if action not in (Action.SUSPEND, Action.REACTIVATE):
        raise PecError(_l("Choose suspend or reactivate."), field="action", code="bulk.action")
    ids = sorted({int(i) for i in box_ids})
    if not ids:
        raise PecError(_l("Select at least one box."), field="box_ids", code="bulk.empty")
    rows = db.session.execute(
        scoped(user, select(Box.id, Box.state, Box.expires_on, Box.address)).where(Box.id.in_(ids))
    ).all()
    today = tenant_today(tenant)
    ok, refused = partition_for_action(((r.id, BoxState(r.state), r.expires_on) for r in rows), action, today)
    if ok:
        target = BoxState.SUSPENDED if action == Action.SUSPEND else BoxState.ACTIVE
        values = {"state": target.value, "updated_at": utcnow()}
        if target == BoxState.SUSPENDED:
            values["package_id"] = None
        db.session.execute(
            update(Box).where(Box.id.in_(ok)).values(**values), execution_options={"synchronize_session": False}
        )
        labels = {r.id: (r.address, r.state) for r in rows}
        audit_rows(
            [
                audit_row(
                    tenant.id,
                    UPDATE,
                    "pec_box",
                    box_id,
                    labels[box_id][0],
                    {"state": [str(STATE_LABELS[BoxState(labels[box_id][1])]), str(STATE_LABELS[target])]},
                )
                for box_id in ok
            ]
        )
    return len(ok), refused


# --- agents and packages --------------------------------------------------------------------


def assign_agent(box: Box, agent: Agent) -> Box:
    """Associate or replace the agent ("Applica subentro agente"): a package of another agent no
    longer fits the box and is taken off."""
    if agent is None or not agent.active:
        raise PecError(_l("Choose an active agent."), field="agent_id", code="agent.unknown")
    if box.package_id is not None and box.package is not None and box.package.agent_id != agent.id:
        box.package_id = None
    box.agent_id = agent.id
    box.agent_requested = False
    db.session.flush()
    return box


def remove_agent(box: Box) -> Box:
    """ "Elimina associazione agente": no agent, and so no agent's package."""
    box.agent_id = None
    box.package_id = None
    box.agent_requested = False
    db.session.flush()
    return box


def cancel_agent_request(box: Box) -> Box:
    """ "Elimina richiesta assegnazione agente": the registration asked for an agent by mistake."""
    if not box.agent_requested:
        raise PecError(_l("No agent assignment was requested for this box."), code="agent.no_request")
    box.agent_requested = False
    db.session.flush()
    return box


def _lock_package(package_id: int) -> Package | None:
    """The package row, locked until the transaction ends (PostgreSQL: FOR UPDATE; SQLite writes
    one transaction at a time), so that two requests cannot both take its last place."""
    return db.session.scalar(select(Package).where(Package.id == package_id).with_for_update())


def set_package(box: Box, package_id: int) -> Box:
    """ "Applica modifica pacchetto": only an ATTIVA box, only a package of its agent, never more
    boxes than the package's size."""
    package = _lock_package(package_id)
    if package is None or package.agent_id is None:
        raise PecError(_l("Choose a package."), field="package_id", code="package.unknown")
    if box.agent_id is None or package.agent_id != box.agent_id:
        raise PecError(
            _l("Only a package of the box's agent can be chosen: associate the agent first."),
            field="package_id",
            code="package.other_agent",
        )
    if package.state != PACKAGE_ACTIVE:
        raise PecError(_l("This package is suspended."), field="package_id", code="package.suspended")
    if box.package_id == package.id:
        return box
    used = db.session.scalar(select(func.count()).select_from(Box).where(Box.package_id == package.id))
    check_joins_package(box.box_state, package.size, used)
    box.package_id = package.id
    db.session.flush()
    return box


def remove_package(box: Box) -> Box:
    box.package_id = None
    db.session.flush()
    return box


# --- documents ------------------------------------------------------------------------------


def add_document(tenant, box: Box, kind: str, upload, filename: str | None, notes: str, user) -> BoxDocument:
    """Upload a signed PDF of ``kind`` for the box (checked by content: PDF only)."""
    if kind not in DOCUMENT_KINDS:
        raise PecError(_l("Choose the kind of document."), field="kind", code="document.kind")
    if upload is None:
        raise PecError(_l("Choose the PDF file."), field="file", code="document.file")
    stored = accept_upload(upload, filename, DOCUMENT_KIND.name, tenant_id=tenant.id, user_id=getattr(user, "id", None))
    document = BoxDocument(
        box_id=box.id,
        kind=kind,
        file_id=stored.id,
        filename=(filename or stored.original_name or "document.pdf")[:255],
        notes=" ".join((notes or "").split())[:400],
        uploaded_by_id=getattr(user, "id", None),
    )
    db.session.add(document)
    db.session.flush()
    return document


def documents_of(box_id: int) -> list[BoxDocument]:
    return list(
        db.session.scalars(select(BoxDocument).where(BoxDocument.box_id == box_id).order_by(BoxDocument.id.desc()))
    )


# --- subentro -------------------------------------------------------------------------------


def subentro(box: Box, codice_fiscale: str, user) -> Box:
    """Give the box to another holder record with the same codice fiscale or partita IVA (a new
    legal representative, a company that was a sole trader): a different subject needs a new box."""
    new = holders.find_by_tax_id(codice_fiscale)
    if new is None or (holders.get_visible(user, new.id) is None and not holders.sees_all(user)):
        raise PecError(
            _l("No holder has this codice fiscale or partita IVA."), field="codice_fiscale", code="subentro.unknown"
        )
    if new.id == box.holder_id:
        raise PecError(_l("This is already the box's holder."), field="codice_fiscale", code="subentro.same")
    check_holder_change(holders.tax_ids(box.holder), holders.tax_ids(new))
    box.holder_id = new.id
    addresses = holders.addresses_of(new.id)
    box.holder_address_id = addresses[0].id if addresses else None
    box.activity_id = None
    db.session.flush()
    return box


def holder_boxes(user, client_id: int) -> list[Box]:
    return list(db.session.scalars(scoped(user).where(Box.holder_id == client_id).order_by(Box.id.desc())))


def package_usage(package_ids: list[int]) -> dict[int, int]:
    if not package_ids:
        return {}
    rows = db.session.execute(
        select(Box.package_id, func.count()).where(Box.package_id.in_(package_ids)).group_by(Box.package_id)
    ).all()
    return dict(rows)
