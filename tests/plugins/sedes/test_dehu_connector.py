"""The DEHú connector against the simulator over real HTTPS: listing, comparecencia, documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.api import hookimpl
from core.plugins import host
from plugins.sedes import pki
from plugins.sedes.connectors import connector_for, connectors
from plugins.sedes.connectors.dehu import DehuConnector
from plugins.sedes.contract import Kind, Link, NotConfirmed, SedeState, merged
from tests.plugins.sedes.dehu_helpers import mailbox

NIF = pki.dni(12345678)


@pytest.fixture
def in_app(app):
    with app.app_context():
        yield


@pytest.fixture
def connector(in_app):
    return DehuConnector()


def _ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def test_connector_is_found_by_its_catalogue_code(in_app):
    assert isinstance(connector_for("dehu"), DehuConnector)


def test_list_brings_pending_notifications_with_their_fields(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    made = _ago(hours=5).replace(microsecond=0)
    sent = dehu_simulator.add_notification(
        NIF,
        subject="Requerimiento IRPF 2025",
        issuer_code="EA0028512",
        issuer_name="Agencia Estatal de Administración Tributaria",
        made_available_at=made,
        procedure="123456",
    )
    dehu_simulator.add_notification(NIF, subject="Aviso", kind="comunicacion", made_available_at=_ago(hours=1))
    dehu_simulator.add_notification(pki.dni(7), subject="Of someone else", made_available_at=_ago(hours=1))

    result = connector.list(ctx, _ago(days=2))

    assert result.complete
    by_subject = {r.subject: r for r in result.records}
    assert set(by_subject) == {"Requerimiento IRPF 2025", "Aviso"}
    record = by_subject["Requerimiento IRPF 2025"]
    assert record.external_id == sent.external_id
    assert record.kind is Kind.NOTIFICACION and by_subject["Aviso"].kind is Kind.COMUNICACION
    assert record.state is SedeState.PENDIENTE
    assert record.issuer_code == "EA0028512"
    assert record.issuer_name == "Agencia Estatal de Administración Tributaria"
    assert record.made_available_at == made
    assert record.titular_nif == NIF and record.link is Link.TITULAR
    assert result.next_since >= made


def test_list_never_accepts(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    sent = dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=2))

    connector.list(ctx, _ago(days=1))
    connector.list(ctx, _ago(days=1))

    assert dehu_simulator.notification(sent.identificador).state == "PENDIENTE"
    assert set(dehu_simulator.operations()) == {"Localiza"}


def test_list_all_reads_pending_and_realised_over_one_connection(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    pending = dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=3))
    accepted = dehu_simulator.add_notification(
        NIF, made_available_at=_ago(days=3), state="ACEPTADA", state_at=_ago(hours=1)
    )
    since = _ago(days=1)

    def connections(call):
        before = len(dehu_simulator.requests)
        result = call()
        served = dehu_simulator.requests[before:]
        assert [s.operation for s in served] == ["Localiza", "LocalizaRealizadas"]
        return result, {s.connection for s in served}

    together, one = connections(lambda: connector.list_all(ctx, since))
    apart, two = connections(lambda: merged(connector.list(ctx, since), connector.list_realized(ctx, since)))

    assert together.complete
    states = {r.external_id: r.state for r in together.records}
    assert states == {pending.external_id: SedeState.PENDIENTE, accepted.external_id: SedeState.ACEPTADA}
    assert {r.external_id: r.state for r in apart.records} == states
    assert (len(one), len(two)) == (1, 2), "one TLS session for both lists, where two calls take two"


def test_a_base_url_pasted_with_the_service_path_reaches_the_same_service(connector, dehu_simulator):
    # The operator may paste LEMA's whole address into the catalogue instead of the host's.
    ctx = mailbox(dehu_simulator, NIF, base_url=dehu_simulator.url.rstrip("/") + "/ws/v2/lema")
    dehu_simulator.add_notification(NIF, subject="Pasted", made_available_at=_ago(hours=2))

    assert [record.subject for record in connector.list(ctx, _ago(days=1)).records] == ["Pasted"]


def test_open_needs_confirmation(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=2))
    (record,) = connector.list(ctx, _ago(days=1)).records

    with pytest.raises(NotConfirmed):
        connector.open(ctx, record, confirmed=False)
    assert "PeticionAcceso" not in dehu_simulator.operations()


def test_open_accepts_and_brings_document_annexes_and_acuse(connector, dehu_simulator):
    ctx = mailbox(dehu_simulator, NIF)
    document = b"%PDF-1.4 the resolution"
    sent = dehu_simulator.add_notification(
        NIF,
        made_available_at=_ago(hours=2),
        document=document,
        document_name="resolucion.pdf",
        anexos=[("Anexo I.pdf", b"%PDF-1.4 annex one", "application/pdf"), ("datos.xml", b"<a/>", "text/xml")],
    )
    (record,) = connector.list(ctx, _ago(days=1)).records

    opened = connector.open(ctx, record, confirmed=True)

    assert dehu_simulator.notification(sent.identificador).state == "ACEPTADA"
    assert opened.record.state is SedeState.ACEPTADA and opened.record.state_at is not None
    assert [(d.name, d.mime, d.content) for d in opened.documents] == [
        ("resolucion.pdf", "application/pdf", document),
        ("Anexo I.pdf", "application/pdf", b"%PDF-1.4 annex one"),
        ("datos.xml", "text/xml", b"<a/>"),
    ]
    assert opened.acuse.content.startswith(b"%PDF-") and sent.csv.encode() in opened.acuse.content
    assert [ref.name for ref in opened.record.documents] == [
        "resolucion.pdf",
        "Anexo I.pdf",
        "datos.xml",
        opened.acuse.name,
    ]
    # Every document can be fetched again later, with no new legal effect.
    for ref, expected in zip(opened.record.documents, [*opened.documents, opened.acuse], strict=True):
        assert connector.fetch_document(ctx, opened.record, ref).content == expected.content


def test_list_splits_the_range_while_there_are_more_results(connector, dehu_simulator):
    dehu_simulator.state.page_size = 3
    ctx = mailbox(dehu_simulator, NIF)
    sent = {dehu_simulator.add_notification(NIF, made_available_at=_ago(hours=i * 3)).external_id for i in range(10)}

    result = connector.list(ctx, _ago(days=2))

    assert result.complete
    assert {r.external_id for r in result.records} == sent
    assert dehu_simulator.operations().count("Localiza") > 3


class _AnotherSede:
    """What a separate package adds: one more connector, depending only on the contract."""

    code = "otra"
    capabilities = frozenset({"list"})


class _AnotherPackage:
    @staticmethod
    @hookimpl
    def sede_connectors():
        return [_AnotherSede]


def test_a_separate_package_adds_a_connector_through_the_hook(in_app):
    manager = host().pm
    manager.register(_AnotherPackage, name="another-sede-package")
    try:
        assert set(connectors()) == {"dehu", "seguridad_social", "otra"}
        assert isinstance(connector_for("otra"), _AnotherSede)
        assert isinstance(connector_for("dehu"), DehuConnector)
    finally:
        manager.unregister(name="another-sede-package")
    assert set(connectors()) == {"dehu", "seguridad_social"}
