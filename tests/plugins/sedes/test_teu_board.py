"""The daily TEU job end to end: the cron's sweep on a real worker reads the day from the BOE
simulator and turns each client named in an edict into a notification of kind TEU, once."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from fpdf import FPDF
from sqlalchemy import select

from core.api.testing import login
from plugins.sedes import pki
from tests.plugins.sedes.sync_helpers import in_tenant

PERSON = "12345678Z"
COMPANY = "B12345674"
UNTICKED = pki.dni(44556677)
INACTIVE = "X1234567L"
NOT_NAMED = pki.dni(60708090)  # named by no edict (realistic_day names 50607080)
TRAFFIC = "Jefatura Provincial de Tráfico de Madrid"
AEAT = "Agencia Estatal de Administración Tributaria"


@pytest.fixture(autouse=True)
def _a_new_boe_each_test(app):
    """What an earlier test's BOE named is not remembered (the simulator's port may come again)."""
    shutil.rmtree(Path(app.config["INSTANCE_PATH"]) / "sedes" / "teu", ignore_errors=True)


def point_board_at(app, boe, **values) -> None:
    """The operator's catalogue: the TEU's base URL is the simulator's, its CA trusted."""
    from core.extensions import db
    from plugins.sedes.teu.board import configure

    with app.app_context():
        sede = configure(boe.url, boe.ca_pem)
        for name, value in values.items():
            setattr(sede, name, value)
        db.session.commit()


def traffic_table_pdf(rows) -> bytes:
    """A traffic edict as the Jefatura sends it: a table whose narrow IDENTIF column splits numbers."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(0, 5, "Notificación de resoluciones sancionadoras (arts. 44 y 46 Ley 39/2015).")
    with pdf.table(col_widths=(30, 16, 30, 20), text_align="LEFT") as grid:
        for row in [("EXPEDIENTE", "IDENTIF", "LOCALIDAD", "CUANTIA"), *rows]:
            cells = grid.row()
            for value in row:
                cells.cell(value)
    return bytes(pdf.output())


def run_daily_job(app, run_jobs) -> int:
    """What the cron does each morning: a ``sedes.teu_board`` run per tenant with the plugin, run by
    a real worker. Returns how many runs started."""
    from core.jobs.runner import fan_out

    with app.app_context():
        started = fan_out("sedes.teu_board")
    run_jobs()
    return started


def search_now(app, tenant, days) -> dict:
    from core.extensions import db
    from plugins.sedes.teu.board import search
    from tenants.models import Tenant

    with in_tenant(app, tenant.id):
        return search(db.session.get(Tenant, tenant.id), days=days)


def teu_rows(app, tenant) -> list:
    from core.extensions import db
    from plugins.sedes.models import SedeNotification

    with in_tenant(app, tenant.id):
        return [
            (n.client_id, n.external_id, n.kind, n.sede_state, n.issuer_name, n.titular_nif, n.deadline_on)
            for n in db.session.scalars(
                select(SedeNotification).where(SedeNotification.sede_code == "teu").order_by(SedeNotification.id)
            )
        ]


def office(app, factory, name: str):
    """An office with the clients the day's edicts name, and those they must leave alone."""
    from core.extensions import db
    from plugins.sedes.models import SedesClientData

    tenant = factory.tenant(name, language="en")
    factory.user(tenant, f"jefa@{name}.test", role_key="manager", name="Jefa")
    clients = {
        PERSON: factory.client(tenant, "Ana Ruiz", PERSON),
        COMPANY: factory.client(tenant, "Construcciones Levante SL", COMPANY),
        UNTICKED: factory.client(tenant, "Sin tablón SL", UNTICKED),
        INACTIVE: factory.client(tenant, "Baja SL", INACTIVE, active=False),
        NOT_NAMED: factory.client(tenant, "Tranquila SL", NOT_NAMED),
    }
    with in_tenant(app, tenant.id):
        # "Habilitado para consultar notificaciones en tablón" unticked for one client.
        db.session.add(SedesClientData(client_id=clients[UNTICKED], receives_electronic=False, checks_board=False))
        db.session.commit()
    return tenant, clients


