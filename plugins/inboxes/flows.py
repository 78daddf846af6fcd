"""Flows: a minimal workflow whose "Envío de Mensaje - E-mail" steps send a message when a request
of a contract with that flow enters the step's status.

A step's message configuration chooses the outbound mailbox (*Específica*: the contract's; or the
system's default: see ``outbound``), the recipients (whoever wrote the request, the contract's
client, other addresses) and the subject and text, with placeholders such as ``{number}``.
Each pass of a request into a status runs each step once (``StepRun``). Automatic mail never gets an
automatic answer: when the request was opened by an auto-reply, bulk mail or a loop, or its sender
has had ``AUTO_REPLY_LIMIT`` automatic messages from us in a day, the requester is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import func, select

from core.api import DomainError, db, utcnow
from plugins.inboxes.mail.outbound import Automatic
from plugins.inboxes.models import (
    EMAIL_STEP,
    MAILBOX_MODES,
    NEW,
    ORIGIN_FLOW,
    OUT,
    STATUS_LABELS,
    STATUSES,
    Flow,
    FlowStep,
    Request,
    RequestMessage,
    StepRun,
)

TRIGGER_LABELS = {
    NEW: lazy_pgettext("trigger", "Created"),
    **{status: STATUS_LABELS[status] for status in STATUSES if status != NEW},
}
PLACEHOLDERS = {
    "number": _l("the request's number"),
    "subject": _l("the request's subject"),
    "status": _l("its status"),
    "contract": _l("the contract"),
    "client": _l("the contract's client"),
    "requester": _l("who wrote it"),
    "organisation": _l("your organisation"),
}
AUTO_REPLY_LIMIT = 10  # automatic messages to one address per day
MAX_EXTRA_RECIPIENTS = 20
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass
class FlowData:
    name: str
    description: str = ""
    reply_mode: str = "specific"
    active: bool = True


@dataclass
class StepData:
    name: str
    trigger: str
    mailbox_mode: str
    subject: str
    body: str
    to_requester: bool = True
    to_client: bool = False
    extra_recipients: str = ""
    position: int = 0


def save_flow(flow: Flow | None, data: FlowData) -> Flow:
    name = " ".join((data.name or "").split())
    if not name:
        raise DomainError(_l("Give the flow a name."), field="name")
    if len(name) > 200:
        raise DomainError(_l("At most 200 characters."), field="name")
    if data.reply_mode not in MAILBOX_MODES:
        raise DomainError(_l("Choose where replies leave from."), field="reply_mode")
    taken = select(Flow.id).where(func.lower(Flow.name) == name.lower())
    if flow is not None:
        taken = taken.where(Flow.id != flow.id)
    if db.session.scalar(taken) is not None:
        raise DomainError(_l("Another flow already has this name."), field="name")
    if flow is None:
        flow = Flow()
        db.session.add(flow)
    flow.name = name
    flow.description = (data.description or "").strip()
    flow.reply_mode = data.reply_mode
    flow.active = bool(data.active)
    db.session.commit()
    return flow


def parse_recipients(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or lines; each checked."""
    found: list[str] = []
    for piece in re.split(r"[,;\s]+", text or ""):
        if not piece:
            continue
        try:
            address = validate_email(piece, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise DomainError(
                _l("%(address)s is not a valid e-mail address.", address=piece), field="extra_recipients"
            ) from error
        if address not in found:
            found.append(address)
    if len(found) > MAX_EXTRA_RECIPIENTS:
        raise DomainError(_l("At most %(n)s other recipients.", n=MAX_EXTRA_RECIPIENTS), field="extra_recipients")
    return found


def _check_template(text: str, field: str) -> None:
    unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})
    if unknown:
        raise DomainError(
            _l("Unknown placeholder: %(names)s.", names=", ".join("{" + n + "}" for n in unknown)), field=field
        )


