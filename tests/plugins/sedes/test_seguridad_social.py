"""The Seguridad Social connector (WSCN) against the simulator over real HTTPS: the roles, paging
by the service's cursors, and acceptance with the acuse signed by the client's certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugins.sedes import pki
from plugins.sedes.connectors import connector_for
from plugins.sedes.connectors.seguridad_social import SeguridadSocialConnector
from plugins.sedes.connectors.seguridad_social import acuse as acuses
from plugins.sedes.connectors.seguridad_social import messages as m
from plugins.sedes.contract import (
    CertificateMismatch,
    Kind,
    Link,
    MissingClientData,
    NotConfirmed,
    SedeState,
)
from plugins.sedes.simulator import DehuSimulator
from tests.plugins.sedes.ss_helpers import ccc, naf, office_mailbox, own_mailbox

NIF = pki.dni(12345678)
OTHER = pki.dni(23456789)
OFFICE = pki.dni(34567890)
CCC = ccc(1234567)
OTHER_CCC = ccc(7654321)


@pytest.fixture
def connector(app):
    with app.app_context():
        yield SeguridadSocialConnector()


def _ago(**delta) -> datetime:
    return (datetime.now(UTC) - timedelta(**delta)).replace(microsecond=0)


def test_the_catalogue_names_the_connector_for_the_seguridad_social(app):
    from plugins.sedes.catalogue import ensure_catalogue, get_sede

    with app.app_context():
        ensure_catalogue()
        sede = get_sede("seg_social")
        assert sede.connector == "seguridad_social" and sede.needs_ssid
        assert sede.base_url.endswith(m.PATH)
        assert isinstance(connector_for(sede.connector), SeguridadSocialConnector)


def test_own_certificate_lists_its_notifications_as_propias(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF, codes=[CCC])
    made = _ago(hours=30)
    sent = dehu_simulator.ss_add_notification(
        NIF, CCC, procedimiento="Reclamación de deuda por cuotas", made_available_at=made, titular_name="ACME"
    )
    dehu_simulator.ss_add_notification(OTHER, OTHER_CCC, procedimiento="Of someone else")

    result = connector.list(ctx, _ago(days=2))

    assert result.complete
    [record] = result.records
    assert record.external_id == str(sent.codigo) and record.sede == "seg_social"
    assert record.kind is Kind.NOTIFICACION and record.state is SedeState.PENDIENTE
    assert record.link is Link.TITULAR and record.titular_nif == NIF and record.titular_name == "ACME"
    assert record.subject == record.procedure == "Reclamación de deuda por cuotas"
    assert record.made_available_at == made
    assert record.expires_at == made + timedelta(days=10)
    assert record.issuer_name == "Seguridad Social"
    assert record.raw["destinatario"] == CCC and record.raw["rol"] == "1"
    served = dehu_simulator.requests[-1]
    assert served.operation == m.CONSULTAR_LISTADO and served.fields["rol"] == "1"


def test_list_never_accepts(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    sent = dehu_simulator.ss_add_notification(NIF, CCC)

    connector.list(ctx, _ago(days=1))
    connector.list(ctx, _ago(days=1))

    assert dehu_simulator.ss_notification(sent.codigo).estado == m.ESTADO_PENDIENTE
    assert set(dehu_simulator.operations()) == {m.CONSULTAR_LISTADO}


def test_pages_follow_the_cursor_of_the_role_while_hay_mas(connector):
    with DehuSimulator(page_size=3) as simulator:
        ctx = own_mailbox(simulator, NIF)
        sent = [simulator.ss_add_notification(NIF, CCC, procedimiento=f"P{i}") for i in range(8)]

        result = connector.list(ctx, _ago(days=1))

        assert result.complete
        assert sorted(r.external_id for r in result.records) == sorted(str(n.codigo) for n in sent)
        cursors = [s.fields["codigoSiguienteNotificacionPropia"] for s in simulator.requests]
        assert cursors == ["0", str(sent[3].codigo), str(sent[6].codigo)]


def test_a_list_longer_than_the_budget_is_incomplete_and_the_next_sync_starts_again(connector):
    with DehuSimulator(page_size=2) as simulator:
        ctx = own_mailbox(simulator, NIF)
        for i in range(7):
            simulator.ss_add_notification(NIF, CCC, procedimiento=f"P{i}")
        connector.request_budget = 2
        since = _ago(days=3)

        result = connector.list(ctx, since)

        assert not result.complete and result.next_since == since
        assert len(result.records) == 4 and simulator.requests_served == 2


def test_the_office_reads_a_client_as_apoderado_and_as_autorizado_red_by_its_ccc_and_naf(connector, dehu_simulator):
    office = dehu_simulator.ca.persona_fisica(OFFICE)
    client_naf = naf(12345678)
    dehu_simulator.ss_enrol(
        office, nifs=[OFFICE], red_codes=[CCC, OTHER_CCC, client_naf], poderdantes={NIF: "CLIENTE SL"}
    )
    by_power = dehu_simulator.ss_add_notification(NIF, ccc(5555555), procedimiento="Apremio")
    by_red = dehu_simulator.ss_add_notification(pki.dni(45678901), CCC, procedimiento="Alta")
    by_naf = dehu_simulator.ss_add_notification(pki.dni(45678901), client_naf, tipo_destinatario="NAF")
    dehu_simulator.ss_add_notification(OTHER, OTHER_CCC, procedimiento="Another client of the office")
    dehu_simulator.ss_add_notification(OFFICE, ccc(9999999), procedimiento="The office's own")
    ctx = office_mailbox(dehu_simulator, NIF, office, OFFICE, codes=[CCC, client_naf])

    result = connector.list(ctx, _ago(days=1))

    links = {r.external_id: r.link for r in result.records}
    assert links == {
        str(by_power.codigo): Link.APODERADO,
        str(by_red.codigo): Link.AUTORIZADO_RED,
        str(by_naf.codigo): Link.AUTORIZADO_RED,
    }
    assert {r.titular_nif for r in result.records} == {NIF}
    asked = [(s.fields["rol"], s.fields.get("identificadorPoderdante")) for s in dehu_simulator.requests]
    assert asked == [("3", NIF), ("2", None)]


def test_an_office_that_is_only_apoderado_or_only_red_still_reads_its_clients(connector, dehu_simulator):
    apoderado = dehu_simulator.ca.persona_fisica(OFFICE)
    dehu_simulator.ss_enrol(apoderado, nifs=[OFFICE], poderdantes={NIF: "CLIENTE SL"})
    sent = dehu_simulator.ss_add_notification(NIF, CCC)
    assert [
        r.external_id
        for r in connector.list(office_mailbox(dehu_simulator, NIF, apoderado, OFFICE), _ago(days=1)).records
    ] == [str(sent.codigo)]

    red = dehu_simulator.ca.persona_fisica(pki.dni(56789012))
    dehu_simulator.ss_enrol(red, nifs=[pki.dni(56789012)], red_codes=[CCC])
    ctx = office_mailbox(dehu_simulator, NIF, red, pki.dni(56789012), codes=[CCC])
    assert [r.external_id for r in connector.list(ctx, _ago(days=1)).records] == [str(sent.codigo)]


def test_a_mailbox_without_ccc_or_naf_is_refused_before_any_traffic(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF, codes=[])

    with pytest.raises(MissingClientData) as raised:
        connector.list(ctx, _ago(days=1))

    assert "CCC or NAF" in str(raised.value.message) and not raised.value.retryable
    assert dehu_simulator.requests_served == 0


def test_a_certificate_of_someone_else_is_refused_unless_apoderado(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF, holder_nif=OTHER)

    with pytest.raises(CertificateMismatch):
        connector.list(ctx, _ago(days=1))
    assert dehu_simulator.requests_served == 0


def test_open_needs_confirmation(connector, dehu_simulator):
    ctx = own_mailbox(dehu_simulator, NIF)
    dehu_simulator.ss_add_notification(NIF, CCC)
    [record] = connector.list(ctx, _ago(days=1)).records

    with pytest.raises(NotConfirmed):
        connector.open(ctx, record, confirmed=False)

    assert set(dehu_simulator.operations()) == {m.CONSULTAR_LISTADO}


def test_open_signs_the_acuse_with_the_clients_certificate_and_brings_the_pdf_and_time_stamp(connector, dehu_simulator):
    issued = dehu_simulator.ca.persona_fisica(NIF)
    ctx = own_mailbox(dehu_simulator, NIF, issued=issued)
    sent = dehu_simulator.ss_add_notification(NIF, CCC, procedimiento="Providencia de apremio")
    [record] = connector.list(ctx, _ago(days=1)).records
    dehu_simulator.reset()

    opened = connector.open(ctx, record, confirmed=True)

    assert dehu_simulator.operations() == [m.SOLICITAR_ACUSE, m.ENVIAR_ACUSE]
    assert dehu_simulator.requests[0].fields["esDeAceptacion"] == "true"
    held = dehu_simulator.ss_notification(sent.codigo)
    assert held.estado == m.ESTADO_ACEPTADA
    [document] = opened.documents
    assert document.content == held.pdf and document.mime == "application/pdf"
    assert opened.acuse.mime == "application/xml" and opened.acuse.content == held.signed_acuse
    acuse, signer = acuses.verify(opened.acuse.content)
    assert signer == issued.cert and acuse.codigo == sent.codigo and acuse.tipo == m.ACUSE_ACEPTACION
    assert opened.record.state is SedeState.ACEPTADA
    assert opened.record.state_at == held.accepted_at
    assert opened.record.raw["sellado_tiempo"] == held.sellado
    assert [ref.reference for ref in opened.record.documents] == ["documento", "acuse"]

    again = connector.fetch_document(ctx, opened.record, opened.record.documents[0])
    assert again.content == held.pdf
    assert dehu_simulator.operations()[-1] == m.VER_ACEPTADA


def test_the_office_accepts_as_apoderado_naming_the_poderdante(connector, dehu_simulator):
    office = dehu_simulator.ca.persona_fisica(OFFICE)
    dehu_simulator.ss_enrol(office, nifs=[OFFICE], poderdantes={NIF: "CLIENTE SL"})
    sent = dehu_simulator.ss_add_notification(NIF, CCC)
    ctx = office_mailbox(dehu_simulator, NIF, office, OFFICE)
    [record] = connector.list(ctx, _ago(days=1)).records
    dehu_simulator.reset()

    opened = connector.open(ctx, record, confirmed=True)

    assert opened.record.state is SedeState.ACEPTADA
    assert [(s.fields["rol"], s.fields["identificadorPoderdante"]) for s in dehu_simulator.requests] == [
        ("3", NIF),
        ("3", NIF),
    ]
    assert acuses.verify(opened.acuse.content)[1] == office.cert
    assert dehu_simulator.ss_notification(sent.codigo).estado == m.ESTADO_ACEPTADA


def test_poderdantes_lists_who_empowered_the_certificate(connector, dehu_simulator):
    office = dehu_simulator.ca.persona_fisica(OFFICE)
    dehu_simulator.ss_enrol(office, nifs=[OFFICE], poderdantes={NIF: "CLIENTE SL", OTHER: "OTRO SA"})
    ctx = office_mailbox(dehu_simulator, NIF, office, OFFICE)

    assert connector.poderdantes(ctx) == sorted([(NIF, "CLIENTE SL"), (OTHER, "OTRO SA")])
    assert dehu_simulator.operations() == [m.SOLICITAR_PODERDANTES]


def test_the_demo_simulator_keeps_its_seguridad_social_state_across_restarts(connector, tmp_path):
    with DehuSimulator(state_dir=tmp_path, auto_enrol=True, demo_notifications=2) as simulator:
        ctx = own_mailbox(simulator, NIF, enrol=False)
        first = connector.list(ctx, _ago(days=30)).records
        connector.open(ctx, first[0], confirmed=True)

    with DehuSimulator(state_dir=tmp_path, auto_enrol=True, demo_notifications=2) as simulator:
        ctx = own_mailbox(simulator, NIF, enrol=False)
        again = {r.external_id: r.state for r in connector.list(ctx, _ago(days=30)).records}

    assert len(first) == 2 and set(again) == {r.external_id for r in first}
    assert again[first[0].external_id] is SedeState.ACEPTADA


def test_the_offices_red_list_is_read_once_for_all_its_clients_of_a_sweep(connector, dehu_simulator):
    office = dehu_simulator.ca.persona_fisica(OFFICE)
    clients = {NIF: CCC, OTHER: OTHER_CCC}
    dehu_simulator.ss_enrol(office, nifs=[OFFICE], red_codes=list(clients.values()), poderdantes={NIF: "CLIENTE SL"})
    sent = {nif: dehu_simulator.ss_add_notification(nif, code) for nif, code in clients.items()}

    found = {
        nif: [
            r.external_id
            for r in connector.list(
                office_mailbox(dehu_simulator, nif, office, OFFICE, codes=[code]), _ago(days=1)
            ).records
        ]
        for nif, code in clients.items()
    }

    assert found == {nif: [str(n.codigo)] for nif, n in sent.items()}
    asked = [(s.fields["rol"], s.fields.get("identificadorPoderdante"), s.fault) for s in dehu_simulator.requests]
    assert asked == [("3", NIF, None), ("2", None, None), ("3", OTHER, m.E_NO_POWER)]

    connector.shared_list_ttl = 0  # a later sweep reads the list again
    connector.list(office_mailbox(dehu_simulator, NIF, office, OFFICE, codes=[CCC]), _ago(days=1))
    assert [s.fields["rol"] for s in dehu_simulator.requests][-1] == "2"


def test_the_office_accepts_as_autorizado_red(connector, dehu_simulator):
    office = dehu_simulator.ca.persona_fisica(OFFICE)
    dehu_simulator.ss_enrol(office, nifs=[OFFICE], red_codes=[CCC])
    sent = dehu_simulator.ss_add_notification(NIF, CCC)
    ctx = office_mailbox(dehu_simulator, NIF, office, OFFICE, codes=[CCC])
    [record] = connector.list(ctx, _ago(days=1)).records
    dehu_simulator.reset()

    opened = connector.open(ctx, record, confirmed=True)

    assert record.link is Link.AUTORIZADO_RED and opened.record.state is SedeState.ACEPTADA
    assert [(s.fields["rol"], s.fields.get("identificadorPoderdante")) for s in dehu_simulator.requests] == [
        ("2", None),
        ("2", None),
    ]
    assert dehu_simulator.ss_notification(sent.codigo).accepted_by is not None


def test_a_notification_accepted_elsewhere_is_listed_with_its_pdf_to_fetch_without_new_effect(
    connector, dehu_simulator
):
    ctx = own_mailbox(dehu_simulator, NIF)
    accepted = dehu_simulator.ss_add_notification(NIF, CCC, estado=m.ESTADO_ACEPTADA)
    pending = dehu_simulator.ss_add_notification(NIF, CCC)

    records = {r.external_id: r for r in connector.list(ctx, _ago(days=1)).records}

    assert records[str(pending.codigo)].documents == ()
    record = records[str(accepted.codigo)]
    assert record.state is SedeState.ACEPTADA
    [ref] = record.documents
    document = connector.fetch_document(ctx, record, ref)
    assert document.content == accepted.pdf and dehu_simulator.operations()[-1] == m.VER_ACEPTADA
    assert m.SOLICITAR_ACUSE not in dehu_simulator.operations()
