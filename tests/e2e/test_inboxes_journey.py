"""Seed 002 in the browser: an administrator sets up an Entrada and a Salida mailbox, a flow with an
"Envío de Mensaje - E-mail" step and a contract linking them; a customer writes to the Entrada; the
request appears; the administrator answers, and the answer arrives through the Salida's server.

The mail servers are real: Dovecot (the Entrada, IMAPS with its own CA) and aiosmtpd (the Salida).
Only the demo organisation is arranged with services; everything else goes through the pages, whose
texts are looked for in Spanish, as the app translates them.
"""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page, expect

from plugins.inboxes.dovecot import find_dovecot
from tests.conftest import require
from tests.core.mail import conftest as mail_fixtures
from tests.core.mail.conftest import SMTP_PASSWORD, SMTP_USER
from tests.e2e.test_journey import log_in, menu_link, ui
from tests.plugins.inboxes import conftest as inboxes_fixtures

pytestmark = pytest.mark.browser

# The real servers of the plugin's tests: Dovecot and aiosmtpd on loopback.
dovecot = inboxes_fixtures.dovecot
smtp_server = mail_fixtures.smtp_server

ADMIN = ("admin@demo.test", "demo-admin")
ENTRADA = "soporte-talleres@journey.test"
CUSTOMER = "lucia.martin@cliente.test"


def uin(app, singular: str, plural: str, n: int, **variables) -> str:
    from flask_babel import force_locale, ngettext

    with app.test_request_context(), force_locale("es"):
        return ngettext(singular, plural, n, **variables)


def upg(app, context: str, message: str) -> str:
    from flask_babel import force_locale, pgettext

    with app.test_request_context(), force_locale("es"):
        return pgettext(context, message)


def alert(page: Page):
    return page.get_by_role("alert").last


