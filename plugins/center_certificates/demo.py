"""Demonstration data (``flask demo load``): two templates and a certificate in each state, so
that the lists, the dashboard, the report and the client portal have something to show.

A tenant that already has a template is left alone: that is what makes it idempotent, and it
never touches an organisation's own data.
"""

from __future__ import annotations

import io
from datetime import timedelta

from pypdf import PdfWriter
from sqlalchemy import select

from core.api import Client, accept_upload, db, utcnow
from plugins.center_certificates.models import MISSING, PENDING, Certificate, CertificateTemplate
from plugins.center_certificates.services import UPLOAD_KIND, TemplateData, dated_status, save_template, today_for

# Per language: (name, description, "expires soon" lead days, for every new client, renew on expiry).
TEMPLATES = {
    "es": [
        ("Reconocimiento médico", "Certificado de aptitud médica para el puesto de trabajo.", 30, False, True),
        ("Seguro de responsabilidad civil", "Póliza en vigor y último recibo pagado.", 15, True, True),
    ],
    "it": [
        ("Visita medica", "Certificato di idoneità alla mansione.", 30, False, True),
        ("Assicurazione RC", "Polizza in vigore e ultima quietanza pagata.", 15, True, True),
    ],
    "en": [
        ("Medical certificate", "Fitness for the job, signed by the occupational physician.", 30, False, True),
        ("Liability insurance", "The policy in force and its last paid receipt.", 15, True, True),
    ],
}
REJECTION = {
    "es": "La fecha de validez no se lee: suba una copia más nítida.",
    "it": "La data di validità non si legge: carichi una copia più nitida.",
    "en": "The validity date cannot be read: upload a sharper copy.",
}
# The states the first template's certificates take, one client each (in name order): the
# validity in days from today for those with a document, None for those still asked for.
STATES = [("approved", 300), ("expiring", 10), ("pending", 200), ("rejected", None), ("missing", None)]


def _document(title: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def load(tenant) -> list[str]:
    if db.session.scalar(select(CertificateTemplate.id).limit(1)) is not None:
        return []
    language = tenant.language if tenant.language in TEMPLATES else "es"
    templates = [
        save_template(None, TemplateData(name, description, lead_days, for_new, renew))
        for name, description, lead_days, for_new, renew in TEMPLATES[language]
    ]
    clients = db.session.scalars(select(Client).where(Client.active.is_(True)).order_by(Client.name)).all()
    today, now = today_for(tenant), utcnow()
    made = 0
    for template in templates:
        for index, client in enumerate(clients):
            certificate = Certificate(
                template_id=template.id,
                client_id=client.id,
                name=template.name,
                lead_days=template.lead_days,
                status=MISSING,
            )
            db.session.add(certificate)
            made += 1
            state, days = STATES[index % len(STATES)] if template is templates[0] else ("missing", None)
            if state == "rejected":
                certificate.rejection_reason = REJECTION[language]
                certificate.rejected_at = now
                certificate.rejections = 1
            if days is None:
                continue
            document = accept_upload(
                _document(f"{template.name} - {client.name}"), f"{template.name}.pdf", UPLOAD_KIND.name
            )
            certificate.file_id, certificate.uploaded_at, certificate.uploaded_by_client = document.id, now, True
            certificate.validity_date = today + timedelta(days=days)
            certificate.expiring_from = certificate.validity_date - timedelta(days=template.lead_days)
            certificate.status = PENDING
            if state in ("approved", "expiring"):
                certificate.approved_at = now
                certificate.status = dated_status(certificate.validity_date, certificate.expiring_from, today)
    db.session.commit()
    return [f"{len(templates)} certificate templates and {made} certificates created"]
