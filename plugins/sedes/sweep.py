"""The sweep at scale: every due mailbox of a tenant read once, shared by several workers.

The ``sedes.sweep`` cron (every five minutes, across tenants: ``start_sweeps``) opens a sweep for a
tenant with due mailboxes and none open: a ``SedeSweep`` row that *stamps* them (``sweep_id``, and
``queued_at`` like any claim, so "Consultar buzón" leaves them alone) and queues ``parts`` jobs on
the ``sync`` queue (``SEDES_SWEEP_PARTS``, about the number of workers; fewer for a small sweep): the
first, ``sedes.sweep_run``, is the sweep's ``JobRun`` (its one progress bar), the others
``sedes.sweep_part``. Every part does the same (``run_part``):

- it *leases* a batch of stamped mailboxes whose lease is free or expired, by one conditional
  UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers): ``lease_owner`` is a
  token of this batch, ``leased_until`` now + ``SEDES_SWEEP_LEASE_SECONDS``;
- a heartbeat thread renews the batch's lease while it is read, so a slow but living worker keeps
  it; a dead one's lease expires and another part takes the mailboxes over;
- it reads them (``sync``: ``CONCURRENCY`` at a time, within the sede's limit, ``limits``) and
  writes each outcome only if the lease is still its own (the *fence*: the write's first statement
  renews the lease of the token and reads back which mailboxes still carry it, locking them): a
  part whose lease was taken over writes nothing for those, and the outcome unstamps the mailbox,
  so no part leases it again in this sweep;
- in the same transaction it counts them on the sweep and moves the sweep's bar (``done``/``total``
  over every part);
- when nothing is left to lease while other parts still hold leases it waits (polling every
  ``SEDES_SWEEP_POLL_SECONDS``) for them to be written or to expire, then takes them over: every
  part ends with the sweep, and the first to see it empty closes it (and the sweep's run, when its
  own worker died).

A mailbox is thus read once per sweep by one part at a time; only when a worker dies in the middle
of a read is it read again (the sede may have answered the dead one), never while the other reads.
A sweep whose parts all died is resumed by the next cron tick once core has settled their runs.

Settings (the app's config, or ``VENTANILLA_<name>`` in each worker's environment):
``SEDES_SWEEP_PARTS``, ``SEDES_SWEEP_BATCH``, ``SEDES_SWEEP_LEASE_SECONDS``,
``SEDES_SWEEP_POLL_SECONDS`` and ``SEDES_SYNC_CONCURRENCY`` (threads per part).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from core.api import (
    Tenant,
    db,
    enqueue,
    finish_run,
    has_open_run,
    set_run_progress,
    tenant_context,
    utcnow,
)
from plugins.sedes import sync
from plugins.sedes.models import RUNNING, SedeMailbox, SedeSweep

log = logging.getLogger(__name__)

JOB = "sedes.sweep_run"
PART_JOB = "sedes.sweep_part"
PARTS = 4  # part jobs of a sweep: about the number of workers on the sync queue
BATCH = 32  # mailboxes a part leases at a time (two rounds of its CONCURRENCY threads)
LEASE_SECONDS = 60  # renewed every third of it while the batch is read
POLL_SECONDS = 2.0  # how often a part with nothing left to lease looks again


def _config(name: str, default):
    """A setting of the sweep: the app's config, else ``VENTANILLA_<name>`` in the environment (each
    worker machine's), else the default."""
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(f"VENTANILLA_{name}")
    return default if value in (None, "") else type(default)(value)


# --- starting sweeps -----------------------------------------------------------------------------


def _due(now: datetime):
    """The conditions of a mailbox a new sweep takes: its next sync (or retry) has come, and no run
    or sweep holds it."""
    return (
        SedeMailbox.next_sync_at.is_not(None),
        SedeMailbox.next_sync_at <= now,
        SedeMailbox.sweep_id.is_(None),
        or_(SedeMailbox.queued_at.is_(None), SedeMailbox.queued_at < now - sync.CLAIM_TTL),
    )