def save_step(flow: Flow, step: FlowStep | None, data: StepData) -> FlowStep:
    name = " ".join((data.name or "").split())
    if not name:
        raise DomainError(_l("Give the step a name."), field="name")
    if data.trigger not in STATUSES:
        raise DomainError(_l("Choose when the step runs."), field="trigger")
    if data.mailbox_mode not in MAILBOX_MODES:
        raise DomainError(_l("Choose the outbound mailbox configuration."), field="mailbox_mode")
    subject = " ".join((data.subject or "").split())
    if not subject:
        raise DomainError(_l("Write the subject of the message."), field="subject")
    if len(subject) > 300:
        raise DomainError(_l("At most 300 characters."), field="subject")
    body = (data.body or "").strip()
    if not body:
        raise DomainError(_l("Write the message."), field="body")
    _check_template(subject, "subject")
    _check_template(body, "body")
    extra = parse_recipients(data.extra_recipients)
    if not (data.to_requester or data.to_client or extra):
        raise DomainError(_l("Choose at least one recipient."), field="extra_recipients")
    if step is None:
        step = FlowStep(flow_id=flow.id, kind=EMAIL_STEP)
        db.session.add(step)
    step.name = name[:120]
    step.trigger = data.trigger
    step.mailbox_mode = data.mailbox_mode
    step.to_requester = bool(data.to_requester)
    step.to_client = bool(data.to_client)
    step.extra_recipients = extra
    step.subject = subject
    step.body = body
    step.position = int(data.position or 0)
    db.session.commit()
    return step


def delete_step(step: FlowStep) -> None:
    db.session.delete(step)
    db.session.commit()


# --- running ---------------------------------------------------------------------------------------


def render(template: str, values: dict) -> str:
    """``template`` with its known ``{placeholders}`` filled in (others are left as written)."""
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


def values_of(request: Request) -> dict:
    from core.api import current_tenant

    contract = request.contract
    tenant = current_tenant()
    return {
        "number": f"#{request.id}",
        "subject": request.subject,
        "status": str(STATUS_LABELS.get(request.status, request.status)),
        "contract": contract.name,
        "client": contract.client.name,
        "requester": request.requester_name or request.requester_email,
        "organisation": tenant.name if tenant else "",
    }


def _automatic_today(address: str) -> int:
    since = utcnow() - timedelta(days=1)
    stmt = (
        select(RequestMessage.to_addresses)
        .where(
            RequestMessage.direction == OUT,
            RequestMessage.origin == ORIGIN_FLOW,
            RequestMessage.created_at >= since,
        )
        .limit(AUTO_REPLY_LIMIT * 50)
    )
    return sum(address in (to or []) for to in db.session.scalars(stmt))


def run_steps(request: Request, status: str, *, may_answer: bool = True) -> list[StepRun]:
    """Run the steps of the request's flow that start at ``status``, once per pass (not committed).

    ``may_answer`` False (the message that brought the request here was automatic) leaves the
    requester out of every recipient list.
    """
    contract = request.contract
    flow = contract.flow if contract is not None else None
    if flow is None or not flow.active or not contract.active:
        return []
    runs = []
    for step in flow.steps:
        if step.trigger != status or step.kind != EMAIL_STEP:
            continue
        done = db.session.scalar(
            select(StepRun.id).where(
                StepRun.request_id == request.id,
                StepRun.step_id == step.id,
                StepRun.occurrence == request.transitions,
            )
        )
        if done is not None:
            continue
        run = StepRun(request_id=request.id, step_id=step.id, occurrence=request.transitions)
        recipients: list[str] = []
        skipped: list[str] = []
        requester = (request.requester_email or "").lower()
        if step.to_requester and requester:
            if not may_answer or request.automatic:
                skipped.append("requester: automatic message, no automatic answer")
            elif _automatic_today(requester) >= AUTO_REPLY_LIMIT:
                skipped.append("requester: daily limit of automatic messages reached")
            else:
                recipients.append(requester)
        if step.to_client and contract.client.email:
            recipients.append(contract.client.email.lower())
        recipients.extend(step.extra_recipients or ())
        recipients = list(dict.fromkeys(recipients))
        if recipients:
            values = values_of(request)
            entry = _send(request, step, recipients, values, status)
            run.message_id = entry.id
        run.skipped = "; ".join(skipped)[:200] or (None if recipients else "no recipient")
        db.session.add(run)
        runs.append(run)
    db.session.flush()
    return runs


def _send(request: Request, step: FlowStep, recipients: list[str], values: dict, status: str):
    from plugins.inboxes.outbound import send_request_message

    return send_request_message(
        request,
        to=recipients,
        subject=render(step.subject, values),
        text=render(step.body, values),
        mode=step.mailbox_mode,
        origin=ORIGIN_FLOW,
        # An acknowledgement answers the message that opened the request; later notices are the system's.
        automatic=Automatic.AUTO_REPLIED if status == NEW else Automatic.AUTO_GENERATED,
    )
