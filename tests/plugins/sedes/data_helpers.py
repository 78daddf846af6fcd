"""What the tests of the sedes data share: a gestoría with a manager, a gestor of one group and
clients in it and outside it, certificates made by a throwaway CA, uploads through the web."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from plugins.sedes.pki import CertificateAuthority, cif, dni
from tests.conftest import login

PASSWORD = "contraseña-1234"
COMPANY = cif(1234567)  # Talleres Pérez SL
OTHER_COMPANY = cif(7654321)  # Obras Norte SA, in no group of the gestor
PERSON = dni(12345678)


@dataclass(frozen=True)
class Office:
    tenant: object
    manager: int
    gestor: int
    group: int
    company: int  # client in the gestor's group
    other: int  # client outside it
    person: int  # a persona física client in the gestor's group


@contextlib.contextmanager
def in_tenant(app, tenant_id: int):
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        yield


def make_office(factory, slug: str = "gestoria", limits: dict | None = None) -> Office:
    """A tenant with the sedes plugin (licence ``limits`` when given), a manager who sees every
    client, a gestor (operator role) of one group, and three clients."""
    tenant = factory.tenant(slug, language="en", plugins=("sedes",))
    if limits is not None:
        from core.extensions import db
        from tenants.licensing import set_licence
        from tenants.models import Tenant

        with factory.app.app_context():
            set_licence(db.session.get(Tenant, tenant.id), "sedes", True, limits=limits)
    manager = factory.user(tenant, f"manager@{slug}.test", role_key="manager", name="Marta Manager")
    group = factory.group(tenant, "Valencia")
    gestor = factory.user(tenant, f"gestor@{slug}.test", role_key="operator", name="Gerardo Gestor", groups=[group])
    company = factory.client(tenant, "Talleres Pérez SL", COMPANY, groups=[group])
    other = factory.client(tenant, "Obras Norte SA", OTHER_COMPANY)
    person = factory.client(tenant, "María García", PERSON, groups=[group])
    return Office(tenant, manager, gestor, group, company, other, person)


def sign_in(app, office: Office, who: str = "manager"):
    client = app.test_client()
    login(client, office.tenant.slug, f"{who}@{office.tenant.slug}.test")
    return client


def upload(client, office: Office, data: bytes, password: str = PASSWORD, *, owner: str = "client", client_id=None):
    query = f"?client_id={client_id}" if client_id else ""
    return client.post(
        f"/{office.tenant.slug}/sedes/certificates/new{query}",
        data={"file": (io.BytesIO(data), "certificado.pfx"), "password": password, "owner": owner},
        content_type="multipart/form-data",
    )


def ca() -> CertificateAuthority:
    return CertificateAuthority(reuse_keys=True)
