"""Certificados digitales through the web: upload (each refusal in its own words), the office's own
certificate, encryption at rest, visibility by groups, the audited download and password, delete."""

from __future__ import annotations

from sqlalchemy import select, text

from plugins.sedes.pki import Encoding
from tests.core.mail.test_secrets_at_rest import _raw_database
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


def _certificates(app, office):
    from core.extensions import db
    from plugins.sedes.models import Certificate

    with in_tenant(app, office.tenant.id):
        return [
            (c.client_id, c.kind, c.holder_name, c.holder_nif, c.entity_nif, c.issuer)
            for c in db.session.scalars(select(Certificate).order_by(Certificate.id))
        ]


def _events(app, office, certificate_id):
    from core.api import history

    with in_tenant(app, office.tenant.id):
        return [(e.actor_name, e.action, e.changes) for e in history("sedes_certificate", certificate_id)]


def test_a_representative_certificate_goes_to_the_client_with_its_company_nif(app, factory):
    office = make_office(factory)
    web = sign_in(app, office)
    authority = ca()
    response = upload(web, office, authority.representante(PERSON, COMPANY, "TALLERES PÉREZ SL").pkcs12(PASSWORD))
    assert response.status_code == 302
    assert "/mailboxes" in response.location, "the mailboxes it could read are offered next"
    assert _certificates(app, office) == [
        (office.company, "representante", "JUAN ESPAÑOL ESPAÑOL", PERSON, COMPANY, "Ventanilla Pruebas AC")
    ]
    with in_tenant(app, office.tenant.id):
        from core.extensions import db
        from plugins.sedes.models import Certificate

        certificate_id = db.session.scalar(select(Certificate.id))
    page = web.get(f"/gestoria/sedes/certificates/{certificate_id}").get_data(as_text=True)
    assert 'data-field="entity_nif">' + COMPANY in page and "Legal representative" in page
    assert "Talleres Pérez SL" in page
    listed = web.get("/gestoria/sedes/certificates/").get_data(as_text=True)
    assert f'data-certificate="{certificate_id}"' in listed


def test_each_refusal_says_what_is_wrong(app, factory):
    office = make_office(factory)
    web = sign_in(app, office)
    authority = ca()
    good = authority.persona_fisica(PERSON, "MARÍA", "GARCÍA LÓPEZ")
    cases = [
        (good.pkcs12(PASSWORD), "wrong", "The password does not open this certificate."),
        (b"%PDF-1.4 not a certificate", PASSWORD, "not a digital certificate in PKCS#12 format"),
        (good.pkcs12(PASSWORD, with_key=False), PASSWORD, "without its private key"),
        (authority.expired(PERSON).pkcs12(PASSWORD), PASSWORD, "The certificate has expired."),
        (authority.not_yet_valid(PERSON).pkcs12(PASSWORD), PASSWORD, "The certificate is not valid yet."),
        (
            authority.persona_fisica("00000000T").pkcs12(PASSWORD),
            PASSWORD,
            "None of your clients has the certificate&#39;s NIF (00000000T)",
        ),
    ]
    for data, password, message in cases:
        response = upload(web, office, data, password)
        assert response.status_code == 200, message
        assert message in response.get_data(as_text=True), message
    assert _certificates(app, office) == []
    # For a named client, another NIF is refused; the same file twice too.
    wrong_client = upload(web, office, good.pkcs12(PASSWORD), client_id=office.company)
    assert "not of the client (" + COMPANY + ")" in wrong_client.get_data(as_text=True)
    assert upload(web, office, good.pkcs12(PASSWORD, encoding=Encoding.RC2_40)).status_code == 302
    again = upload(web, office, good.pkcs12(PASSWORD))
    assert "This certificate is already kept." in again.get_data(as_text=True)
    assert [row[0] for row in _certificates(app, office)] == [office.person]


def test_the_office_own_certificate_has_no_client_and_every_holder_of_the_permission_sees_it(app, factory):
    office = make_office(factory)
    web = sign_in(app, office)
    made = upload(web, office, ca().persona_fisica("50000000S", "ANA", "ASESORA").pkcs12(PASSWORD), owner="office")
    assert made.status_code == 302 and "/mailboxes" not in made.location
    assert _certificates(app, office)[0][:2] == (None, "persona_fisica")
    gestor = sign_in(app, office, "gestor")
    assert "ANA ASESORA" in gestor.get("/gestoria/sedes/certificates/?office=1").get_data(as_text=True)


