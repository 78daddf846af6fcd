"""The daily search of the Tablón Edictal Único (TEU) for the clients, and what a match becomes.

Every morning (``sedes.teu_board``, a run per tenant with the plugin; or on demand, "Search the TEU
now") yesterday's and today's announcements are read from the BOE — the index and every PDF, their
text, the document numbers in it (``documents.numbers_in``) — and matched, when the tenant's licence
includes the board, against its active clients whose "Habilitado para consultar notificaciones en
tablón" is ticked (a client without the plugin's data has it ticked: the field's default), by their
full Spanish tax id and nothing else: an edict names people only by document number. What a day's
PDFs name is remembered on the machine for the index as served (``read_day``): the first tenant's
run of the morning reads the PDFs, the others only the index and the PDFs of their own matches.

A match is a notification of kind TEU on the client at the sede ``teu`` — identified by the
announcement (``BOE-N-…``) and the client's number, since one edict of traffic fines names many
people —, published by the announcement's issuer, with the PDF kept through core's files and the
legal deadline of the catalogue's ``teu`` entry (15 natural days by default: the comparecencia of
art. 112 LGT), so the deadline alerts, lists and calendar treat it like the others. Yesterday is
read again with today (a run that failed, an announcement published late): what is already there
is never created twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time as time_module
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from hashlib import sha256
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.api import (
    Client,
    DomainError,
    JobRun,
    Tenant,
    accept_upload,
    audited_write,
    db,
    enqueue,
    has_open_run,
    has_permission,
    utcnow,
)
from plugins.sedes import deadlines
from plugins.sedes.contract import Kind, SedeState
from plugins.sedes.models import UNREAD, Sede, SedeNotification, SedeNotificationDocument, SedesClientData
from plugins.sedes.teu.boe import Announcement, BoardUnavailable, Reader, pdf_text
from plugins.sedes.teu.documents import numbers_in

log = logging.getLogger(__name__)

JOB = "sedes.teu_board"
SYNC_PERMISSION = "sedes.mailboxes:sync"
CRON = "40 7 * * *"  # UTC: the BOE's supplement is out by 07:30 in Madrid
SEDE_CODE = "teu"
BOE_URL = "https://www.boe.es"
PORTAL_URL = "https://www.boe.es/tablon_edictal_unico/"
DEADLINE_DAYS = 15  # art. 112.1 LGT: fifteen natural days to appear, from the day after publication
DAYS = 2  # today and yesterday
CACHE_DAYS = 7  # how long what a day's PDFs name is remembered
# An index read this recently on the machine is not asked for again: a morning's runs for a thousand
# offices ask the BOE for each day's index a few times, not a thousand (SEDES_TEU_INDEX_FRESH_SECONDS).
INDEX_FRESH = 1800
# What a day without a supplement is remembered as (its index's digest would be a sha256).
NO_SUPPLEMENT = "no-supplement"
CHUNK = 500


@dataclass(frozen=True)
class Edict:
    """An announcement of the day and the document numbers its text names."""

    announcement: Announcement
    numbers: frozenset[str]


def board_sede() -> Sede:
    """The catalogue's entry of the TEU (made the first time): the operator sets its base URL there."""
    sede = db.session.get(Sede, SEDE_CODE)
    if sede is None:
        sede = Sede(
            code=SEDE_CODE,
            name="Tablón Edictal Único (BOE)",
            portal_url=PORTAL_URL,
            register_url="",
            signature_test_url="",
            connector=None,
            base_url=BOE_URL,
            needs_ssid=False,
            deadline_days=DEADLINE_DAYS,
            position=100,
            active=True,
        )
        db.session.add(sede)
        db.session.commit()
    return sede


def _cache_folder() -> Path:
    return Path(current_app.config.get("INSTANCE_PATH") or current_app.instance_path) / "sedes" / "teu"


