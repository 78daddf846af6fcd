"""A Seguridad Social mailbox end to end, on a real RQ worker against the WSCN simulator: the sync
reads it with the client's CCC/NAF, says so when they are missing, and comparecencia after the
user's confirmation accepts it with the signed acuse and keeps the notification's PDF."""

from __future__ import annotations

from plugins.sedes import pki
from plugins.sedes.connectors.seguridad_social import messages as m
from tests.conftest import login
from tests.plugins.sedes.ss_helpers import ccc
from tests.plugins.sedes.sync_helpers import (
    in_tenant,
    mailbox_row,
    make_mailbox,
    notifications_of,
    point_catalogue_at,
    store_certificate,
)

NIF = pki.dni(12345678)
CCC = ccc(1234567)


def office(app, factory, simulator, *, codes=(CCC,)):
    from core.extensions import db
    from plugins.sedes.models import SsidCode

    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    point_catalogue_at(app, simulator, "seg_social")
    client_id = factory.client(tenant, "Juan Español", NIF)
    with in_tenant(app, tenant.id):
        for code in codes:
            db.session.add(SsidCode(client_id=client_id, kind="ccc", code=code))
        db.session.commit()
    issued = simulator.ca.persona_fisica(NIF)
    simulator.ss_enrol(issued, nifs=[NIF])
    certificate = store_certificate(app, tenant, client_id, issued)
    mailbox = make_mailbox(app, tenant, client_id, certificate, sede="seg_social")
    return tenant, client_id, mailbox


def test_consultar_buzon_brings_the_seguridad_social_notifications_and_opening_accepts_them(
    app, factory, client, dehu_simulator, run_jobs
):
    from core.extensions import db
    from plugins.sedes.models import SedeNotification

    tenant, _client_id, mailbox = office(app, factory, dehu_simulator)
    sent = dehu_simulator.ss_add_notification(NIF, CCC, procedimiento="Providencia de apremio")
    login(client, "acme", "jefa@acme.test")

    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()

    assert mailbox_row(app, tenant, mailbox)["last_result"] == "ok"
    [(nid, external_id, sede, state, subject)] = notifications_of(
        app, tenant, "id", "external_id", "sede_code", "sede_state", "subject"
    )
    assert (external_id, sede, state, subject) == (
        str(sent.codigo),
        "seg_social",
        "pendiente",
        "Providencia de apremio",
    )
    assert set(dehu_simulator.operations()) == {m.CONSULTAR_LISTADO}

    page = client.post(f"/acme/sedes/notifications/{nid}/open", data={"confirm": "yes"}, follow_redirects=True)
    assert "The notification has been opened at the sede" in page.get_data(as_text=True)
    assert dehu_simulator.ss_notification(sent.codigo).estado == m.ESTADO_ACEPTADA
    with in_tenant(app, tenant.id):
        row = db.session.get(SedeNotification, nid)
        assert row.sede_state == "aceptada"
        kept = {(d.name, d.is_acuse) for d in row.documents}
        document = next(d for d in row.documents if not d.is_acuse)
        assert document.file_id is not None
    assert kept == {(f"{sent.codigo}.pdf", False), (f"acuse-{sent.codigo}.xml", True)}
    download = client.get(f"/acme/sedes/notifications/{nid}/documents/{document.id}")
    assert download.status_code == 200 and download.data == dehu_simulator.ss_notification(sent.codigo).pdf


def test_a_seguridad_social_mailbox_without_ccc_or_naf_says_so_and_asks_nothing(
    app, factory, client, dehu_simulator, run_jobs
):
    tenant, _client_id, mailbox = office(app, factory, dehu_simulator, codes=())
    dehu_simulator.ss_add_notification(NIF, CCC)
    login(client, "acme", "jefa@acme.test")

    client.post(f"/acme/sedes/notifications/sync/mailbox/{mailbox}")
    run_jobs()

    row = mailbox_row(app, tenant, mailbox)
    assert row["last_result"] == "error" and "CCC or NAF" in row["last_error"]
    assert dehu_simulator.requests_served == 0 and notifications_of(app, tenant) == []
