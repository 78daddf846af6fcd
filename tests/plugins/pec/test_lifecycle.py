"""Expiry, the states after it, actions, renewal and reminders — pure functions of dates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from plugins.pec.errors import PecError
from plugins.pec.lifecycle import (
    DEFAULT_POLICY,
    Action,
    BoxState,
    LifecyclePolicy,
    add_years,
    check_action,
    due_reminder,
    due_transition,
    expiry_date,
    lifecycle_cutoffs,
    partition_for_action,
    reminder_windows,
    renewed_expiry,
    schedule,
    state_on,
)

EXPIRES = date(2026, 3, 9)


def error_of(call, *args, **kwargs) -> PecError:
    with pytest.raises(PecError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_box_is_valid_until_the_day_before_its_anniversary():
    assert expiry_date(date(2025, 3, 10), 1) == date(2026, 3, 9)
    assert expiry_date(date(2025, 3, 10), 5) == date(2030, 3, 9)
    assert expiry_date(date(2025, 1, 1), 1) == date(2025, 12, 31)


def test_29_february_becomes_28_february_in_common_years():
    assert add_years(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)
    assert expiry_date(date(2024, 2, 29), 1) == date(2025, 2, 27)


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (date(2026, 3, 9), BoxState.ACTIVE),  # the last valid day
        (date(2026, 3, 10), BoxState.EXPIRED),
        (EXPIRES + timedelta(days=30), BoxState.EXPIRED),
        (EXPIRES + timedelta(days=31), BoxState.SUSPENDED),
        (EXPIRES + timedelta(days=90), BoxState.SUSPENDED),
        (EXPIRES + timedelta(days=91), BoxState.DELETED),
    ],
)
def test_the_calendar_moves_a_box_from_scaduta_to_sospesa_to_cancellata(today, state):
    assert state_on(EXPIRES, today) == state


def test_the_gestore_s_policy_sets_the_days():
    policy = LifecyclePolicy(suspend_after_days=7, delete_after_days=67)  # domainregister's
    assert state_on(EXPIRES, EXPIRES + timedelta(days=7), policy) == BoxState.EXPIRED
    assert state_on(EXPIRES, EXPIRES + timedelta(days=8), policy) == BoxState.SUSPENDED
    assert state_on(EXPIRES, EXPIRES + timedelta(days=68), policy) == BoxState.DELETED
    immediate = LifecyclePolicy(suspend_after_days=0, delete_after_days=30)
    assert state_on(EXPIRES, EXPIRES + timedelta(days=1), immediate) == BoxState.SUSPENDED


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"suspend_after_days": -1}, "suspend_after_days"),
        ({"suspend_after_days": 30, "delete_after_days": 30}, "delete_after_days"),
        ({"delete_after_days": 4000}, "delete_after_days"),
        ({"reminder_days": (30, 30)}, "reminder_days"),
        ({"reminder_days": (0,)}, "reminder_days"),
    ],
)
def test_an_impossible_policy_is_refused_on_its_field(values, field):
    assert error_of(LifecyclePolicy, **values).field == field


def test_reminder_days_are_kept_longest_first():
    assert LifecyclePolicy(reminder_days=(7, 90, 30)).reminder_days == (90, 30, 7)


def test_the_daily_job_only_moves_boxes_forward():
    assert due_transition(BoxState.ACTIVE, EXPIRES, EXPIRES) is None
    assert due_transition(BoxState.ACTIVE, EXPIRES, EXPIRES + timedelta(days=1)) == BoxState.EXPIRED
    # A job that did not run for weeks catches up in one step.
    assert due_transition(BoxState.ACTIVE, EXPIRES, EXPIRES + timedelta(days=200)) == BoxState.DELETED
    assert due_transition(BoxState.EXPIRED, EXPIRES, EXPIRES + timedelta(days=31)) == BoxState.SUSPENDED
    # Suspended by hand before expiry: stays so until the calendar passes it.
    assert due_transition(BoxState.SUSPENDED, EXPIRES, EXPIRES - timedelta(days=10)) is None
    assert due_transition(BoxState.SUSPENDED, EXPIRES, EXPIRES + timedelta(days=1)) is None
    assert due_transition(BoxState.SUSPENDED, EXPIRES, EXPIRES + timedelta(days=91)) == BoxState.DELETED
    for state in (BoxState.PENDING, BoxState.REFUSED, BoxState.DELETED):
        assert due_transition(state, EXPIRES, EXPIRES + timedelta(days=500)) is None
    assert due_transition(BoxState.ACTIVE, None, EXPIRES) is None


def test_cutoffs_give_the_set_based_job_the_same_answer_as_state_on():
    today = date(2026, 6, 15)
    cutoffs = lifecycle_cutoffs(today)
    for offset in range(-5, 200):
        expires_on = today - timedelta(days=offset)
        expected = state_on(expires_on, today)
        by_cutoffs = (
            BoxState.DELETED
            if expires_on < cutoffs.deleted_before
            else BoxState.SUSPENDED
            if expires_on < cutoffs.suspended_before
            else BoxState.EXPIRED
            if expires_on < cutoffs.expired_before
            else BoxState.ACTIVE
        )
        assert by_cutoffs == expected, expires_on


def test_the_schedule_tells_when_each_state_begins():
    assert schedule(EXPIRES) == {
        BoxState.EXPIRED: date(2026, 3, 10),
        BoxState.SUSPENDED: date(2026, 4, 9),
        BoxState.DELETED: date(2026, 6, 8),
    }
    for state, first_day in schedule(EXPIRES).items():
        assert state_on(EXPIRES, first_day) == state
        assert state_on(EXPIRES, first_day - timedelta(days=1)) != state


# --- actions ----------------------------------------------------------------------------


def test_the_gestore_activates_or_refuses_a_pending_box():
    assert check_action(Action.ACTIVATE, BoxState.PENDING, None, EXPIRES) == BoxState.ACTIVE
    assert check_action(Action.REFUSE, BoxState.PENDING, None, EXPIRES) == BoxState.REFUSED
    error = error_of(check_action, Action.ACTIVATE, BoxState.ACTIVE, EXPIRES, EXPIRES)
    assert error.code == "action.activate.state" and "Active" in str(error)


def test_a_suspended_box_comes_back_by_hand_only_before_expiry():
    assert check_action(Action.SUSPEND, BoxState.ACTIVE, EXPIRES, EXPIRES) == BoxState.SUSPENDED
    assert check_action(Action.REACTIVATE, BoxState.SUSPENDED, EXPIRES, EXPIRES) == BoxState.ACTIVE
    error = error_of(check_action, Action.REACTIVATE, BoxState.SUSPENDED, EXPIRES, EXPIRES + timedelta(days=1))
    assert error.code == "action.reactivate.expired" and "2026-03-09" in str(error)


def test_a_closing_request_deletes_any_box_not_already_gone():
    for state in (BoxState.PENDING, BoxState.ACTIVE, BoxState.EXPIRED, BoxState.SUSPENDED):
        assert check_action(Action.DELETE, state, EXPIRES, EXPIRES) == BoxState.DELETED
    for state in (BoxState.DELETED, BoxState.REFUSED):
        assert error_of(check_action, Action.DELETE, state, EXPIRES, EXPIRES).code == "action.delete.state"


def test_bulk_actions_apply_to_the_boxes_they_fit_and_say_why_not_to_the_others():
    boxes = [
        (1, BoxState.ACTIVE, EXPIRES),
        (2, BoxState.SUSPENDED, EXPIRES),
        (3, BoxState.ACTIVE, EXPIRES),
        (4, BoxState.PENDING, None),
    ]
    ok, refused = partition_for_action(boxes, Action.SUSPEND, EXPIRES)
    assert ok == [1, 3]
    assert {k: e.code for k, e in refused.items()} == {2: "action.suspend.state", 4: "action.suspend.state"}
    ok, refused = partition_for_action(boxes, Action.REACTIVATE, EXPIRES + timedelta(days=1))
    assert ok == [] and refused[2].code == "action.reactivate.expired"


def test_renewal_counts_from_the_old_expiry():
    # Early: no day lost.
    assert renewed_expiry(BoxState.ACTIVE, EXPIRES, 1, date(2026, 1, 1)) == date(2027, 3, 9)
    # Late, while scaduta or sospesa: the paid period is not stretched.
    assert renewed_expiry(BoxState.EXPIRED, EXPIRES, 2, date(2026, 3, 20)) == date(2028, 3, 9)
    assert renewed_expiry(BoxState.SUSPENDED, EXPIRES, 1, date(2026, 5, 1)) == date(2027, 3, 9)
    # The new period starts the day after the old expiry (28 February 2025): three years of it
    # end on 27 February 2028.
    assert renewed_expiry(BoxState.ACTIVE, date(2025, 2, 27), 3, date(2025, 1, 1)) == date(2028, 2, 27)


def test_a_box_past_its_deletion_date_or_not_yet_active_cannot_be_renewed():
    assert (
        error_of(renewed_expiry, BoxState.SUSPENDED, EXPIRES, 1, EXPIRES + timedelta(days=91)).code == "renew.deleted"
    )
    assert error_of(renewed_expiry, BoxState.PENDING, EXPIRES, 1, EXPIRES).code == "action.renew.state"
    assert error_of(renewed_expiry, BoxState.DELETED, EXPIRES, 1, EXPIRES).code == "action.renew.state"


# --- reminders --------------------------------------------------------------------------


def run_job(expires_on: date, first_day: date, last_day: date, reminder_days=(90, 30, 15, 7)) -> list[tuple[date, int]]:
    """A daily job from ``first_day`` to ``last_day``, recording what it sends."""
    sent: set[int] = set()
    log = []
    day = first_day
    while day <= last_day:
        due = due_reminder(expires_on, day, sent, reminder_days)
        if due is not None:
            sent.add(due)
            log.append((day, due))
        day += timedelta(days=1)
    return log


def test_each_reminder_is_sent_once_on_its_day():
    log = run_job(EXPIRES, EXPIRES - timedelta(days=400), EXPIRES + timedelta(days=30))
    assert log == [
        (EXPIRES - timedelta(days=90), 90),
        (EXPIRES - timedelta(days=30), 30),
        (EXPIRES - timedelta(days=15), 15),
        (EXPIRES - timedelta(days=7), 7),
    ]


def test_a_box_registered_close_to_expiry_gets_only_the_reminder_of_its_window():
    log = run_job(EXPIRES, EXPIRES - timedelta(days=20), EXPIRES)
    assert log == [
        (EXPIRES - timedelta(days=20), 30),
        (EXPIRES - timedelta(days=15), 15),
        (EXPIRES - timedelta(days=7), 7),
    ]


def test_a_day_the_job_missed_is_made_up_without_sending_twice():
    sent = {90}
    assert due_reminder(EXPIRES, EXPIRES - timedelta(days=28), sent) == 30  # the 30-day one, two days late
    sent.add(30)
    assert due_reminder(EXPIRES, EXPIRES - timedelta(days=27), sent) is None
    assert due_reminder(EXPIRES, EXPIRES - timedelta(days=3), {90}) == 7  # 30 and 15 are past


def test_no_reminder_after_expiry_or_before_the_first_window():
    assert due_reminder(EXPIRES, EXPIRES + timedelta(days=1), set()) is None
    assert due_reminder(EXPIRES, EXPIRES - timedelta(days=91), set()) is None
    assert due_reminder(EXPIRES, EXPIRES, set()) == 7  # the last day is still in the 7-day window


def test_reminder_windows_give_the_set_based_job_the_same_answer():
    today = date(2026, 1, 1)
    windows = reminder_windows(today)
    assert windows[0] == (7, today, today + timedelta(days=7))
    for offset in range(-3, 120):
        expires_on = today + timedelta(days=offset)
        expected = due_reminder(expires_on, today, set())
        found = [days for days, first, last in windows if first <= expires_on <= last]
        assert found == ([expected] if expected else []), expires_on


def test_the_default_policy_has_the_issue_s_reminders():
    assert DEFAULT_POLICY.reminder_days == (90, 30, 15, 7)
