"""Certified domains: the reseller reads them; the gestore (the operator) adds and changes them,
and chooses how each domain's boxes are activated (by hand in the console, or over the gestore's
HTTP API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.api import all_tenants, db
from plugins.pec.catalogue import DEFAULT_BOX_TYPES, find_box_type
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.lifecycle import BoxState
from plugins.pec.mailboxes import normalise_domain
from plugins.pec.models import MANUAL_PROVIDER, Box, Domain


@dataclass
class DomainData:
    name: str = ""
    certified_on: date | None = None
    expires_on: date | None = None
    mx_host: str = ""
    provider: str = MANUAL_PROVIDER
    default_box_type: str = "standard"
    active: bool = True
    notes: str = ""


def _check(data: DomainData, provider_codes, except_id: int | None = None) -> dict:
    errors: list[PecError] = []
    name = None
    try:
        name = normalise_domain(data.name, "name")
    except PecError as error:
        errors.append(error)
    mx = ""
    if (data.mx_host or "").strip():
        try:
            mx = normalise_domain(data.mx_host, "mx_host")
        except PecError as error:
            errors.append(error)
    if data.provider not in provider_codes:
        errors.append(PecError(_l("Choose how boxes are activated."), field="provider", code="domain.provider"))
    try:
        box_type = find_box_type(data.default_box_type or "standard", DEFAULT_BOX_TYPES, "default_box_type").code
    except PecError as error:
        errors.append(error)
        box_type = "standard"
    if data.certified_on and data.expires_on and data.expires_on < data.certified_on:
        errors.append(PecError(_l("The registration expires after the certification."), field="expires_on"))
    if name is not None:
        # A domain name belongs to one reseller on the whole platform: look at every tenant.
        with all_tenants():
            stmt = select(Domain.id, Domain.tenant_id).where(Domain.name == name)
            taken = [row for row in db.session.execute(stmt).all() if row.id != except_id]
        if taken:
            errors.append(
                PecError(
                    _l("%(name)s is already a domain of a reseller.", name=name), field="name", code="domain.taken"
                )
            )
    if errors:
        raise PecErrors(errors)
    return {
        "name": name,
        "certified_on": data.certified_on,
        "expires_on": data.expires_on,
        "mx_host": mx,
        "provider": data.provider,
        "default_box_type": box_type,
        "active": bool(data.active),
        "notes": (data.notes or "").strip()[:2000],
    }


def save_domain(domain: Domain | None, data: DomainData, provider_codes) -> Domain:
    """Add (``domain`` None) or change a domain of the current tenant. Renaming a domain that has
    boxes is refused: their addresses are on it."""
    values = _check(data, provider_codes, domain.id if domain else None)
    if domain is not None and values["name"] != domain.name and box_count(domain.id):
        raise PecError(_l("The domain has boxes: it cannot be renamed."), field="name", code="domain.rename")
    if domain is None:
        domain = Domain()
        db.session.add(domain)
    for key, value in values.items():
        setattr(domain, key, value)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as error:
        raise PecError(
            _l("%(name)s is already a domain of a reseller.", name=values["name"]), field="name", code="domain.taken"
        ) from error
    return domain


def box_count(domain_id: int) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Box).where(Box.domain_id == domain_id)) or 0)


def domains_with_counts() -> list[tuple[Domain, dict[str, int]]]:
    """The reseller's domains, each with its boxes by state (two queries)."""
    domains = list(db.session.scalars(select(Domain).order_by(Domain.name)))
    counts: dict[int, dict[str, int]] = {d.id: {s.value: 0 for s in BoxState} for d in domains}
    for domain_id, state, number in db.session.execute(
        select(Box.domain_id, Box.state, func.count()).group_by(Box.domain_id, Box.state)
    ).all():
        if domain_id in counts:
            counts[domain_id][state] = number
    return [(d, counts[d.id]) for d in domains]
