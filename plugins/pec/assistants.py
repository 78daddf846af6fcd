"""Assistants (assistenti): the reseller's collaborators, who see only the boxes they entered.

An assistant is a core user with the tenant's Asistente role (which lacks
``pec.boxes:view_all``), a panel code of their own, and this record: data, address, company, the
domain they register boxes on, the PEC addresses they are written to, and how they register —
"a consumo" (no numeric limit) or "a pacchetto" (within their active packages, whose sizes
together never exceed the reseller's "pacchetto postmaster", a number limit of the licence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.api import Tenant, User, db, limit, utcnow
from plugins.pec import accounts, people
from plugins.pec.addresses import normalise_street
from plugins.pec.catalogue import validate_years
from plugins.pec.comuni import comuni
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.identity import (
    normalise_company_name,
    normalise_person_name,
    validate_codice_fiscale,
    validate_partita_iva,
)
from plugins.pec.imports import normalise_email
from plugins.pec.lifecycle import BoxState
from plugins.pec.models import (
    CONSUMO,
    PACCHETTO,
    PACKAGE_ACTIVE,
    PACKAGE_SUSPENDED,
    Assistant,
    Box,
    Domain,
    Package,
)
from plugins.pec.packages import check_assistant_quantity, validate_package
from plugins.pec.phones import PHONE, parse_phone

PLUGIN = "pec"
POSTMASTER_LIMIT = "postmaster_boxes"
ASSISTANT_ROLE = "assistant"
LIVE_STATES = tuple(s.value for s in BoxState if s not in (BoxState.DELETED, BoxState.REFUSED))


def assistant_of(user) -> Assistant | None:
    """The assistant record of a user, if they are one."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(select(Assistant).where(Assistant.user_id == user.id))


def postmaster_size(tenant: Tenant) -> int | None:
    """The reseller's pacchetto postmaster (None: the licence sets no limit)."""
    return limit(tenant, PLUGIN, POSTMASTER_LIMIT)


def assigned_to_assistants(except_package_id: int | None = None) -> int:
    """Boxes given to assistants in active packages."""
    stmt = select(func.coalesce(func.sum(Package.size), 0)).where(
        Package.assistant_id.is_not(None), Package.state == PACKAGE_ACTIVE
    )
    if except_package_id is not None:
        stmt = stmt.where(Package.id != except_package_id)
    return int(db.session.scalar(stmt) or 0)


