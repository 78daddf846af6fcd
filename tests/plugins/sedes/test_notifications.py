"""Notifications: the list and its filters, groups decide who sees what, the office's workflow,
assignment, the CSV export, the calendar, the dashboard widgets and the client tab and column."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from core.api.testing import count_queries
from tests.conftest import login

SEDE = "dehu"


def in_tenant(app, tenant_id):
    import contextlib

    from tenants.context import tenant_context

    @contextlib.contextmanager
    def block():
        with app.app_context(), tenant_context(tenant_id):
            yield

    return block()


def add_notification(app, tenant, client_id: int, external_id: str, **values) -> int:
    """A stored notification as the sync leaves it (no mailbox needed to list it)."""
    from core.extensions import db
    from plugins.sedes.catalogue import ensure_catalogue
    from plugins.sedes.models import SedeNotification

    made = values.pop("made_available_at", datetime.now(UTC) - timedelta(days=1))
    with in_tenant(app, tenant.id):
        ensure_catalogue()
        row = SedeNotification(
            client_id=client_id,
            sede_code=values.pop("sede_code", SEDE),
            external_id=external_id,
            kind=values.pop("kind", "notificacion"),
            sede_state=values.pop("sede_state", "pendiente"),
            issuer_name=values.pop("issuer_name", "Agencia Estatal de Administración Tributaria"),
            issuer_code=values.pop("issuer_code", "EA0028512"),
            subject=values.pop("subject", f"Requerimiento {external_id}"),
            titular_nif=values.pop("titular_nif", "B12345674"),
            made_available_at=made,
            deadline_on=values.pop("deadline_on", None),
            **values,
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def setup_groups(app, factory):
    """Acme with two groups: Ana (gestor) sees Norte's clients, the manager sees every client."""
    tenant = factory.tenant("acme", language="en")
    manager = factory.user(tenant, "jefa@acme.test", role_key="manager", name="Jefa")
    ana = factory.user(tenant, "ana@acme.test", role_key="operator", name="Ana")
    norte = factory.group(tenant, "Norte", [ana])
    sur = factory.group(tenant, "Sur")
    north_client = factory.client(tenant, "Talleres Norte SL", groups=[norte])
    south_client = factory.client(tenant, "Frutas Sur SL", groups=[sur])
    return tenant, manager, ana, north_client, south_client


def test_a_gestor_sees_only_the_notifications_of_clients_of_their_groups(app, factory, client):
    tenant, _manager, _ana, north, south = setup_groups(app, factory)
    add_notification(app, tenant, north, "N-1", subject="Requerimiento Norte")
    add_notification(app, tenant, south, "S-1", subject="Embargo Sur")

    login(client, "acme", "ana@acme.test")
    page = client.get("/acme/sedes/notifications/").get_data(as_text=True)
    assert "Requerimiento Norte" in page
    assert "Embargo Sur" not in page
    south_id = add_notification(app, tenant, south, "S-2")
    assert client.get(f"/acme/sedes/notifications/{south_id}").status_code == 404
    csv_text = client.get("/acme/sedes/notifications/export.csv")
    assert csv_text.status_code == 403  # a gestor does not export

    client = app.test_client()
    login(client, "acme", "jefa@acme.test")
    page = client.get("/acme/sedes/notifications/").get_data(as_text=True)
    assert "Requerimiento Norte" in page and "Embargo Sur" in page


def test_filters_by_sede_state_deadline_window_and_assignee(app, factory, client):
    tenant, _manager, ana, north, _south = setup_groups(app, factory)
    today = datetime.now(UTC).date()
    add_notification(app, tenant, north, "W", subject="Vence pronto", deadline_on=today + timedelta(days=3))
    add_notification(app, tenant, north, "M", subject="Vence en el mes", deadline_on=today + timedelta(days=20))
    add_notification(app, tenant, north, "E", subject="Ya vencida", deadline_on=today - timedelta(days=2))
    add_notification(app, tenant, north, "C", subject="Comunicacion", kind="comunicacion")
    add_notification(app, tenant, north, "A", subject="Asignada", assignee_id=ana, sede_state="aceptada")
    login(client, "acme", "jefa@acme.test")

    def subjects(query: str) -> set[str]:
        page = client.get(f"/acme/sedes/notifications/?{query}").get_data(as_text=True)
        return {s for s in ("Vence pronto", "Vence en el mes", "Ya vencida", "Comunicacion", "Asignada") if s in page}

    assert subjects("window=week") == {"Vence pronto"}
    assert subjects("window=month") == {"Vence pronto", "Vence en el mes"}
    assert subjects("window=expired") == {"Ya vencida"}
    assert subjects("kind=comunicacion") == {"Comunicacion"}
    assert subjects(f"assignee={ana}") == {"Asignada"}
    assert subjects("sede_state=aceptada") == {"Asignada"}
    assert subjects("q=pronto") == {"Vence pronto"}
    assert subjects("q=Talleres") == {"Vence pronto", "Vence en el mes", "Ya vencida", "Comunicacion", "Asignada"}