def test_the_daily_job_makes_one_teu_notification_per_client_named_and_never_twice(
    app, factory, client, boe_simulator, run_jobs
):
    from core.api import read_stored
    from core.extensions import db
    from plugins.sedes import deadlines
    from plugins.sedes.models import SedeNotification, SedeNotificationDocument
    from tenants import licensing
    from tenants.models import Tenant

    acme, acme_clients = office(app, factory, "acme")
    beta = factory.tenant("beta", language="en")
    beta_person = factory.client(beta, "Ana Ruiz (otra gestoría)", PERSON)
    gamma = factory.tenant("gamma", language="en")
    factory.client(gamma, "Ana Ruiz (sin tablón en la licencia)", PERSON)
    with app.app_context():
        licensing.set_licence(db.session.get(Tenant, gamma.id), "sedes", True, limits={"sedes": ["dehu"]})
    point_board_at(app, boe_simulator)

    today = deadlines.madrid_today()
    yesterday = today - timedelta(days=1)
    fines = traffic_table_pdf(
        [
            ("280123456789", "123456\n78Z", "MADRID", "200,00"),  # the client, split over two lines
            ("280123456790", UNTICKED, "GETAFE", "90,00"),
            ("280123456791", INACTIVE, "ALCORCON", "90,00"),
            ("280123456792", "60708091", "SEVILLA", "90,00"),  # a near miss of NOT_NAMED
        ]
    )
    traffic = boe_simulator.add_announcement(
        today,
        department="MINISTERIO DEL INTERIOR",
        issuer=TRAFFIC,
        title="Anuncio de la Jefatura Provincial de Tráfico de Madrid de notificación de sanciones.",
        pdf=fines,
    )
    citation = boe_simulator.add_announcement(
        yesterday,
        department="MINISTERIO DE HACIENDA",
        issuer=AEAT,
        title="Anuncio de citación para ser notificado por comparecencia.",
        text=["Obligado tributario N.I.F. B-12345674, comprobación limitada IVA 2025. Plazo de quince días."],
    )
    boe_simulator.add_announcement(
        today,
        section="ADMINISTRACIÓN LOCAL",
        issuer="Ayuntamiento de Sevilla",
        title="Anuncio de baja de oficio en el Padrón.",
        text=["Interesado con documento 12345678A (otra persona), expediente 2026/12345678."],
    )

    assert run_daily_job(app, run_jobs) == 3

    deadline_today = today + timedelta(days=15)  # the catalogue's 15 natural days from publication
    deadline_yesterday = yesterday + timedelta(days=15)
    expected = [
        (acme_clients[COMPANY], f"{citation}:{COMPANY}", "teu", "publicada_teu", AEAT, COMPANY, deadline_yesterday),
        (acme_clients[PERSON], f"{traffic}:{PERSON}", "teu", "publicada_teu", TRAFFIC, PERSON, deadline_today),
    ]
    assert sorted(teu_rows(app, acme)) == sorted(expected)
    assert teu_rows(app, beta) == [
        (beta_person, f"{traffic}:{PERSON}", "teu", "publicada_teu", TRAFFIC, PERSON, deadline_today)
    ]
    assert teu_rows(app, gamma) == []  # its licence leaves the board out

    # The edict's PDF is kept through core's files, once per office, and staff download it.
    with in_tenant(app, acme.id):
        person = db.session.scalar(select(SedeNotification).where(SedeNotification.external_id.like(f"{traffic}:%")))
        (document,) = db.session.scalars(
            select(SedeNotificationDocument).where(SedeNotificationDocument.notification_id == person.id)
        ).all()
        assert document.name == f"{traffic}.pdf"
        assert read_stored(document.file) == fines
        person_id, document_id = person.id, document.id
    login(client, "acme", "jefa@acme.test")
    page = client.get(f"/acme/sedes/notifications/{person_id}").get_data(as_text=True)
    assert TRAFFIC in page and f"{traffic}:{PERSON}" in page
    assert 'id="open-form"' not in page  # nothing to open at a sede: the edict is the notification
    download = client.get(f"/acme/sedes/notifications/{person_id}/documents/{document_id}")
    assert download.status_code == 200 and download.data == fines

    # The BOE was read once for the three offices: each day's index and PDFs by the first run, then
    # only the PDFs of each office's own matches, to keep them.
    requests = boe_simulator.requests
    assert [p for p in requests if p.endswith("index.php")] == [
        f"/boe_n/dias/{yesterday:%Y/%m/%d}/index.php",
        f"/boe_n/dias/{today:%Y/%m/%d}/index.php",
    ]
    assert requests.count(f"/boe_n/dias/{today:%Y/%m/%d}/pdfs/{traffic}.pdf") == 3  # read, acme's, beta's

    # A run again reads nothing new and creates nothing; later, it asks for the indexes, not the PDFs.
    served = len(boe_simulator.requests)
    run_daily_job(app, run_jobs)
    assert boe_simulator.requests[served:] == []
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1), tick=True):
        run_daily_job(app, run_jobs)
    assert all(path.endswith("/index.php") for path in boe_simulator.requests[served:])
    assert len(boe_simulator.requests) == served + 2  # the first office's run; the next one finds them fresh
    assert sorted(teu_rows(app, acme)) == sorted(expected)
    assert len(teu_rows(app, beta)) == 1


