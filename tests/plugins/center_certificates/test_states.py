"""The certificate state machine, with a controllable clock, in the tenant's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from core.errors import DomainError
from tests.plugins.center_certificates.conftest import (
    acting,
    approve,
    make_request,
    make_template,
    state,
    sweep,
    upload,
)

# Europe/Madrid moves to summer time on 2026-03-29 at 02:00 and back on 2026-10-25 at 03:00.
SPRING = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def test_a_request_starts_missing_information_and_an_upload_makes_it_pending(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    assert state(app, centre.tenant, certificate)["status"] == "missing_info"
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
    after = state(app, centre.tenant, certificate)
    assert after["status"] == "pending_approval" and after["file_id"] is not None
    assert after["expiring_from"] == date(2026, 12, 16)


def test_approval_gives_approved_or_expiring_at_once(app, centre):
    template = make_template(app, centre.tenant)
    far, near = (
        make_request(app, centre.tenant, c, t) for c, t in ((centre.client, template), (centre.other_client, template))
    )
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, far, date(2026, 12, 31))
        upload(app, centre.tenant, near, date(2026, 3, 30))
        approve(app, centre.tenant, far)
        approve(app, centre.tenant, near)
    assert state(app, centre.tenant, far)["status"] == "approved"
    assert state(app, centre.tenant, near)["status"] == "expiring", "approved inside the window: right at once"


@pytest.mark.parametrize(
    ("validity", "last_valid_instant", "first_expired_instant"),
    [
        # Validity 28 March: caducado from local midnight of the 29th, which is 23:00 UTC on the 28th (CET),
        # a few hours before the clocks move forward that night.
        (date(2026, 3, 28), datetime(2026, 3, 28, 22, 59, tzinfo=UTC), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
        # Validity 29 March: local midnight of the 30th is 22:00 UTC (CEST).
        (date(2026, 3, 29), datetime(2026, 3, 29, 21, 59, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
        # Validity 25 October: the clocks move back at 03:00; midnight of the 26th is 23:00 UTC (CET).
        (date(2026, 10, 25), datetime(2026, 10, 25, 22, 59, tzinfo=UTC), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    ],
)
def test_a_certificate_expires_24_hours_after_its_validity_date_in_the_tenants_zone(
    app, centre, validity, last_valid_instant, first_expired_instant
):
    template = make_template(app, centre.tenant, lead_days=3)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, validity)
        approve(app, centre.tenant, certificate)
    with time_machine.travel(last_valid_instant, tick=False):
        sweep(app, centre.tenant)
    assert state(app, centre.tenant, certificate)["status"] == "expiring"
    with time_machine.travel(first_expired_instant, tick=False):
        assert sweep(app, centre.tenant)["expired"] == 1
    assert state(app, centre.tenant, certificate)["status"] == "expired"


def test_expiring_soon_starts_at_local_midnight_of_the_lead_day(app, centre):
    template = make_template(app, centre.tenant, lead_days=15)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 11, 9))
        approve(app, centre.tenant, certificate)
    # 25 October (the autumn change) is the first day of the window: local midnight is 22:00 UTC on the 24th.
    with time_machine.travel(datetime(2026, 10, 24, 21, 59, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant)["expiring"] == 0
    with time_machine.travel(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant)["expiring"] == 1


def test_the_sweep_moves_many_certificates_with_one_statement_per_transition(app, centre):
    from sqlalchemy import event, select

    from core.extensions import db

    template = make_template(app, centre.tenant, lead_days=1)
    ids = []
    for n in range(30):
        client_id = app_client(app, centre, n)
        ids.append(make_request(app, centre.tenant, client_id, template))
    with time_machine.travel(SPRING, tick=False):
        for certificate in ids:
            upload(app, centre.tenant, certificate, date(2026, 4, 1))
            approve(app, centre.tenant, certificate)
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with time_machine.travel(datetime(2026, 4, 3, 12, tzinfo=UTC), tick=False):
            counts = sweep(app, centre.tenant)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert counts["expired"] == 30
    # One statement per transition on PostgreSQL (the UPDATE and its audit events); on SQLite the
    # events are a statement of their own: never one per certificate.
    writes = [s for s in statements if "UPDATE center_certificates_certificates" in s]
    assert len(writes) == 2, writes
    assert len(statements) <= 6, statements
    from core.audit.models import AuditEvent

    with acting(app, centre.tenant):
        changes = db.session.scalars(select(AuditEvent.changes).where(AuditEvent.object_type == "certificate")).all()
    assert sum(change.get("status") == ["approved", "expired"] for change in changes) == 30, "each one's history"


def app_client(app, centre, n: int) -> int:
    from core.clients.models import Client, GroupClient
    from core.extensions import db

    with acting(app, centre.tenant):
        client = Client(
            kind="company",
            tax_id=f"SWEEP{n:04d}",
            tax_id_type="other",
            country="FR",
            company_name=f"Sweep {n}",
            name=f"Sweep {n}",
            search_text=f"sweep {n}",
        )
        db.session.add(client)
        db.session.flush()
        db.session.add(GroupClient(group_id=centre.group, client_id=client.id))
        db.session.commit()
        return client.id


def test_rejecting_needs_a_reason_and_sends_it_back(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import reject

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
    with acting(app, centre.tenant) as tenant:
        row = db.session.get(Certificate, certificate)
        with pytest.raises(DomainError, match="Write why it is rejected"):
            reject(tenant, row, "   ", None)
        with pytest.raises(DomainError, match="at most 400"):
            reject(tenant, row, "x" * 401, None)
        reject(tenant, row, "The photo is blurred", None)
    after = state(app, centre.tenant, certificate)
    assert after["status"] == "missing_info" and after["rejection_reason"] == "The photo is blurred"


def test_an_approved_certificate_is_not_editable_by_anyone(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
        approve(app, centre.tenant, certificate)
        for by_client in (True, False):
            with pytest.raises(DomainError, match="can no longer be changed"):
                upload(app, centre.tenant, certificate, date(2027, 1, 31), by_client=by_client)


def test_the_client_and_the_centre_correct_a_document_until_it_is_approved(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
        first_file = state(app, centre.tenant, certificate)["file_id"]
        upload(app, centre.tenant, certificate, date(2027, 1, 31), by_client=True)
        corrected = state(app, centre.tenant, certificate)
        assert corrected["status"] == "pending_approval" and corrected["validity_date"] == date(2027, 1, 31)
        assert corrected["file_id"] != first_file, "the client's corrected file replaces the first"
        upload(app, centre.tenant, certificate, date(2027, 2, 28), by_client=False)
        assert state(app, centre.tenant, certificate)["validity_date"] == date(2027, 2, 28)
        approve(app, centre.tenant, certificate)
        for by_client in (True, False):
            with pytest.raises(DomainError, match="can no longer be changed"):
                upload(app, centre.tenant, certificate, date(2027, 3, 31), by_client=by_client)


def test_a_past_validity_date_is_refused(app, centre):
    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False), pytest.raises(DomainError, match="already passed"):
        upload(app, centre.tenant, certificate, date(2026, 3, 19))


def test_only_approved_certificates_are_archived_and_then_go_to_history(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import archive, of_client

    template = make_template(app, centre.tenant)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with acting(app, centre.tenant), pytest.raises(DomainError, match="Only an approved"):
        archive(db.session.get(Certificate, certificate))
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 12, 31))
        approve(app, centre.tenant, certificate)
    with acting(app, centre.tenant):
        archive(db.session.get(Certificate, certificate))
        current, history = of_client(centre.client)
    assert current == [] and [c.id for c in history] == [certificate]


def test_an_archived_approved_certificate_expires_in_the_history_quietly(app, centre, outbox):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import archive, notify
    from tests.conftest import PASSWORD, login

    template = make_template(app, centre.tenant, lead_days=5, renew_on_expiry=True)
    certificate = make_request(app, centre.tenant, centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 15))
        approve(app, centre.tenant, certificate)
        with acting(app, centre.tenant) as row:
            archive(db.session.get(Certificate, certificate))
            notify(row)
    told = len(outbox())
    with time_machine.travel(datetime(2026, 4, 16, 12, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant) == {"expired": 1, "expiring": 0, "renewed": 0}, "not renewed"
        with acting(app, centre.tenant) as row:
            assert notify(row)["notices_expired"] == 0
    after = state(app, centre.tenant, certificate)
    assert after["status"] == "expired" and after["archived_at"] is not None
    assert len(outbox()) == told, "no e-mail about a certificate the centre has archived"
    browser = app.test_client()
    login(browser, "acme", "staff@acme.test", PASSWORD)
    history = browser.get(f"/acme/certificates/clients/{centre.client}/history").get_data(as_text=True)
    row = history.split(f'data-certificate="{certificate}"')[1].split("</tr>")[0]
    assert 'data-status="expired"' in row and "Archived" in row and "Approved" not in row


def test_one_open_certificate_per_client_and_template(app, centre):
    template = make_template(app, centre.tenant)
    make_request(app, centre.tenant, centre.client, template)
    with pytest.raises(DomainError, match="already has an open"):
        make_request(app, centre.tenant, centre.client, template)


def test_an_expired_certificate_is_renewed_once_when_its_template_says_so(app, centre):
    from sqlalchemy import select

    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    renewing = make_template(app, centre.tenant, "Insurance", renew_on_expiry=True)
    plain = make_template(app, centre.tenant, "Medical")
    first = make_request(app, centre.tenant, centre.client, renewing)
    second = make_request(app, centre.tenant, centre.client, plain)
    with time_machine.travel(SPRING, tick=False):
        for certificate in (first, second):
            upload(app, centre.tenant, certificate, date(2026, 4, 30))
            approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime(2026, 5, 2, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant) == {"expired": 2, "expiring": 0, "renewed": 1}
        assert sweep(app, centre.tenant)["renewed"] == 0, "renewing twice would duplicate the request"
    with acting(app, centre.tenant):
        rows = db.session.scalars(select(Certificate).order_by(Certificate.id)).all()
        renewal = rows[-1]
        assert len(rows) == 3 and renewal.renewal_of_id == first and renewal.status == "missing_info"
        assert renewal.name == "Insurance"


def test_switching_renewal_on_for_a_template_with_history_asks_once(app, centre):
    """Two old expired certificates of one client and template: one renewal, and the sweep still works."""
    from sqlalchemy import select

    from core.extensions import db
    from plugins.center_certificates.models import Certificate, CertificateTemplate

    template = make_template(app, centre.tenant, "Insurance")
    for _ in range(2):
        certificate = make_request(app, centre.tenant, centre.client, template)
        with time_machine.travel(SPRING, tick=False):
            upload(app, centre.tenant, certificate, date(2026, 4, 30))
            approve(app, centre.tenant, certificate)
        with time_machine.travel(datetime(2026, 5, 2, tzinfo=UTC), tick=False):
            sweep(app, centre.tenant)
    with acting(app, centre.tenant):
        db.session.get(CertificateTemplate, template).renew_on_expiry = True
        db.session.commit()
    with time_machine.travel(datetime(2026, 5, 3, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant)["renewed"] == 1
        assert sweep(app, centre.tenant)["renewed"] == 0
    with acting(app, centre.tenant):
        statuses = db.session.scalars(select(Certificate.status).order_by(Certificate.id)).all()
    assert statuses == ["expired", "expired", "missing_info"]


# --- the next document, handed in while a certificate expires soon ----------------------------


def _expiring(app, centre, template: int, client: int | None = None) -> int:
    """A certificate approved at SPRING, valid until 15 April 2026, moved to expiring soon on 6 April."""
    certificate = make_request(app, centre.tenant, client or centre.client, template)
    with time_machine.travel(SPRING, tick=False):
        upload(app, centre.tenant, certificate, date(2026, 4, 15))
        approve(app, centre.tenant, certificate)
    with time_machine.travel(datetime(2026, 4, 6, 12, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant)["expiring"] == 1
    return certificate


def hand_in_next(app, tenant, certificate_id: int, validity: date, *, by_client=True) -> int:
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import hand_in_next as service
    from tests.plugins.center_certificates.conftest import pdf_bytes

    with acting(app, tenant) as row:
        following = service(
            row,
            db.session.get(Certificate, certificate_id),
            validity_date=validity,
            notes="",
            upload=pdf_bytes(),
            filename="next.pdf",
            by_client=by_client,
            actor=None,
        )
        return following.id


NEXT_DAY = datetime(2026, 4, 8, 9, 0, tzinfo=UTC)


def test_an_expiring_certificate_leaves_room_for_exactly_one_more(app, centre):
    """The partial unique index: one certificate of a template per client in the running, one
    that expires soon not counted."""
    from sqlalchemy.exc import IntegrityError

    from core.extensions import db
    from plugins.center_certificates.models import Certificate

    template = make_template(app, centre.tenant, lead_days=10)
    current = _expiring(app, centre, template)

    def another() -> bool:
        with acting(app, centre.tenant):
            db.session.add(Certificate(template_id=template, client_id=centre.client, name="Again"))
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                return False
            return True

    assert another(), "the expiring one does not count"
    assert not another(), "but the new one does"
    assert state(app, centre.tenant, current)["status"] == "expiring"


def test_the_next_document_is_handed_in_while_the_current_one_expires_soon(app, centre):
    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import of_client

    template = make_template(app, centre.tenant, lead_days=10)
    current = _expiring(app, centre, template)
    approved = make_request(app, centre.tenant, centre.other_client, template)
    with time_machine.travel(NEXT_DAY, tick=False):
        upload(app, centre.tenant, approved, date(2026, 12, 31))
        approve(app, centre.tenant, approved)
        with pytest.raises(DomainError, match="only be handed in while the certificate expires soon"):
            hand_in_next(app, centre.tenant, approved, date(2027, 12, 31))
        with pytest.raises(DomainError, match="must be valid after the current one"):
            hand_in_next(app, centre.tenant, current, date(2026, 4, 15))
        following = hand_in_next(app, centre.tenant, current, date(2027, 4, 15))
        with pytest.raises(DomainError, match="only be handed in while the certificate expires soon"):
            hand_in_next(app, centre.tenant, current, date(2027, 5, 15))
    with acting(app, centre.tenant):
        row = db.session.get(Certificate, following)
        assert (row.status, row.renewal_of_id, row.template_id, row.uploaded_by_client) == (
            "pending_approval",
            current,
            template,
            True,
        )
        now, past = of_client(centre.client)
        assert [c.id for c in now] == [following, current] and past == [], "the current one is still valid"
    assert state(app, centre.tenant, current)["archived_at"] is None


def test_approving_the_next_document_sends_the_expiring_one_to_the_history_audited(app, centre):
    from core.api import history
    from plugins.center_certificates.services import of_client

    template = make_template(app, centre.tenant, lead_days=10)
    current = _expiring(app, centre, template)
    with time_machine.travel(NEXT_DAY, tick=False):
        following = hand_in_next(app, centre.tenant, current, date(2027, 4, 15), by_client=False)
        approve(app, centre.tenant, following)
    assert state(app, centre.tenant, following)["status"] == "approved"
    before = state(app, centre.tenant, current)
    assert before["status"] == "expiring" and before["archived_at"] is not None
    with acting(app, centre.tenant):
        now, past = of_client(centre.client)
        assert [c.id for c in now] == [following] and [c.id for c in past] == [current]
        (archived,) = [e for e in history("certificate", current) if "archived_at" in (e.changes or {})]
        assert archived.action == "update" and archived.changes["archived_at"][0] is None
    with time_machine.travel(datetime(2026, 4, 16, 12, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant) == {"expired": 1, "expiring": 0, "renewed": 0}
    assert state(app, centre.tenant, current)["status"] == "expired", "it expires in the history, quietly"


def test_the_sweep_asks_for_no_renewal_when_the_next_document_is_there(app, centre):
    from sqlalchemy import func, select

    from core.extensions import db
    from plugins.center_certificates.models import Certificate
    from plugins.center_certificates.services import of_client

    template = make_template(app, centre.tenant, lead_days=10, renew_on_expiry=True)
    current = _expiring(app, centre, template)
    with time_machine.travel(NEXT_DAY, tick=False):
        following = hand_in_next(app, centre.tenant, current, date(2027, 4, 15))
    with time_machine.travel(datetime(2026, 4, 16, 12, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant) == {"expired": 1, "expiring": 0, "renewed": 0}
    with acting(app, centre.tenant):
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 2
        now, past = of_client(centre.client)
    assert [c.id for c in now] == [following] and [c.id for c in past] == [current]


def test_a_certificate_that_expired_without_renewal_stays_among_the_current_ones(app, centre):
    from plugins.center_certificates.services import of_client

    template = make_template(app, centre.tenant, lead_days=10)
    lapsed = _expiring(app, centre, template)
    with time_machine.travel(datetime(2026, 4, 16, 12, tzinfo=UTC), tick=False):
        assert sweep(app, centre.tenant)["renewed"] == 0
    with acting(app, centre.tenant):
        now, past = of_client(centre.client)
    assert [(c.id, c.status) for c in now] == [(lapsed, "expired")] and past == []
    again = make_request(app, centre.tenant, centre.client, template)
    with acting(app, centre.tenant):
        now, past = of_client(centre.client)
    assert [c.id for c in now] == [again] and [c.id for c in past] == [lapsed], "asked again: now it is history"