def _cached(digest: str) -> list[Edict] | None:
    path = _cache_folder() / f"{digest}.json"
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return [
        Edict(
            Announcement(**{**e["announcement"], "day": date.fromisoformat(e["announcement"]["day"])}),
            frozenset(e["numbers"]),
        )
        for e in entries
    ]


def _keep(digest: str, edicts: list[Edict]) -> None:
    """Remember what an index's PDFs name (a file per index as served, written whole or not at all);
    files older than ``CACHE_DAYS`` go."""
    folder = _cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "announcement": {**asdict(e.announcement), "day": e.announcement.day.isoformat()},
            "numbers": sorted(e.numbers),
        }
        for e in edicts
    ]
    partial = folder / f"{digest}.{os.getpid()}.tmp"
    partial.write_text(json.dumps(entries))
    partial.replace(folder / f"{digest}.json")
    old = time_module.time() - CACHE_DAYS * 86400
    for path in folder.glob("*.json"):  # what the indexes named, and when each was read
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < old:
                path.unlink()


def read_day(reader: Reader, day: date) -> tuple[list[Edict], int]:
    """The day's edicts with their numbers, and how many PDFs could not be read (left for the next
    run). The first run of the morning on a machine reads the PDFs; the other tenants' runs what it
    learnt: without asking the BOE at all within ``INDEX_FRESH`` of it, then for the index alone
    while it is unchanged."""
    seen = _cache_folder() / f"index-{sha256(f'{reader.base_url}|{day}'.encode()).hexdigest()}.json"
    fresh = float(current_app.config.get("SEDES_TEU_INDEX_FRESH_SECONDS", INDEX_FRESH))
    with contextlib.suppress(OSError, ValueError, KeyError):
        last = json.loads(seen.read_text())
        if time_module.time() - last["read_at"] < fresh and (cached := _cached(last["digest"])) is not None:
            return cached, 0  # the index was read a moment ago here: the BOE is not asked again
    announcements, digest = reader.announcements(day)
    if not announcements:
        # No supplement that day (yet): the other offices' runs need not ask again while it is fresh.
        _keep(NO_SUPPLEMENT, [])
        _seen(seen, NO_SUPPLEMENT)
        return [], 0
    cached = _cached(digest)
    if cached is not None:
        _seen(seen, digest)
        return cached, 0
    edicts, failed = [], 0
    for announcement in announcements:
        try:
            pdf = reader.pdf(announcement)
        except BoardUnavailable as error:
            log.warning("TEU %s: %s", announcement.identifier, error)
            failed += 1
            continue
        edicts.append(Edict(announcement, frozenset(numbers_in(pdf_text(pdf)))))
    if not failed:
        _keep(digest, edicts)
        _seen(seen, digest)
    return edicts, failed


def _seen(path: Path, digest: str) -> None:
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"digest": digest, "read_at": time_module.time()}))
    partial.replace(path)


def external_id(announcement: Announcement, number: str) -> str:
    """One notification per announcement and person named: ``BOE-N-2026-123456:12345678Z``."""
    return f"{announcement.identifier}:{number}"


def _board_licensed(tenant: Tenant) -> bool:
    from plugins.sedes.sync import licensed_sedes

    licensed = licensed_sedes(tenant)
    return licensed is None or SEDE_CODE in licensed


def _clients_named(numbers: list[str]) -> list[tuple[int, str]]:
    """``(client_id, tax_id)`` of the current tenant's active Spanish clients with one of ``numbers``
    as tax id and the board's checkbox ticked (or never set)."""
    unticked = select(SedesClientData.client_id).where(SedesClientData.checks_board.is_(False))
    found = []
    for first in range(0, len(numbers), CHUNK):
        stmt = select(Client.id, Client.tax_id).where(
            Client.tax_id.in_(numbers[first : first + CHUNK]),
            Client.country == "ES",
            Client.active.is_(True),
            Client.id.not_in(unticked),
        )
        found.extend((row.id, row.tax_id) for row in db.session.execute(stmt))
    return found


