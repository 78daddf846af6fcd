"""Agenti commerciali: search, insert, activate/deactivate, their domains, their packages."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select

from core.api import db
from plugins.pec.catalogue import validate_years
from plugins.pec.comuni import fold
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.identity import normalise_company_name, normalise_person_name, validate_partita_iva
from plugins.pec.imports import normalise_email
from plugins.pec.models import PACKAGE_ACTIVE, PACKAGE_SUSPENDED, Agent, AgentDomain, Box, Domain, Package
from plugins.pec.packages import validate_package
from plugins.pec.phones import PHONE, parse_phone


def search_statement(q: str = "", active: str = "") -> Select:
    """Agents whose ragione sociale, nome, cognome or e-mail contains ``q``."""
    stmt = select(Agent)
    text = (q or "").strip().lower()
    if text:
        like = f"%{text}%"
        stmt = stmt.where(
            or_(
                func.lower(Agent.company_name).like(like),
                func.lower(Agent.first_name).like(like),
                func.lower(Agent.last_name).like(like),
                func.lower(Agent.email).like(like),
            )
        )
    if active == "yes":
        stmt = stmt.where(Agent.active.is_(True))
    elif active == "no":
        stmt = stmt.where(Agent.active.is_(False))
    return stmt


def active_agents() -> list[Agent]:
    return list(
        db.session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.company_name, Agent.last_name))
    )


@dataclass
class AgentData:
    company_name: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    partita_iva: str = ""


def _check(data: AgentData, except_id: int | None = None) -> dict:
    errors: list[PecError] = []

    def attempt(check, *args):
        try:
            return check(*args)
        except PecError as error:
            errors.append(error)
        return None

    company = attempt(normalise_company_name, data.company_name) if (data.company_name or "").strip() else ""
    first = attempt(normalise_person_name, data.first_name, "first_name") if (data.first_name or "").strip() else ""
    last = attempt(normalise_person_name, data.last_name, "last_name") if (data.last_name or "").strip() else ""
    if not (data.company_name or "").strip() and not (
        (data.first_name or "").strip() and (data.last_name or "").strip()
    ):
        errors.append(
            PecError(_l("Enter the ragione sociale, or name and surname."), field="company_name", code="agent.name")
        )
    email = attempt(normalise_email, data.email)
    phone = attempt(parse_phone, data.phone, PHONE) if (data.phone or "").strip() else None
    piva = attempt(validate_partita_iva, data.partita_iva) if (data.partita_iva or "").strip() else ""
    if email:
        stmt = select(Agent.id).where(func.lower(Agent.email) == email.lower())
        if except_id is not None:
            stmt = stmt.where(Agent.id != except_id)
        if db.session.scalar(stmt) is not None:
            errors.append(PecError(_l("Another agent has this e-mail."), field="email", code="agent.email"))
    if errors:
        raise PecErrors(errors)
    return {
        "company_name": company or "",
        "first_name": first or "",
        "last_name": last or "",
        "email": email,
        "phone": phone.e164 if phone else "",
        "partita_iva": piva or "",
    }


def create_agent(data: AgentData, domain_ids=()) -> Agent:
    agent = Agent(**_check(data), active=True)
    db.session.add(agent)
    db.session.flush()
    for domain_id in domain_ids:
        add_domain(agent, domain_id)
    return agent


def update_agent(agent: Agent, data: AgentData) -> Agent:
    for key, value in _check(data, except_id=agent.id).items():
        setattr(agent, key, value)
    db.session.flush()
    return agent


def set_active(agent: Agent, active: bool) -> Agent:
    agent.active = active
    db.session.flush()
    return agent


def _domain(value) -> Domain | None:
    """A domain of the reseller, by id or by name (the seed types the name)."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return db.session.get(Domain, int(value))
    name = fold(value or "").replace(" ", ".")
    return db.session.scalar(select(Domain).where(Domain.name == (value or "").strip().lower())) or (
        db.session.scalar(select(Domain).where(Domain.name == name)) if name else None
    )


def add_domain(agent: Agent, value) -> Domain:
    """Associate one of the reseller's domains with the agent."""
    domain = _domain(value)
    if domain is None:
        raise PecError(_l("Choose one of your domains."), field="domain", code="agent.domain")
    exists = db.session.scalar(
        select(AgentDomain).where(AgentDomain.agent_id == agent.id, AgentDomain.domain_id == domain.id)
    )
    if exists is None:
        db.session.add(AgentDomain(agent_id=agent.id, domain_id=domain.id))
        db.session.flush()
        db.session.expire(agent, ["domains"])
    return domain


def remove_domain(agent: Agent, domain_id: int) -> None:
    """ "Rimuovi dominio" (after a confirmation)."""
    row = db.session.scalar(
        select(AgentDomain).where(AgentDomain.agent_id == agent.id, AgentDomain.domain_id == domain_id)
    )
    if row is None:
        raise PecError(_l("This domain is not associated with the agent."), field="domain", code="agent.domain")
    db.session.delete(row)
    db.session.flush()
    db.session.expire(agent, ["domains"])


# --- packages -------------------------------------------------------------------------------


def add_package(agent: Agent, name: str, size, years) -> Package:
    """ "Gestione pacchetti agente commerciale": name, number of boxes, duration in years."""
    name, size, years = validate_package(name, size, validate_years(years))
    if db.session.scalar(select(Package.id).where(Package.agent_id == agent.id, Package.name == name)):
        raise PecError(_l("The agent already has a package called %(name)s.", name=name), field="name")
    package = Package(agent_id=agent.id, name=name, size=size, years=years, state=PACKAGE_ACTIVE)
    db.session.add(package)
    db.session.flush()
    return package


def packages_of(agent_id: int) -> list[Package]:
    return list(db.session.scalars(select(Package).where(Package.agent_id == agent_id).order_by(Package.id)))


def set_package_state(package: Package, active: bool) -> Package:
    package.state = PACKAGE_ACTIVE if active else PACKAGE_SUSPENDED
    db.session.flush()
    return package


def used(package_id: int) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Box).where(Box.package_id == package_id)) or 0)