def test_certificates_and_passwords_are_encrypted_at_rest(app, factory, database, owner_engine):
    office = make_office(factory)
    web = sign_in(app, office)
    data = ca().persona_fisica(PERSON).pkcs12("Sedes-pkcs12-Secret-8842")
    assert upload(web, office, data, "Sedes-pkcs12-Secret-8842").status_code == 302
    with in_tenant(app, office.tenant.id):
        from core.extensions import db
        from plugins.sedes.models import Certificate

        stored = db.session.scalar(select(Certificate))
        assert (stored.pkcs12, stored.password) == (data, "Sedes-pkcs12-Secret-8842"), "the app reads them back"
    raw = _raw_database(database, owner_engine)
    assert PERSON.encode() in raw, "the dump does see the rows"
    for secret in (b"Sedes-pkcs12-Secret-8842", data[-64:], data[100:164]):
        assert secret not in raw and secret.hex().encode() not in raw
    with owner_engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('app.all_tenants', 'on', false)"))
        password, pkcs12 = conn.execute(text("SELECT password, pkcs12 FROM sedes_certificates")).one()
    assert password.startswith("gAAAAA") and bytes(pkcs12).startswith(b"gAAAAA")


def test_a_gestor_sees_only_the_certificates_of_the_clients_of_their_groups_and_cannot_download(app, factory):
    office = make_office(factory)
    manager = sign_in(app, office)
    authority = ca()
    assert upload(manager, office, authority.representante(PERSON, COMPANY).pkcs12(PASSWORD)).status_code == 302
    other = authority.sello(OTHER_COMPANY, "OBRAS NORTE SA")
    assert upload(manager, office, other.pkcs12(PASSWORD)).status_code == 302
    with in_tenant(app, office.tenant.id):
        from core.extensions import db
        from plugins.sedes.models import Certificate

        ids = {c.client_id: c.id for c in db.session.scalars(select(Certificate))}
    gestor = sign_in(app, office, "gestor")
    listed = gestor.get("/gestoria/sedes/certificates/").get_data(as_text=True)
    assert f'data-certificate="{ids[office.company]}"' in listed
    assert f'data-certificate="{ids[office.other]}"' not in listed
    assert gestor.get(f"/gestoria/sedes/certificates/{ids[office.other]}").status_code == 404
    page = gestor.get(f"/gestoria/sedes/certificates/{ids[office.company]}").get_data(as_text=True)
    assert "Download (.p12)" not in page
    assert gestor.post(f"/gestoria/sedes/certificates/{ids[office.company]}/download").status_code == 403
    assert gestor.post(f"/gestoria/sedes/certificates/{ids[office.company]}/password").status_code == 403
    assert gestor.get("/gestoria/sedes/certificates/new").status_code == 403


def test_download_and_password_are_for_their_permission_and_recorded_with_who_and_when(app, factory):
    office = make_office(factory)
    web = sign_in(app, office)
    data = ca().representante(PERSON, COMPANY).pkcs12(PASSWORD)
    upload(web, office, data)
    with in_tenant(app, office.tenant.id):
        from core.extensions import db
        from plugins.sedes.models import Certificate

        certificate_id = db.session.scalar(select(Certificate.id))
    page = web.get(f"/gestoria/sedes/certificates/{certificate_id}").get_data(as_text=True)
    assert "Download (.p12)" in page and PASSWORD not in page
    downloaded = web.post(f"/gestoria/sedes/certificates/{certificate_id}/download")
    assert downloaded.status_code == 200 and downloaded.data == data
    assert downloaded.headers["Content-Type"] == "application/x-pkcs12"
    assert "attachment" in downloaded.headers["Content-Disposition"]
    shown = web.post(f"/gestoria/sedes/certificates/{certificate_id}/password").get_data(as_text=True)
    assert PASSWORD in shown
    events = _events(app, office, certificate_id)
    uses = [(actor, changes["used_for"][1]) for actor, _action, changes in events if "used_for" in changes]
    assert uses == [("Marta Manager", "password shown"), ("Marta Manager", "download")]
    assert any(action == "create" for _actor, action, _changes in events)
    assert "Used: download" in web.get(f"/gestoria/sedes/certificates/{certificate_id}").get_data(as_text=True)


