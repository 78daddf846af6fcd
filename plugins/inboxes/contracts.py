"""Contracts: a contract of the tenant with a client, its outbound mailbox, its inbound mailboxes, its flow.

A user sees (and manages) the contracts of the clients they see (``visible_client_ids``): every
client with ``core.clients:view_all``, else those of their groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from core.api import DomainError, clients_matching, db, get_visible_client, visible_client_ids
from plugins.inboxes.models import INBOUND, OUTBOUND, Contract, ContractInbox, Flow, Mailbox


@dataclass
class ContractData:
    client_id: int | None
    name: str
    reference: str = ""
    outbound_mailbox_id: int | None = None
    inbound_mailbox_ids: list[int] = field(default_factory=list)
    flow_id: int | None = None
    active: bool = True


def visible(user) -> Select:
    """The contracts of the clients ``user`` sees."""
    return select(Contract).where(Contract.client_id.in_(visible_client_ids(user)))


def get_visible(user, contract_id: int) -> Contract | None:
    return db.session.scalar(visible(user).where(Contract.id == contract_id))


def list_statement(user, q: str = "", client_id: int | None = None) -> Select:
    from core.api import Client

    stmt = visible(user).options(selectinload(Contract.client), selectinload(Contract.outbound_mailbox))
    if client_id:
        stmt = stmt.where(Contract.client_id == client_id)
    q = (q or "").strip()
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(
            func.lower(Contract.name).like(pattern)
            | func.lower(Contract.reference).like(pattern)
            | Contract.client_id.in_(select(Client.id).where(clients_matching(q)))
        )
    return stmt


def inbound_choices(contract: Contract | None) -> list[Mailbox]:
    """Inbound mailboxes not linked to another contract (each feeds one contract)."""
    taken = select(ContractInbox.mailbox_id)
    if contract is not None and contract.id is not None:
        taken = taken.where(ContractInbox.contract_id != contract.id)
    return db.session.scalars(
        select(Mailbox).where(Mailbox.direction == INBOUND, Mailbox.id.not_in(taken)).order_by(Mailbox.name)
    ).all()


def outbound_choices() -> list[Mailbox]:
    return db.session.scalars(select(Mailbox).where(Mailbox.direction == OUTBOUND).order_by(Mailbox.name)).all()


def save_contract(user, contract: Contract | None, data: ContractData) -> Contract:
    """Create or change a contract of a client the user sees; links its mailboxes. Commits."""
    name = " ".join((data.name or "").split())
    if not name:
        raise DomainError(_l("Give the contract a name."), field="name")
    if len(name) > 200:
        raise DomainError(_l("At most 200 characters."), field="name")
    client = get_visible_client(user, data.client_id) if data.client_id else None
    if client is None:
        raise DomainError(_l("Choose the client of the contract."), field="client_id")
    taken = select(Contract.id).where(func.lower(Contract.name) == name.lower())
    if contract is not None:
        taken = taken.where(Contract.id != contract.id)
    if db.session.scalar(taken) is not None:
        raise DomainError(_l("Another contract already has this name."), field="name")
    outbound = None
    if data.outbound_mailbox_id:
        outbound = db.session.get(Mailbox, data.outbound_mailbox_id)
        if outbound is None or outbound.direction != OUTBOUND:
            raise DomainError(_l("Choose an outbound mailbox."), field="outbound_mailbox_id")
    flow = None
    if data.flow_id:
        flow = db.session.get(Flow, data.flow_id)
        if flow is None:
            raise DomainError(_l("Choose a flow from the list."), field="flow_id")
    allowed = {m.id for m in inbound_choices(contract)}
    wanted = sorted(set(data.inbound_mailbox_ids or ()))
    if any(mailbox_id not in allowed for mailbox_id in wanted):
        raise DomainError(
            _l("An inbound mailbox feeds one contract only: choose those not linked to another one."),
            field="inbound_mailbox_ids",
        )
    if contract is None:
        contract = Contract()
        db.session.add(contract)
    contract.client_id = client.id
    contract.name = name
    contract.reference = (data.reference or "").strip()[:60]
    contract.outbound_mailbox_id = outbound.id if outbound else None
    contract.flow_id = flow.id if flow else None
    contract.active = bool(data.active)
    current = {link.mailbox_id: link for link in contract.inbox_links}
    for mailbox_id, link in current.items():
        if mailbox_id not in wanted:
            contract.inbox_links.remove(link)
    db.session.flush()
    for mailbox_id in wanted:
        if mailbox_id not in current:
            contract.inbox_links.append(ContractInbox(mailbox_id=mailbox_id))
    db.session.commit()
    return contract


def of_client(user, client_id: int) -> list[Contract]:
    return db.session.scalars(
        visible(user)
        .where(Contract.client_id == client_id)
        .options(selectinload(Contract.outbound_mailbox))
        .order_by(Contract.name)
    ).all()
