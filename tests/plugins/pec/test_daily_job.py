"""Beyond the seed, as real panels do: expiry, reminders 90/30/15/7 days before it (each once), the
daily job moving boxes scaduta → sospesa → cancellata (set-based), renewal, bulk suspend and
reactivate. Time moves with time-machine, never with sleeps."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

from tests.conftest import login
from tests.plugins.pec.conftest import activate_box, box_row, in_tenant, make_box, make_holder, tenant_row

ROME = ZoneInfo("Europe/Rome")


def at(day: date):
    """Ten in the morning of ``day`` in Rome, with the clock ticking."""
    return time_machine.travel(datetime(day.year, day.month, day.day, 10, tzinfo=ROME), tick=True)


def run_daily(app, reseller) -> dict:
    from plugins.pec import jobs

    class Ctx:
        tenant = None

    with in_tenant(app, reseller.tenant):
        ctx = Ctx()
        ctx.tenant = tenant_row(reseller.tenant)
        return jobs.run_daily(ctx)


def test_an_active_box_expires_is_suspended_and_deleted_on_the_gestores_days(app, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    start = date(2026, 3, 10)
    with at(start):
        box = make_box(app, reseller, "scadenza", rossi, address)
        activate_box(app, reseller, box)
    assert box_row(app, reseller.tenant, box)["expires_on"] == date(2027, 3, 9)

    expectations = [
        (date(2027, 3, 9), "active"),  # the last day of validity
        (date(2027, 3, 10), "expired"),
        (date(2027, 4, 8), "expired"),  # 30 days after expiry: still scaduta
        (date(2027, 4, 9), "suspended"),
        (date(2027, 6, 7), "suspended"),  # 90 days after expiry
        (date(2027, 6, 8), "deleted"),
    ]
    for day, state in expectations:
        with at(day):
            run_daily(app, reseller)
        assert box_row(app, reseller.tenant, box)["state"] == state, day


def test_a_job_that_missed_days_catches_up_and_a_second_run_changes_nothing(app, reseller):
    from core.api import db, history

    rossi, address = make_holder(app, reseller.tenant)
    with at(date(2026, 1, 1)):
        boxes = [make_box(app, reseller, f"b{i}", rossi, address) for i in range(3)]
        for box in boxes:
            activate_box(app, reseller, box)
    with at(date(2027, 2, 15)):  # 46 days after the expiry of 31 December 2026
        first = run_daily(app, reseller)
        second = run_daily(app, reseller)
    assert (first["suspended"], first["expired"], first["deleted"]) == (3, 0, 0)
    assert (second["suspended"], second["expired"], second["deleted"]) == (0, 0, 0)
    with in_tenant(app, reseller.tenant):
        changes = [e.changes for e in history("pec_box", boxes[0]) if e.changes and "state" in e.changes]
        assert changes[0]["state"][1] in ("Suspended", "Sospesa")
        db.session.rollback()


def test_reminders_go_out_at_90_30_15_and_7_days_each_once(app, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    with at(date(2026, 1, 1)):
        box = make_box(app, reseller, "promemoria", rossi, address)
        activate_box(app, reseller, box)
    expiry = box_row(app, reseller.tenant, box)["expires_on"]
    sent = []
    day = expiry - timedelta(days=100)
    while day <= expiry:
        with at(day):
            counts = run_daily(app, reseller)
        if counts["reminders"]:
            sent.append((expiry - day).days)
        day += timedelta(days=1)
    assert sent == [90, 30, 15, 7]
    # Queued mail (delivered by the mail job at its time): four to the holder, a digest a day to the reseller.
    from tests.core.mail.conftest import messages

    queued = [(m["to"], m["template"]) for m in messages(app, reseller.tenant)]
    assert queued.count((["mario.rossi@cliente.test"], "pec/mail/reminder")) == 4
    assert queued.count((["admin@rivendita.test"], "pec/mail/reminder_digest")) == 4


def test_a_box_registered_close_to_expiry_gets_only_the_nearest_reminder(app, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    with at(date(2026, 1, 1)):
        box = make_box(app, reseller, "vicina", rossi, address)
        activate_box(app, reseller, box)
    expiry = box_row(app, reseller.tenant, box)["expires_on"]
    with at(expiry - timedelta(days=20)):
        assert run_daily(app, reseller)["reminders"] == 1  # the 30-day one, not the 90-day one
        assert run_daily(app, reseller)["reminders"] == 0


def test_renewal_counts_from_the_old_expiry_and_restarts_the_reminders(app, client, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    with at(date(2026, 1, 1)):
        box = make_box(app, reseller, "rinnovo", rossi, address)
        activate_box(app, reseller, box)
    with at(date(2026, 12, 1)):
        assert run_daily(app, reseller)["reminders"] == 1
        login(client, reseller.slug, "admin@rivendita.test")
        client.post(f"/rivendita/pec/boxes/{box}/renew", data={"years": "2"})
        assert box_row(app, reseller.tenant, box)["expires_on"] == date(2028, 12, 31)
    # An expired box comes back when renewed.
    with at(date(2029, 1, 5)):
        run_daily(app, reseller)
        login(client, reseller.slug, "admin@rivendita.test")
        assert box_row(app, reseller.tenant, box)["state"] == "expired"
        client.post(f"/rivendita/pec/boxes/{box}/renew", data={"years": "1"})
        assert box_row(app, reseller.tenant, box)["state"] == "active"
        assert box_row(app, reseller.tenant, box)["expires_on"] == date(2029, 12, 31)
    with at(date(2029, 10, 2)):
        assert run_daily(app, reseller)["reminders"] == 1


def test_bulk_suspend_and_reactivate_apply_to_the_boxes_they_can(app, client, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    active = [make_box(app, reseller, f"attiva{i}", rossi, address) for i in range(3)]
    for box in active:
        activate_box(app, reseller, box)
    pending = make_box(app, reseller, "in.attesa", rossi, address)
    login(client, reseller.slug, "admin@rivendita.test")
    response = client.post("/rivendita/pec/boxes/bulk", data={"action": "suspend", "box_ids": [*active, pending]})
    assert response.status_code == 302
    assert [box_row(app, reseller.tenant, b)["state"] for b in active] == ["suspended"] * 3
    assert box_row(app, reseller.tenant, pending)["state"] == "pending"
    client.post("/rivendita/pec/boxes/bulk", data={"action": "reactivate", "box_ids": active[:2]})
    assert [box_row(app, reseller.tenant, b)["state"] for b in active] == ["active", "active", "suspended"]
    history = client.get(f"/rivendita/pec/boxes/{active[0]}/history").get_data(as_text=True)
    assert (history.count("audit-events") == 1 and "Sospesa" in history) or "Suspended" in history


def test_a_suspended_box_past_its_expiry_must_be_renewed_not_reactivated(app, client, reseller):
    rossi, address = make_holder(app, reseller.tenant)
    with at(date(2026, 1, 1)):
        box = make_box(app, reseller, "sospesa", rossi, address)
        activate_box(app, reseller, box)
        login(client, reseller.slug, "admin@rivendita.test")
        client.post(f"/rivendita/pec/boxes/{box}/action", data={"action": "suspend"})
    with at(date(2027, 1, 10)):
        login(client, reseller.slug, "admin@rivendita.test")
        response = client.post(
            f"/rivendita/pec/boxes/{box}/action", data={"action": "reactivate"}, follow_redirects=True
        )
        assert box_row(app, reseller.tenant, box)["state"] == "suspended"
        assert "2026-12-31" in response.get_data(as_text=True)