def test_the_list_pages_by_keyset_with_a_constant_number_of_queries(app, factory, client):
    tenant, *_rest, north, _south = setup_groups(app, factory)
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    for number in range(60):
        add_notification(app, tenant, north, f"K-{number:03d}", made_available_at=base + timedelta(hours=number))
    login(client, "acme", "jefa@acme.test")
    client.get("/acme/sedes/notifications/")
    with count_queries(app) as few:
        first = client.get("/acme/sedes/notifications/").get_data(as_text=True)
    assert "Requerimiento K-059" in first and "Requerimiento K-010" in first and "Requerimiento K-009" not in first
    cursor = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    with count_queries(app) as more:
        second = client.get(cursor).get_data(as_text=True)
    assert "Requerimiento K-009" in second and "Requerimiento K-000" in second
    assert len(few) == len(more)


def test_workflow_assignment_and_audit(app, factory, client):
    from core.audit.models import AuditEvent
    from plugins.sedes.models import SedeNotification

    tenant, _manager, ana, north, south = setup_groups(app, factory)
    nid = add_notification(app, tenant, north, "WF-1")
    login(client, "acme", "jefa@acme.test")
    client.post(f"/acme/sedes/notifications/{nid}/state", data={"state": "in_progress"})
    page = client.post(f"/acme/sedes/notifications/{nid}/assign", data={"assignee": str(ana)}, follow_redirects=True)
    assert "Assignment saved." in page.get_data(as_text=True)
    # Someone who cannot see the client cannot be given its notification.
    outsider = factory.user(tenant, "luis@acme.test", role_key="operator", name="Luis")
    page = client.post(
        f"/acme/sedes/notifications/{nid}/assign", data={"assignee": str(outsider)}, follow_redirects=True
    )
    assert "That person cannot see this client" in page.get_data(as_text=True)
    with in_tenant(app, tenant.id):
        from core.extensions import db

        row = db.session.get(SedeNotification, nid)
        assert (row.workflow_state, row.assignee_id) == ("in_progress", ana)
        changes = [
            e.changes
            for e in db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "sedes_notification"))
        ]
        assert {"workflow_state": ["unread", "in_progress"]} in changes
        assert any("assignee_id" in c for c in changes)
    assert south  # unused otherwise


def test_csv_export_follows_filters_and_groups(app, factory, client):
    tenant, *_rest, north, south = setup_groups(app, factory)
    made = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    add_notification(app, tenant, north, "X-1", subject="Multa", made_available_at=made, deadline_on=date(2026, 12, 11))
    add_notification(app, tenant, south, "X-2", subject="Embargo", kind="comunicacion")
    login(client, "acme", "jefa@acme.test")
    response = client.get("/acme/sedes/notifications/export.csv?kind=notificacion")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["Client", "Tax id", "Sede", "Identifier"]
    assert len(rows) == 2
    assert rows[1][0] == "Talleres Norte SL" and rows[1][3] == "X-1" and rows[1][4] == "Notification"
    assert rows[1][8] == "2026-12-01 09:30"  # Madrid time
    assert rows[1][9] == "2026-12-11"


def test_widgets_calendar_client_tab_and_client_list_column(app, factory, client):
    tenant, *_rest, north, south = setup_groups(app, factory)
    today = datetime.now(UTC).date()
    add_notification(app, tenant, north, "D-1", subject="Esta semana", deadline_on=today + timedelta(days=2))
    add_notification(app, tenant, north, "D-2", subject="Caducada", deadline_on=today - timedelta(days=1))
    add_notification(app, tenant, south, "D-3", subject="Del sur", workflow_state="closed")
    login(client, "acme", "jefa@acme.test")
    home = client.get("/acme/").get_data(as_text=True)
    assert "Notifications due this week" in home and "Notifications expired unopened" in home
    week = home.split('data-widget="sedes-week"')[1].split("data-count>")[1].split("<")[0]
    expired = home.split('data-widget="sedes-expired"')[1].split("data-count>")[1].split("<")[0]
    assert (week, expired) == ("1", "1")

    calendar = client.get(f"/acme/sedes/notifications/calendar?month={today:%Y-%m}").get_data(as_text=True)
    if (today + timedelta(days=2)).month == today.month:
        assert "Esta semana" in calendar

    tab = client.get(f"/acme/clients/{north}?tab=sedes_notifications").get_data(as_text=True)
    assert "Esta semana" in tab and "Del sur" not in tab

    listing = client.get("/acme/clients/?sedes.pending=yes").get_data(as_text=True)
    assert "Talleres Norte SL" in listing and "Frutas Sur SL" not in listing
