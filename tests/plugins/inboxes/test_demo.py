"""The demo: ``flask demo load`` links an Entrada on the demo's Dovecot, a Salida on its SMTP relay, a
flow and a contract; with the servers ``make run`` starts, a newcomer sees requests appear and the
acknowledgements reach the customers' mailbox."""

from __future__ import annotations

import sys

import pytest

from plugins.inboxes.dovecot import DEMO_USER, free_ports, start_demo
from plugins.inboxes.models import Contract, Mailbox, Request
from tests.conftest import require
from tests.plugins.inboxes.conftest import rows, sync_now


@pytest.fixture
def demo_ports(monkeypatch):
    """Free ports for this run's demo servers (the usual ones may be taken by a `make run`)."""
    imap, imaps, pop3, pop3s, smtp = free_ports(5)
    for name, port in (("IMAP", imap), ("IMAPS", imaps), ("POP3", pop3), ("POP3S", pop3s), ("SMTP", smtp)):
        monkeypatch.setenv(f"VENTANILLA_DEMO_{name}_PORT", str(port))
    return {"imaps": imaps, "smtp": smtp}


def test_the_demo_tenant_reads_its_demo_mailbox_and_answers_through_the_relay(app, demo_ports, run_jobs):
    from aiosmtpd.controller import Controller

    import core.demo
    from plugins.inboxes.demo_server import CUSTOMERS_PASSWORD, CUSTOMERS_USER, Relay
    from plugins.inboxes.dovecot import find_dovecot
    from tenants.models import Tenant

    require(find_dovecot() is not None, "Dovecot is not installed")
    with app.app_context():
        lines = core.demo.load()
        assert any(f"inbound mailbox {DEMO_USER} created" in line for line in lines)
        assert core.demo.load() == ["demo data already loaded"]
        from core.extensions import db

        demo = db.session.query(Tenant).filter_by(slug="demo").one()
    assert rows(app, demo, Contract, "name") == [("Mantenimiento Talleres del Turia",)]
    [(inbound, port)] = rows(app, demo, Mailbox, "id", "port", order=Mailbox.id)[:1]
    assert port == demo_ports["imaps"]

    server = start_demo(app.config["INSTANCE_PATH"])
    server.add_user(CUSTOMERS_USER, CUSTOMERS_PASSWORD)
    relay = Controller(Relay(server), hostname="127.0.0.1", port=demo_ports["smtp"])
    relay.start()
    try:
        summary = sync_now(app, demo, inbound)
        assert summary["created"] == 3 and "error" not in summary
        run_jobs()
        acknowledgements = server.messages(CUSTOMERS_USER)
        assert len(acknowledgements) == 3
        assert all(b"Hemos recibido su solicitud" in m["raw"] for m in acknowledgements.values())
        # A customer writes again through the relay: it arrives in the Entrada and becomes a request.
        from plugins.inboxes.demo_server import send

        send("Otra consulta", "¿Pueden llamarme?")
        assert sync_now(app, demo, inbound)["created"] == 1
    finally:
        relay.stop()
        server.cleanup()
        import shutil

        shutil.rmtree(server.root, ignore_errors=True)
    assert len(rows(app, demo, Request, "id")) == 4


def test_make_run_starts_the_demo_servers_or_says_how_to_install_dovecot(app):
    from plugins.inboxes.dovecot import find_dovecot

    with app.app_context():
        services = [
            s for s in app.extensions["ventanilla_plugins"].call_all("demo_services", app=app) if s.name == "inboxes"
        ]
    [service] = services
    if find_dovecot() is None:
        assert "apt-get install -y dovecot-imapd dovecot-pop3d" in service.lines[0]
    else:
        assert service.argv[:3] == (sys.executable, "-m", "plugins.inboxes.demo_server")
        assert any(DEMO_USER in line for line in service.lines)
