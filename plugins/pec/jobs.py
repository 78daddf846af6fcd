"""The daily job of each reseller: boxes move scaduta → sospesa → cancellata as the calendar says,
reminders before expiry go out (each once), and activation requests the HTTP provider has not
answered are sent again or asked about.

Set-based: each transition is one UPDATE over every box it applies to (and one INSERT of their
audit events); the reminders due are one INSERT … SELECT of markers whose unique key makes each
reminder a fact at most once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, insert, literal, select, update
from sqlalchemy.orm import aliased, selectinload

from core.api import (
    UPDATE,
    audit_row,
    audit_rows,
    db,
    external_url,
    send_email,
    tenant_today,
    update_by_id,
    user_language,
    utcnow,
)
from plugins.pec.activation import service as activation
from plugins.pec.activation.contract import ProviderError
from plugins.pec.lifecycle import (
    DEFAULT_POLICY,
    STATE_LABELS,
    BoxState,
    LifecyclePolicy,
    lifecycle_cutoffs,
    reminder_windows,
)
from plugins.pec.models import MANUAL_PROVIDER, Box, BoxReminder

log = logging.getLogger(__name__)

ACTIVE, EXPIRED, SUSPENDED, DELETED = (
    s.value for s in (BoxState.ACTIVE, BoxState.EXPIRED, BoxState.SUSPENDED, BoxState.DELETED)
)


def _move(tenant, condition, target: BoxState, extra: dict) -> int:
    """One transition: audit events for the boxes ``condition`` selects, then one UPDATE."""
    rows = db.session.execute(select(Box.id, Box.address, Box.state).where(condition)).all()
    if not rows:
        return 0
    db.session.execute(
        update(Box).where(condition).values(state=target.value, updated_at=utcnow(), **extra),
        execution_options={"synchronize_session": False},
    )
    audit_rows(
        [
            audit_row(
                tenant.id,
                UPDATE,
                "pec_box",
                row.id,
                row.address,
                {"state": [str(STATE_LABELS[BoxState(row.state)]), str(STATE_LABELS[target])]},
            )
            for row in rows
        ]
    )
    return len(rows)


def advance_states(tenant, policy: LifecyclePolicy = DEFAULT_POLICY) -> dict[str, int]:
    """scaduta, sospesa, cancellata, as the calendar says (time only moves a box forward: one
    suspended by hand before its expiry stays suspended until the calendar passes it)."""
    today = tenant_today(tenant)
    cut = lifecycle_cutoffs(today, policy)
    deleted = _move(
        tenant,
        and_(Box.state.in_((ACTIVE, EXPIRED, SUSPENDED)), Box.expires_on < cut.deleted_before),
        BoxState.DELETED,
        {"deleted_on": today, "package_id": None},
    )
    suspended = _move(
        tenant,
        and_(Box.state.in_((ACTIVE, EXPIRED)), Box.expires_on < cut.suspended_before),
        BoxState.SUSPENDED,
        {"package_id": None},
    )
    expired = _move(
        tenant, and_(Box.state == ACTIVE, Box.expires_on < cut.expired_before), BoxState.EXPIRED, {"package_id": None}
    )
    return {"expired": expired, "suspended": suspended, "deleted": deleted}


def claim_reminders(tenant, policy: LifecyclePolicy = DEFAULT_POLICY) -> list[int]:
    """Markers of the reminders due today (INSERT … SELECT, one per window): the ids of the new
    markers. A reminder already sent for a box's current expiry is never due again; a renewal
    (a new expiry) starts afresh."""
    today = tenant_today(tenant)
    now = utcnow()
    claimed: list[int] = []
    for days, first, last in reminder_windows(today, policy.reminder_days):
        sent = aliased(BoxReminder)
        source = select(Box.tenant_id, Box.id, Box.expires_on, literal(days), literal(now)).where(
            Box.tenant_id == tenant.id,
            Box.state == ACTIVE,
            Box.expires_on >= first,
            Box.expires_on <= last,
            ~exists().where(
                sent.tenant_id == tenant.id, sent.box_id == Box.id, sent.expires_on == Box.expires_on, sent.days == days
            ),
        )
        result = db.session.execute(
            insert(BoxReminder)
            .from_select(["tenant_id", "box_id", "expires_on", "days", "created_at"], source)
            .returning(BoxReminder.id)
        )
        claimed += [row[0] for row in result.all()]
    return claimed


def send_reminders(tenant, reminder_ids: list[int]) -> int:
    """Each claimed reminder: an e-mail to the holder; one digest to the reseller listing them."""
    if not reminder_ids:
        return 0
    reminders = db.session.scalars(
        select(BoxReminder).where(BoxReminder.id.in_(reminder_ids)).order_by(BoxReminder.expires_on, BoxReminder.id)
    ).all()
    boxes = {
        box.id: box
        for box in db.session.scalars(
            select(Box).where(Box.id.in_([r.box_id for r in reminders])).options(selectinload(Box.holder))
        )
    }
    messages = []
    for reminder in reminders:
        box = boxes[reminder.box_id]
        holder = box.holder
        if holder.email:
            message = send_email(
                tenant,
                holder.email,
                _l("Your PEC box %(address)s expires in %(days)s days", address=box.address, days=reminder.days),
                "pec/mail/reminder",
                holder.locale or tenant.language,
                commit=False,
                box=box,
                holder=holder,
                days=reminder.days,
            )
            messages.append({"id": reminder.id, "message_id": message.id})
    if messages:
        update_by_id(BoxReminder, messages)  # one executemany: each marker points at its e-mail
    listed = [(boxes[r.box_id], r.days) for r in reminders]
    for user in activation.reseller_recipients(tenant):
        send_email(
            tenant,
            user.email,
            _l("PEC boxes expiring: %(n)s reminders sent today", n=len(listed)),
            "pec/mail/reminder_digest",
            user_language(user, tenant),
            commit=False,
            reminders=listed,
            link=external_url("pec.boxes_list", tenant=tenant.slug, expiring="90"),
        )
    return len(reminders)


def resend_unanswered(tenant, older_than: timedelta = timedelta(hours=1), batch: int = 200) -> dict[str, int]:
    """HTTP activations that never left (Redis was away) are queued again; those the provider took
    but never called back about are asked for their state."""
    queued = asked = 0
    unsent = db.session.scalars(
        select(Box)
        .where(
            Box.state == BoxState.PENDING.value,
            Box.provider != MANUAL_PROVIDER,
            Box.holder_address_id.is_not(None),
            Box.submitted_at.is_(None),
            Box.provider_error == "",
        )
        .limit(batch)
    ).all()
    for box in unsent:
        activation.request_activation(tenant, box)
        queued += 1
    stale = db.session.scalars(
        select(Box)
        .where(
            Box.state == BoxState.PENDING.value,
            Box.provider != MANUAL_PROVIDER,
            Box.submitted_at < utcnow() - older_than,
        )
        .limit(batch)
    ).all()
    for box in stale:
        try:
            result = activation.provider_for(box.provider).status(box.request_id)
        except ProviderError as error:
            log.warning("status of box %s: %s", box.id, error.message)
            continue
        if result is not None:
            activation.apply_result(tenant, box, result)
            asked += 1
    db.session.commit()
    return {"queued": queued, "asked": asked}


def run_daily(ctx) -> dict:
    counts = advance_states(ctx.tenant)
    reminders = claim_reminders(ctx.tenant)
    counts["reminders"] = send_reminders(ctx.tenant, reminders)
    db.session.commit()
    counts.update(resend_unanswered(ctx.tenant))
    return counts
