"""A certificate's history tells everything that happened to it, also what the set-based writes
did: the sweep (expiring soon, expired), renewals, "Generar certificados" and the requests for
new clients. Their events are those the ORM would record, written set-based (``audited_write``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import time_machine
from sqlalchemy import select

from tests.plugins.center_certificates.conftest import (
    acting,
    approve,
    make_request,
    make_template,
    staff_client,
    sweep,
    upload,
)

SPRING = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
EXPIRING_DAY = datetime(2026, 4, 6, 12, 0, tzinfo=UTC)
EXPIRED_DAY = datetime(2026, 4, 16, 12, 0, tzinfo=UTC)


def _events(app, tenant, certificate_id: int) -> list[dict]:
    """The audit events of one certificate, oldest first."""
    from core.audit.models import AuditEvent
    from core.extensions import db

    with acting(app, tenant):
        rows = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == "certificate", AuditEvent.object_id == certificate_id)
            .order_by(AuditEvent.id)
        )
        return [
            {
                "action": e.action,
                "actor": (e.actor_kind, e.actor_name),
                "label": e.object_label,
                "parent": (e.parent_type, e.parent_id),
                "changes": e.changes,
            }
            for e in rows
        ]


def _approved(app, centre, template: int, client: int | None = None, validity=date(2026, 4, 15)) -> int:
    certificate = make_request(app, centre.tenant, client or centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, validity)
        approve(app, centre.tenant, certificate)
    return certificate


def _history_changes(page: str) -> list[str]:
    """The "before → after" lines of the History table of a page, as text."""
    table = page.split('class="table table-sm align-middle audit-events"')[1].split("</table>")[0]
    lines = re.findall(r"<div><span class=\"fw-semibold\">(.*?)</span>: (.*?)</div>", table, re.S)
    return [f"{field}: {re.sub(r'<[^>]+>', '', change).strip()}" for field, change in lines]


def test_the_history_says_when_a_certificate_became_expiring_and_expired(app, centre):
    template = make_template(app, centre.tenant, lead_days=10)
    certificate = _approved(app, centre, template)
    with time_machine.travel(EXPIRING_DAY, tick=False):
        assert sweep(app, centre.tenant)["expiring"] == 1
    with time_machine.travel(EXPIRED_DAY, tick=False):
        assert sweep(app, centre.tenant)["expired"] == 1
    *_by_people, expiring, expired = _events(app, centre.tenant, certificate)
    assert expiring == {
        "action": "update",
        "actor": ("system", ""),
        "label": "Medical certificate",
        "parent": ("client", centre.client),
        "changes": {"status": ["approved", "expiring"]},
    }
    assert expired["changes"] == {"status": ["expiring", "expired"], "expired_at": [None, "2026-04-16T12:00:00+00:00"]}
    assert expired["actor"] == ("system", "") and expired["parent"] == ("client", centre.client)

    browser = staff_client(app)
    lines = _history_changes(browser.get(f"/acme/certificates/{certificate}").get_data(as_text=True))
    assert "Status: Approved → Expiring soon" in lines and "Status: Expiring soon → Expired" in lines
    trail = browser.get("/acme/audit/", query_string={"object_type": "certificate"}).get_data(as_text=True)
    assert "Status: Expiring soon → Expired" in _history_changes(trail), "the tenant's audit trail shows it too"
    client_history = browser.get(f"/acme/clients/{centre.client}?tab=history").get_data(as_text=True)
    assert "Expiring soon → Expired" in client_history.replace("</span> → ", " → ").replace(
        '<span class="text-body-secondary">', ""
    ), "and so does the client's history"


def test_the_sweep_records_what_the_orm_records_for_the_same_change(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant, lead_days=10)
    by_sweep = _approved(app, centre, template)
    by_orm = _approved(app, centre, template, centre.other_client)
    with time_machine.travel(EXPIRING_DAY, tick=False):
        with acting(app, centre.tenant):
            db.session.get(Certificate, by_orm).status = "expiring"
            db.session.commit()
        assert sweep(app, centre.tenant)["expiring"] == 1, "only the one the ORM did not move"
    sweep_event = _events(app, centre.tenant, by_sweep)[-1]
    orm_event = _events(app, centre.tenant, by_orm)[-1]
    assert sweep_event["changes"] == orm_event["changes"] == {"status": ["approved", "expiring"]}
    assert (sweep_event["label"], sweep_event["parent"][0]) == (orm_event["label"], orm_event["parent"][0])


def test_a_renewal_is_in_the_history_of_the_certificate_it_renews_and_its_own(app, centre):
    template = make_template(app, centre.tenant, "Insurance", lead_days=10, renew_on_expiry=True)
    old = _approved(app, centre, template)
    with time_machine.travel(EXPIRED_DAY, tick=False):
        assert sweep(app, centre.tenant) == {"expired": 1, "expiring": 0, "renewed": 1}
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    with acting(app, centre.tenant):
        renewal = db.session.scalar(select(Certificate.id).where(Certificate.renewal_of_id == old))
    (created,) = _events(app, centre.tenant, renewal)
    assert created["action"] == "create" and created["actor"] == ("system", "")
    assert created["parent"] == ("client", centre.client) and created["label"] == "Insurance"
    assert created["changes"]["status"] == [None, "missing_info"]
    assert created["changes"]["name"] == [None, "Insurance"] and created["changes"]["lead_days"] == [None, 10]

    page = staff_client(app).get(f"/acme/certificates/{old}").get_data(as_text=True)
    history = page.split('class="table table-sm align-middle audit-events"')[1]
    assert "Creation" in history and "Status: — → Missing client information" in _history_changes(page), (
        "the renewed certificate's page tells when it was asked for again"
    )


def test_generated_certificates_record_their_creation_by_who_started_the_job(app, centre, run_jobs):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    browser = staff_client(app, "manager@acme.test")
    url = f"/acme/certificates/templates/{template}/generate"
    groups = {"groups": [str(centre.group), str(centre.other_group)]}
    page = browser.post(url, data=groups).get_data(as_text=True)
    carried = dict(re.findall(r'<input id="(counted\w*)" name="\1" type="hidden" value="([^"]*)">', page))
    browser.post(url, data={**groups, "confirm": "1", **carried})
    run_jobs()
    with acting(app, centre.tenant):
        made = dict(db.session.execute(select(Certificate.client_id, Certificate.id)).all())
    assert set(made) == {centre.client, centre.other_client}
    for client_id, certificate in made.items():
        (created,) = _events(app, centre.tenant, certificate)
        assert created["action"] == "create" and created["actor"] == ("user", "Maria Manager")
        assert created["parent"] == ("client", client_id)
        assert created["changes"] == {
            "name": [None, "Medical certificate"],
            "lead_days": [None, 15],
            "status": [None, "missing_info"],
            "uploaded_by_client": [None, False],
        }


def test_automatic_requests_for_new_clients_record_their_creation(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    make_template(app, centre.tenant, "Automatic", auto_for_new_clients=True)
    browser = staff_client(app)
    response = browser.post(
        "/acme/clients/new",
        data={"kind": "company", "country": "ES", "tax_id": "B12345674", "company_name": "Nueva SL"},
    )
    client_id = int(response.location.rsplit("/", 1)[1])
    with acting(app, centre.tenant):
        certificate = db.session.scalar(select(Certificate.id).where(Certificate.client_id == client_id))
    (created,) = _events(app, centre.tenant, certificate)
    assert created["action"] == "create" and created["actor"] == ("user", "Ada Admin")
    assert created["label"] == "Automatic" and created["parent"] == ("client", client_id)


def test_a_set_based_copy_records_the_creation_the_orm_recorded(app, centre):
    """Every kind of column (dates, timestamps with microseconds, booleans, numbers, texts) is
    written into the event as the ORM writes it."""
    from sqlalchemy import literal

    from core.api import audited_write
    from core.extensions import db, utcnow
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant)
    skip = {"id", "tenant_id", "client_id"}
    with acting(app, centre.tenant):
        now = utcnow().replace(microsecond=123456)
        original = Certificate(
            template_id=template,
            client_id=centre.client,
            name="Seguro",
            lead_days=20,
            status="approved",
            validity_date=date(2030, 1, 31),
            expiring_from=date(2030, 1, 11),
            notes="Visto el original",
            uploaded_at=now,
            uploaded_by_client=True,
            approved_at=now.replace(microsecond=0),
            created_at=now,
            updated_at=now,
        )
        db.session.add(original)
        db.session.commit()
        columns = [c for c in Certificate.__table__.c if c.name not in skip]
        source = select(literal(centre.other_client).label("client_id"), *(c.label(c.name) for c in columns)).where(
            Certificate.tenant_id == centre.tenant.id, Certificate.id == original.id
        )
        (copy,) = audited_write(Certificate, centre.tenant.id, insert_from=source)
        db.session.commit()
        original_id = original.id
    (by_orm,) = _events(app, centre.tenant, original_id)
    (by_sql,) = _events(app, centre.tenant, copy.id)
    assert by_sql["changes"] == by_orm["changes"]
    assert by_orm["changes"]["uploaded_at"] == [None, now.isoformat()]
    assert by_orm["changes"]["approved_at"] == [None, now.replace(microsecond=0).isoformat()], "no fraction"
    assert by_sql["label"] == by_orm["label"] == "Seguro" and by_sql["parent"] == ("client", centre.other_client)
