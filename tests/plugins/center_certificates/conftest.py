"""Fixtures of the certificates plugin: a tenant with it, a centre, staff, clients, templates."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import pytest
from pypdf import PdfWriter

from tests.conftest import PASSWORD, login
from tests.core.mail.conftest import smtp_server  # noqa: F401  (a real SMTP server, for the notices)
from tests.core.test_push import push_service  # noqa: F401  (a real push service, for the notices)


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@dataclass
class Centre:
    tenant: object
    group: int
    other_group: int
    manager: int
    staff: int
    client: int
    other_client: int


@pytest.fixture
def centre(app, factory) -> Centre:
    """Tenant "acme" (Europe/Madrid) with the plugin: centre North (staff, a client) and centre South."""
    tenant = factory.tenant("acme", language="en", plugins=("center_certificates",))
    factory.user(tenant, "admin@acme.test", role_key="admin", name="Ada Admin")
    manager = factory.user(tenant, "manager@acme.test", role_key="manager", name="Maria Manager")
    staff = factory.user(tenant, "staff@acme.test", role_key="operator", name="Oscar Operator")
    north = factory.group(tenant, "North", [staff])
    south = factory.group(tenant, "South")
    client = factory.client(tenant, "Northern Client", groups=[north], email="north@client.test")
    other = factory.client(tenant, "Southern Client", groups=[south], email="south@client.test")
    return Centre(tenant, north, south, manager, staff, client, other)


def acting(app, tenant):
    """An app context acting for ``tenant`` with its Tenant row (for service calls)."""
    from contextlib import contextmanager

    from core.extensions import db
    from tenants.context import tenant_context
    from tenants.models import Tenant

    @contextmanager
    def block():
        with app.app_context(), tenant_context(tenant.id):
            yield db.session.get(Tenant, tenant.id)

    return block()


def make_template(app, tenant, name="Medical certificate", **options) -> int:
    from plugins.center_certificates.services import TemplateData, save_template

    with acting(app, tenant):
        return save_template(None, TemplateData(name, **options)).id


def make_request(app, tenant, client_id: int, template_id: int) -> int:
    from core.clients.models import Client
    from core.extensions import db
    from plugins.center_certificates.models import CertificateTemplate
    from plugins.center_certificates.services import request_certificate

    with acting(app, tenant) as row:
        return request_certificate(
            row, db.session.get(Client, client_id), db.session.get(CertificateTemplate, template_id)
        ).id


def upload(app, tenant, certificate_id: int, validity: date, *, by_client=True, data=None, filename="doc.pdf"):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import submit

    with acting(app, tenant) as row:
        submit(
            row,
            db.session.get(Certificate, certificate_id),
            validity_date=validity,
            notes="",
            upload=data if data is not None else pdf_bytes(),
            filename=filename,
            by_client=by_client,
            actor=None,
        )


def approve(app, tenant, certificate_id: int):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import approve as approve_service

    with acting(app, tenant) as row:
        approve_service(row, db.session.get(Certificate, certificate_id), None)


def state(app, tenant, certificate_id: int) -> dict:
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    with acting(app, tenant):
        c = db.session.get(Certificate, certificate_id)
        return {
            k: getattr(c, k)
            for k in (
                "status",
                "validity_date",
                "expiring_from",
                "file_id",
                "archived_at",
                "deleted_at",
                "rejection_reason",
                "approved_at",
            )
        }


def sweep(app, tenant) -> dict:
    from plugins.center_certificates.services import sweep as sweep_service

    with acting(app, tenant) as row:
        return sweep_service(row)


def staff_client(app, email="admin@acme.test"):
    browser = app.test_client()
    login(browser, "acme", email, PASSWORD)
    return browser
