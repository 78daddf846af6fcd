"""What the isolation and permission walkers need of the certificates plugin (see tests/walker.py)."""

from __future__ import annotations

from sqlalchemy import select

ROW_ARGUMENTS = {"certificate_id": "certificate", "template_id": "certificate_template"}


def populate(app, tenant_id: int, client_id: int, marker: str) -> dict:
    """A template and a certificate of the client, pending approval with an uploaded image."""
    from datetime import date, timedelta

    from core.clients.models import Client
    from core.extensions import db
    from plugins.center_certificates.services import TemplateData, request_certificate, save_template, submit
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from tests.core.files.samples import png

    with app.app_context(), tenant_context(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        template = save_template(None, TemplateData(f"{marker} Template"))
        certificate = request_certificate(tenant, db.session.get(Client, client_id), template)
        submit(
            tenant,
            certificate,
            validity_date=date.today() + timedelta(days=90),
            notes=f"{marker} notes",
            upload=png(),
            filename="scan.png",
            by_client=False,
            actor=None,
        )
        return {"certificate_template": template.id, "certificate": certificate.id}


def snapshot(app, tenant_id: int) -> dict:
    from core.extensions import db
    from plugins.center_certificates.models import Certificate, CertificateTemplate
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant_id):
        return {
            "certificates": sorted(
                (c.id, c.status, c.notes, c.file_id, c.validity_date, c.rejection_reason, c.archived_at, c.deleted_at)
                for c in db.session.scalars(select(Certificate))
            ),
            "certificate_templates": sorted(
                (t.id, t.name, t.active, t.lead_days) for t in db.session.scalars(select(CertificateTemplate))
            ),
        }
