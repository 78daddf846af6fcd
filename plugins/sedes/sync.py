"""The sync engine: reading mailboxes at their sedes and keeping what they hold.

Runs of the ``sedes.sync`` job (the ``sync`` queue) read lists of mailboxes, with a progress bar:

- "Consultar buzón" (``request_mailbox_sync``): one mailbox, now;
- all the mailboxes of a sede or of a client the user may see (``request_sede_sync``,
  ``request_client_sync``);
- the sweep (``sweep.py``, on the cron): every mailbox whose next sync is due, shared by part jobs
  on several workers that lease it a few at a time.

A mailbox is *claimed* (``queued_at``) when a run for it is queued, by a conditional UPDATE: two
requests never read the same mailbox at once, and never one that a sweep holds (``sweep_id``). A
claim older than ``CLAIM_TTL`` is presumed lost with its run.

A run decrypts each certificate once, asks the sede's connector (``connectors.connector_for``) for
what its mailbox holds (pending, and realised when the connector can tell), ``CONCURRENCY``
mailboxes at a time (the network calls in threads that touch no database; at most the sede's
``max_concurrency`` at once over every worker, ``limits``), and stores the answers
in batches: each notification once per ``(sede, external_id)`` with its legal deadline
(``deadlines``), a change of its state at the sede on the row already there. Listing never opens a
notification (comparecencia is ``notifications.open_notification``).

One mailbox's failure never stops the others: it is recorded on the mailbox in words (in the
tenant's language), and a retryable one (a timeout, a 503, a temporary fault) is tried again after
a back-off that doubles with each failure in a row (``Retry-After`` when the sede gives one); one
that will not heal by waiting (a refused or expired certificate) waits for its next period.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select, tuple_, update
from sqlalchemy.orm import selectinload

from core.api import (
    DomainError,
    JobRun,
    Tenant,
    audit_rows,
    audited_write,
    db,
    enqueue,
    get_visible_client,
    has_permission,
    licence_value,
    update_by_id,
    utcnow,
    visible_client_ids,
)
from plugins.sedes import deadlines, limits, webhooks
from plugins.sedes.contract import (
    CertificateExpired,
    CertificateKind,
    CertificateNotYetValid,
    Credential,
    MailboxContext,
    NotificationRecord,
    SedeError,
    SedeState,
    SyncResult,
    merged,
)
from plugins.sedes.models import (
    ERROR,
    NEVER,
    OK,
    RUNNING,
    UNREAD,
    Sede,
    SedeCertificate,
    SedeMailbox,
    SedeNotification,
    SsidCode,
)

log = logging.getLogger(__name__)

JOB = "sedes.sync"
SYNC_PERMISSION = "sedes.mailboxes:sync"
RUN_SIZE = 200  # mailboxes per run of a request
STORE_EVERY = 50  # mailboxes whose answers are written in one transaction
CONCURRENCY = 16  # mailboxes read at the same time by one run (threads waiting on the network)
CLAIM_TTL = timedelta(hours=2)  # longer than a run can last (the job's timeout)
FIRST_SYNC = timedelta(days=30)  # how far back the first sync of a mailbox looks
OVERLAP = timedelta(days=1)  # re-read the end of the last window: the sede may publish late
BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
JOB_TIMEOUT = 3600

NOT_LICENSED = _l("The organisation's licence does not include this sede.")
NO_CONNECTOR = _l("This sede has no connector: it can only be visited on its portal.")
UNEXPECTED = _l("The sync failed unexpectedly; it will be tried again.")


# --- starting runs -------------------------------------------------------------------------------


def _claim(mailbox_ids: list[int], now: datetime) -> list[int]:
    """Mark the mailboxes queued unless a live run has them; returns those this call claimed."""
    if not mailbox_ids:
        return []
    free = and_(
        SedeMailbox.sweep_id.is_(None),
        or_(SedeMailbox.queued_at.is_(None), SedeMailbox.queued_at < now - CLAIM_TTL),
    )
    claimable = list(db.session.scalars(select(SedeMailbox.id).where(SedeMailbox.id.in_(mailbox_ids), free)))
    if not claimable:
        return []
    db.session.execute(
        update(SedeMailbox)
        .where(SedeMailbox.id.in_(claimable), free)
        .values(queued_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    # Another request may have claimed some between the two statements: keep only ours.
    return list(
        db.session.scalars(select(SedeMailbox.id).where(SedeMailbox.id.in_(claimable), SedeMailbox.queued_at == now))
    )


def _release(mailbox_ids: list[int]) -> None:
    db.session.rollback()
    db.session.execute(
        update(SedeMailbox)
        .where(SedeMailbox.id.in_(mailbox_ids))
        .values(queued_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def start(tenant: Tenant, mailbox_ids: list[int], *, user=None, run_size: int = RUN_SIZE) -> list[JobRun]:
    """Claim the mailboxes and queue ``sedes.sync`` runs for them (``run_size`` per run)."""
    claimed = _claim(sorted(set(mailbox_ids)), utcnow())
    runs = []
    for first in range(0, len(claimed), run_size):
        chunk = claimed[first : first + run_size]
        arguments = {"mailbox_ids": chunk}
        try:
            # Someone pressed "Consultar buzón": ahead of the scheduled syncs waiting in the queue.
            runs.append(
                enqueue(tenant, JOB, arguments, started_by=user, scheduled=user is None, urgent=user is not None)
            )
        except Exception:
            log.exception("could not queue the sync of %s mailboxes", len(chunk))
            _release(chunk)
            raise
    return runs


def _may_sync(user) -> None:
    if not has_permission(user, SYNC_PERMISSION):
        raise DomainError(_l("Your role does not allow checking mailboxes."))


def request_mailbox_sync(tenant: Tenant, user, mailbox: SedeMailbox) -> JobRun:
    """ "Consultar buzón": read this one mailbox now. Returns the run (its page shows the progress).

    Raises ``DomainError`` when the user may not sync it, or when it is already waiting to be read.
    """
    _may_sync(user)
    if get_visible_client(user, mailbox.client_id) is None:
        raise DomainError(_l("This mailbox does not exist or you cannot see it."))
    runs = start(tenant, [mailbox.id], user=user)
    if not runs:
        raise DomainError(_l("This mailbox is already being checked."))
    return runs[0]


def _visible_mailbox_ids(user, *conditions) -> list[int]:
    stmt = select(SedeMailbox.id).where(SedeMailbox.client_id.in_(visible_client_ids(user)), *conditions)
    return list(db.session.scalars(stmt.order_by(SedeMailbox.id)))


def request_sede_sync(tenant: Tenant, user, sede_code: str) -> list[JobRun]:
    """Read every mailbox of a sede the user may see (of clients of their groups)."""
    _may_sync(user)
    return start(tenant, _visible_mailbox_ids(user, SedeMailbox.sede_code == sede_code), user=user)


def request_client_sync(tenant: Tenant, user, client_id: int) -> list[JobRun]:
    """Read every mailbox of a client (at every sede), when the user may see the client."""
    _may_sync(user)
    if get_visible_client(user, client_id) is None:
        raise DomainError(_l("This client does not exist or you cannot see it."))
    return start(tenant, _visible_mailbox_ids(user, SedeMailbox.client_id == client_id), user=user)


# --- the run -------------------------------------------------------------------------------------


def run_sync(ctx, mailbox_ids: list[int]) -> dict:
    """The ``sedes.sync`` job. A run a user started syncs only what that user may still sync."""
    starter = ctx.run.started_by
    ids = list(mailbox_ids)
    refused: list[int] = []
    if starter is not None:
        if not starter.active or not has_permission(starter, SYNC_PERMISSION):
            refused = ids
            ids = []
        else:
            allowed = set(_visible_mailbox_ids(starter, SedeMailbox.id.in_(ids)))
            refused = [i for i in ids if i not in allowed]
            ids = [i for i in ids if i in allowed]
    if refused:
        _release(refused)
    summary = sync_mailboxes(ctx.tenant, ids, progress=ctx.progress)
    if refused:
        summary["refused"] = len(refused)
    return summary


@dataclass
class _Work:
    """One mailbox of a run: what it needs to be read, then what came of it."""

    mailbox_id: int
    client_id: int
    sede_code: str
    deadline_days: int | None
    period_days: int
    failures: int
    since: datetime
    limit: int = 1  # the sede's max_concurrency
    context: MailboxContext | None = None
    connector: object = None
    result: SyncResult | None = None
    error: BaseException | None = None
    synced_until: datetime | None = None
    use: dict | None = None  # the audit event of the certificate's use, written with the outcome
    stats: dict = field(default_factory=dict)


def sync_mailboxes(
    tenant: Tenant,
    mailbox_ids: Iterable[int],
    *,
    progress: Callable | None = None,
    concurrency: int | None = None,
    store_every: int = STORE_EVERY,
) -> dict:
    """Read these mailboxes of ``tenant`` (claimed by the caller) and store what they hold."""
    ids = list(mailbox_ids)
    total = len(ids)
    summary = {"mailboxes": total, "ok": 0, "errors": 0, "new": 0, "updated": 0}
    if not ids:
        return summary
    concurrency = concurrency or int(current_app.config.get("SEDES_SYNC_CONCURRENCY", CONCURRENCY))
    now = utcnow()
    db.session.execute(
        update(SedeMailbox)
        .where(SedeMailbox.id.in_(ids))
        .values(last_result=RUNNING)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    app = current_app._get_current_object()
    done = 0
    if progress is not None:
        progress(0, total, str(_l("Checking %(count)s mailboxes", count=total)))
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, total)), thread_name_prefix="sedes-sync") as pool:
        for first in range(0, total, store_every):
            works = _prepare(tenant, ids[first : first + store_every], now)
            reading = [w for w in works if w.error is None]
            for work, outcome in zip(reading, pool.map(lambda w: _read(app, w), reading), strict=True):
                work.result, work.error = outcome
            _store(tenant, works)
            for work in works:
                summary["ok" if work.error is None else "errors"] += 1
                summary["new"] += work.stats.get("new", 0)
                summary["updated"] += work.stats.get("updated", 0)
            done += len(works)
            if progress is not None:
                progress(done, total, str(_l("%(done)s of %(total)s mailboxes checked", done=done, total=total)))
            db.session.commit()
    return summary


def _read(app, work: _Work) -> tuple[SyncResult | None, BaseException | None]:
    """The network part, in a thread: no database here."""
    try:
        with app.app_context(), limits.sede_slot(work.sede_code, work.limit):
            connector, context = work.connector, work.context
            connector.check_credential(context)
            # Besides what is pending, what was accepted, rejected or expired meanwhile (here, at the
            # sede's web, by lapse), in one visit when the connector can.
            if "list_all" in connector.capabilities:
                return connector.list_all(context, work.since), None
            result = connector.list(context, work.since)
            if "list_realized" in connector.capabilities:
                result = merged(result, connector.list_realized(context, work.since))
            return result, None
    except Exception as exc:  # every failure belongs to this mailbox alone
        return None, exc


def _prepare(tenant: Tenant, ids: list[int], now: datetime) -> list[_Work]:
    """Load the mailboxes with their sede and certificate; local checks before any network."""
    from plugins.sedes.certificates import use_row
    from plugins.sedes.connectors import connector_for

    mailboxes = db.session.scalars(
        select(SedeMailbox)
        .where(SedeMailbox.id.in_(ids))
        .options(
            selectinload(SedeMailbox.sede), selectinload(SedeMailbox.certificate), selectinload(SedeMailbox.client)
        )
        .order_by(SedeMailbox.id)
    ).all()
    licensed = licensed_sedes(tenant)
    needs_codes = [m.client_id for m in mailboxes if m.sede is not None and m.sede.needs_ssid]
    codes: dict[int, list[str]] = {}
    if needs_codes:
        for client_id, code in db.session.execute(
            select(SsidCode.client_id, SsidCode.code).where(SsidCode.client_id.in_(needs_codes)).order_by(SsidCode.id)
        ):
            codes.setdefault(client_id, []).append(code)
    works = []
    fills: list[dict] = []
    for mailbox in mailboxes:
        sede: Sede = mailbox.sede
        certificate = mailbox.certificate
        since = (mailbox.synced_until - OVERLAP) if mailbox.synced_until else now - FIRST_SYNC
        work = _Work(
            mailbox.id,
            mailbox.client_id,
            mailbox.sede_code,
            sede.deadline_days if sede else None,
            mailbox.period_days or 1,
            mailbox.failures or 0,
            _aware(since),
            limit=(sede.max_concurrency if sede else None) or 1,
            synced_until=mailbox.synced_until,
        )
        works.append(work)
        try:
            if licensed is not None and mailbox.sede_code not in licensed:
                raise SedeError(NOT_LICENSED, sede=mailbox.sede_code, code="not_licensed")
            if sede is None or not sede.syncable:
                raise SedeError(NO_CONNECTOR, sede=mailbox.sede_code, code="no_connector")
            if _aware(certificate.not_after) <= now:
                raise CertificateExpired(sede=sede.code, detail=f"certificate {certificate.id} expired")
            if _aware(certificate.not_before) > now:
                raise CertificateNotYetValid(sede=sede.code, detail=f"certificate {certificate.id} not yet valid")
            work.connector = connector_for(sede.connector)
            work.context = MailboxContext(
                sede=sede.code,
                client_nif=mailbox.client.tax_id,
                credential=credential_of(certificate, fills),
                as_proxy=mailbox.as_proxy,
                base_url=sede.base_url or None,
                ca_bundle=ca_bundle_for(sede),
                ssid_codes=tuple(codes.get(mailbox.client_id, ())),
            )
            work.use = use_row(certificate, f"sync {sede.code} mailbox {mailbox.id}", mailbox.client_id)
        except Exception as exc:
            work.error = exc
    if fills:
        update_by_id(SedeCertificate, fills)
        db.session.commit()
    return works


PEM_SEPARATOR = b"\n\x00\n"


def credential_of(certificate: SedeCertificate, fills: list[dict] | None = None) -> Credential:
    """The certificate ready for a connector. Read from its stored PEM form; the first time, from
    its PKCS#12 (whose key check costs ~85 ms of CPU), and the PEM form is then added to ``fills``
    (``{"id", "credential_pem"}`` rows for the caller to write, encrypted at rest like the PKCS#12)."""
    from plugins.sedes.certificates import credential_for

    if certificate.credential_pem:
        cert_pem, key_pem, chain_pem = certificate.credential_pem.split(PEM_SEPARATOR)
        return Credential(
            cert_pem=cert_pem,
            key_pem=key_pem,
            chain_pem=chain_pem,
            kind=CertificateKind(certificate.kind),
            holder_name=certificate.holder_name,
            holder_nif=certificate.holder_nif,
            entity_nif=certificate.entity_nif,
            not_before=_aware(certificate.not_before),
            not_after=_aware(certificate.not_after),
            serial=certificate.serial,
            issuer=certificate.issuer,
        )
    credential = credential_for(certificate)
    if fills is not None:
        packed = PEM_SEPARATOR.join((credential.cert_pem, credential.key_pem, credential.chain_pem))
        fills.append({"id": certificate.id, "credential_pem": packed})
    return credential


def licensed_sedes(tenant: Tenant) -> set[str] | None:
    """The sede codes the tenant's licence allows; None when it sets no list (every sede)."""
    value = licence_value(tenant, "sedes", "sedes")
    if value is False:
        return set()
    if not value:
        return None
    return set(value if isinstance(value, list | tuple) else str(value).split(","))


def ca_bundle_for(sede: Sede) -> str | None:
    """A file with the extra CAs the catalogue trusts for this sede's TLS (the simulator's), if any."""
    pem = (getattr(sede, "ca_certificates", None) or "").strip()
    if not pem:
        return None
    folder = Path(current_app.config.get("INSTANCE_PATH") or current_app.instance_path) / "sedes" / "ca"
    path = folder / f"{sede.code}-{sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(pem + "\n")
        partial.replace(path)
    return str(path)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _aware(moment).astimezone(UTC)


# --- storing -------------------------------------------------------------------------------------


def _store(tenant: Tenant, works: list[_Work], fence=None) -> list[_Work]:
    """Write a batch of outcomes in one transaction; a batch that fails is written one by one.

    With a ``fence`` (a sweep's lease, ``sweep.Part``), each transaction first asks it which of the
    works it still holds (``fence.hold(works)``, which locks them) and writes only those, then tells
    it what was written (``fence.written(works)``). Returns the works written."""
    written: list[_Work] = []

    def write(batch: list[_Work]) -> None:
        kept = fence.hold(batch) if fence is not None else batch
        _write(tenant, kept)
        if fence is not None:
            fence.written(kept)
        db.session.commit()
        written.extend(kept)

    try:
        write(works)
    except Exception:
        db.session.rollback()
        log.exception("storing a batch of %s mailboxes failed; storing them one by one", len(works))
        for work in works:
            try:
                write([work])
            except Exception as exc:
                db.session.rollback()
                log.exception("storing mailbox %s failed", work.mailbox_id)
                work.error = exc
                work.result = None
                work.stats = {}
                write([work])
    return written


def _write(tenant: Tenant, works: list[_Work]) -> None:
    if not works:
        return
    now = utcnow()
    records: dict[tuple[str, str], tuple[_Work, NotificationRecord]] = {}
    for work in works:
        if work.error is None and work.result is not None:
            for record in work.result.records:
                records.setdefault((work.sede_code, record.external_id), (work, record))
    existing = {}
    keys = list(records)
    for first in range(0, len(keys), 500):
        chunk = keys[first : first + 500]
        for row in db.session.execute(
            select(
                SedeNotification.id,
                SedeNotification.sede_code,
                SedeNotification.external_id,
                SedeNotification.sede_state,
            ).where(tuple_(SedeNotification.sede_code, SedeNotification.external_id).in_(chunk))
        ):
            existing[(row.sede_code, row.external_id)] = row
    new_rows, changed, raws = [], [], []
    for key, (work, record) in records.items():
        row = existing.get(key)
        if row is None:
            new_rows.append(_new_row(work, record, now))
            work.stats["new"] = work.stats.get("new", 0) + 1
        elif row.sede_state != record.state.value and record.state is not SedeState.PENDIENTE:
            # A sede's state only moves on from pending (a late listing never undoes an opening).
            changed.append({"id": row.id, "sede_state": record.state.value, "state_at": _utc(record.state_at) or now})
            raws.append({"id": row.id, "raw": raw_of(record)})  # a realised one names its documents
            work.stats["updated"] = work.stats.get("updated", 0) + 1
    if new_rows:
        # In the order they were put at disposal: the lists show the latest stored first.
        new_rows.sort(key=lambda row: (row["made_available_at"], row["external_id"]))
        audited_write(SedeNotification, tenant.id, insert_from=new_rows)
        webhooks.notifications_found(tenant, new_rows)
    if changed:
        audited_write(SedeNotification, tenant.id, by_id=changed)
        update_by_id(SedeNotification, raws)
    update_by_id(SedeMailbox, [_mailbox_outcome(tenant, work, now) for work in works])
    uses = [work.use for work in works if work.use is not None]
    if uses:
        audit_rows(uses)


def _new_row(work: _Work, record: NotificationRecord, now: datetime) -> dict:
    made = _aware(record.made_available_at)
    return {
        "client_id": work.client_id,
        "mailbox_id": work.mailbox_id,
        "sede_code": work.sede_code,
        "external_id": record.external_id,
        "kind": record.kind.value,
        "sede_state": record.state.value,
        "workflow_state": UNREAD,
        "issuer_code": record.issuer_code,
        "issuer_name": record.issuer_name or "",
        "subject": record.subject or "",
        "procedure": record.procedure,
        "titular_nif": record.titular_nif or "",
        "titular_name": record.titular_name,
        "link": record.link.value if record.link else None,
        "made_available_at": made.astimezone(UTC),
        "sede_expires_at": _utc(record.expires_at),
        "deadline_on": deadlines.deadline_on(made, work.deadline_days, record.kind, record.expires_at),
        "first_seen_at": now,
        "state_at": _utc(record.state_at),
        "alerts_sent": [],
        "raw": raw_of(record),
        "updated_at": now,
    }


def raw_of(record: NotificationRecord) -> dict:
    """What a notification keeps of the connector's record: its documents' references (to fetch them
    later) and the record's plain extra fields."""
    documents = [
        {"name": d.name, "mime": d.mime, "reference": d.reference, "sha256": d.sha256} for d in record.documents
    ]
    extra = {k: v for k, v in dict(record.raw).items() if isinstance(v, str | int | float | bool | None)}
    return {"documents": documents, **extra}


def _mailbox_outcome(tenant: Tenant, work: _Work, now: datetime) -> dict:
    period = timedelta(days=max(1, work.period_days))
    if work.error is None:
        result = work.result
        more = not result.complete
        return {
            "id": work.mailbox_id,
            **RELEASED,
            "last_sync_at": now,
            "last_result": OK,
            "last_error": "",
            "last_new_count": work.stats.get("new", 0),
            "failures": 0,
            "retry_at": None,
            "synced_until": _utc(result.next_since),
            # The sede had more than one run reads: go on at the next sweep.
            "next_sync_at": now if more else now + period,
        }
    error = work.error
    retryable = not isinstance(error, SedeError) or error.retryable
    failures = work.failures + 1
    retry_at = None
    if retryable:
        retry_at = now + backoff(failures, error.retry_after if isinstance(error, SedeError) else None)
    if isinstance(error, SedeError):
        log.info("mailbox %s (%s): %s %s", work.mailbox_id, work.sede_code, error.code, error.detail)
    else:
        log.error("mailbox %s (%s) failed", work.mailbox_id, work.sede_code, exc_info=error)
    return {
        "id": work.mailbox_id,
        **RELEASED,
        "last_sync_at": now,
        "last_result": ERROR,
        "last_error": error_in_words(tenant, error),
        "last_new_count": 0,
        "failures": failures,
        "retry_at": retry_at,
        "synced_until": work.synced_until,  # a failed read starts again from the same place
        "next_sync_at": retry_at or now + period,
    }


# What a written outcome frees: the claim, and the sweep's stamp and lease.
RELEASED = {"queued_at": None, "sweep_id": None, "lease_owner": None, "leased_until": None}


def backoff(failures: int, retry_after: float | None = None) -> timedelta:
    """How long to wait after the ``failures``-th failure in a row: doubling from ``BACKOFF`` up to
    ``MAX_BACKOFF``, never less than the sede's ``Retry-After``."""
    wait = min(BACKOFF * 2 ** min(max(failures, 1) - 1, 12), MAX_BACKOFF)
    return max(wait, timedelta(seconds=retry_after)) if retry_after else wait


def error_in_words(tenant: Tenant, error: BaseException) -> str:
    """What to show on the mailbox: the connector's message for people, in the tenant's language."""
    message = error.message if isinstance(error, SedeError) else UNEXPECTED
    with force_locale(tenant.language):
        return str(message)[:1000]


def mailbox_states(mailboxes: list[SedeMailbox]) -> dict[int, str]:
    """How each mailbox's sync stands, as a code for the template: ``queued``, ``running``, or its
    last result (``never``, ``ok``, ``error``)."""
    states = {}
    for mailbox in mailboxes:
        if mailbox.last_result == RUNNING:
            states[mailbox.id] = RUNNING
        elif mailbox.queued_at is not None:
            states[mailbox.id] = "queued"
        else:
            states[mailbox.id] = mailbox.last_result or NEVER
    return states
