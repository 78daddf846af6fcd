"""Deadlines that escalate (issue 14): a notification nobody in the office has handled when two days
or fewer are left goes also to the supervisors of its client's groups.

The supervisors are the active staff holding ``sedes.notifications:supervise`` who see the client
(core's groups, as for every list of the plugin). Each escalation is recorded per notification,
supervisor and threshold (``SedeDeadlineEscalation``) in the transaction that queues its mail: a run
that dies before committing leaves neither, and the retry sends it; one that committed is not
repeated, and a second run racing it fails on the unique key instead of mailing twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from core.api import Client, TenantScoped, User, db, users_with_permission, utcnow, visible_client_ids

SUPERVISE = "sedes.notifications:supervise"


class SedeDeadlineEscalation(TenantScoped, db.Model):
    """An escalation mail that went: to ``user_id``, of ``notification_id``, at ``threshold`` days left."""

    __tablename__ = "sedes_deadline_escalations"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "notification_id", "user_id", "threshold", name="uq_sedes_deadline_escalations_once"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("sedes_notifications.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"), index=True)
    threshold: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


def supervisors_by_client(client_ids: set[int]) -> dict[int, list[User]]:
    """``{client_id: [supervisor, …]}`` for these clients: one query per supervisor, whatever the
    number of notifications (the supervisors of an office are few)."""
    found: dict[int, list[User]] = {}
    if not client_ids:
        return found
    for user in users_with_permission(SUPERVISE):
        seen = db.session.scalars(
            select(Client.id).where(Client.id.in_(sorted(client_ids)), Client.id.in_(visible_client_ids(user)))
        )
        for client_id in seen:
            found.setdefault(client_id, []).append(user)
    return found


def already_sent(notification_ids: list[int]) -> set[tuple[int, int, int]]:
    """The ``(notification_id, user_id, threshold)`` escalations recorded for these notifications."""
    if not notification_ids:
        return set()
    rows = db.session.execute(
        select(
            SedeDeadlineEscalation.notification_id, SedeDeadlineEscalation.user_id, SedeDeadlineEscalation.threshold
        ).where(SedeDeadlineEscalation.notification_id.in_(notification_ids))
    )
    return {(row[0], row[1], row[2]) for row in rows}


def record(rows: list[dict]) -> None:
    """Record escalations (``notification_id``, ``user_id``, ``threshold``) in one INSERT, in the
    caller's transaction."""
    if rows:
        now = utcnow()
        db.session.execute(insert(SedeDeadlineEscalation), [{**row, "sent_at": now} for row in rows])
