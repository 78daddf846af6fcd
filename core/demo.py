"""Demonstration data for ``make run``: idempotent, so running it again changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from core.auth.models import Operator, User
from core.auth.services import hash_password
from core.extensions import db
from core.groups.models import Group
from core.plugins import host
from core.provisioning import create_tenant
from core.roles.models import ROLE_ADMIN, ROLE_MANAGER, ROLE_OPERATOR, Role
from tenants import licensing
from tenants.context import tenant_context
from tenants.models import Tenant

OPERATOR = ("operator@ventanilla.test", "demo-operator")
TENANTS = [
    {
        "slug": "demo",
        "name": "Asesoría Demo",
        "language": "es",
        "timezone": "Europe/Madrid",
        "users": [
            ("admin@demo.test", "Ana Administradora", "demo-admin", ROLE_ADMIN, []),
            ("gestor@demo.test", "Gerardo Gestor", "demo-staff", ROLE_MANAGER, ["Centro Valencia", "Centro Madrid"]),
            ("operador@demo.test", "Olga Operadora", "demo-staff", ROLE_OPERATOR, ["Centro Valencia"]),
        ],
        "groups": [("Centro Valencia", "Oficina de Valencia"), ("Centro Madrid", "Oficina de Madrid")],
        "clients": [
            ("ES", "48123456G", "person", "Marta", "Soler Ibáñez", "", "marta.soler@cliente.test", "Centro Valencia"),
            ("ES", "52987654R", "person", "Javier", "Ortega Ruiz", "", "javier.ortega@cliente.test", "Centro Madrid"),
            ("ES", "Y2345678Z", "person", "Andrei", "Ionescu", "", "andrei@cliente.test", "Centro Valencia"),
            ("ES", "B4612345A", "company", "", "", "Talleres del Turia SL", "taller@cliente.test", "Centro Valencia"),
            ("ES", "B2876543F", "company", "", "", "Reformas Castellana SL", "obras@cliente.test", "Centro Madrid"),
        ],
    },
    {
        "slug": "demo-it",
        "name": "Studio Demo",
        "language": "it",
        "timezone": "Europe/Rome",
        "users": [
            ("admin@demo-it.test", "Alessia Amministratrice", "demo-admin", ROLE_ADMIN, []),
            ("gestore@demo-it.test", "Giorgio Gestore", "demo-staff", ROLE_MANAGER, ["Sede Milano"]),
        ],
        "groups": [("Sede Milano", "Ufficio di Milano")],
        "clients": [
            ("IT", "BNCLRA80A41F205G", "person", "Laura", "Bianchi", "", "laura.bianchi@cliente.test", "Sede Milano"),
            ("IT", "04567890126", "company", "", "", "Ferramenta Lombarda Srl", "info@ferramenta.test", "Sede Milano"),
        ],
    },
]


def _operator() -> list[str]:
    email, password = OPERATOR
    if db.session.scalar(select(Operator).where(Operator.email == email)) is None:
        db.session.add(Operator(email=email, name="Operator", password_hash=hash_password(password)))
        db.session.commit()
        return [f"operator {email} created"]
    return []


def _tenant(spec: dict) -> list[str]:
    out = []
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == spec["slug"]))
    if tenant is None:
        tenant = create_tenant(spec["slug"], spec["name"], spec["language"], spec["timezone"])
        out.append(f"tenant {tenant.slug} created")
    for plugin in host().installed:
        row = licensing.licences(tenant).get(plugin)
        if row is None or not row.licensed:
            licensing.set_licence(tenant, plugin, True)
            out.append(f"  {plugin} licensed to {tenant.slug}")
    with tenant_context(tenant):
        groups = {}
        for name, description in spec["groups"]:
            group = db.session.scalar(select(Group).where(Group.name == name))
            if group is None:
                group = Group(name=name, description=description)
                db.session.add(group)
            groups[name] = group
        for email, name, password, role_key, group_names in spec["users"]:
            if db.session.scalar(select(User).where(User.email == email)) is not None:
                continue
            role = db.session.scalar(select(Role).where(Role.key == role_key))
            user = User(
                email=email,
                name=name,
                password_hash=hash_password(password),
                roles=[role],
                groups=[groups[g] for g in group_names],
            )
            db.session.add(user)
            out.append(f"  user {email} created")
        db.session.commit()
        out += _clients(spec.get("clients", []), groups)
        lines = host().call_for_tenant("demo_data", licensing.enabled_plugins(tenant), tenant=tenant)
        out += [f"  {line}" for line in lines]
    return out


def _clients(rows: list[tuple], groups: dict) -> list[str]:
    from core.clients.models import Client
    from core.clients.services import ClientData, check

    out = []
    for country, tax_id, kind, first, last, company, email, group in rows:
        checked = check(ClientData(tax_id, country, kind, first, last, company, email))
        if db.session.scalar(select(Client.id).where(Client.tax_id == checked.tax_id)) is not None:
            continue
        db.session.add(Client(**checked.columns(), groups=[groups[group]]))
        out.append(f"  client {checked.name} created")
    db.session.commit()
    return out


def load() -> list[str]:
    lines = _operator()
    for spec in TENANTS:
        lines += _tenant(spec)
    return lines or ["demo data already loaded"]


def logins() -> list[str]:
    lines = [f"operator console  /operator/        {OPERATOR[0]} / {OPERATOR[1]}"]
    for spec in TENANTS:
        for email, _name, password, role_key, _groups in spec["users"]:
            lines.append(
                f"{spec['slug']:<17} /{spec['slug']}/{' ' * (16 - len(spec['slug']))}{email} / {password}  ({role_key})"
            )
    return [*lines, *host().call_all("demo_logins")]
