"""Reading inbound mailboxes: the ``inboxes.sync`` job (one mailbox) and the ``inboxes.poll`` sweep.

Every minute the sweep finds, for every tenant with the plugin, the active inbound mailboxes whose
time has come (``next_sync_at``: the polling interval after the last run, later after failures) and
starts one ``inboxes.sync`` run for each on the ``sync`` queue; "Read now" starts one at once.

A run first takes the mailbox's lease (a conditional UPDATE): one worker at a time reads a mailbox,
whatever the number of workers and of runs queued. It then fetches what is new since the state kept
with the mailbox (UIDVALIDITY and last UID for IMAP, UIDLs for POP3), handing each message to
``ingest.Ingestor``, which commits it before the fetcher moves or deletes it on the server. A run
has a time budget shorter than its lease and renews the lease as it goes.

A failed run (the server away, a password refused, a database error) never raises into the worker:
it is recorded on the mailbox in words, and the next run waits longer each time (the polling
interval doubled per consecutive failure, at most six hours); after ``ALERT_AFTER`` failures in a
row the people who manage mailboxes get one e-mail, and one more when it works again. Runs are
independent: one mailbox's failure never stops another's.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from core.api import (
    Tenant,
    current_tenant,
    db,
    enqueue,
    external_url,
    send_email,
    tenant_context,
    user_language,
    users_with_permission,
    utcnow,
)
from plugins.inboxes.connectors import MailError, state_from_dict
from plugins.inboxes.ingest import Ingestor
from plugins.inboxes.mailboxes import error_message, fetcher_of
from plugins.inboxes.models import INBOUND, ContractInbox, Mailbox

log = logging.getLogger(__name__)

JOB_TIMEOUT = 900
LEASE_SECONDS = 600
RUN_BUDGET_SECONDS = 480
STATE_EVERY = 25  # messages between two saves of the fetch state during a run
ALERT_AFTER = 5
MAX_BACKOFF = timedelta(hours=6)
QUEUED_FOR = timedelta(minutes=30)  # a run queued longer than this is presumed lost
COMMIT_FAILED = "commit_failed"
NOT_LINKED = "not_linked"


class LeaseLost(RuntimeError):
    """Another worker holds the mailbox now (ours expired): stop at once."""


@dataclass
class Lease:
    mailbox_id: int
    token: str
    until: object
    seconds: int = LEASE_SECONDS

    @classmethod
    def acquire(cls, mailbox_id: int, seconds: int = LEASE_SECONDS) -> Lease | None:
        """Take the mailbox's lease if nobody holds it (or theirs expired); None when it is held."""
        token = secrets.token_hex(8)
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        taken = db.session.execute(
            update(Mailbox)
            .where(Mailbox.id == mailbox_id, or_(Mailbox.lease_until.is_(None), Mailbox.lease_until < now))
            .values(lease_until=until, lease_token=token)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        return cls(mailbox_id, token, until, seconds) if taken == 1 else None

    def renew(self) -> None:
        """Push the lease forward; raises ``LeaseLost`` if it is no longer ours."""
        until = utcnow() + timedelta(seconds=self.seconds)
        kept = db.session.execute(
            update(Mailbox)
            .where(Mailbox.id == self.mailbox_id, Mailbox.lease_token == self.token)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if kept != 1:
            raise LeaseLost(f"mailbox {self.mailbox_id}: lease taken over")
        self.until = until

    def renew_if_due(self) -> None:
        if self.until - utcnow() < timedelta(seconds=self.seconds / 2):
            self.renew()

    def release(self) -> None:
        db.session.rollback()
        db.session.execute(
            update(Mailbox)
            .where(Mailbox.id == self.mailbox_id, Mailbox.lease_token == self.token)
            .values(lease_until=None, lease_token=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


# --- the job -------------------------------------------------------------------------------------


def run_sync(ctx, mailbox_id: int) -> dict:
    """The ``inboxes.sync`` job: read one inbound mailbox now."""
    mailbox = db.session.get(Mailbox, mailbox_id)
    if mailbox is None or mailbox.direction != INBOUND:
        return {"skipped": "no such inbound mailbox"}
    mailbox.queued_at = None
    db.session.commit()
    if not mailbox.active:
        return {"skipped": "switched off"}
    lease = Lease.acquire(mailbox_id)
    if lease is None:
        return {"skipped": "being read by another worker"}
    try:
        return sync_mailbox(db.session.get(Mailbox, mailbox_id), lease, progress=ctx.progress if ctx else None)
    finally:
        lease.release()


def _save_state(mailbox_id: int, state) -> None:
    db.session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id)
        .values(fetch_state=state.to_dict())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def sync_mailbox(mailbox: Mailbox, lease: Lease, *, progress=None, budget: float = RUN_BUDGET_SECONDS) -> dict:
    """Fetch and store what is new in ``mailbox`` (its lease held); records the outcome on it."""
    mailbox_id = mailbox.id
    linked = db.session.scalar(select(ContractInbox.id).where(ContractInbox.mailbox_id == mailbox_id))
    if linked is None:
        _record(mailbox_id, error=NOT_LINKED, detail="no contract", count_failure=False)
        return {"error": NOT_LINKED}
    try:
        fetcher = fetcher_of(mailbox)
    except MailError as error:
        _record(mailbox_id, error=error.kind.value, detail=str(error))
        return {"error": error.kind.value}
    state = state_from_dict(mailbox.protocol, mailbox.fetch_state)
    ingestor = Ingestor(mailbox)
    handed = [0]

    def commit(fetched):
        lease.renew_if_due()
        outcome = ingestor(fetched)
        handed[0] += 1
        if handed[0] % STATE_EVERY == 0:
            _save_state(mailbox_id, state)
        if progress is not None:
            progress(handed[0], None, f"{handed[0]}")
        return outcome

    db.session.commit()  # no transaction stays open while the server is slow
    result = fetcher.fetch(state, commit, deadline=time.monotonic() + budget)
    db.session.rollback()
    _save_state(mailbox_id, state)
    summary = {
        "fetched": result.fetched,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "created": sum(1 for s in ingestor.stored if s.created),
        "duplicates": sum(1 for s in ingestor.stored if s.duplicate),
        "remaining": result.remaining,
    }
    if result.error is not None:
        log.warning("mailbox %s: %s", mailbox_id, result.error)
        _record(mailbox_id, error=result.error.kind.value, detail=str(result.error))
        summary["error"] = result.error.kind.value
    elif result.commit_error is not None:
        error = result.commit_error
        if isinstance(error, LeaseLost):
            summary["error"] = "lease_lost"
            return summary
        log.error("mailbox %s: storing a message failed", mailbox_id, exc_info=error)
        _record(mailbox_id, error=COMMIT_FAILED, detail=f"{type(error).__name__}: {error}"[:300])
        summary["error"] = COMMIT_FAILED
    else:
        _record(mailbox_id, again_now=result.remaining > 0)
    return summary


def _record(mailbox_id: int, *, error: str | None = None, detail: str = "", count_failure=True, again_now=False):
    """The outcome of a run on the mailbox: health, the next run's time, the alert."""
    db.session.rollback()
    mailbox = db.session.get(Mailbox, mailbox_id)
    now = utcnow()
    mailbox.last_sync_at = now
    poll = timedelta(minutes=max(1, mailbox.poll_minutes))
    if error is None:
        recovered = mailbox.alerted_at is not None
        mailbox.failures = 0
        mailbox.last_error = None
        mailbox.last_error_detail = ""
        mailbox.last_ok_at = now
        mailbox.alerted_at = None
        mailbox.next_sync_at = now if again_now else now + poll
        if recovered:
            _alert(mailbox, recovered=True)
    else:
        mailbox.last_error = error[:32]
        mailbox.last_error_detail = detail[:300]
        if count_failure:
            mailbox.failures = (mailbox.failures or 0) + 1
            mailbox.next_sync_at = now + min(poll * 2 ** min(mailbox.failures - 1, 10), MAX_BACKOFF)
            if mailbox.failures >= ALERT_AFTER and mailbox.alerted_at is None:
                mailbox.alerted_at = now
                _alert(mailbox, recovered=False)
        else:
            mailbox.next_sync_at = now + poll
    db.session.commit()


def _alert(mailbox: Mailbox, *, recovered: bool) -> None:
    """E-mail the people who manage mailboxes (in the same transaction as the mailbox's health)."""
    from plugins.inboxes import MAILBOXES

    tenant = current_tenant()
    link = external_url("inboxes.mailbox", tenant=tenant.slug, inbox_id=mailbox.id)
    problem = error_message(mailbox.last_error) if not recovered else ""  # lazy: in each reader's language
    for user in users_with_permission(MAILBOXES):
        language = user_language(user, tenant)
        subject = (
            _l("The mailbox %(name)s works again", name=mailbox.name)
            if recovered
            else _l("The mailbox %(name)s cannot be read", name=mailbox.name)
        )
        send_email(
            tenant,
            user.email,
            subject,
            "inboxes/mail/alert",
            language,
            commit=False,
            headers={"X-Loop": "ventanilla-inboxes"},
            mailbox=mailbox,
            failures=mailbox.failures,
            recovered=recovered,
            kind=mailbox.last_error,
            link=link,
            problem=problem,
        )


# --- starting runs -------------------------------------------------------------------------------


def due_statement(now):
    return select(Mailbox.id).where(
        Mailbox.direction == INBOUND,
        Mailbox.active.is_(True),
        or_(Mailbox.next_sync_at.is_(None), Mailbox.next_sync_at <= now),
        or_(Mailbox.queued_at.is_(None), Mailbox.queued_at < now - QUEUED_FOR),
        or_(Mailbox.lease_until.is_(None), Mailbox.lease_until < now),
        Mailbox.id.in_(select(ContractInbox.mailbox_id)),
    )


def start(tenant, mailbox_ids: list[int], started_by=None) -> int:
    """One ``inboxes.sync`` run per mailbox (marked queued first, so the sweep does not add another)."""
    if not mailbox_ids:
        return 0
    db.session.execute(
        update(Mailbox)
        .where(Mailbox.id.in_(mailbox_ids))
        .values(queued_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    started = 0
    for mailbox_id in mailbox_ids:
        try:
            enqueue(
                tenant, "inboxes.sync", {"mailbox_id": mailbox_id}, started_by=started_by, scheduled=started_by is None
            )
            started += 1
        except Exception:
            log.exception("could not start the reading of mailbox %s", mailbox_id)
            db.session.rollback()
            db.session.execute(
                update(Mailbox)
                .where(Mailbox.id == mailbox_id)
                .values(queued_at=None)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
    return started


def poll_due_mailboxes(tenant_ids: list[int]) -> dict:
    """The ``inboxes.poll`` sweep: start a run for every due mailbox of these tenants."""
    started = 0
    now = utcnow()
    for tenant_id in tenant_ids:
        with tenant_context(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            due = list(db.session.scalars(due_statement(now).order_by(Mailbox.next_sync_at)))
            started += start(tenant, due)
    return {"started": started}


def read_now(tenant, mailbox: Mailbox, user) -> bool:
    """ "Read now": a run at once (unless one is queued already); back-off and failures start afresh."""
    if mailbox.queued_at is not None and mailbox.queued_at > utcnow() - QUEUED_FOR:
        return False
    mailbox.next_sync_at = utcnow()
    db.session.commit()
    return start(tenant, [mailbox.id], started_by=user) == 1


def forget_queued() -> None:
    """The plugin was switched off: queued runs will be skipped; nothing stays marked as queued."""
    db.session.execute(
        update(Mailbox).where(Mailbox.queued_at.is_not(None)).values(queued_at=None),
        execution_options={"synchronize_session": False},
    )