def test_a_teu_notification_is_alerted_before_its_deadline_until_someone_reads_it(app, factory, boe_simulator, outbox):
    from core.auth.models import User
    from core.extensions import db
    from plugins.sedes import deadlines, notifications
    from plugins.sedes.models import SedeNotification
    from tenants.models import Tenant

    acme, _clients = office(app, factory, "acme")
    point_board_at(app, boe_simulator, deadline_days=10)
    today = deadlines.madrid_today()
    boe_simulator.add_announcement(
        today, issuer=AEAT, title="Citación para comparecer.", text=[f"N.I.F. {COMPANY} y DNI {PERSON}."]
    )
    assert search_now(app, acme, [today])["new"] == 2
    with in_tenant(app, acme.id):
        tenant = db.session.get(Tenant, acme.id)
        assert notifications.send_deadline_alerts(tenant, today=today + timedelta(days=5)) == {"alerts": 2, "emails": 2}
        assert notifications.send_deadline_alerts(tenant, today=today + timedelta(days=5)) == {"alerts": 0, "emails": 0}
    mails = outbox()
    assert sorted(m.subject for m in mails) == [
        "5 days left on an edict of the TEU naming Ana Ruiz",
        "5 days left on an edict of the TEU naming Construcciones Levante SL",
    ]
    assert all("of the Tablón Edictal Único names" in m.text and m.to == "jefa@acme.test" for m in mails)
    with in_tenant(app, acme.id):
        tenant = db.session.get(Tenant, acme.id)
        manager = db.session.scalar(select(User).where(User.email == "jefa@acme.test"))
        read = db.session.scalar(select(SedeNotification).where(SedeNotification.titular_nif == PERSON))
        notifications.mark_read(manager, read)
        # Two days before: only the one nobody has read yet.
        assert notifications.send_deadline_alerts(tenant, today=today + timedelta(days=8)) == {"alerts": 1, "emails": 1}
        counts = notifications.widget_counts(manager, today + timedelta(days=4))
        assert counts["week"] == 1


def test_a_board_that_does_not_answer_leaves_the_day_for_the_next_run(app, factory, boe_simulator):
    from plugins.sedes import deadlines

    acme, _clients = office(app, factory, "acme")
    point_board_at(app, boe_simulator)
    today = deadlines.madrid_today()
    boe_simulator.add_announcement(today, issuer=AEAT, title="Citación.", text=[f"DNI {PERSON}."])
    boe_simulator.unavailable(times=1)
    first = search_now(app, acme, [today])
    second = search_now(app, acme, [today])
    assert (first["unread_days"], first["new"]) == (1, 0)
    assert (second["unread_days"], second["new"]) == (0, 1)


