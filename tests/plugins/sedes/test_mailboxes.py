"""Buzones: offered after an upload and on the client's tab, Nuevo buzón from the sede's page in
Servicios y buzones with every rule, the licence (sedes and number of mailboxes), groups, and the
same mailboxes seen by sede and by client."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.conftest import count_queries
from tests.plugins.sedes.data_helpers import (
    COMPANY,
    OTHER_COMPANY,
    PASSWORD,
    PERSON,
    ca,
    in_tenant,
    make_office,
    sign_in,
    upload,
)


def _mailboxes(app, office):
    from core.extensions import db
    from plugins.sedes.models import Mailbox

    with in_tenant(app, office.tenant.id):
        return sorted(
            (m.client_id, m.sede_code, m.certificate_id, m.as_proxy, m.period_days)
            for m in db.session.scalars(select(Mailbox))
        )


def _certificate_ids(app, office) -> dict:
    from core.extensions import db
    from plugins.sedes.models import Certificate

    with in_tenant(app, office.tenant.id):
        return {c.client_id: c.id for c in db.session.scalars(select(Certificate))}


def _syncable_seg_social(app):
    """The operator gives the Seguridad Social a connector: a sede that needs the CCC or NAF."""
    from core.extensions import db
    from plugins.sedes.models import Sede

    with app.app_context():
        sede = db.session.get(Sede, "seg_social")
        sede.connector, sede.base_url = "dehu", "https://sede.seg-social.test/ws"
        db.session.commit()


def test_an_upload_offers_the_client_mailboxes_at_the_licensed_sedes(app, factory):
    office = make_office(factory, limits={"sedes": ["dehu", "seg_social", "aeat"]})
    _syncable_seg_social(app)
    web = sign_in(app, office)
    made = upload(web, office, ca().representante(PERSON, COMPANY).pkcs12(PASSWORD))
    offers = web.get(made.location).get_data(as_text=True)
    certificate_id = _certificate_ids(app, office)[office.company]
    assert f'value="{office.company}:dehu:{certificate_id}"' in offers
    # Seguridad Social needs the client's CCC or NAF, which it has not: offered, not tickable.
    assert re.search(rf'value="{office.company}:seg_social:{certificate_id}" [^>]*disabled', offers)
    assert "Add the client&#39;s CCC or NAF first." in offers
    assert "aeat" not in offers, "a sede without a connector is a portal, not a mailbox"
    web.post(made.location, data={"offer": [f"{office.company}:dehu:{certificate_id}"], "period_days": "3"})
    assert _mailboxes(app, office) == [(office.company, "dehu", certificate_id, False, 3)]
    again = web.get(made.location).get_data(as_text=True)
    assert f":dehu:{certificate_id}" not in again, "one mailbox per client and sede"


def test_new_mailbox_from_the_sede_page_checks_every_rule(app, factory):
    office = make_office(factory, limits={"sedes": ["dehu", "seg_social"]})
    _syncable_seg_social(app)
    web = sign_in(app, office)
    authority = ca()
    upload(web, office, authority.representante(PERSON, COMPANY).pkcs12(PASSWORD))
    upload(web, office, authority.persona_fisica("50000000S", "ANA", "ASESORA").pkcs12(PASSWORD), owner="office")
    certificates = _certificate_ids(app, office)
    company_cert, office_cert = certificates[office.company], certificates[None]
    page = web.get("/gestoria/sedes/settings/services/dehu").get_data(as_text=True)
    assert 'id="new-mailbox"' in page
    form = web.get("/gestoria/sedes/settings/services/dehu/new").get_data(as_text=True)
    assert f'value="{company_cert}"' in form and f'value="{office_cert}"' in form

    def new(**fields):
        data = {"certificate_id": company_cert, "client_tax_id": "", "period_days": "1", **fields}
        return web.post("/gestoria/sedes/settings/services/dehu/new", data=data)

    wrong_client = new(client_tax_id=OTHER_COMPANY).get_data(as_text=True)
    assert "This certificate is another client&#39;s" in wrong_client
    unknown = new(client_tax_id="B00000000").get_data(as_text=True)
    assert "None of your clients has the NIF/CIF B00000000." in unknown
    mismatch = new(certificate_id=office_cert, client_tax_id=OTHER_COMPANY).get_data(as_text=True)
    assert "is not the certificate&#39;s (50000000S)" in mismatch
    assert new(period_days="0").status_code == 200
    assert _mailboxes(app, office) == []
    # The client whose NIF is the certificate's, found without typing it; next sync in Madrid time.
    assert new(next_sync_at="2026-12-24T09:30", period_days="7").status_code == 302
    # The office's certificate reads any client under apoderamiento.
    assert new(certificate_id=office_cert, client_tax_id=OTHER_COMPANY, as_proxy="y").status_code == 302
    duplicate = new(certificate_id=office_cert, client_tax_id=COMPANY, as_proxy="y").get_data(as_text=True)
    assert "Talleres Pérez SL already has a mailbox at Dirección electrónica habilitada - 060." in duplicate
    assert _mailboxes(app, office) == [
        (office.company, "dehu", company_cert, False, 7),
        (office.other, "dehu", office_cert, True, 1),
    ]
    with in_tenant(app, office.tenant.id):
        from core.extensions import db
        from plugins.sedes.models import Mailbox

        first = db.session.scalar(select(Mailbox).where(Mailbox.client_id == office.company))
        assert (first.next_sync_at.hour, first.next_sync_at.minute) == (8, 30), "09:30 in Madrid is 08:30 UTC"
    # A sede that needs CCC or NAF: refused until the client has one.
    needs = web.post(
        "/gestoria/sedes/settings/services/seg_social/new",
        data={"certificate_id": company_cert, "client_tax_id": "", "period_days": "1"},
    ).get_data(as_text=True)
    assert "needs the client&#39;s CCC or NAF: add them to the client&#39;s data first." in needs


def test_the_licence_decides_the_sedes_and_caps_the_mailboxes(app, factory):
    office = make_office(factory, limits={"sedes": ["dehu"], "mailboxes": 1})
    web = sign_in(app, office)
    listed = web.get("/gestoria/sedes/settings/services").get_data(as_text=True)
    assert 'data-sede="dehu"' in listed and 'data-sede="seg_social"' not in listed
    assert web.get("/gestoria/sedes/settings/services/seg_social").status_code == 404
    assert web.get("/gestoria/sedes/settings/services/seg_social/new").status_code == 404
    authority = ca()
    upload(web, office, authority.representante(PERSON, COMPANY).pkcs12(PASSWORD))
    upload(web, office, authority.sello(OTHER_COMPANY, "OBRAS NORTE SA").pkcs12(PASSWORD))
    certificates = _certificate_ids(app, office)
    first = web.post(
        f"/gestoria/sedes/certificates/{certificates[office.company]}/mailboxes",
        data={"offer": f"{office.company}:dehu:{certificates[office.company]}"},
    )
    assert first.status_code == 302
    second = web.post(
        f"/gestoria/sedes/certificates/{certificates[office.other]}/mailboxes",
        data={"offer": f"{office.other}:dehu:{certificates[office.other]}"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Your licence allows 1 electronic mailboxes and 1 are in use" in second
    assert [m[0] for m in _mailboxes(app, office)] == [office.company]


def test_an_expired_certificate_cannot_read_a_new_mailbox(app, factory):
    from core.extensions import db
    from plugins.sedes import mailboxes
    from plugins.sedes.models import Certificate

    office = make_office(factory)
    web = sign_in(app, office)
    upload(web, office, ca().representante(PERSON, COMPANY).pkcs12(PASSWORD))
    with in_tenant(app, office.tenant.id):
        from datetime import timedelta

        from core.api import Tenant, User, utcnow

        certificate = db.session.scalar(select(Certificate))
        certificate.not_after = utcnow() - timedelta(days=1)
        db.session.commit()
        manager = db.session.get(User, office.manager)
        tenant = db.session.get(Tenant, office.tenant.id)
        try:
            mailboxes.create_mailbox(tenant, manager, mailboxes.MailboxData("dehu", certificate.id, office.company))
        except mailboxes.DomainError as error:
            message = str(error.message)
        assert message == "The certificate has expired: upload the renewed one and choose it."
        assert mailboxes.offers(tenant, manager, client=db.session.get(mailboxes.Client, office.company)) == []


def test_the_client_tab_shows_its_mailboxes_with_check_mailbox_for_who_may_sync(app, factory):
    office = make_office(factory)
    manager = sign_in(app, office)
    upload(manager, office, ca().representante(PERSON, COMPANY).pkcs12(PASSWORD))
    certificate_id = _certificate_ids(app, office)[office.company]
    tab = manager.get(f"/gestoria/clients/{office.company}?tab=sedes_mailboxes").get_data(as_text=True)
    assert "Electronic mailboxes" in tab and "This client has no electronic mailbox yet." in tab
    assert f'value="{office.company}:dehu:{certificate_id}"' in tab, "the mailboxes it could have"
    manager.post(
        f"/gestoria/sedes/clients/{office.company}/mailboxes", data={"offer": f"{office.company}:dehu:{certificate_id}"}
    )
    gestor = sign_in(app, office, "gestor")
    tab = gestor.get(f"/gestoria/clients/{office.company}?tab=sedes_mailboxes").get_data(as_text=True)
    assert 'data-sede="dehu"' in tab and "data-sync-mailbox=" in tab, "a gestor may sync"
    assert 'name="offer"' not in tab and "/sedes/mailboxes/" not in tab, "but not manage"
    assert "Never synced" in tab
    # A user whose role may see mailboxes but not sync them sees no button.
    factory.user(
        office.tenant,
        "viewer@gestoria.test",
        permissions=["sedes.mailboxes:view", "core.clients:view", "core.clients:view_all"],
    )
    from tests.conftest import login

    viewer = app.test_client()
    login(viewer, "gestoria", "viewer@gestoria.test")
    tab = viewer.get(f"/gestoria/clients/{office.company}?tab=sedes_mailboxes").get_data(as_text=True)
    assert 'data-sede="dehu"' in tab and "data-sync-mailbox=" not in tab


def test_a_gestor_sees_the_mailboxes_of_the_clients_of_their_groups_by_sede_in_constant_queries(app, factory):
    from core.extensions import db
    from plugins.sedes.models import Certificate, Mailbox

    office = make_office(factory)
    manager = sign_in(app, office)
    upload(manager, office, ca().representante(PERSON, COMPANY).pkcs12(PASSWORD))
    with in_tenant(app, office.tenant.id):
        certificate_id = db.session.scalar(select(Certificate.id))
        db.session.add(Mailbox(client_id=office.company, sede_code="dehu", certificate_id=certificate_id))
        db.session.add(Mailbox(client_id=office.other, sede_code="dehu", certificate_id=certificate_id, as_proxy=True))
        db.session.commit()
    gestor = sign_in(app, office, "gestor")
    page = gestor.get("/gestoria/sedes/settings/services/dehu").get_data(as_text=True)
    assert "Talleres Pérez SL" in page and "Obras Norte SA" not in page
    with count_queries(app) as one:
        gestor.get("/gestoria/sedes/settings/services/dehu")
    for index in range(30):
        client_id = factory.client(office.tenant, f"Cliente {index:02d}", groups=[office.group])
        with in_tenant(app, office.tenant.id):
            db.session.add(Mailbox(client_id=client_id, sede_code="dehu", certificate_id=certificate_id, as_proxy=True))
            db.session.commit()
    listed = gestor.get("/gestoria/sedes/settings/services").get_data(as_text=True)
    assert re.search(r'data-sede="dehu".*?data-count>31<', listed, re.S), "31 of the gestor's clients"
    with count_queries(app) as many:
        page = gestor.get("/gestoria/sedes/settings/services/dehu").get_data(as_text=True)
    assert page.count("data-mailbox=") == 31
    assert len(many) == len(one)


def test_a_mailbox_is_edited_and_deleted_from_its_sede_page(app, factory):
    office = make_office(factory, limits={"sedes": ["dehu", "aeat"]})
    web = sign_in(app, office)
    authority = ca()
    upload(web, office, authority.representante(PERSON, COMPANY).pkcs12(PASSWORD))
    upload(web, office, authority.persona_fisica("50000000S", "ANA", "ASESORA").pkcs12(PASSWORD), owner="office")
    certificates = _certificate_ids(app, office)
    web.post(
        f"/gestoria/sedes/certificates/{certificates[office.company]}/mailboxes",
        data={"offer": f"{office.company}:dehu:{certificates[office.company]}"},
    )
    portal_only = web.get("/gestoria/sedes/settings/services/aeat").get_data(as_text=True)
    assert "No connector reads this sede yet" in portal_only and 'id="new-mailbox"' not in portal_only
    assert web.get("/gestoria/sedes/settings/services/aeat/new").status_code == 404
    with in_tenant(app, office.tenant.id):
        from core.extensions import db
        from plugins.sedes.models import Mailbox

        mailbox_id = db.session.scalar(select(Mailbox.id))
    form = web.get(f"/gestoria/sedes/mailboxes/{mailbox_id}/edit").get_data(as_text=True)
    assert f'<option selected value="{certificates[office.company]}">' in form
    saved = web.post(
        f"/gestoria/sedes/mailboxes/{mailbox_id}/edit",
        data={"certificate_id": certificates[None], "as_proxy": "y", "period_days": "2"},
    )
    assert saved.status_code == 302
    assert _mailboxes(app, office) == [(office.company, "dehu", certificates[None], True, 2)]
    history = web.get(f"/gestoria/clients/{office.company}?tab=history").get_data(as_text=True)
    assert "Mailbox under apoderamiento" in history
    gestor = sign_in(app, office, "gestor")
    assert gestor.post(f"/gestoria/sedes/mailboxes/{mailbox_id}/delete").status_code == 403
    assert web.post(f"/gestoria/sedes/mailboxes/{mailbox_id}/delete").status_code == 302
    assert _mailboxes(app, office) == []
