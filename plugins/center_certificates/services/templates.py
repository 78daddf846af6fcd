"""Certificate templates: what a centre asks for, checked and saved; a clone as a prefilled form."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.api import (
    DomainError,
    db,
)
from plugins.center_certificates.models import (
    DEFAULT_LEAD_DAYS,
    CertificateTemplate,
)


@dataclass
class TemplateData:
    name: str
    description: str = ""
    lead_days: int = DEFAULT_LEAD_DAYS
    auto_for_new_clients: bool = False
    renew_on_expiry: bool = False
    active: bool = True


def _check_template_name(name: str, except_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError(_l("The name is required."), field="name")
    stmt = select(CertificateTemplate.id).where(func.lower(CertificateTemplate.name) == name.lower())
    if except_id is not None:
        stmt = stmt.where(CertificateTemplate.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise DomainError(_l("There is already a template called %(name)s.", name=name), field="name")
    return name


def save_template(template: CertificateTemplate | None, data: TemplateData, actor=None) -> CertificateTemplate:
    name = _check_template_name(data.name, template.id if template else None)
    if not 0 <= int(data.lead_days) <= 365:
        raise DomainError(_l("The notice period must be between 0 and 365 days."), field="lead_days")
    if template is None:
        template = CertificateTemplate(created_by_id=getattr(actor, "id", None))
        db.session.add(template)
    template.name = name
    template.description = (data.description or "").strip()
    template.lead_days = int(data.lead_days)
    template.auto_for_new_clients = bool(data.auto_for_new_clients)
    template.renew_on_expiry = bool(data.renew_on_expiry)
    template.active = bool(data.active)
    db.session.commit()
    return template


def clone_data(template: CertificateTemplate) -> TemplateData:
    """What the new-template form starts from when a template is cloned: everything of it, the
    automatic options too, under a name not yet taken ("… (copy)", translated)."""
    base = str(_l("%(name)s (copy)", name=template.name))
    name, number = base, 2
    while db.session.scalar(select(CertificateTemplate.id).where(func.lower(CertificateTemplate.name) == name.lower())):
        name, number = f"{base} {number}", number + 1
    return TemplateData(
        name,
        template.description,
        template.lead_days,
        template.auto_for_new_clients,
        template.renew_on_expiry,
        template.active,
    )