def test_credential_for_gives_the_connector_its_credential_and_records_the_use(app, factory):
    from core.extensions import db
    from plugins.sedes import certificates
    from plugins.sedes.models import Certificate

    office = make_office(factory)
    web = sign_in(app, office)
    upload(web, office, ca().representante(PERSON, COMPANY).pkcs12(PASSWORD))
    with in_tenant(app, office.tenant.id):
        certificate = db.session.scalar(select(Certificate))
        credential = certificates.credential_for(certificate, "sync dehu mailbox 1")
        db.session.commit()
        assert credential.titular_nif == COMPANY and credential.key_pem.startswith(b"-----BEGIN PRIVATE KEY")
        certificate_id = certificate.id
    assert ("used_for", [None, "sync dehu mailbox 1"]) in [
        (k, v) for _a, _b, changes in _events(app, office, certificate_id) for k, v in changes.items()
    ]


def test_a_certificate_a_mailbox_reads_with_cannot_be_deleted(app, factory):
    from core.extensions import db
    from plugins.sedes import mailboxes
    from plugins.sedes.models import Certificate

    office = make_office(factory)
    web = sign_in(app, office)
    upload(web, office, ca().representante(PERSON, COMPANY).pkcs12(PASSWORD))
    with in_tenant(app, office.tenant.id):
        certificate_id = db.session.scalar(select(Certificate.id))
    web.post(
        f"/gestoria/sedes/certificates/{certificate_id}/mailboxes",
        data={"offer": f"{office.company}:dehu:{certificate_id}"},
    )
    refused = web.post(f"/gestoria/sedes/certificates/{certificate_id}/delete", follow_redirects=True)
    assert "1 mailboxes read with this certificate" in refused.get_data(as_text=True)
    with in_tenant(app, office.tenant.id):
        from core.auth.models import User

        manager = db.session.get(User, office.manager)
        mailbox = db.session.scalar(select(mailboxes.Mailbox))
        mailboxes.delete_mailbox(manager, mailbox)
    deleted = web.post(f"/gestoria/sedes/certificates/{certificate_id}/delete")
    assert deleted.status_code == 302
    assert _certificates(app, office) == []


def test_the_certificate_list_pages_by_holder_in_a_constant_number_of_statements(app, factory):
    from datetime import timedelta

    from plugins.sedes.pki import cif
    from tests.conftest import count_queries

    office = make_office(factory)
    web = sign_in(app, office)
    authority = ca()
    upload(web, office, authority.representante(PERSON, COMPANY).pkcs12(PASSWORD))
    with count_queries(app) as one:
        web.get("/gestoria/sedes/certificates/")
    from core.api import utcnow

    for index in range(55):
        nif = cif(2000000 + index)
        factory.client(office.tenant, f"Empresa {index:02d}", nif, groups=[office.group])
        issued = authority.sello(nif, f"EMPRESA {index:02d}", not_after=utcnow() + timedelta(days=100 + index))
        assert upload(web, office, issued.pkcs12(PASSWORD)).status_code == 302
    with count_queries(app) as many:
        first = web.get("/gestoria/sedes/certificates/").get_data(as_text=True).split('id="certificate-list"')[1]
    assert len(many) == len(one)
    assert first.count("data-certificate=") == 50 and "EMPRESA 00" in first.split("data-certificate=")[1]
    cursor = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = web.get(cursor).get_data(as_text=True).split('id="certificate-list"')[1]
    assert second.count("data-certificate=") == 6 and "JUAN ESPAÑOL ESPAÑOL" in second
    assert "EMPRESA 49" in first and "EMPRESA 50" not in first and "EMPRESA 50" in second
    assert web.get("/gestoria/sedes/certificates/?expiring=30").get_data(as_text=True).count("data-certificate=") == 0
