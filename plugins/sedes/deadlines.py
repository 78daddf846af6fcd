"""The legal deadline of an electronic notification, in natural days of Europe/Madrid.

Art. 43.2 of Ley 39/2015: a notification put at disposal and not accessed within ten natural days
is deemed rejected. The days count from the day after the puesta a disposición, in Spain's
peninsular time (the sedes' own clock), whatever the hour it happened; the deadline is the last
of those days, and it ends at midnight Madrid time. LexNET's rule is three days; a comunicación
has no deadline at all. A sede that states its own expiry wins over the catalogue's rule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from plugins.sedes.contract import Kind

MADRID = ZoneInfo("Europe/Madrid")
ALERT_DAYS = (5, 2, 1)  # days before the deadline when the assignee is told, each once
# Days left when an unhandled notification is escalated to the supervisors, each once: the last
# day (0) too, since it can still be opened until Madrid's midnight.
ESCALATION_DAYS = (2, 1, 0)


def madrid_date(moment: datetime) -> date:
    """The calendar day in Madrid of an aware ``moment``."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no day in Madrid: give it a time zone")
    return moment.astimezone(MADRID).date()


def deadline_on(
    made_available_at: datetime, days: int | None, kind: Kind | str, expires_at: datetime | None = None
) -> date | None:
    """The last day to access a notification, or None when it has no deadline.

    ``days`` is the sede's rule (10, 3 for LexNET, None for a sede without one); ``expires_at`` the
    sede's own expiry when it gives one (its day in Madrid is the deadline).
    """
    if Kind(kind) is Kind.COMUNICACION:
        return None
    if expires_at is not None:
        return madrid_date(expires_at)
    if days is None:
        return None
    if days < 1:
        raise ValueError("a deadline is at least one natural day")
    # Day 1 is the day after the puesta a disposición; day N is the deadline.
    return madrid_date(made_available_at) + timedelta(days=days)


def deadline_ends_at(deadline: date) -> datetime:
    """The instant (UTC) the deadline's last day ends in Madrid: midnight at its close."""
    return datetime.combine(deadline + timedelta(days=1), time(0), tzinfo=MADRID).astimezone(UTC)


def days_left(deadline: date, today: date) -> int:
    """Natural days from ``today`` to the deadline: 0 on its last day, negative once it has passed."""
    return (deadline - today).days


def is_expired(deadline: date | None, now: datetime) -> bool:
    """Whether the deadline's last day is over at ``now`` (aware)."""
    return deadline is not None and now >= deadline_ends_at(deadline)


def madrid_today(now: datetime | None = None) -> date:
    """Today in Madrid (the sedes' calendar)."""
    return madrid_date(now or datetime.now(UTC))


def alert_due(deadline: date | None, today: date, sent: tuple[int, ...] | list[int]) -> int | None:
    """The alert (5, 2 or 1 days before) to send today, or None.

    The closest threshold reached and not sent yet: a notification found with three days left gets
    the five-day alert once, and then the two-day and one-day ones on their days; none once the
    last day has come (nor for one whose deadline has passed).
    """
    if deadline is None:
        return None
    left = days_left(deadline, today)
    if left < 1:
        return None
    reached = [days for days in ALERT_DAYS if left <= days]
    if not reached:
        return None
    closest = min(reached)
    return None if closest in sent else closest


def alerts_covered(threshold: int) -> list[int]:
    """The thresholds an alert of ``threshold`` days stands for (it and the earlier ones)."""
    return [days for days in ALERT_DAYS if days >= threshold]


def escalation_due(deadline: date | None, today: date) -> int | None:
    """The escalation threshold (2, 1 or 0 days left) ``today`` falls in, or None: none before two
    days are left, nor once the deadline has passed. A notification found with one day left is
    escalated at 1 (the 2-day one would say less), then on its last day."""
    if deadline is None:
        return None
    left = days_left(deadline, today)
    if not 0 <= left <= ESCALATION_DAYS[0]:
        return None
    return min(days for days in ESCALATION_DAYS if left <= days)
