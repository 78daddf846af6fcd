"""The life of a box: states, expiry date, what happens after expiry, renewal, reminders.

A box is registered *in attesa di attivazione*; the gestore activates it (*attiva*) or refuses it
(*rifiutata*). It is valid for a number of years from activation. After its expiry it is
*scaduta* (it still receives, cannot send; renewable), then *sospesa*, then *cancellata*; how
many days each step lasts is the gestore's policy (Aruba keeps expired boxes 90 days, Poste 30,
others suspend after 7: research/pec.md §1). A box can also be suspended by hand (bulk
suspend) and reactivated while it has not expired.

``expires_on`` is the last day of validity: a one-year box activated on 10 March 2025 is valid
until 9 March 2026 and *scaduta* from 10 March 2026.

Everything here is a pure function of dates: the daily job asks ``lifecycle_cutoffs`` for the
three dates its three set-based UPDATEs need, and ``reminder_windows`` for the expiry ranges
whose reminder is due.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from plugins.pec.errors import PecError


class BoxState(StrEnum):
    PENDING = "pending"  # in attesa di attivazione
    REFUSED = "refused"  # the gestore refused the activation
    ACTIVE = "active"  # attiva
    EXPIRED = "expired"  # scaduta: receives, cannot send, renewable
    SUSPENDED = "suspended"  # sospesa (after expiry, or by hand)
    DELETED = "deleted"  # cancellata

    @property
    def label(self):
        return STATE_LABELS[self]


# A box's states (the seed's "in attesa di attivazione", "ATTIVA"...): their own context, since
# Italian and Spanish agree them with "casella" / "buzón".
STATE_LABELS = {
    BoxState.PENDING: lazy_pgettext("box state", "Awaiting activation"),
    BoxState.REFUSED: lazy_pgettext("box state", "Activation refused"),
    BoxState.ACTIVE: lazy_pgettext("box state", "Active"),
    BoxState.EXPIRED: lazy_pgettext("box state", "Expired"),
    BoxState.SUSPENDED: lazy_pgettext("box state", "Suspended"),
    BoxState.DELETED: lazy_pgettext("box state", "Deleted"),
}

# The states time moves a box through, in order.
_TIMED = (BoxState.ACTIVE, BoxState.EXPIRED, BoxState.SUSPENDED, BoxState.DELETED)

DEFAULT_REMINDER_DAYS = (90, 30, 15, 7)


@dataclass(frozen=True)
class LifecyclePolicy:
    """A gestore's timing after expiry, in days counted from the expiry date, and the reminders."""

    suspend_after_days: int = 30  # scaduta for this many days, then sospesa
    delete_after_days: int = 90  # cancellata this many days after expiry
    reminder_days: tuple[int, ...] = DEFAULT_REMINDER_DAYS

    def __post_init__(self) -> None:
        if not 0 <= self.suspend_after_days <= 3650:
            raise PecError(_l("Between 0 and 3650 days."), field="suspend_after_days", code="policy.suspend_after_days")
        if not self.suspend_after_days < self.delete_after_days <= 3650:
            raise PecError(
                _l("A box is deleted some days after it is suspended, and within 3650 days of its expiry."),
                field="delete_after_days",
                code="policy.delete_after_days",
            )
        days = self.reminder_days
        if len(set(days)) != len(days) or not all(isinstance(d, int) and 1 <= d <= 365 for d in days):
            raise PecError(
                _l("Reminders are different numbers of days between 1 and 365."),
                field="reminder_days",
                code="policy.reminder_days",
            )
        object.__setattr__(self, "reminder_days", tuple(sorted(days, reverse=True)))


DEFAULT_POLICY = LifecyclePolicy()


# --- expiry -----------------------------------------------------------------------------


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    year = day.year + years
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


def expiry_date(activated_on: date, years: int) -> date:
    """The last day of validity of a box activated on ``activated_on`` for ``years`` years."""
    return add_years(activated_on, years) - timedelta(days=1)


def state_on(expires_on: date, today: date, policy: LifecyclePolicy = DEFAULT_POLICY) -> BoxState:
    """The state the calendar gives a box that expires (last valid day) on ``expires_on``."""
    past = (today - expires_on).days
    if past <= 0:
        return BoxState.ACTIVE
    if past <= policy.suspend_after_days:
        return BoxState.EXPIRED
    if past <= policy.delete_after_days:
        return BoxState.SUSPENDED
    return BoxState.DELETED


def due_transition(
    state: BoxState, expires_on: date | None, today: date, policy: LifecyclePolicy = DEFAULT_POLICY
) -> BoxState | None:
    """The state the daily job moves a box to today, or None. Time only moves a box forward
    (a box suspended by hand before expiry stays suspended until the calendar passes it)."""
    if state not in _TIMED or state == BoxState.DELETED or expires_on is None:
        return None
    target = state_on(expires_on, today, policy)
    return target if _TIMED.index(target) > _TIMED.index(state) else None


@dataclass(frozen=True)
class Cutoffs:
    """For the daily job: a box in a timed state whose ``expires_on`` is before ``expired_before``
    is at least scaduta, before ``suspended_before`` at least sospesa, before ``deleted_before``
    cancellata."""

    expired_before: date
    suspended_before: date
    deleted_before: date


