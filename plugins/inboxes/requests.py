"""Requests (solicitudes): the list, the thread, replies and the status.

A user sees the requests of the contracts of the clients they see. A reply leaves through the
mailbox the contract's flow chooses for replies (``Flow.reply_mode``; without a flow, the contract's
own outbound mailbox), threaded to the last message that came in. Entering a status runs the flow's
steps for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from core.api import DomainError, db, utcnow, visible_client_ids
from plugins.inboxes import attachments as attachment_store
from plugins.inboxes import flows
from plugins.inboxes.models import (
    IN_PROGRESS,
    NEW,
    ORIGIN_REPLY,
    SPECIFIC,
    STATUSES,
    WAITING,
    Contract,
    Request,
    RequestMessage,
)
from plugins.inboxes.outbound import send_request_message

MAX_REPLY_CHARS = 100_000


def visible(user) -> Select:
    contracts = select(Contract.id).where(Contract.client_id.in_(visible_client_ids(user)))
    return select(Request).where(Request.contract_id.in_(contracts))


def get_visible(user, request_id: int) -> Request | None:
    return db.session.scalar(visible(user).where(Request.id == request_id))


def list_statement(
    user, *, contract_id: int | None = None, status: str = "", q: str = "", mailbox_id: int | None = None
) -> Select:
    stmt = visible(user).options(selectinload(Request.contract).selectinload(Contract.client))
    if contract_id:
        stmt = stmt.where(Request.contract_id == contract_id)
    if mailbox_id:
        stmt = stmt.where(Request.mailbox_id == mailbox_id)
    if status == "open":
        stmt = stmt.where(Request.status.in_((NEW, IN_PROGRESS, WAITING)))
    elif status in STATUSES:
        stmt = stmt.where(Request.status == status)
    q = (q or "").strip()
    if q:
        number = q.lstrip("#")
        condition = Request.search_text.like(f"%{q.lower()}%")
        if number.isdigit():
            condition = or_(condition, Request.id == int(number))
        stmt = stmt.where(condition)
    return stmt


def search_text(subject: str, name: str, address: str) -> str:
    return " ".join(f"{subject} {name} {address}".lower().split())[:1200]


def search(user, query: str, limit: int = 10) -> list[Request]:
    if not (query or "").strip():
        return []
    return db.session.scalars(list_statement(user, q=query).order_by(Request.id.desc()).limit(limit)).all()


def new_count(user) -> int:
    return db.session.scalar(select(func.count()).select_from(visible(user).where(Request.status == NEW).subquery()))


def thread(request: Request) -> list[RequestMessage]:
    return db.session.scalars(
        select(RequestMessage)
        .where(RequestMessage.request_id == request.id)
        .options(
            selectinload(RequestMessage.attachments),
            selectinload(RequestMessage.outbound),
            selectinload(RequestMessage.author),
            selectinload(RequestMessage.mailbox),
        )
        .order_by(RequestMessage.id)
    ).all()


def change_status(request: Request, status: str, *, may_answer: bool = True) -> bool:
    """Move the request to ``status`` and run the flow's steps for it (not committed)."""
    if status not in STATUSES:
        raise DomainError(_l("Choose a status from the list."), field="status")
    if status == request.status:
        return False
    request.status = status
    request.transitions = (request.transitions or 0) + 1
    request.updated_at = utcnow()
    db.session.flush()
    flows.run_steps(request, status, may_answer=may_answer)
    return True


def set_status(request: Request, status: str) -> None:
    change_status(request, status)
    db.session.commit()


def _addresses(text: str, field: str) -> list[str]:
    found = []
    for piece in (text or "").replace(";", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        try:
            found.append(validate_email(piece, check_deliverability=False).normalized)
        except EmailNotValidError as error:
            raise DomainError(_l("%(address)s is not a valid e-mail address.", address=piece), field=field) from error
    return list(dict.fromkeys(found))


def reply_mode(request: Request) -> str:
    """Where staff replies leave from: the flow's choice; without a flow, the contract's mailbox."""
    flow = request.contract.flow
    return flow.reply_mode if flow is not None else SPECIFIC


def reply(
    request: Request,
    user,
    text: str,
    *,
    to: str = "",
    cc: str = "",
    status: str | None = None,
    attachments: Sequence = (),
) -> RequestMessage:
    """Answer the request by e-mail (to its requester unless ``to`` says otherwise). Commits.

    ``attachments``: ``(filename, bytes, content type)`` of files to send along (kept in the thread too).
    """
    text = (text or "").strip()
    if not text:
        raise DomainError(_l("Write the answer."), field="text")
    if len(text) > MAX_REPLY_CHARS:
        raise DomainError(_l("The answer is too long."), field="text")
    recipients = _addresses(to, "to") or ([request.requester_email] if request.requester_email else [])
    if not recipients:
        raise DomainError(_l("Say whom to write to."), field="to")
    subject = request.subject if request.subject.lower().startswith("re:") else f"Re: {request.subject}"
    entry = send_request_message(
        request,
        to=recipients,
        cc=_addresses(cc, "cc"),
        subject=subject,
        text=text,
        mode=reply_mode(request),
        origin=ORIGIN_REPLY,
        author_id=user.id,
        attachments=attachments,
    )
    for name, data, content_type in attachments:
        attachment_store.store(entry.id, name, content_type or "application/octet-stream", data)
    request.last_message_at = utcnow()
    if status:
        change_status(request, status)
    elif request.status == NEW:
        change_status(request, IN_PROGRESS)
    db.session.commit()
    return entry
