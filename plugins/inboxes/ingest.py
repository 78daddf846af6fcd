"""A fetched message becomes a request, a follow-up of one, a delivery report on one — or goes to quarantine.

``Ingestor`` is the fetchers' ``commit`` callback: it stores one message and commits before the
fetcher moves or deletes it on the server. Re-reading never duplicates: a message is stored once
per mailbox by its key (Message-ID, or a digest of its bytes), and a duplicate counts as accepted so
that it leaves the folder.

Threading, first that matches: an id it answers (In-Reply-To, References, nearest first) that is one
of our own (signed: names the request) or one stored in a request of the tenant; then the subject tag
``[#REQ-123]`` of a request of the same contract.

Mail no person wrote (auto-replies, bulk: ``mail.automation``) is stored but gets no automatic
answer and does not reopen a request; one of our own messages coming back (a loop) is quarantined. A delivery report
marks our original message failed (core's ``record_bounce``) and joins its request; one about a
message that is not ours is quarantined. What cannot be read is quarantined raw with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.api import db, record_bounce, utcnow
from plugins.inboxes import attachments as attachment_store
from plugins.inboxes.connectors import FetchedMessage, Outcome
from plugins.inboxes.mail.automation import Kind
from plugins.inboxes.mail.parsing import (
    MIB,
    QUARANTINE_MESSAGES,
    Limits,
    ParsedMessage,
    Quarantined,
    parse_fetched,
    parse_message,
)
from plugins.inboxes.mail.threads import bracket, parse_own_message_id
from plugins.inboxes.mailboxes import message_domain
from plugins.inboxes.models import (
    CLOSED,
    DISCARDED,
    IMPORTED,
    IN,
    IN_PROGRESS,
    ORIGIN_MAIL,
    ORIGIN_REPORT,
    OUT,
    RESOLVED,
    WAITING,
    Contract,
    ContractInbox,
    Mailbox,
    Request,
    RequestMessage,
)
from plugins.inboxes.models import Quarantined as QuarantineRow
from plugins.inboxes.outbound import LOOP_TOKEN, TAG_PREFIX, signing_key

log = logging.getLogger(__name__)

REASONS = {
    **QUARANTINE_MESSAGES,
    "loop": _l("One of our own messages came back (a mail loop)."),
    "unmatched_report": _l("A delivery report or read receipt about a message that is not one of ours."),
    "no_contract": _l("The mailbox is not linked to a contract."),
}
REOPENING = (WAITING, RESOLVED, CLOSED)


def reason_message(reason: str):
    return REASONS.get(reason, REASONS["unreadable"])


@dataclass
class Stored:
    outcome: Outcome
    request_id: int | None = None
    created: bool = False
    duplicate: bool = False
    reason: str | None = None


class Ingestor:
    """Stores what one mailbox's fetcher hands over (in the tenant's context)."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox_id = mailbox.id
        link = db.session.scalar(select(ContractInbox).where(ContractInbox.mailbox_id == mailbox.id))
        self.contract_id = link.contract_id if link is not None else None
        max_bytes = max(1, mailbox.max_message_mb) * MIB
        self.options = {
            "limits": Limits(max_attachment_bytes=min(10 * MIB, max_bytes), max_total_attachment_bytes=max_bytes),
            "own_domains": (message_domain(),),
            "loop_token": LOOP_TOKEN,
            "tag_prefix": TAG_PREFIX,
        }
        self.key = signing_key()
        self.stored: list[Stored] = []
        self._raw = b""

    # --- the fetcher's callback ---

    def __call__(self, fetched: FetchedMessage) -> Outcome:
        parsed = parse_fetched(fetched, **self.options)
        result = self.store(parsed, fetched.raw, size=fetched.size)
        self.stored.append(result)
        return result.outcome

    def reparse(self, raw: bytes) -> ParsedMessage | Quarantined:
        return parse_message(raw, **self.options)

    def store(self, parsed: ParsedMessage | Quarantined, raw: bytes, *, size: int | None = None) -> Stored:
        """Store one parsed message (``raw``: its bytes, kept if it is quarantined) and commit; a duplicate
        stored meanwhile is no error."""
        self._raw = raw
        try:
            result = self._store(parsed, size)
            db.session.commit()
            return result
        except IntegrityError:
            db.session.rollback()
            if self._known(parsed.key):
                return Stored(Outcome.ACCEPTED, duplicate=True)
            raise
        except Exception:
            db.session.rollback()
            raise

    # --- the rules ---

    def _known(self, key: str) -> bool:
        stmt = select(RequestMessage.id).where(
            RequestMessage.mailbox_id == self.mailbox_id, RequestMessage.message_key == key
        )
        return db.session.scalar(stmt) is not None

    def _store(self, parsed, size) -> Stored:
        if isinstance(parsed, Quarantined):
            return self._quarantine(parsed, parsed.reason, parsed.detail, size)
        if self._known(parsed.key):
            return Stored(Outcome.ACCEPTED, duplicate=True)
        kind = parsed.automation.kind
        if kind in (Kind.BOUNCE, Kind.READ_RECEIPT):
            return self._report(parsed, size)
        if kind == Kind.LOOP:
            # Our own message came back (a forward or an auto-forward to this mailbox): never a
            # request, never in a thread twice.
            return self._quarantine(parsed, "loop", "; ".join(parsed.automation.reasons), size)
        request = self._thread(parsed)
        if request is None:
            if self.contract_id is None:
                return self._quarantine(parsed, "no_contract", "", size)
            return self._new_request(parsed)
        self._add(request, parsed, ORIGIN_MAIL)
        request.last_message_at = utcnow()
        if not parsed.automation.is_automatic and request.status in REOPENING:
            from plugins.inboxes.requests import change_status

            change_status(request, IN_PROGRESS, may_answer=parsed.automation.may_auto_respond)
        return Stored(Outcome.ACCEPTED, request.id)

    def _thread(self, parsed: ParsedMessage) -> Request | None:
        ids = parsed.thread_ids
        for candidate in ids:
            own = parse_own_message_id(candidate, self.key, (message_domain(),))
            if own is not None:
                request = db.session.get(Request, own.request_id)
                if request is not None:
                    return request
        if ids:
            rows = db.session.execute(
                select(RequestMessage.message_id, RequestMessage.request_id).where(RequestMessage.message_id.in_(ids))
            ).all()
            by_id = {message_id: request_id for message_id, request_id in rows}
            for candidate in ids:
                if candidate in by_id:
                    return db.session.get(Request, by_id[candidate])
        if self.contract_id is not None:
            for tag in parsed.tags:
                request = db.session.scalar(
                    select(Request).where(Request.id == tag.number, Request.contract_id == self.contract_id)
                )
                if request is not None:
                    return request
        return None

    def _new_request(self, parsed: ParsedMessage) -> Stored:
        from plugins.inboxes import flows
        from plugins.inboxes.requests import search_text

        requester = parsed.reply_address
        contract = db.session.get(Contract, self.contract_id)
        subject = parsed.subject or str(_l("(no subject)"))
        request = Request(
            contract_id=contract.id,
            mailbox_id=self.mailbox_id,
            subject=subject[:500],
            requester_name=(requester.name if requester else "")[:200],
            requester_email=(requester.email if requester else "")[:320],
            automatic=str(parsed.automation.kind) if parsed.automation.kind else None,
            search_text=search_text(subject, requester.name if requester else "", requester.email if requester else ""),
        )
        db.session.add(request)
        db.session.flush()
        self._add(request, parsed, ORIGIN_MAIL)
        flows.run_steps(request, request.status, may_answer=parsed.automation.may_auto_respond)
        return Stored(Outcome.ACCEPTED, request.id, created=True)

    def _report(self, parsed: ParsedMessage, size) -> Stored:
        """A delivery report (or a read receipt): on the request of our original message."""
        original_id = parsed.bounce.original_message_id if parsed.bounce else None
        ours = None
        if original_id:
            ours = db.session.scalar(
                select(RequestMessage).where(RequestMessage.message_id == original_id, RequestMessage.direction == OUT)
            )
        if ours is None:
            request = self._thread(parsed)
            if request is None:
                return self._quarantine(parsed, "unmatched_report", "; ".join(parsed.automation.reasons), size)
            self._add(request, parsed, ORIGIN_REPORT)
            return Stored(Outcome.ACCEPTED, request.id)
        bounce = parsed.bounce
        if parsed.automation.kind == Kind.BOUNCE and bounce is not None and bounce.failed:
            failed = [r for r in bounce.recipients if r.permanent] or list(bounce.recipients)
            detail = ", ".join(f"{r.recipient} {r.status or ''}".strip() for r in failed if r.recipient)
            reason = f"delivery report: {detail or bounce.status or 'failed'}"[:500]
            ours.bounced = reason
            record_bounce(bracket(original_id), reason)
        self._add(db.session.get(Request, ours.request_id), parsed, ORIGIN_REPORT)
        return Stored(Outcome.ACCEPTED, ours.request_id)

    def _add(self, request: Request, parsed: ParsedMessage, origin: str) -> RequestMessage:
        notes = [{"kind": "note", "text": note} for note in parsed.notes]
        notes += [
            {"kind": "skipped", "filename": s.filename, "size": s.size, "reason": s.reason} for s in parsed.skipped
        ]
        entry = RequestMessage(
            request_id=request.id,
            direction=IN,
            origin=origin,
            mailbox_id=self.mailbox_id,
            message_key=parsed.key,
            message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references[-50:],
            from_name=(parsed.from_address.name if parsed.from_address else "")[:200],
            from_address=(parsed.from_address.email if parsed.from_address else "")[:320],
            to_addresses=[str(a) for a in parsed.to][:50],
            cc_addresses=[str(a) for a in parsed.cc][:50],
            subject=parsed.subject[:998],
            text_body=parsed.text,
            html_body=parsed.html,
            sent_at=parsed.date,
            automation=str(parsed.automation.kind) if parsed.automation.kind else None,
            automation_reasons=list(parsed.automation.reasons),
            notes=notes,
        )
        db.session.add(entry)
        db.session.flush()
        for item in [*parsed.attachments, *parsed.inline]:
            attachment_store.store(
                entry.id, item.filename, item.content_type, item.data, content_id=item.content_id, inline=item.inline
            )
        return entry

    def _quarantine(self, parsed, reason: str, detail: str, size) -> Stored:
        existing = db.session.scalar(
            select(QuarantineRow).where(
                QuarantineRow.mailbox_id == self.mailbox_id, QuarantineRow.message_key == parsed.key
            )
        )
        if existing is None:
            raw = parsed.raw if isinstance(parsed, Quarantined) else self._raw
            sender = parsed.from_address
            db.session.add(
                QuarantineRow(
                    mailbox_id=self.mailbox_id,
                    message_key=parsed.key,
                    reason=reason,
                    detail=(detail or "")[:300],
                    subject=(parsed.subject or "")[:998],
                    from_address=(sender.email if sender else "")[:320],
                    message_id=parsed.message_id,
                    size=size if size is not None else len(raw or b""),
                    raw=raw,
                )
            )
        return Stored(Outcome.QUARANTINED, reason=reason)


def retry(row: QuarantineRow, user) -> Stored:
    """Read a quarantined message again (after a fix, or when its rule no longer applies). Commits."""
    mailbox = db.session.get(Mailbox, row.mailbox_id)
    ingestor = Ingestor(mailbox)
    parsed = ingestor.reparse(row.raw or b"")
    if isinstance(parsed, Quarantined):
        row.reason, row.detail = parsed.reason, parsed.detail[:300]
        db.session.commit()
        return Stored(Outcome.QUARANTINED, reason=parsed.reason)
    # Forget this row first, or the message would be "already quarantined" again.
    row_id = row.id
    result = ingestor.store(parsed, row.raw or b"", size=row.size)
    row = db.session.get(QuarantineRow, row_id)
    if result.outcome == Outcome.ACCEPTED:
        row.state = IMPORTED
        row.request_id = result.request_id
        row.resolved_at = utcnow()
        row.resolved_by_id = getattr(user, "id", None)
        db.session.commit()
    return result


def discard(row: QuarantineRow, user) -> None:
    row.state = DISCARDED
    row.raw = None
    row.resolved_at = utcnow()
    row.resolved_by_id = getattr(user, "id", None)
    db.session.commit()