def match_tenant(tenant: Tenant, sede: Sede, edicts: list[Edict], reader: Reader, now: datetime | None = None) -> dict:
    """The current tenant's new TEU notifications for these edicts (none twice), each edict's PDF
    fetched once and kept through core's files. An edict whose PDF cannot be fetched now is left
    for the next run. Committed."""
    now = now or utcnow()
    by_number: dict[str, list[Edict]] = defaultdict(list)
    for edict in edicts:
        for number in edict.numbers:
            by_number[number].append(edict)
    wanted: dict[str, tuple[int, str, Edict]] = {}
    for client_id, number in _clients_named(sorted(by_number)):
        for edict in by_number[number]:
            wanted[external_id(edict.announcement, number)] = (client_id, number, edict)
    keys = sorted(wanted)
    for first in range(0, len(keys), CHUNK):
        for (known,) in db.session.execute(
            select(SedeNotification.external_id).where(
                SedeNotification.sede_code == SEDE_CODE, SedeNotification.external_id.in_(keys[first : first + CHUNK])
            )
        ):
            wanted.pop(known, None)
    pdfs: dict[str, bytes] = {}
    failed = 0
    for key, (_client_id, _number, edict) in list(wanted.items()):
        identifier = edict.announcement.identifier
        if identifier not in pdfs:
            try:
                pdfs[identifier] = reader.pdf(edict.announcement)
            except BoardUnavailable as error:
                log.warning("TEU %s: %s", identifier, error)
                pdfs[identifier] = b""
        if not pdfs[identifier]:
            del wanted[key]
            failed += 1
    if not wanted:
        return {"new": 0, "unread_pdfs": failed}
    rows = [_row(key, client_id, number, edict, sede, now) for key, (client_id, number, edict) in wanted.items()]
    audited_write(SedeNotification, tenant.id, insert_from=rows)
    ids = dict(
        db.session.execute(
            select(SedeNotification.external_id, SedeNotification.id).where(
                SedeNotification.sede_code == SEDE_CODE, SedeNotification.external_id.in_(list(wanted))
            )
        ).all()
    )
    files: dict[str, int | None] = {}  # one stored copy of each PDF per tenant
    for key, (_client_id, _number, edict) in wanted.items():
        identifier = edict.announcement.identifier
        if identifier not in files:
            files[identifier] = _store_pdf(identifier, pdfs[identifier])
        db.session.add(
            SedeNotificationDocument(
                notification_id=ids[key],
                file_id=files[identifier],
                name=f"{identifier}.pdf",
                mime="application/pdf",
                is_acuse=False,
                reference=edict.announcement.pdf_url[:300],
                sha256=sha256(pdfs[identifier]).hexdigest(),
            )
        )
    db.session.commit()
    return {"new": len(rows), "unread_pdfs": failed}


def _store_pdf(identifier: str, pdf: bytes) -> int | None:
    from plugins.sedes.notifications import DOCUMENT_KIND

    try:
        with db.session.begin_nested():
            return accept_upload(pdf, f"{identifier}.pdf", DOCUMENT_KIND.name).id
    except DomainError:
        log.warning("TEU %s: the PDF was not kept (refused as a document)", identifier)
        return None


def _row(key: str, client_id: int, number: str, edict: Edict, sede: Sede, now: datetime) -> dict:
    announcement = edict.announcement
    published = datetime.combine(announcement.day, time(0), tzinfo=deadlines.MADRID)
    return {
        "client_id": client_id,
        "mailbox_id": None,
        "sede_code": SEDE_CODE,
        "external_id": key,
        "kind": Kind.TEU.value,
        "sede_state": SedeState.PUBLICADA_TEU.value,
        "workflow_state": UNREAD,
        "issuer_code": None,
        "issuer_name": announcement.issuer[:300],
        "subject": announcement.title,
        "procedure": announcement.department[:300] or None,
        "titular_nif": number,
        "titular_name": None,
        "link": None,
        "made_available_at": published.astimezone(UTC),
        "sede_expires_at": None,
        "deadline_on": deadlines.deadline_on(published, sede.deadline_days, Kind.TEU),
        "first_seen_at": now,
        "state_at": published.astimezone(UTC),
        "alerts_sent": [],
        "raw": {"boe_id": announcement.identifier, "url": announcement.pdf_url, "day": announcement.day.isoformat()},
        "updated_at": now,
    }


