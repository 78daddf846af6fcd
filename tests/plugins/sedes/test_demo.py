"""The demo `make run` brings up: the catalogue's DEHú points at the simulator the demo starts, the
demo clients hold certificates of its CA and a DEHú mailbox each, and pressing "Consultar buzón"
brings the simulator's notifications. Loaded once."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

from sqlalchemy import select

from tests.conftest import login


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _mailboxes(app) -> list[tuple[str, str]]:
    from core.clients.models import Client
    from core.extensions import db
    from plugins.sedes.models import SedeMailbox
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context():
        tenant_id = db.session.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
        with tenant_context(tenant_id):
            return sorted(
                db.session.execute(
                    select(Client.name, SedeMailbox.sede_code).join(Client, Client.id == SedeMailbox.client_id)
                ).all()
            )


def _in_demo(app, stmt):
    from core.extensions import db
    from tenants.context import tenant_context
    from tenants.models import Tenant

    with app.app_context():
        tenant_id = db.session.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
        with tenant_context(tenant_id):
            return list(db.session.scalars(stmt))


def _mailbox_ids(app, sede: str) -> list[int]:
    from plugins.sedes.models import SedeMailbox

    return _in_demo(app, select(SedeMailbox.id).where(SedeMailbox.sede_code == sede))


def _notification_count(app, sede: str) -> int:
    from plugins.sedes.models import SedeNotification

    return len(_in_demo(app, select(SedeNotification.id).where(SedeNotification.sede_code == sede)))


def test_the_demo_brings_notifications_from_its_simulator_at_the_press_of_consultar_buzon(app, monkeypatch, run_jobs):
    from core.extensions import db
    from plugins.sedes import demo
    from plugins.sedes.models import Sede
    from plugins.sedes.simulator import DehuSimulator

    port = _free_port()
    monkeypatch.setenv("VENTANILLA_DEMO_DEHU_PORT", str(port))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert f"sede dehu points at the DEHú simulator https://127.0.0.1:{port}" in first.output
    assert _mailboxes(app) == [
        ("Marta Soler Ibáñez", "dehu"),
        ("Marta Soler Ibáñez", "seg_social"),
        ("Reformas Castellana SL", "dehu"),
        ("Talleres del Turia SL", "dehu"),
    ]
    with app.app_context():
        sede = db.session.get(Sede, "dehu")
        assert sede.ca_certificates.startswith("-----BEGIN CERTIFICATE-----")

    # What make run starts (the demo_services hook), here in-process on the same state and port.
    service = next(s for s in demo.services(app) if s.name == "sedes")
    assert "--demo-notifications" in service.argv and str(port) in service.argv
    with DehuSimulator(
        state_dir=demo.state_dir(app), port=port, auto_enrol=True, demo_notifications=demo.NOTIFICATIONS_PER_NIF
    ) as simulator:
        staff = app.test_client()
        login(staff, "demo", "operador@demo.test", "demo-staff")
        clients = staff.get("/demo/clients/").get_data(as_text=True)
        client_id = re.search(r'/demo/clients/(\d+)">Talleres del Turia SL', clients).group(1)
        tab = staff.get(f"/demo/clients/{client_id}?tab=sedes_mailboxes").get_data(as_text=True)
        action = re.search(r'action="(/demo/sedes/notifications/sync/mailbox/\d+)"', tab).group(1)
        run_page = staff.post(action).headers["Location"]
        run_jobs()
        page = staff.get(run_page).get_data(as_text=True)
        assert simulator.requests_served >= 1
    found = re.findall(r'/demo/sedes/notifications/\d+">([^<]+)</a>', page)
    assert len(found) == demo.NOTIFICATIONS_PER_NIF

    # Marta's Seguridad Social mailbox, read with her NAF from the same simulator (WSCN).
    assert f"sede seg_social points at the DEHú simulator https://127.0.0.1:{port}" in first.output
    (mailbox_id,) = _mailbox_ids(app, "seg_social")
    with DehuSimulator(
        state_dir=demo.state_dir(app), port=port, auto_enrol=True, demo_notifications=demo.NOTIFICATIONS_PER_NIF
    ) as simulator:
        staff.post(f"/demo/sedes/notifications/sync/mailbox/{mailbox_id}")
        run_jobs()
        assert set(simulator.operations()) == {"consultarListadoNotificaciones"}
    assert _notification_count(app, "seg_social") == demo.NOTIFICATIONS_PER_NIF

    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code == 0 and again.output.strip() == "demo data already loaded"
    assert len(_mailboxes(app)) == 4


def test_the_demo_board_reads_edicts_naming_its_clients_from_the_boe_simulator_make_run_starts(
    app, monkeypatch, run_jobs
):
    from plugins.sedes import demo

    port = _free_port()
    monkeypatch.setenv("VENTANILLA_DEMO_BOE_PORT", str(port))
    monkeypatch.setenv("VENTANILLA_DEMO_DEHU_PORT", str(_free_port()))
    loaded = app.test_cli_runner().invoke(args=["demo", "load"])
    assert loaded.exit_code == 0, loaded.output
    assert f"the TEU board reads the BOE simulator https://127.0.0.1:{port}" in loaded.output

    # The process make run starts, as it starts it.
    service = next(s for s in demo.services(app) if s.name == "sedes-teu")
    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(service.argv, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith(f"BOE simulator listening on https://127.0.0.1:{port}")
        staff = app.test_client()
        login(staff, "demo", "operador@demo.test", "demo-staff")
        started = staff.post("/demo/sedes/teu/search")
        assert started.status_code == 302
        run_jobs()
    finally:
        process.terminate()
        process.wait(timeout=10)
    named = {tax_id for tax_id, *_ in demo.HOLDERS}
    assert _notification_count(app, "teu") >= len(named)
    assert len(_mailboxes(app)) == 4  # the board needs no mailbox