def start_sweeps(tenant_ids: list[int]) -> dict:
    """The ``sedes.sweep`` cron job: a sweep for every tenant with due mailboxes and none open; a
    sweep left without any living part is given one again."""
    mailboxes = runs = 0
    for tenant_id in tenant_ids:
        with tenant_context(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            current = db.session.scalar(
                select(SedeSweep).where(SedeSweep.finished_at.is_(None)).order_by(SedeSweep.id).limit(1)
            )
            if current is not None:
                runs += resume(tenant, current)
                continue
            sweep = start_sweep(tenant)
            if sweep is not None:
                mailboxes += sweep.total
                runs += len(sweep.run_ids)
    return {"mailboxes": mailboxes, "runs": runs}


def start_sweep(tenant: Tenant, *, parts: int | None = None, now: datetime | None = None) -> SedeSweep | None:
    """Stamp the current tenant's due mailboxes for a new sweep and queue its parts; None when
    nothing is due."""
    now = now or utcnow()
    parts = parts or _config("SEDES_SWEEP_PARTS", PARTS)
    sweep = SedeSweep(started_at=now, parts=parts, run_ids=[])
    db.session.add(sweep)
    db.session.flush()
    stamped = db.session.execute(
        update(SedeMailbox)
        .where(*_due(now))
        .values(sweep_id=sweep.id, queued_at=now, lease_owner=None, leased_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not stamped:
        db.session.rollback()
        return None
    sweep.total = stamped
    # A part beyond one per batch would find nothing to lease.
    sweep.parts = max(1, min(parts, -(-stamped // _config("SEDES_SWEEP_BATCH", BATCH))))
    db.session.commit()
    run_ids = []
    try:
        for n in range(sweep.parts):
            run_ids.append(enqueue(tenant, JOB if n == 0 else PART_JOB, {"sweep_id": sweep.id}, scheduled=True).id)
    except Exception:
        log.exception("could not queue the parts of sweep %s", sweep.id)
        if not run_ids:
            _abandon(sweep.id)
            raise
    sweep = db.session.get(SedeSweep, sweep.id)
    sweep.job_run_id = run_ids[0]
    sweep.run_ids = run_ids
    db.session.commit()
    return sweep


def _abandon(sweep_id: int) -> None:
    """A sweep none of whose parts could be queued: its mailboxes go back to waiting."""
    db.session.rollback()
    db.session.execute(
        update(SedeMailbox)
        .where(SedeMailbox.sweep_id == sweep_id)
        .values(sweep_id=None, queued_at=None, lease_owner=None, leased_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(update(SedeSweep).where(SedeSweep.id == sweep_id).values(finished_at=utcnow()))
    db.session.commit()


def resume(tenant: Tenant, sweep: SedeSweep) -> int:
    """Queue one more part for an open sweep none of whose runs is still open (their workers died
    and core settled the runs); returns the parts queued."""
    if has_open_run(JOB) or has_open_run(PART_JOB):
        return 0
    run = enqueue(tenant, PART_JOB, {"sweep_id": sweep.id}, scheduled=True)
    sweep.run_ids = [*sweep.run_ids, run.id]
    db.session.commit()
    return 1


# --- a part --------------------------------------------------------------------------------------


class Part:
    """One part's hold on a sweep: leases a batch at a time, keeps it alive, fences the writes."""

    def __init__(self, app, tenant: Tenant, sweep_id: int) -> None:
        self.app = app
        self.tenant = tenant
        self.sweep_id = sweep_id
        self.owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.batches = 0
        self.token: str | None = None
        self.lease = timedelta(seconds=_config("SEDES_SWEEP_LEASE_SECONDS", LEASE_SECONDS))
        self._stop = threading.Event()

    # leasing

    def take(self, size: int) -> list[int]:
        """Lease up to ``size`` of the sweep's mailboxes whose lease is free or expired."""
        now = utcnow()
        self.batches += 1
        token = f"{self.owner}:{self.batches}"
        free = or_(SedeMailbox.leased_until.is_(None), SedeMailbox.leased_until < now)
        # A CTE, materialised: PostgreSQL may run a plain ``IN (subquery)`` again for each row it
        # updates, which would lease the next rows too (those it just leased are no longer free).
        pick = (
            select(SedeMailbox.id)
            .where(SedeMailbox.sweep_id == self.sweep_id, free)
            .order_by(SedeMailbox.id)
            .limit(size)
            .with_for_update(skip_locked=True)
            .cte("picked")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        db.session.execute(
            update(SedeMailbox)
            # The conditions again: a row another part wrote meanwhile is judged as it is now.
            .where(SedeMailbox.id.in_(select(pick.c.id)), SedeMailbox.sweep_id == self.sweep_id, free)
            .values(lease_owner=token, leased_until=now + self.lease, queued_at=now, last_result=RUNNING)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        self.token = token
        return list(
            db.session.scalars(select(SedeMailbox.id).where(SedeMailbox.lease_owner == token).order_by(SedeMailbox.id))
        )

    def left(self) -> int:
        """The sweep's mailboxes not written yet (leased by someone or not)."""
        count = db.session.scalar(select(func.count(SedeMailbox.id)).where(SedeMailbox.sweep_id == self.sweep_id))
        db.session.commit()
        return count or 0

    def renew(self) -> int:
        """Push the current batch's lease forward, while it is still this part's."""
        if self.token is None:
            return 0
        renewed = db.session.execute(
            update(SedeMailbox)
            .where(SedeMailbox.lease_owner == self.token)
            .values(leased_until=utcnow() + self.lease)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        return renewed

    @contextlib.contextmanager
    def heartbeat(self):
        """Renew the lease every third of its length, in a thread of its own (its own session)."""

        def beat() -> None:
            with self.app.app_context(), tenant_context(self.tenant.id):
                while not self._stop.wait(self.lease.total_seconds() / 3):
                    try:
                        self.renew()
                    except Exception:
                        db.session.rollback()
                        log.exception("renewing the lease of sweep %s failed", self.sweep_id)

        thread = threading.Thread(target=beat, name="sedes-sweep-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=10)

    # the fence (sync._store calls these in each writing transaction)

    def hold(self, works: list) -> list:
        """The works whose mailboxes this part still leases; its first write locks them until commit."""
        ids = [w.mailbox_id for w in works]
        if not ids or self.token is None:
            return []
        db.session.execute(
            update(SedeMailbox)
            .where(SedeMailbox.id.in_(ids), SedeMailbox.lease_owner == self.token)
            .values(leased_until=utcnow() + self.lease)
            .execution_options(synchronize_session=False)
        )
        held = set(
            db.session.scalars(
                select(SedeMailbox.id).where(SedeMailbox.id.in_(ids), SedeMailbox.lease_owner == self.token)
            )
        )
        lost = len(ids) - len(held)
        if lost:
            log.warning("sweep %s: %s mailboxes were taken over before their outcome was written", self.sweep_id, lost)
        return [w for w in works if w.mailbox_id in held]

    def written(self, works: list) -> None:
        """Count the written outcomes on the sweep and move its bar."""
        if not works:
            return
        errors = sum(1 for w in works if w.error is not None)
        new = sum(w.stats.get("new", 0) for w in works)
        db.session.execute(
            update(SedeSweep)
            .where(SedeSweep.id == self.sweep_id)
            .values(done=SedeSweep.done + len(works), errors=SedeSweep.errors + errors, new=SedeSweep.new + new)
            .execution_options(synchronize_session=False)
        )
        done, total, run_id = db.session.execute(
            select(SedeSweep.done, SedeSweep.total, SedeSweep.job_run_id).where(SedeSweep.id == self.sweep_id)
        ).one()
        if run_id is not None:
            with force_locale(self.tenant.language):
                message = str(_l("%(done)s of %(total)s mailboxes checked", done=done, total=total))
            set_run_progress(run_id, done, total, message)


def run_part(ctx, sweep_id: int) -> dict:
    """The ``sedes.sweep_run`` and ``sedes.sweep_part`` jobs: lease, read and write batches of the
    sweep until none is left, then close the sweep if no other part did."""
    sweep = db.session.get(SedeSweep, sweep_id)
    if sweep is None or sweep.finished_at is not None:
        return {"mailboxes": 0}
    app = current_app._get_current_object()
    part = Part(app, ctx.tenant, sweep_id)
    size = _config("SEDES_SWEEP_BATCH", BATCH)
    poll = _config("SEDES_SWEEP_POLL_SECONDS", POLL_SECONDS)
    concurrency = _config("SEDES_SYNC_CONCURRENCY", sync.CONCURRENCY)
    mine = {"mailboxes": 0, "ok": 0, "errors": 0, "new": 0, "updated": 0}
    with (
        ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="sedes-sweep") as pool,
        part.heartbeat(),
    ):
        while True:
            ids = part.take(size)
            if not ids:
                if not part.left():
                    break
                # Others hold the rest: wait for them to write it, or for their leases to expire.
                time.sleep(poll)
                continue
            works = sync._prepare(ctx.tenant, ids, utcnow())
            reading = [w for w in works if w.error is None]
            for work, outcome in zip(reading, pool.map(lambda w: sync._read(app, w), reading), strict=True):
                work.result, work.error = outcome
            for work in sync._store(ctx.tenant, works, fence=part):
                mine["mailboxes"] += 1
                mine["ok" if work.error is None else "errors"] += 1
                mine["new"] += work.stats.get("new", 0)
                mine["updated"] += work.stats.get("updated", 0)
            part.token = None
    summary = _close(sweep_id, ctx.run.id)
    # The sweep's own run shows the whole sweep; a helping part what it did itself.
    return summary if ctx.run.name == JOB else mine


def _close(sweep_id: int, run_id: int) -> dict:
    """Mark the sweep finished (the first part to get here) and, when its own run is not this one
    and is still open (its worker died), close that run too. Returns the sweep's figures."""
    now = utcnow()
    closed = db.session.execute(
        update(SedeSweep)
        .where(SedeSweep.id == sweep_id, SedeSweep.finished_at.is_(None))
        .values(finished_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    sweep = db.session.execute(
        select(SedeSweep.total, SedeSweep.done, SedeSweep.errors, SedeSweep.new, SedeSweep.job_run_id).where(
            SedeSweep.id == sweep_id
        )
    ).one()
    figures = {"mailboxes": sweep.total, "done": sweep.done, "errors": sweep.errors, "new": sweep.new}
    if closed and sweep.job_run_id is not None and sweep.job_run_id != run_id:
        finish_run(sweep.job_run_id, figures)
    db.session.commit()
    return figures