def allowance(assistant: Assistant) -> int:
    """How many live boxes an assistant "a pacchetto" may have: their active packages' sizes."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Package.size), 0)).where(
                Package.assistant_id == assistant.id, Package.state == PACKAGE_ACTIVE
            )
        )
        or 0
    )


def boxes_entered(assistant: Assistant) -> int:
    if assistant.user_id is None:
        return 0
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Box)
            .where(Box.created_by_id == assistant.user_id, Box.state.in_(LIVE_STATES))
        )
        or 0
    )


def check_may_register(tenant, user) -> None:
    """An assistant registers boxes only while active, and "a pacchetto" only within their packages."""
    assistant = assistant_of(user)
    if assistant is None:
        return
    if not assistant.active:
        raise PecError(
            _l("Your assistant account is deactivated: ask the reseller."), field=None, code="assistant.inactive"
        )
    if assistant.package_mode == PACCHETTO:
        available = allowance(assistant)
        used = boxes_entered(assistant)
        if used >= available:
            raise PecError(
                _l(
                    "Your packages allow %(size)s boxes and you have entered %(used)s: ask the reseller for a new"
                    " package.",
                    size=available,
                    used=used,
                ),
                field=None,
                code="assistant.package_full",
            )


# --- creating and changing an assistant ----------------------------------------------------


@dataclass
class AssistantData:
    first_name: str = ""
    last_name: str = ""
    codice_fiscale: str = ""
    email: str = ""
    phone: str = ""
    company_name: str = ""
    partita_iva: str = ""
    street: str = ""
    cap: str = ""
    comune: str = ""
    provincia: str = ""
    domain_id: int | None = None
    pec_addresses: list[str] = field(default_factory=list)
    package_mode: str = CONSUMO


def _check(data: AssistantData) -> dict:
    errors: list[PecError] = []

    def attempt(check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except PecErrors as problems:
            errors.extend(problems.errors)
        except PecError as error:
            errors.append(error)
        return None

    values = {
        "first_name": attempt(normalise_person_name, data.first_name, "first_name"),
        "last_name": attempt(normalise_person_name, data.last_name, "last_name"),
        "email": attempt(normalise_email, data.email),
        "codice_fiscale": attempt(validate_codice_fiscale, data.codice_fiscale)
        if (data.codice_fiscale or "").strip()
        else "",
        "phone": (attempt(parse_phone, data.phone, PHONE) or None) if (data.phone or "").strip() else None,
        "company_name": attempt(normalise_company_name, data.company_name) if (data.company_name or "").strip() else "",
        "partita_iva": attempt(validate_partita_iva, data.partita_iva) if (data.partita_iva or "").strip() else "",
        "street": attempt(normalise_street, data.street) if (data.street or "").strip() else "",
        "cap": "",
        "comune": "",
        "provincia": "",
    }
    values["phone"] = values["phone"].e164 if values["phone"] else ""
    if (data.comune or "").strip():
        place = attempt(comuni().get, data.comune, data.provincia or None)
        if place is not None:
            values["comune"], values["provincia"] = place.name, place.sigla
            values["cap"] = attempt(comuni().check_cap, place, data.cap or (place.cap or "")) or ""
    if data.domain_id is None or db.session.get(Domain, data.domain_id) is None:
        errors.append(PecError(_l("Choose the domain the assistant registers boxes on."), field="domain_id"))
    values["domain_id"] = data.domain_id
    addresses = []
    for line in data.pec_addresses:
        if line.strip():
            checked = attempt(normalise_email, line, "pec_addresses")
            if checked and checked not in addresses:
                addresses.append(checked)
    values["pec_addresses"] = addresses
    if data.package_mode not in (CONSUMO, PACCHETTO):
        errors.append(PecError(_l("Choose on demand or by package."), field="package_mode"))
    values["package_mode"] = data.package_mode
    if errors:
        raise PecErrors(errors)
    return values


def create_assistant(tenant, data: AssistantData, password: str | None = None) -> tuple[Assistant, str]:
    """The assistant, their account (the tenant's Asistente role) and panel code; the first
    password (made up unless given) is e-mailed with the code and returned (empty when the e-mail
    already had an account, which keeps its own password)."""
    values = _check(data)
    user, password = people.create_panel_user(
        values["email"], f"{values['first_name']} {values['last_name']}", ASSISTANT_ROLE, password
    )
    if db.session.scalar(select(Assistant.id).where(Assistant.user_id == user.id)) is not None:
        raise PecError(_l("This person is already an assistant."), field="email", code="assistant.exists")
    assistant = Assistant(user_id=user.id, **values)
    db.session.add(assistant)
    db.session.flush()
    account = accounts.assistant_account(user.id)
    accounts.send_credentials(tenant, account, password)
    return assistant, password


def update_assistant(assistant: Assistant, data: AssistantData) -> Assistant:
    values = _check(data)
    values.pop("email")  # the account's e-mail is the user's: changed in the users' page
    for key, value in values.items():
        setattr(assistant, key, value)
    db.session.flush()
    return assistant


def set_pec_addresses(assistant: Assistant, lines: list[str]) -> Assistant:
    """ "Modificare gli account pec per comunicazione"."""
    addresses = []
    for line in lines:
        if line.strip():
            checked = normalise_email(line, "pec_addresses")
            if checked not in addresses:
                addresses.append(checked)
    assistant.pec_addresses = addresses
    db.session.flush()
    return assistant


def set_active(assistant: Assistant, active: bool) -> Assistant:
    """Activate or deactivate: a deactivated assistant keeps their data and boxes, and can neither
    sign in nor register."""
    assistant.active = active
    if assistant.user is not None:
        people.set_user_active(assistant.user, active)
    db.session.flush()
    return assistant


# --- packages -------------------------------------------------------------------------------


def enable_packages(assistant: Assistant) -> Assistant:
    """ "Abilita gestione pacchetto": from boxes on demand to boxes by package."""
    assistant.package_mode = PACCHETTO
    db.session.flush()
    return assistant


def disable_packages(assistant: Assistant) -> Assistant:
    assistant.package_mode = CONSUMO
    db.session.flush()
    return assistant


def _lock_assistants_packages() -> None:
    """Serialise package assignments of a reseller (PostgreSQL: a row lock on every assistant
    package; SQLite writes one transaction at a time)."""
    db.session.execute(select(Package.id).where(Package.assistant_id.is_not(None)).with_for_update())


def add_package(tenant, assistant: Assistant, name: str, size, years) -> Package:
    """A new package for the assistant, never beyond the pacchetto postmaster."""
    name, size, years = validate_package(name, size, validate_years(years))
    _lock_assistants_packages()
    postmaster = postmaster_size(tenant)
    if postmaster is not None:
        check_assistant_quantity(size, postmaster, assigned_to_assistants())
    package = Package(assistant_id=assistant.id, name=name, size=size, years=years, state=PACKAGE_ACTIVE)
    db.session.add(package)
    db.session.flush()
    return package


def suspend_package(package: Package) -> Package:
    """ "Sospendi gestione pacchetto": the package stops counting, for the assistant and the postmaster."""
    package.state = PACKAGE_SUSPENDED
    package.suspended_at = utcnow()
    db.session.flush()
    return package


def resume_package(tenant, package: Package) -> Package:
    _lock_assistants_packages()
    postmaster = postmaster_size(tenant)
    if postmaster is not None and package.assistant_id is not None:
        check_assistant_quantity(package.size, postmaster, assigned_to_assistants(except_package_id=package.id))
    package.state = PACKAGE_ACTIVE
    package.suspended_at = None
    db.session.flush()
    return package


def packages_of(assistant: Assistant) -> list[Package]:
    return list(
        db.session.scalars(select(Package).where(Package.assistant_id == assistant.id).order_by(Package.id.desc()))
    )


def staff_users() -> list[User]:
    """Active staff accounts (not portal accounts), by name."""
    return list(
        db.session.scalars(select(User).where(User.active.is_(True), User.client_id.is_(None)).order_by(User.name))
    )
