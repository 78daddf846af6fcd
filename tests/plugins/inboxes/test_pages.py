"""The staff's pages: requests (list, thread, attachments, the HTML frame), quarantine, contracts, flows."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugins.inboxes.ingest import Ingestor
from plugins.inboxes.models import Contract, Mailbox, Quarantined, Request
from tests.conftest import count_queries, login
from tests.plugins.inboxes.conftest import corpus, in_tenant, make_contract, make_flow, rows
from tests.plugins.inboxes.walker import CLOSED_PORT


@pytest.fixture
def shop(app, factory):
    """A tenant with two contracts (clients of two centres), an inbound mailbox each, no server needed:
    messages are stored through the same code the sync job calls."""
    from plugins.inboxes import mailboxes

    tenant = factory.tenant("acme", language="en")
    north = factory.group(tenant, "Norte")
    south = factory.group(tenant, "Sur")
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    factory.user(tenant, "ana@acme.test", role_key="operator", name="Ana", groups=[north])
    boxes = []
    with in_tenant(app, tenant.id):
        for name in ("Norte", "Sur"):
            boxes.append(
                mailboxes.save_mailbox(
                    None,
                    "inbound",
                    mailboxes.MailboxData(
                        name=name, host="127.0.0.1", port=CLOSED_PORT, username=f"{name}@x.test", password="p"
                    ),
                ).id
            )
    north_client = factory.client(tenant, "Cliente Norte", groups=[north])
    south_client = factory.client(tenant, "Cliente Sur", groups=[south])
    flow = make_flow(app, tenant, steps=[])
    contracts = [
        make_contract(app, tenant, north_client, inbound=[boxes[0]], flow=flow, name="Contrato Norte"),
        make_contract(app, tenant, south_client, inbound=[boxes[1]], name="Contrato Sur"),
    ]
    return {"tenant": tenant, "boxes": boxes, "contracts": contracts}


def store(app, tenant, mailbox_id: int, raw: bytes):
    with in_tenant(app, tenant.id):
        from core.extensions import db

        ingestor = Ingestor(db.session.get(Mailbox, mailbox_id))
        return ingestor.store(ingestor.reparse(raw), raw)


def simple(subject: str, sender: str = "cliente@example.com", n: int = 0) -> bytes:
    return (
        f"From: Cliente <{sender}>\r\nTo: x@x.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{n}-{subject.replace(' ', '')}@e.com>\r\n\r\nbody\r\n"
    ).encode()


def test_the_request_list_pages_by_keyset_with_a_constant_number_of_queries(app, shop, client):
    tenant = shop["tenant"]
    for n in range(60):
        store(app, tenant, shop["boxes"][n % 2], simple(f"pedido {n}", n=n))
    login(client, "acme", "jefa@acme.test")
    client.get("/acme/requests/?status=all")  # the first view works out what later ones reuse (permissions)
    with count_queries(app) as first_page:
        page = client.get("/acme/requests/?status=all").get_data(as_text=True)
    assert page.count("data-request=") == 50
    after = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    with count_queries(app) as second_page:
        rest = client.get(after).get_data(as_text=True)
    assert rest.count("data-request=") == 10
    assert len(first_page) == len(second_page)


def test_requests_are_filtered_by_contract_status_and_search(app, shop, client):
    tenant = shop["tenant"]
    store(app, tenant, shop["boxes"][0], simple("impresora rota", "pepe@example.com", 1))
    store(app, tenant, shop["boxes"][1], simple("factura", "rosa@example.com", 2))
    login(client, "acme", "jefa@acme.test")

    def listed(query: str) -> list[str]:
        page = client.get(f"/acme/requests/?{query}").get_data(as_text=True)
        return re.findall(r'data-request="\d+">\s*<td[^>]*>\d+</td>\s*<td><a[^>]*>([^<]+)</a>', page)

    assert sorted(listed("status=all")) == ["factura", "impresora rota"]
    assert listed(f"contract={shop['contracts'][0]}&status=all") == ["impresora rota"]
    assert listed("q=rosa&status=all") == ["factura"]
    assert listed("q=%232&status=all") == ["factura"]
    assert listed("status=closed") == []


def test_staff_see_only_the_requests_of_their_clients(app, shop, client):
    tenant = shop["tenant"]
    store(app, tenant, shop["boxes"][0], simple("del norte", n=1))
    south = store(app, tenant, shop["boxes"][1], simple("del sur", n=2))
    login(client, "acme", "ana@acme.test")

    page = client.get("/acme/requests/?status=all").get_data(as_text=True)
    assert "del norte" in page and "del sur" not in page
    assert client.get(f"/acme/requests/{south.request_id}").status_code == 404
    assert client.post(f"/acme/requests/{south.request_id}/reply", data={"text": "x"}).status_code == 404


def test_the_thread_shows_sanitised_html_in_a_sandboxed_frame_and_the_attachments(app, shop, client):
    tenant = shop["tenant"]
    stored = store(app, tenant, shop["boxes"][0], corpus("related_inline_and_pdf.eml"))
    html_only = store(app, tenant, shop["boxes"][0], corpus("html_only_scripts.eml"))
    login(client, "acme", "jefa@acme.test")

    page = client.get(f"/acme/requests/{stored.request_id}").get_data(as_text=True)
    frame = re.search(r'<iframe sandbox [^>]*src="([^"]+)"', page).group(1)
    links = dict(
        re.findall(
            r'href="(/acme/requests/\d+/attachments/\d+)"[^>]*><i class="bi bi-paperclip"[^>]*></i> ([^<]+?) <', page
        )
    )
    assert sorted(links.values()) == ["attachment-3.png", "presupuesto año 2025.pdf"]

    body = client.get(frame)
    assert body.headers["Content-Security-Policy"].endswith("sandbox")
    assert "script-src" not in body.headers["Content-Security-Policy"]
    html = body.get_data(as_text=True)
    # The inline logo points at our own attachment URL, shown in the browser.
    logo = re.search(r'<img[^>]*src="(/acme/requests/\d+/attachments/\d+\?inline=1)"', html).group(1)
    image = client.get(logo)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"

    # An image goes through core's files (checked, re-encoded); the corpus' PDF is a damaged stub that
    # core refuses, so it is kept as opaque bytes: downloaded, never shown.
    png = next(url for url, name in links.items() if name.endswith(".png"))
    assert client.get(png).headers["Content-Type"] == "image/png"
    pdf = next(url for url, name in links.items() if name.endswith(".pdf"))
    downloaded = client.get(pdf)
    assert downloaded.headers["Content-Type"] == "application/octet-stream"
    assert downloaded.headers["Content-Disposition"].startswith("attachment;")
    assert downloaded.get_data().startswith(b"%PDF-1.4")

    scripts = client.get(f"/acme/requests/{html_only.request_id}").get_data(as_text=True)
    frame = re.search(r'<iframe sandbox [^>]*src="([^"]+)"', scripts).group(1)
    cleaned = client.get(frame).get_data(as_text=True).lower()
    assert "<script" not in cleaned and "onerror" not in cleaned and "javascript:" not in cleaned


def test_an_attachment_core_does_not_store_is_only_ever_downloaded(app, shop, client):
    tenant = shop["tenant"]
    raw = (
        b"From: a@example.com\r\nSubject: adjunto\r\nMessage-ID: <adj@e.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nVer adjunto\r\n'
        b'--x\r\nContent-Type: text/html; name="pagina.html"\r\n'
        b'Content-Disposition: attachment; filename="pagina.html"\r\n\r\n'
        b"<script>alert(1)</script>\r\n--x--\r\n"
    )
    stored = store(app, tenant, shop["boxes"][0], raw)
    login(client, "acme", "jefa@acme.test")
    page = client.get(f"/acme/requests/{stored.request_id}").get_data(as_text=True)
    url = re.search(r'href="(/acme/requests/\d+/attachments/\d+)"', page).group(1)
    for variant in (url, url + "?inline=1"):
        response = client.get(variant)
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.get_data().startswith(b"<script>alert(1)</script>")


def test_quarantined_messages_can_be_downloaded_read_again_or_discarded(app, shop, client):
    tenant = shop["tenant"]
    store(app, tenant, shop["boxes"][0], corpus("malformed_no_boundary.eml"))
    stray = store(app, tenant, shop["boxes"][1], simple("para nadie", n=5))
    assert stray.created
    # A mailbox whose contract is gone: its next message waits in quarantine.
    with in_tenant(app, tenant.id):
        from core.extensions import db

        contract = db.session.get(Contract, shop["contracts"][1])
        contract.inbox_links.clear()
        db.session.commit()
    waiting = store(app, tenant, shop["boxes"][1], simple("sin contrato", n=6))
    assert waiting.reason == "no_contract"
    login(client, "acme", "jefa@acme.test")

    page = client.get("/acme/inboxes/quarantine/").get_data(as_text=True)
    assert "The mailbox is not linked to a contract." in page
    assert "The message says it has several parts but does not say where they start." in page
    ids = dict(rows(app, tenant, Quarantined, "reason", "id"))
    raw = client.get(f"/acme/inboxes/quarantine/{ids['no_contract']}/raw")
    assert raw.headers["Content-Type"] == "application/octet-stream" and b"sin contrato" in raw.get_data()

    # Still unlinked: it stays. Linked again: it becomes a request.
    client.post(f"/acme/inboxes/quarantine/{ids['no_contract']}/retry")
    assert dict(rows(app, tenant, Quarantined, "reason", "state"))["no_contract"] == "pending"
    with in_tenant(app, tenant.id):
        from core.extensions import db
        from plugins.inboxes.models import ContractInbox

        db.session.add(ContractInbox(contract_id=shop["contracts"][1], mailbox_id=shop["boxes"][1]))
        db.session.commit()
    done = client.post(f"/acme/inboxes/quarantine/{ids['no_contract']}/retry", follow_redirects=True)
    assert "The message is now in request #" in done.get_data(as_text=True)
    assert "sin contrato" in [s for (s,) in rows(app, tenant, Request, "subject")]

    client.post(f"/acme/inboxes/quarantine/{ids['no_boundary']}/discard")
    assert rows(app, tenant, Quarantined, "state", "raw") == [
        ("discarded", None),
        ("imported", rows(app, tenant, Quarantined, "raw")[1][0]),
    ]


def test_a_contract_links_its_mailboxes_and_an_inbound_mailbox_feeds_one_contract(app, shop, client, factory):
    tenant = shop["tenant"]
    from plugins.inboxes import mailboxes

    with in_tenant(app, tenant.id):
        outbound = mailboxes.save_mailbox(
            None,
            "outbound",
            mailboxes.MailboxData(
                name="Salida", host="127.0.0.1", port=CLOSED_PORT, use_auth=False, sender_address="s@x.test"
            ),
        ).id
    client_id = factory.client(tenant, "Cliente Nuevo")
    login(client, "acme", "jefa@acme.test")
    form = client.get("/acme/inboxes/contracts/new").get_data(as_text=True)
    assert "Salida &lt;s@x.test&gt;" in form
    # Norte and Sur feed their contracts already: not offered.
    assert 'name="inbound_mailbox_ids"' not in form

    response = client.post(
        "/acme/inboxes/contracts/new",
        data={
            "name": "Contrato Nuevo",
            "client_id": str(client_id),
            "outbound_mailbox_id": str(outbound),
            "active": "y",
        },
    )
    assert response.status_code == 302
    taken = client.post(
        "/acme/inboxes/contracts/new",
        data={"name": "Otro", "client_id": str(client_id), "inbound_mailbox_ids": str(shop["boxes"][0])},
    )
    errors = re.findall(r"invalid-feedback[^>]*>([^<]+)<", taken.get_data(as_text=True))
    assert errors == ["An inbound mailbox feeds one contract only: choose those not linked to another one."]
    assert rows(app, tenant, Contract, "name", "outbound_mailbox_id")[-1] == ("Contrato Nuevo", outbound)


def test_a_flow_step_is_configured_with_its_message_and_recipients(app, shop, client):
    login(client, "acme", "jefa@acme.test")
    response = client.post("/acme/inboxes/flows/new", data={"name": "Soporte", "reply_mode": "specific", "active": "y"})
    flow_page = response.location
    new_step = client.get(f"{flow_page}/steps/new").get_data(as_text=True)
    assert "We have received your request {number}: {subject}" in new_step
    bad = client.post(
        f"{flow_page}/steps/new",
        data={"name": "Aviso", "trigger": "resolved", "mailbox_mode": "specific", "subject": "{numero}", "body": "x"},
    )
    assert "Unknown placeholder: {numero}." in bad.get_data(as_text=True)
    ok = client.post(
        f"{flow_page}/steps/new",
        data={
            "name": "Aviso",
            "trigger": "resolved",
            "mailbox_mode": "default",
            "subject": "Resuelta {number}",
            "body": "Hecho.",
            "to_client": "y",
            "extra_recipients": "jefa@acme.test, jefa@acme.test; otro@acme.test",
            "position": "20",
        },
    )
    assert ok.status_code == 302
    from plugins.inboxes.models import FlowStep

    assert rows(app, shop["tenant"], FlowStep, "name", "mailbox_mode", "to_requester", "extra_recipients")[-1] == (
        "Aviso",
        "default",
        False,
        ["jefa@acme.test", "otro@acme.test"],
    )
    page = client.get(flow_page).get_data(as_text=True)
    assert "When the request becomes: Resolved" in page


def test_the_dashboard_and_the_search_box_show_requests(app, shop, client):
    tenant = shop["tenant"]
    stored = store(app, tenant, shop["boxes"][0], simple("tejado con goteras", n=9))
    login(client, "acme", "jefa@acme.test")
    home = client.get("/acme/").get_data(as_text=True)
    assert 'data-widget="inboxes-requests"' in home and 'data-widget="inboxes-mailboxes"' in home
    found = client.get("/acme/search?q=goteras").get_data(as_text=True)
    assert f"/acme/requests/{stored.request_id}" in found


def test_nothing_of_the_plugin_shows_without_its_permissions(app, shop, factory, client):
    tenant = shop["tenant"]
    factory.user(tenant, "nadie@acme.test", permissions=["core.clients:view"])
    login(client, "acme", "nadie@acme.test")
    home = client.get("/acme/").get_data(as_text=True)
    assert "/acme/requests/" not in home and "/acme/inboxes/" not in home
    assert client.get("/acme/requests/").status_code == 403
    with in_tenant(app, tenant.id):
        from core.extensions import db

        assert db.session.scalar(select(Mailbox.id)) is not None