def search(tenant: Tenant, days: list[date] | None = None, progress: Callable | None = None) -> dict:
    """Search the board for the current tenant's clients: the days given, else yesterday and today
    in Madrid. A day the BOE does not answer, or a PDF, is left for the next run."""
    from plugins.sedes.sync import ca_bundle_for

    summary = {"announcements": 0, "unread_days": 0, "unread_pdfs": 0, "new": 0}
    sede = board_sede()
    if not sede.active or not _board_licensed(tenant):
        return {**summary, "skipped": 1}
    today = deadlines.madrid_today()
    days = days or [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    edicts: list[Edict] = []
    with Reader(sede.base_url or BOE_URL, ca_bundle=ca_bundle_for(sede)) as reader:
        for done, day in enumerate(days):
            if progress is not None:
                progress(done, len(days) + 1, str(_l("Reading the Tablón Edictal Único of %(day)s", day=day)))
            try:
                found, failed = read_day(reader, day)
            except BoardUnavailable as error:
                log.warning("TEU of %s not read: %s", day, error)
                summary["unread_days"] += 1
                continue
            edicts.extend(found)
            summary["unread_pdfs"] += failed
        summary["announcements"] = len(edicts)
        if progress is not None:
            progress(
                len(days), len(days) + 1, str(_l("Looking for the clients in %(count)s edicts", count=len(edicts)))
            )
        matched = match_tenant(tenant, sede, edicts, reader)
    summary["new"] = matched["new"]
    summary["unread_pdfs"] += matched["unread_pdfs"]
    if progress is not None:
        progress(1, 1, str(_l("%(count)s new notifications", count=summary["new"])))
    return summary


def configure(base_url: str, ca_certificates: str = "") -> Sede:
    """Point the catalogue's TEU at a BOE (the real one, or a simulator with its CA). Committed."""
    sede = board_sede()
    sede.base_url = base_url
    sede.ca_certificates = ca_certificates
    db.session.commit()
    return sede


def request_search(tenant: Tenant, user) -> JobRun:
    """ "Search the TEU now" for the tenant's clients: a run of the daily job, started by ``user``.
    Raises ``DomainError`` when the user may not, the licence leaves the board out, or a search is
    already under way."""
    if not has_permission(user, SYNC_PERMISSION):
        raise DomainError(_l("Your role does not allow checking mailboxes."))
    if not _board_licensed(tenant) or not board_sede().active:
        raise DomainError(_l("The organisation's licence does not include the Tablón Edictal Único."))
    if has_open_run(JOB):
        raise DomainError(_l("The Tablón Edictal Único is already being searched."))
    return enqueue(tenant, JOB, {}, started_by=user)


def run_board(ctx) -> dict:
    """The ``sedes.teu_board`` job, every morning for each tenant (the BOE's PDFs read once a day per
    machine: ``read_day``) or on demand; a run a user started only while that user still may."""
    starter = ctx.run.started_by
    if starter is not None and (not starter.active or not has_permission(starter, SYNC_PERMISSION)):
        return {"refused": 1}
    return search(ctx.tenant, progress=ctx.progress)


def register_jobs(jobs) -> None:
    """What the plugin's ``register_jobs`` hook adds for the board."""
    jobs.add(
        JOB,
        run_board,
        queue="sync",
        title=_l("Search the Tablón Edictal Único for the clients"),
        cron=CRON,
        timeout=3600,
    )