def test_mailboxes_contract_and_flow_turn_a_mail_into_a_request_answered_through_the_salida(
    app,
    browser_page,
    dovecot,
    smtp_server,
    run_jobs,
):
    import core.demo

    require(find_dovecot() is not None, "Dovecot is not installed")
    with app.app_context():
        core.demo.load()
    user = dovecot.add_user(ENTRADA, "clave-de-la-entrada")
    page = browser_page
    log_in(page, app, "demo", *ADMIN)

    # Parametrización → Buzón de correo electrónico → Nuevo → Entrada.
    menu_link(page, ui(app, "E-mail mailboxes")).click()
    page.get_by_role("link", name=ui(app, "New"), exact=True).click()
    page.get_by_role("link", name=ui(app, "New inbound mailbox")).click()
    form = page.locator("#mailbox-form")
    form.get_by_label(ui(app, "Name"), exact=True).fill("Soporte Talleres")
    form.get_by_label(ui(app, "Server"), exact=True).fill("localhost")
    form.get_by_label(ui(app, "Server port")).fill(str(dovecot.ports["imaps"]))
    form.get_by_label(ui(app, "Security"), exact=True).select_option("ssl")
    expect(form.get_by_label(ui(app, "Verify the server's certificate"))).to_be_checked()
    form.get_by_label(ui(app, "E-mail address"), exact=True).fill(ENTRADA)
    form.get_by_label(ui(app, "Password"), exact=True).fill("clave-de-la-entrada")
    form.get_by_label(ui(app, "Folder for processed messages")).fill("Procesados")
    form.locator("summary").click()
    form.get_by_label(re.compile(re.escape(ui(app, "Trusted CA certificate")))).fill(dovecot.ca_file.read_text())
    form.get_by_role("button", name=ui(app, "Save")).click()
    expect(alert(page)).to_contain_text(ui(app, "The mailbox has been saved."))
    entrada_url = page.url
    expect(page.locator("#mailbox-form").get_by_label(ui(app, "Password"), exact=True)).to_have_value("")
    assert "clave-de-la-entrada" not in page.content()
    page.locator("#mailbox-buttons").get_by_role("button", name=ui(app, "Test connection")).click()
    expect(alert(page)).to_contain_text(
        uin(
            app,
            "Connected: the folder %(folder)s holds %(num)d message (%(unseen)s unread).",
            "Connected: the folder %(folder)s holds %(num)d messages (%(unseen)s unread).",
            0,
            folder="INBOX",
            unseen=0,
        )
    )

    # Nuevo → Salida: the SMTP server, with authentication, and the sender.
    menu_link(page, ui(app, "E-mail mailboxes")).click()
    page.get_by_role("link", name=ui(app, "New"), exact=True).click()
    page.get_by_role("link", name=ui(app, "New outbound mailbox")).click()
    form = page.locator("#mailbox-form")
    form.get_by_label(ui(app, "Name"), exact=True).fill("Salida Talleres")
    form.get_by_label(ui(app, "Server"), exact=True).fill(smtp_server.host)
    form.get_by_label(ui(app, "Server port")).fill(str(smtp_server.port))
    form.get_by_label(ui(app, "TLS/SSL")).select_option("none")
    expect(form.get_by_label(ui(app, "The server requires authentication (user and password)"))).to_be_checked()
    form.get_by_label(ui(app, "User"), exact=True).fill(SMTP_USER)
    form.get_by_label(ui(app, "Password"), exact=True).fill(SMTP_PASSWORD)
    form.get_by_label(ui(app, "Sender address")).fill("soporte@talleres.test")
    form.get_by_label(ui(app, "Sender name")).fill("Soporte Talleres")
    form.get_by_role("button", name=ui(app, "Save")).click()
    expect(alert(page)).to_contain_text(ui(app, "The mailbox has been saved."))
    page.locator("#mailbox-buttons").get_by_role("button", name=ui(app, "Send a test message")).click()
    expect(alert(page)).to_contain_text(ui(app, "A test message has been sent to %(email)s.", email=ADMIN[0]))
    assert smtp_server.received[-1].rcpt_tos == [ADMIN[0]]

    # Mantenimiento de Flujos: a flow whose "Envío de Mensaje - E-mail" step uses the contract's box.
    menu_link(page, ui(app, "Flows")).click()
    page.get_by_role("link", name=ui(app, "New flow")).click()
    page.get_by_label(ui(app, "Name"), exact=True).fill("Atención por correo (journey)")
    page.get_by_label(ui(app, "Specific: the contract's outbound mailbox")).check()
    page.get_by_role("button", name=ui(app, "Save")).click()
    expect(alert(page)).to_contain_text(ui(app, "The flow has been saved."))
    page.get_by_role("link", name=ui(app, 'Add a "Send message - E-mail" step')).click()
    step = page.locator("#step-form")
    step.get_by_label(ui(app, "Specific: the contract's outbound mailbox")).check()
    expect(step.get_by_label(ui(app, "Whoever wrote the request"))).to_be_checked()
    step.get_by_role("button", name=ui(app, "Save")).click()
    expect(alert(page)).to_contain_text(ui(app, "The step has been saved."))
    expect(page.locator("#flow-steps")).to_contain_text(ui(app, "Send message - E-mail"))

    # Contrato: the client, its Bandeja de Salida, its Entrada, its flow.
    menu_link(page, ui(app, "Contracts")).click()
    page.get_by_role("link", name=ui(app, "New contract")).click()
    contract = page.locator("#contract-form")
    contract.get_by_label(ui(app, "Name"), exact=True).fill("Mantenimiento (journey)")
    contract.get_by_label(ui(app, "Client"), exact=True).select_option(label="Reformas Castellana SL")
    contract.get_by_label(ui(app, "Outbound e-mail mailbox (Bandeja de Salida)")).select_option(
        label="Salida Talleres <soporte@talleres.test>"
    )
    contract.get_by_label(re.compile(r"^Soporte Talleres \(")).check()
    contract.get_by_label(ui(app, "Flow"), exact=True).select_option(label="Atención por correo (journey)")
    contract.get_by_role("button", name=ui(app, "Save")).click()
    expect(alert(page)).to_contain_text(ui(app, "The contract has been saved."))

    # A customer writes to the Entrada's address (the mail server delivers it into the mailbox).
    message = EmailMessage()
    message["From"] = f"Lucía Martín <{CUSTOMER}>"
    message["To"] = ENTRADA
    message["Subject"] = "La caldera no enciende"
    message["Message-ID"] = "<caldera-1@cliente.test>"
    message.set_content("Buenos días:\n\nDesde ayer la caldera no enciende. ¿Pueden venir?\n\nLucía")
    dovecot.deliver(user, message.as_bytes())

    # "Leer ahora" instead of waiting for the polling interval; a worker reads it.
    page.goto(entrada_url)
    page.locator("#mailbox-buttons").get_by_role("button", name=ui(app, "Read now")).click()
    expect(alert(page)).to_contain_text(ui(app, "The mailbox will be read in a moment."))
    run_jobs()

    # The request appears in Solicitudes; its thread holds the customer's words and our acknowledgement.
    menu_link(page, ui(app, "Requests")).click()
    row = page.locator("#requests tr[data-request]").filter(has_text="La caldera no enciende")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Reformas Castellana SL")
    row.get_by_role("link", name="La caldera no enciende").click()
    thread = page.locator("#thread")
    expect(thread.locator("article[data-direction='in']")).to_contain_text("Desde ayer la caldera no enciende.")
    acknowledgement = thread.locator("article[data-origin='flow']")
    expect(acknowledgement).to_contain_text(CUSTOMER)
    expect(acknowledgement.locator("[data-delivery]")).to_have_text(upg(app, "message", "Sent"))

    # The administrator answers; the answer leaves through the Salida's server.
    reply = page.locator("#reply-form")
    expect(reply.get_by_label(ui(app, "To"), exact=True)).to_have_value(CUSTOMER)
    reply.get_by_label(ui(app, "Answer"), exact=True).fill("Mañana a las 9 pasa un técnico.")
    reply.get_by_role("button", name=ui(app, "Send")).click()
    expect(alert(page)).to_contain_text(ui(app, "The answer has been sent to %(to)s.", to=CUSTOMER))
    run_jobs()

    to_customer = [
        email.message_from_bytes(r.raw, policy=policy.default) for r in smtp_server.received if CUSTOMER in r.rcpt_tos
    ]
    assert len(to_customer) == 2, [m["Subject"] for m in to_customer]
    acknowledged, answered = to_customer
    assert acknowledged["Auto-Submitted"] == "auto-replied"
    assert answered["From"] == "Soporte Talleres <soporte@talleres.test>"
    assert answered["In-Reply-To"] == "<caldera-1@cliente.test>"
    assert answered["Subject"].endswith("Re: La caldera no enciende")
    assert "Mañana a las 9 pasa un técnico." in answered.get_body(("plain",)).get_content()
    assert all(r.login == SMTP_USER for r in smtp_server.received)
    page.reload()
    expect(page.locator("#thread article[data-origin='reply'] [data-delivery]")).to_have_text(
        upg(app, "message", "Sent")
    )
    # And the mailbox left the customer's message in "Procesados" on the server.
    assert dovecot.messages(user) == {} and len(dovecot.messages(user, "Procesados")) == 1
