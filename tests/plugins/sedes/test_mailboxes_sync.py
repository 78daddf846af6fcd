"""The Buzones electrónicos tab end to end: a certificate uploaded through the web, the mailbox it
offers, "Consultar buzón" pressed on the tab, a real worker reading the DEHú simulator over HTTPS,
and the tab telling the outcome — the new notification, or why it failed, in words."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.plugins.sedes.data_helpers import COMPANY, PASSWORD, PERSON, in_tenant, make_office, sign_in, upload
from tests.plugins.sedes.sync_helpers import point_catalogue_at


def _press(web, tab: str):
    """Submit the tab's "Consultar buzón" form as the browser would (its action and hidden fields)."""
    action = re.search(r'action="([^"]*/sync/mailbox/\d+)"', tab).group(1)
    back = re.search(r'name="back" value="([^"]*)"', tab.split(action)[1]).group(1)
    return web.post(action, data={"back": back.replace("&amp;", "&")})


def test_consultar_buzon_on_the_client_tab_brings_the_notification_and_shows_the_outcome(
    app, factory, dehu_simulator, run_jobs
):
    from core.extensions import db
    from plugins.sedes.models import Certificate, Notification

    office = make_office(factory)
    point_catalogue_at(app, dehu_simulator)
    web = sign_in(app, office)
    issued = dehu_simulator.ca.representante(PERSON, COMPANY, "TALLERES PÉREZ SL")
    dehu_simulator.enrol(issued, [COMPANY])
    made = upload(web, office, issued.pkcs12(PASSWORD))
    with in_tenant(app, office.tenant.id):
        certificate_id = db.session.scalar(select(Certificate.id))
    web.post(made.location, data={"offer": f"{office.company}:dehu:{certificate_id}"})
    dehu_simulator.add_notification(COMPANY, subject="Requerimiento de información IVA 2025")

    gestor = sign_in(app, office, "gestor")
    tab_url = f"/gestoria/clients/{office.company}?tab=sedes_mailboxes"
    tab = gestor.get(tab_url).get_data(as_text=True)
    assert 'data-sync="never"' in tab
    pressed = _press(gestor, tab)
    assert pressed.status_code == 302
    assert 'data-sync="queued"' in gestor.get(tab_url).get_data(as_text=True)
    run_jobs()
    tab = gestor.get(tab_url).get_data(as_text=True)
    assert 'data-sync="ok"' in tab and "1 new" in tab
    with in_tenant(app, office.tenant.id):
        found = db.session.scalars(select(Notification)).all()
        assert [(n.client_id, n.subject, n.opened_at) for n in found] == [
            (office.company, "Requerimiento de información IVA 2025", None)
        ]
    # The sede stops accepting the certificate: the tab says so in words, not as a fault code.
    dehu_simulator.unenrol(issued)
    _press(gestor, tab)
    run_jobs()
    tab = gestor.get(tab_url).get_data(as_text=True)
    assert 'data-sync="error"' in tab
    error = tab.split("data-error>")[1].split("<")[0]
    assert "does not know this certificate as a Gran Destinatario" in error


def test_a_mailbox_whose_certificate_expired_is_not_read_and_says_why(app, factory, dehu_simulator, run_jobs):
    from datetime import UTC, datetime, timedelta

    import time_machine

    from core.extensions import db
    from plugins.sedes.models import Certificate

    office = make_office(factory)
    point_catalogue_at(app, dehu_simulator)
    web = sign_in(app, office)
    issued = dehu_simulator.ca.representante(PERSON, COMPANY, "TALLERES PÉREZ SL")
    dehu_simulator.enrol(issued, [COMPANY])
    made = upload(web, office, issued.pkcs12(PASSWORD))
    with in_tenant(app, office.tenant.id):
        certificate_id = db.session.scalar(select(Certificate.id))
    web.post(made.location, data={"offer": f"{office.company}:dehu:{certificate_id}"})
    served = dehu_simulator.requests_served
    with time_machine.travel(datetime.now(UTC) + timedelta(days=800), tick=False):
        web = sign_in(app, office)  # the session of 800 days ago is long gone
        tab_url = f"/gestoria/clients/{office.company}?tab=sedes_mailboxes"
        tab = web.get(tab_url).get_data(as_text=True)
        assert "Expired" in tab.split('id="client-mailboxes"')[1]
        _press(web, tab)
        run_jobs()
        tab = web.get(tab_url).get_data(as_text=True)
    assert 'data-sync="error"' in tab
    assert "The certificate has expired." in tab.split("data-error>")[1].split("<")[0]
    assert dehu_simulator.requests_served == served, "nothing was sent to the sede"