def lifecycle_cutoffs(today: date, policy: LifecyclePolicy = DEFAULT_POLICY) -> Cutoffs:
    return Cutoffs(
        expired_before=today,
        suspended_before=today - timedelta(days=policy.suspend_after_days),
        deleted_before=today - timedelta(days=policy.delete_after_days),
    )


def schedule(expires_on: date, policy: LifecyclePolicy = DEFAULT_POLICY) -> dict[BoxState, date]:
    """The first day of each state after expiry, to tell the user what will happen when."""
    return {
        BoxState.EXPIRED: expires_on + timedelta(days=1),
        BoxState.SUSPENDED: expires_on + timedelta(days=policy.suspend_after_days + 1),
        BoxState.DELETED: expires_on + timedelta(days=policy.delete_after_days + 1),
    }


# --- actions ----------------------------------------------------------------------------


class Action(StrEnum):
    ACTIVATE = "activate"  # the gestore (or a provider) activated the box
    REFUSE = "refuse"  # the gestore refused it
    SUSPEND = "suspend"  # by hand, also in bulk
    REACTIVATE = "reactivate"  # undo a suspension, while not expired
    RENEW = "renew"  # more years; an expired or suspended box comes back
    DELETE = "delete"  # closing request (richiesta di chiusura)


_ALLOWED = {
    Action.ACTIVATE: {BoxState.PENDING},
    Action.REFUSE: {BoxState.PENDING},
    Action.SUSPEND: {BoxState.ACTIVE},
    Action.REACTIVATE: {BoxState.SUSPENDED},
    Action.RENEW: {BoxState.ACTIVE, BoxState.EXPIRED, BoxState.SUSPENDED},
    Action.DELETE: {BoxState.PENDING, BoxState.ACTIVE, BoxState.EXPIRED, BoxState.SUSPENDED},
}
_RESULT = {
    Action.ACTIVATE: BoxState.ACTIVE,
    Action.REFUSE: BoxState.REFUSED,
    Action.SUSPEND: BoxState.SUSPENDED,
    Action.REACTIVATE: BoxState.ACTIVE,
    Action.RENEW: BoxState.ACTIVE,
    Action.DELETE: BoxState.DELETED,
}


def check_action(action: Action, state: BoxState, expires_on: date | None, today: date) -> BoxState:
    """The state ``action`` leaves a box in, or a ``PecError`` saying why it cannot be done now."""
    if state not in _ALLOWED[action]:
        raise PecError(
            _l("This cannot be done to a box in the state: %(state)s.", state=state.label),
            field="state",
            code=f"action.{action.value}.state",
        )
    if action == Action.REACTIVATE and expires_on is not None and today > expires_on:
        raise PecError(
            _l("The box expired on %(day)s: renew it to bring it back.", day=expires_on.isoformat()),
            field="state",
            code="action.reactivate.expired",
        )
    return _RESULT[action]


def renewed_expiry(
    state: BoxState, expires_on: date, years: int, today: date, policy: LifecyclePolicy = DEFAULT_POLICY
) -> date:
    """The new last day of validity after renewing for ``years``: counted from the old expiry, so
    renewing early loses no day and renewing late does not stretch the paid period."""
    check_action(Action.RENEW, state, expires_on, today)
    if state_on(expires_on, today, policy) == BoxState.DELETED:
        raise PecError(
            _l("The box has passed its deletion date and cannot be renewed."), field="state", code="renew.deleted"
        )
    return add_years(expires_on + timedelta(days=1), years) - timedelta(days=1)


def partition_for_action(
    boxes: Iterable[tuple[object, BoxState, date | None]], action: Action, today: date
) -> tuple[list[object], dict[object, PecError]]:
    """Bulk actions (suspend or reactivate a selection): the ids the action applies to, and why
    the others are left as they are. ``boxes`` are ``(id, state, expires_on)``."""
    ok: list[object] = []
    refused: dict[object, PecError] = {}
    for box_id, state, expires_on in boxes:
        try:
            check_action(action, state, expires_on, today)
        except PecError as error:
            refused[box_id] = error
        else:
            ok.append(box_id)
    return ok, refused


# --- reminders --------------------------------------------------------------------------


def due_reminder(
    expires_on: date, today: date, sent: Collection[int], reminder_days: Iterable[int] = DEFAULT_REMINDER_DAYS
) -> int | None:
    """The reminder to send today (its number of days), or None.

    The box is in the window of the smallest number of days that is still ≥ the days left; that
    reminder is sent if it has not been. So each is sent at most once, a box registered 20 days
    before expiry gets the 30-day reminder and not the 90-day one, and a day the job did not run
    is made up the next day. ``sent`` holds the reminders sent for this ``expires_on`` (a renewal
    starts a new, empty set).
    """
    left = (expires_on - today).days
    if left < 0:
        return None
    windows = [d for d in reminder_days if d >= left]
    if not windows:
        return None
    current = min(windows)
    return None if current in sent else current


def reminder_windows(today: date, reminder_days: Iterable[int] = DEFAULT_REMINDER_DAYS) -> list[tuple[int, date, date]]:
    """For the daily job, set-based: ``(days, first, last)`` — boxes expiring between ``first`` and
    ``last`` (inclusive) are due the ``days`` reminder unless it was sent for that expiry."""
    days = sorted(set(reminder_days))
    windows = []
    lower = -1
    for d in days:
        windows.append((d, today + timedelta(days=lower + 1), today + timedelta(days=d)))
        lower = d
    return windows
