"""The demo data `make run` loads: the plugin's templates and a certificate in every state, in
each demo tenant's language, once."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from tests.conftest import login


def _certificates(app, slug: str):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate, CertificateTemplate
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context():
        tenant_id = db.session.scalar(select(Tenant.id).where(Tenant.slug == slug))
        with tenant_context(tenant_id):
            templates = sorted(db.session.scalars(select(CertificateTemplate.name)))
            certificates = db.session.scalars(select(Certificate)).all()
            states = Counter(c.status for c in certificates)
            files = sum(1 for c in certificates if c.file_id is not None)
            rejected = sum(1 for c in certificates if c.rejection_reason)
    return templates, states, files, rejected


def test_the_demo_has_templates_and_a_certificate_in_every_state_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "2 certificate templates and 10 certificates created" in first.output

    templates, states, files, rejected = _certificates(app, "demo")
    assert templates == ["Reconocimiento médico", "Seguro de responsabilidad civil"]
    # Five clients: the first template runs through the states, the second is asked of everyone.
    assert states == {"approved": 1, "expiring": 1, "pending_approval": 1, "missing_info": 7}
    assert (files, rejected) == (3, 1)
    assert _certificates(app, "demo-it")[0] == ["Assicurazione RC", "Visita medica"]

    staff = app.test_client()
    login(staff, "demo", "gestor@demo.test", "demo-staff")
    listed = staff.get("/demo/certificates/?status=pending_approval").get_data(as_text=True)
    assert "Reconocimiento médico" in listed

    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code == 0 and again.output.strip() == "demo data already loaded"
    assert _certificates(app, "demo")[1] == states
