"""Notices a bulk action causes (an import, "Generar certificados") go only when the person who
starts it chooses so, with the number shown before confirming; held ones are recorded as not
sent, can be sent later exactly once, and later notices follow the usual rules."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from tests.plugins.center_certificates.conftest import acting, approve, make_template, staff_client, upload

# Two new clients with an e-mail address, one without; the centre's client (Northern Client,
# an address) is in the file too and is only updated.
FILE = (
    "NIF;Tipo;Razón social;Email\n"
    "B12345674;empresa;Obras SL;obras@client.test\n"
    "B76543214;empresa;Pinturas SL;pinturas@client.test\n"
    "B11111119;empresa;Sin Correo SL;\n"
)


def _import(browser, group: int, *, notify: bool) -> str:
    """Post the file; the report's address."""
    data = {"file": (io.BytesIO(FILE.encode()), "clientes.csv"), "group": str(group)}
    if notify:
        data["notify"] = "y"
    response = browser.post("/acme/clients/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    return response.location


def _held(page: str) -> str | None:
    found = re.search(r'<input id="counted" name="counted" type="hidden" value="(\d*)">', page)
    return found.group(1) if found else None


def _notices(app, tenant) -> list[tuple[str, str | None, int | None]]:
    from core.extensions import db
    from plugins.center_certificates.models import CertificateNotice

    with acting(app, tenant):
        return db.session.execute(
            select(CertificateNotice.event, CertificateNotice.held_for, CertificateNotice.message_id).order_by(
                CertificateNotice.id
            )
        ).all()


def test_an_import_tells_the_new_clients_nothing_unless_chosen_and_sends_the_held_notices_once(
    app, centre, run_jobs, outbox
):
    make_template(app, centre.tenant, "Insurance", auto_for_new_clients=True)
    browser = staff_client(app)
    form = browser.get("/acme/clients/import").get_data(as_text=True)
    assert "Notify the new clients by e-mail" in form
    assert 'name="notify" type="checkbox" value="y">' in form, "unticked by default"
    report_url = _import(browser, centre.group, notify=False)
    run_jobs()
    assert outbox() == [], "nothing is mailed without the choice"
    held = _notices(app, centre.tenant)
    assert len(held) == 3 and all(h[0] == "created" and h[1] and h[2] is None for h in held), "recorded as not sent"

    # The periodic run does not send them by itself.
    from plugins.center_certificates.services import notify, sweep

    with acting(app, centre.tenant) as tenant:
        sweep(tenant)
        assert sum(notify(tenant).values()) == 0
    assert outbox() == []

    report = browser.get(report_url).get_data(as_text=True)
    assert "2 messages to the new clients were held back" in report, "the two new clients with an address"
    assert "Send the 2 messages now" in report and _held(report) == "2"
    send = report_url + "/notices"
    # A number that is not the one that would go is refused: the report shows the number again.
    refused = browser.post(send, data={"counted": "3"}, follow_redirects=True).get_data(as_text=True)
    assert "The number of messages has changed" in refused
    assert outbox() == []
    sent = browser.post(send, data={"counted": "2"}, follow_redirects=True).get_data(as_text=True)
    assert "2 messages are being sent." in sent
    assert "held back" not in sent, "nothing is left to send"
    mails = outbox()
    assert sorted(m.to for m in mails) == ["obras@client.test", "pinturas@client.test"]
    assert {m.subject for m in mails} == {"Org acme asks you for: Insurance"}
    # A second confirmation (double click, the browser's back button) sends nothing more.
    browser.post(send, data={"counted": "2"})
    run_jobs()
    assert len(outbox()) == 2


def test_an_import_with_the_choice_tells_each_new_client_with_an_address_once(app, centre, run_jobs, outbox):
    make_template(app, centre.tenant, "Insurance", auto_for_new_clients=True)
    browser = staff_client(app)
    report_url = _import(browser, centre.group, notify=True)
    run_jobs()
    assert sorted(m.to for m in outbox()) == ["obras@client.test", "pinturas@client.test"]
    assert "held back" not in browser.get(report_url).get_data(as_text=True)
    # The same file again (or the job retried): nobody is new, nobody is told twice.
    _import(browser, centre.group, notify=True)
    run_jobs()
    assert len(outbox()) == 2


def test_later_notices_of_a_held_request_follow_the_usual_rules(app, centre, run_jobs, outbox):
    from datetime import date, timedelta

    from core.clients.models import Client
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    make_template(app, centre.tenant, "Insurance", auto_for_new_clients=True)
    browser = staff_client(app)
    report_url = _import(browser, centre.group, notify=False)
    run_jobs()
    with acting(app, centre.tenant):
        certificate = db.session.scalar(
            select(Certificate.id).join(Client, Client.id == Certificate.client_id).where(Client.tax_id == "B12345674")
        )
    upload(app, centre.tenant, certificate, date.today() + timedelta(days=200))
    approve(app, centre.tenant, certificate)
    run_jobs()
    assert [(m.to, m.subject) for m in outbox()] == [("obras@client.test", "Your Insurance has been approved")]
    # Approved since: its request is no longer worth telling; the other new client's still is.
    assert _held(browser.get(report_url).get_data(as_text=True)) == "1"


def _generate(browser, template: int, groups: list[int], *, notify: bool) -> str:
    url = f"/acme/certificates/templates/{template}/generate"
    page = browser.post(url, data={"groups": [str(g) for g in groups]}).get_data(as_text=True)
    carried = dict(re.findall(r'<input id="(counted\w*)" name="\1" type="hidden" value="([^"]*)">', page))
    data = {"groups": [str(g) for g in groups], "confirm": "1", **carried}
    if notify:
        data["notify"] = "y"
    started = browser.post(url, data=data)
    assert "/acme/jobs/" in started.location
    return page


def test_generating_tells_the_clients_only_when_chosen_and_the_count_shown_is_what_goes(
    app, factory, centre, run_jobs, outbox
):
    factory.client(centre.tenant, "Quiet Client", groups=[centre.group])  # no address
    template = make_template(app, centre.tenant)
    browser = staff_client(app, "manager@acme.test")
    page = _generate(browser, template, [centre.group, centre.other_group], notify=False)
    assert "3 certificates will be created." in page
    assert "Notify the clients by e-mail" in page and "2 messages, to the clients with an e-mail address" in page
    assert 'id="notify" name="notify" type="checkbox" value="y">' in page, "unticked by default"
    run_jobs()
    assert outbox() == []
    assert len(_notices(app, centre.tenant)) == 3, "recorded as not sent"

    second = make_template(app, centre.tenant, "Second")
    page = _generate(browser, second, [centre.group, centre.other_group], notify=True)
    assert "2 messages, to the clients with an e-mail address" in page
    run_jobs()
    assert sorted(m.to for m in outbox()) == ["north@client.test", "south@client.test"], "as many as shown"
    # Generating again (or the job retried) creates nothing and tells nobody twice.
    _generate(browser, second, [centre.group, centre.other_group], notify=True)
    run_jobs()
    assert len(outbox()) == 2


def test_a_generation_job_run_again_sends_each_notice_once(app, factory, centre, run_jobs, outbox):
    """The job as a retry runs it: the same arguments twice, in keyset batches."""
    from core.extensions import db
    from core.jobs.models import JobRun
    from core.jobs.services import enqueue
    from plugins.center_certificates.models import CertificateNotice
    from tenants.models import Tenant

    for n in range(3):
        factory.client(centre.tenant, f"North {n}", groups=[centre.group], email=f"north{n}@client.test")
    quiet, told = make_template(app, centre.tenant, "Quiet"), make_template(app, centre.tenant, "Told")
    for template, notify in ((quiet, False), (quiet, False), (told, True), (told, True)):
        arguments = {"template_id": template, "group_ids": [centre.group], "batch": 2, "notify": notify}
        with app.app_context():
            run_id = enqueue(db.session.get(Tenant, centre.tenant.id), "center_certificates.generate", arguments).id
        run_jobs()
        with acting(app, centre.tenant):
            assert db.session.get(JobRun, run_id).result["created"] in (0, 4)
    mails = outbox()
    assert {m.subject for m in mails} == {"Org acme asks you for: Told"} and len(mails) == 4
    with acting(app, centre.tenant):
        held = db.session.scalar(select(func.count()).where(CertificateNotice.held_for.is_not(None)))
    assert held == 4, "the quiet template's requests, recorded as not sent"


def test_the_push_follows_the_same_choice(app, factory, centre, run_jobs, outbox, push_service):
    from core.push.services import subscribe
    from tests.core.test_push import Receiver

    account_id = factory.portal_user(centre.tenant, centre.client, "north@client.test")
    phone = Receiver(f"{push_service.origin}/push/bulk")
    with acting(app, centre.tenant):
        from core.auth.models import User
        from core.extensions import db

        subscribe(db.session.get(User, account_id), phone.subscription())
    browser = staff_client(app, "manager@acme.test")
    _generate(browser, make_template(app, centre.tenant, "Quiet"), [centre.group], notify=False)
    run_jobs()
    assert push_service.received == [] and outbox() == []
    _generate(browser, make_template(app, centre.tenant, "Told"), [centre.group], notify=True)
    run_jobs()
    (request,) = push_service.received
    assert phone.decrypt(request["body"])["title"] == "Told"
    assert [m.subject for m in outbox()] == ["Org acme asks you for: Told"]


def test_a_quiet_generation_can_tell_its_clients_later_once(app, factory, centre, run_jobs, outbox):
    factory.client(centre.tenant, "Quiet Client", groups=[centre.group])  # no address: nothing to send
    template = make_template(app, centre.tenant)
    browser = staff_client(app, "manager@acme.test")
    url = f"/acme/certificates/templates/{template}/generate"
    _generate(browser, template, [centre.group, centre.other_group], notify=False)
    run_jobs()
    page = browser.get(url).get_data(as_text=True)
    assert "2 notices of certificates generated from this template were held back" in page, "2 can be told"
    assert "Send the 2 messages now" in page and _held(page) == "2"
    refused = browser.post(f"/acme/certificates/templates/{template}/notices", data={"counted": "3"})
    assert refused.status_code == 302
    assert outbox() == []
    browser.post(f"/acme/certificates/templates/{template}/notices", data={"counted": "2"})
    browser.post(f"/acme/certificates/templates/{template}/notices", data={"counted": "2"})  # a double click
    assert sorted(m.to for m in outbox()) == ["north@client.test", "south@client.test"]
    assert "held back" not in browser.get(url).get_data(as_text=True)


def test_who_sees_only_their_centres_sends_only_their_clients_held_notices(app, factory, centre, run_jobs, outbox):
    from plugins.center_certificates import TEMPLATES

    template = make_template(app, centre.tenant)
    _generate(staff_client(app, "manager@acme.test"), template, [centre.group, centre.other_group], notify=False)
    run_jobs()
    factory.user(centre.tenant, "templater@acme.test", permissions=[TEMPLATES], groups=[centre.group])
    browser = staff_client(app, "templater@acme.test")
    page = browser.get(f"/acme/certificates/templates/{template}/generate").get_data(as_text=True)
    assert "Send the 1 message now" in page and _held(page) == "1"
    browser.post(f"/acme/certificates/templates/{template}/notices", data={"counted": "1"})
    assert [m.to for m in outbox()] == ["north@client.test"], "not South's client"
