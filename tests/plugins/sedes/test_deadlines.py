"""The legal deadline: N natural days from the day after the puesta a disposición, in Madrid."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugins.sedes.contract import Kind
from plugins.sedes.deadlines import (
    alert_due,
    alerts_covered,
    days_left,
    deadline_ends_at,
    deadline_on,
    is_expired,
    madrid_date,
)

MADRID = ZoneInfo("Europe/Madrid")


def test_ten_natural_days_count_from_the_day_after_the_puesta_a_disposicion():
    # Put at disposal on Friday 4 December: day 1 is Saturday 5, day 10 is Monday 14.
    made = datetime(2026, 12, 4, 10, 30, tzinfo=MADRID)
    assert deadline_on(made, 10, Kind.NOTIFICACION) == date(2026, 12, 14)
    # Weekends and holidays count (natural days): 25 December changes nothing.
    assert deadline_on(datetime(2026, 12, 20, 9, 0, tzinfo=MADRID), 10, "notificacion") == date(2026, 12, 30)


def test_the_day_is_madrids_not_utcs():
    # 23:30 UTC on 4 December is already 5 December in Madrid (UTC+1 in winter).
    late = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert madrid_date(late) == date(2026, 12, 5)
    assert deadline_on(late, 10, Kind.NOTIFICACION) == date(2026, 12, 15)
    # 22:30 UTC in summer is 00:30 the next day in Madrid (UTC+2).
    summer = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)
    assert deadline_on(summer, 10, Kind.NOTIFICACION) == date(2026, 7, 12)


def test_the_days_across_the_change_of_time_are_still_ten_calendar_days():
    # The clocks go forward on 29 March 2026 and back on 25 October 2026.
    assert deadline_on(datetime(2026, 3, 27, 12, 0, tzinfo=MADRID), 10, Kind.NOTIFICACION) == date(2026, 4, 6)
    assert deadline_on(datetime(2026, 10, 20, 0, 5, tzinfo=MADRID), 10, Kind.NOTIFICACION) == date(2026, 10, 30)
    # The deadline ends at Madrid's midnight, whatever the offset that day.
    assert deadline_ends_at(date(2026, 3, 28)) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # UTC+1 until the 29th
    assert deadline_ends_at(date(2026, 3, 29)) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # UTC+2 from then


def test_lexnet_has_three_days_and_comunicaciones_none():
    made = datetime(2026, 12, 4, 10, 0, tzinfo=MADRID)
    assert deadline_on(made, 3, Kind.NOTIFICACION) == date(2026, 12, 7)
    assert deadline_on(made, 10, Kind.COMUNICACION) is None
    assert deadline_on(made, None, Kind.NOTIFICACION) is None  # a sede without a rule


def test_the_sedes_own_expiry_wins_over_the_rule():
    made = datetime(2026, 12, 4, 10, 0, tzinfo=MADRID)
    expires = datetime(2026, 12, 20, 23, 59, 59, tzinfo=MADRID)
    assert deadline_on(made, 10, Kind.NOTIFICACION, expires_at=expires) == date(2026, 12, 20)
    assert deadline_on(made, 10, Kind.COMUNICACION, expires_at=expires) is None


def test_a_naive_time_or_a_rule_of_no_days_is_refused():
    with pytest.raises(ValueError):
        deadline_on(datetime(2026, 12, 4, 10, 0), 10, Kind.NOTIFICACION)
    with pytest.raises(ValueError):
        deadline_on(datetime(2026, 12, 4, 10, 0, tzinfo=MADRID), 0, Kind.NOTIFICACION)


def test_expired_only_once_the_last_day_is_over_in_madrid():
    deadline = date(2026, 12, 14)
    assert not is_expired(deadline, datetime(2026, 12, 14, 22, 59, tzinfo=UTC))  # 23:59 in Madrid
    assert is_expired(deadline, datetime(2026, 12, 14, 23, 0, tzinfo=UTC))  # midnight in Madrid
    assert not is_expired(None, datetime(2030, 1, 1, tzinfo=UTC))
    assert days_left(deadline, date(2026, 12, 14)) == 0
    assert days_left(deadline, date(2026, 12, 15)) == -1


def test_alerts_come_five_two_and_one_days_before_each_once():
    deadline = date(2026, 12, 14)
    sent: list[int] = []
    told = {}
    for offset in range(12, -3, -1):
        today = deadline - timedelta(days=offset)
        threshold = alert_due(deadline, today, sent)
        if threshold is not None:
            told[offset] = threshold
            sent.extend(alerts_covered(threshold))
    assert told == {5: 5, 2: 2, 1: 1}
    # Run again on the same days: nothing more.
    assert all(alert_due(deadline, deadline - timedelta(days=d), sent) is None for d in range(12, -3, -1))


def test_a_notification_found_late_gets_the_closest_alert_only():
    deadline = date(2026, 12, 14)
    assert alert_due(deadline, deadline - timedelta(days=3), []) == 5
    assert alerts_covered(5) == [5]
    # Found with one day left: the one-day alert stands for all three.
    assert alert_due(deadline, deadline - timedelta(days=1), []) == 1
    assert alerts_covered(1) == [5, 2, 1]
    assert alert_due(deadline, deadline, []) is None  # the last day: too late for "days before"
    assert alert_due(None, deadline, []) is None
