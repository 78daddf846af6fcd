"""Info Servizio: the reseller's summary — services, boxes by state, expiries due, packages used —
and the small reads the dashboard, the client list and the search box make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from core.api import Client, db, tenant_today
from plugins.pec import accounts, assistants, boxes
from plugins.pec.lifecycle import BoxState
from plugins.pec.models import PACKAGE_ACTIVE, Agent, Box, Domain, Package

LIVE = tuple(s.value for s in BoxState if s not in (BoxState.DELETED, BoxState.REFUSED))
EXPIRY_HORIZON = 90


def widget_counts(tenant, user) -> dict[str, int]:
    counts = boxes.state_counts(user)
    today = tenant_today(tenant)
    expiring = db.session.scalar(
        boxes.scoped(user, select(func.count()).select_from(Box)).where(
            Box.state == BoxState.ACTIVE.value, Box.expires_on >= today, Box.expires_on <= today + timedelta(days=30)
        )
    )
    return {"pending": counts[BoxState.PENDING.value], "expiring": int(expiring or 0)}


def live_boxes_of_client():
    """The client list's column: a client's live PEC boxes (a correlated count in the list's query)."""
    return (
        select(func.count())
        .select_from(Box)
        .where(Box.holder_id == Client.id, Box.state.in_(LIVE))
        .correlate(Client)
        .scalar_subquery()
    )


def search_boxes(user, query: str, limit: int = 10) -> list[Box]:
    text = (query or "").strip().lower()
    if len(text) < 2:
        return []
    stmt = boxes.scoped(user).where(Box.address.contains(text, autoescape=True)).order_by(Box.address).limit(limit)
    return list(db.session.scalars(stmt))


@dataclass
class PackageUse:
    name: str
    owner: str
    size: int
    used: int
    years: int
    state: str

    @property
    def percent(self) -> int:
        return min(100, int(100 * self.used / self.size)) if self.size else 0


@dataclass
class Summary:
    code: str | None
    counts: dict[str, int]
    total: int
    domains: int
    agents: int
    expiring: list[Box]
    postmaster: int | None
    assigned: int
    agent_packages: list[PackageUse]
    assistant: object | None
    assistant_allowance: int | None
    assistant_used: int


def summary(tenant, user) -> Summary:
    """Everything Info Servizio shows, in a fixed number of queries."""
    counts = boxes.state_counts(user)
    today = tenant_today(tenant)
    expiring = list(
        db.session.scalars(
            boxes.scoped(user)
            .where(
                Box.state.in_((BoxState.ACTIVE.value, BoxState.EXPIRED.value)),
                Box.expires_on <= today + timedelta(days=EXPIRY_HORIZON),
            )
            .order_by(Box.expires_on, Box.id)
            .limit(20)
        )
    )
    packages = list(
        db.session.scalars(
            select(Package).where(Package.agent_id.is_not(None), Package.state == PACKAGE_ACTIVE).order_by(Package.id)
        )
    )
    used = boxes.package_usage([p.id for p in packages])
    agents = {a.id: a for a in db.session.scalars(select(Agent).where(Agent.id.in_([p.agent_id for p in packages])))}
    uses = [PackageUse(p.name, agents[p.agent_id].name, p.size, used.get(p.id, 0), p.years, p.state) for p in packages]
    account = accounts.account_of(user)
    assistant = assistants.assistant_of(user)
    return Summary(
        code=account.code if account else None,
        counts=counts,
        total=sum(counts.values()),
        domains=int(db.session.scalar(select(func.count()).select_from(Domain).where(Domain.active.is_(True))) or 0),
        agents=int(db.session.scalar(select(func.count()).select_from(Agent).where(Agent.active.is_(True))) or 0),
        expiring=expiring,
        postmaster=assistants.postmaster_size(tenant),
        assigned=assistants.assigned_to_assistants(),
        agent_packages=uses,
        assistant=assistant,
        assistant_allowance=assistants.allowance(assistant) if assistant else None,
        assistant_used=assistants.boxes_entered(assistant) if assistant else 0,
    )