def test_staff_who_may_check_mailboxes_search_the_teu_now(app, factory, client, boe_simulator, run_jobs):
    from plugins.sedes import deadlines

    acme, clients = office(app, factory, "acme")
    factory.user(acme, "gestor@acme.test", role_key="operator", name="Gestor")
    factory.user(acme, "mirona@acme.test", permissions=["sedes.notifications:view"], name="Mirona")
    point_board_at(app, boe_simulator)
    boe_simulator.realistic_day(deadlines.madrid_today(), [PERSON, COMPANY])

    login(client, "acme", "mirona@acme.test")
    assert 'id="teu-search"' not in client.get("/acme/sedes/notifications/").get_data(as_text=True)
    assert client.post("/acme/sedes/teu/search").status_code == 403

    client = app.test_client()
    login(client, "acme", "gestor@acme.test")
    assert 'id="teu-search"' in client.get("/acme/sedes/notifications/").get_data(as_text=True)
    assert client.post("/acme/sedes/teu/search").status_code == 302
    again = client.post("/acme/sedes/teu/search", follow_redirects=True).get_data(as_text=True)
    assert "already being searched" in again  # one search at a time
    run_jobs()
    assert sorted((row[0], row[5]) for row in teu_rows(app, acme)) == sorted(
        [(clients[PERSON], PERSON), (clients[COMPANY], COMPANY)]
    )
    # The search was for the whole office: who sees them is still each client's groups' business.
    assert "Jefatura Provincial de Tráfico de Madrid" not in client.get("/acme/sedes/notifications/").get_data(
        as_text=True
    )
    manager = app.test_client()
    login(manager, "acme", "jefa@acme.test")
    page = manager.get("/acme/sedes/notifications/?kind=teu").get_data(as_text=True)
    assert "Jefatura Provincial de Tráfico de Madrid" in page and "Edict (TEU)" in page


def test_the_demo_runs_the_boe_simulator_as_a_process(app, factory, tmp_path):
    """``python -m plugins.sedes.simulator.teu`` as the demo starts it: today's edicts name the NIFs."""
    import signal
    import subprocess
    import sys

    from core.config import PROJECT_ROOT
    from plugins.sedes import deadlines
    from plugins.sedes.simulator.teu import BoeSimulator

    acme, _clients = office(app, factory, "acme")
    state = tmp_path / "boe"
    ca_pem = BoeSimulator.authority(state).cert_pem.decode()  # what the demo trusts before it starts
    process = subprocess.Popen(
        [sys.executable, "-m", "plugins.sedes.simulator.teu", "--state-dir", str(state), "--nifs", f"{PERSON}"],
        cwd=str(PROJECT_ROOT),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("BOE simulator listening on https://127.0.0.1:"), line
        url = line.split()[4]
        with app.app_context():
            from plugins.sedes.teu.board import configure

            configure(url, ca_pem)
        summary = search_now(app, acme, [deadlines.madrid_today()])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert summary["announcements"] >= 3 and summary["new"] == 1
    assert [row[5] for row in teu_rows(app, acme)] == [PERSON]


def test_an_announcement_published_later_in_the_day_is_found_by_the_next_run(app, factory, boe_simulator):
    """What a day's PDFs name is remembered for the index as it was: a changed index is read again."""
    from plugins.sedes import deadlines

    acme, _clients = office(app, factory, "acme")
    point_board_at(app, boe_simulator)
    today = deadlines.madrid_today()
    boe_simulator.add_announcement(today, issuer=AEAT, title="Citación de las 8:00.", text=[f"DNI {PERSON}."])
    assert search_now(app, acme, [today])["new"] == 1
    assert search_now(app, acme, [today])["new"] == 0
    boe_simulator.add_announcement(today, issuer=TRAFFIC, title="Sanciones de las 12:00.", text=[f"NIF {COMPANY}."])
    assert search_now(app, acme, [today])["new"] == 0  # the index was read a moment ago
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1), tick=True):
        summary = search_now(app, acme, [today])
    assert summary == {"announcements": 2, "unread_days": 0, "unread_pdfs": 0, "new": 1}
    assert sorted(row[5] for row in teu_rows(app, acme)) == sorted([COMPANY, PERSON])


def test_a_day_without_a_supplement_is_asked_for_once_for_every_office(app, factory, boe_simulator, run_jobs):
    from plugins.sedes import deadlines

    office(app, factory, "acme")
    office(app, factory, "beta")
    point_board_at(app, boe_simulator)
    today = deadlines.madrid_today()
    yesterday = today - timedelta(days=1)

    assert run_daily_job(app, run_jobs) == 2
    assert boe_simulator.requests == [
        f"/boe_n/dias/{yesterday:%Y/%m/%d}/index.php",
        f"/boe_n/dias/{today:%Y/%m/%d}/index.php",
    ], "the second office's run learns from the first that neither day has a supplement yet"
