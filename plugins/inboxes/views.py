"""Parametrización: e-mail mailboxes (with their buttons and quarantine), contracts and flows."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.api import DomainError, choices, db, keyset_page, requires, visible_clients
from plugins.inboxes import CONTRACTS, FLOWS, MAILBOXES, contracts, flows, ingest, mailboxes, sync
from plugins.inboxes.connectors import MailError
from plugins.inboxes.connectors.presets import PROVIDERS
from plugins.inboxes.forms import ContractForm, FlowForm, InboundForm, OutboundForm, StepForm
from plugins.inboxes.models import (
    DISCARDED,
    INBOUND,
    OUTBOUND,
    PENDING,
    STATUS_LABELS,
    Contract,
    ContractInbox,
    Flow,
    FlowStep,
    Mailbox,
    Quarantined,
    Request,
)

bp = Blueprint("inboxes", __name__, template_folder="templates", url_prefix="/inboxes")


def _form_error(form, error: DomainError, default: str = "name") -> None:
    db.session.rollback()
    target = getattr(form, error.field or default, None) or getattr(form, default)
    target.errors = [*target.errors, str(error.message)]


# --- mailboxes -----------------------------------------------------------------------------------


@bp.route("/mailboxes/")
@requires(MAILBOXES)
def index():
    """Parametrización → Buzón de correo electrónico: every mailbox, both kinds."""
    rows = db.session.scalars(
        select(Mailbox)
        .options(selectinload(Mailbox.contract_link).selectinload(ContractInbox.contract))
        .order_by(Mailbox.direction, Mailbox.name)
    ).all()
    used_by = dict(
        db.session.execute(
            select(Contract.outbound_mailbox_id, func.count())
            .where(Contract.outbound_mailbox_id.is_not(None))
            .group_by(Contract.outbound_mailbox_id)
        ).all()
    )
    waiting = dict(
        db.session.execute(
            select(Quarantined.mailbox_id, func.count())
            .where(Quarantined.state == PENDING)
            .group_by(Quarantined.mailbox_id)
        ).all()
    )
    return render_template(
        "inboxes/mailboxes.html",
        inbound=[m for m in rows if m.direction == INBOUND],
        outbound=[m for m in rows if m.direction == OUTBOUND],
        used_by=used_by,
        waiting=waiting,
        error_message=mailboxes.error_message,
    )


@bp.route("/mailboxes/new")
@requires(MAILBOXES)
def new_mailbox_choice():
    """Nuevo: first the type of mailbox."""
    return render_template("inboxes/mailbox_new.html")


def _mailbox_form(direction: str, mailbox: Mailbox | None = None):
    form_class = InboundForm if direction == INBOUND else OutboundForm
    form = form_class(obj=mailbox)
    if mailbox is not None and request.method == "GET":
        form.password.data = ""
    return form


def _mailbox_page(form, direction: str, mailbox: Mailbox | None, **extra):
    return render_template(
        "inboxes/mailbox_form.html",
        form=form,
        direction=direction,
        mailbox=mailbox,
        providers=PROVIDERS,
        contract=mailboxes.contract_of(mailbox) if mailbox else None,
        error_message=mailboxes.error_message,
        pending=db.session.scalar(
            select(func.count())
            .select_from(Quarantined)
            .where(Quarantined.mailbox_id == mailbox.id, Quarantined.state == PENDING)
        )
        if mailbox
        else 0,
        **extra,
    )


@bp.route("/mailboxes/new/inbound", methods=["GET", "POST"])
@requires(MAILBOXES)
def new_inbound():
    return _new_mailbox(INBOUND)


@bp.route("/mailboxes/new/outbound", methods=["GET", "POST"])
@requires(MAILBOXES)
def new_outbound():
    return _new_mailbox(OUTBOUND)


def _new_mailbox(direction: str):
    form = _mailbox_form(direction)
    if form.validate_on_submit():
        try:
            mailbox = mailboxes.save_mailbox(None, direction, form.data_for_service())
        except DomainError as error:
            _form_error(form, error)
        else:
            flash(_("The mailbox has been saved."), "success")
            return redirect(url_for("inboxes.mailbox", inbox_id=mailbox.id))
    return _mailbox_page(form, direction, None)


def _mailbox_or_404(inbox_id: int) -> Mailbox:
    return db.get_or_404(Mailbox, inbox_id)


@bp.route("/mailboxes/<int:inbox_id>", methods=["GET", "POST"])
@requires(MAILBOXES)
def mailbox(inbox_id: int):
    box = _mailbox_or_404(inbox_id)
    form = _mailbox_form(box.direction, box)
    if form.validate_on_submit():
        try:
            mailboxes.save_mailbox(box, box.direction, form.data_for_service())
        except DomainError as error:
            _form_error(form, error)
        else:
            flash(_("The mailbox has been saved."), "success")
            return redirect(url_for("inboxes.mailbox", inbox_id=box.id))
    return _mailbox_page(form, box.direction, box)


def _button(inbox_id: int, direction: str, action):
    """Run a mailbox button; a failure is shown in words (a ``MailError``), never the server's reply."""
    box = _mailbox_or_404(inbox_id)
    if box.direction != direction:
        abort(404)
    try:
        result = action(box)
    except MailError as error:
        flash(_("It did not work: %(reason)s", reason=error.message), "danger")
        return None, box
    except DomainError as error:
        flash(str(error.message), "danger")
        return None, box
    return result, box


@bp.route("/mailboxes/<int:inbox_id>/test", methods=["POST"])
@requires(MAILBOXES)
def test_mailbox(inbox_id: int):
    """Test connection: log in, open the folder, count."""
    report, box = _button(inbox_id, INBOUND, mailboxes.test_connection)
    if report is not None:
        if report.unseen is not None:
            message = ngettext(
                "Connected: the folder %(folder)s holds %(num)d message (%(unseen)s unread).",
                "Connected: the folder %(folder)s holds %(num)d messages (%(unseen)s unread).",
                report.messages,
                folder=report.folder,
                unseen=report.unseen,
            )
        else:
            message = ngettext(
                "Connected: the folder %(folder)s holds %(num)d message.",
                "Connected: the folder %(folder)s holds %(num)d messages.",
                report.messages,
                folder=report.folder,
            )
        if report.tls is None:
            message += " " + _("The connection is not encrypted.")
        flash(message, "success")
    return redirect(url_for("inboxes.mailbox", inbox_id=box.id))


@bp.route("/mailboxes/<int:inbox_id>/folders", methods=["POST"])
@requires(MAILBOXES)
def mailbox_folders(inbox_id: int):
    """List folders: the server's folders, on the mailbox's page."""
    folders, box = _button(inbox_id, INBOUND, mailboxes.list_folders)
    if folders is None:
        return redirect(url_for("inboxes.mailbox", inbox_id=box.id))
    form = _mailbox_form(box.direction, box)
    form.password.data = ""
    return _mailbox_page(form, box.direction, box, folders=folders)


@bp.route("/mailboxes/<int:inbox_id>/send-test", methods=["POST"])
@requires(MAILBOXES)
def mailbox_send_test(inbox_id: int):
    """Send a test message to oneself through the outbound mailbox."""
    done, box = _button(inbox_id, OUTBOUND, lambda m: mailboxes.send_test_message(m, g.tenant, current_user) or True)
    if done:
        flash(_("A test message has been sent to %(email)s.", email=current_user.email), "success")
    return redirect(url_for("inboxes.mailbox", inbox_id=box.id))


@bp.route("/mailboxes/<int:inbox_id>/read", methods=["POST"])
@requires(MAILBOXES)
def read_mailbox(inbox_id: int):
    """Read now (instead of waiting for the polling interval)."""
    box = _mailbox_or_404(inbox_id)
    if box.direction != INBOUND:
        abort(404)
    if not box.active:
        flash(_("The mailbox is switched off."), "warning")
    elif mailboxes.contract_of(box) is None:
        flash(_("Link the mailbox to a contract first: its mail becomes that contract's requests."), "warning")
    elif sync.read_now(g.tenant, box, current_user):
        flash(_("The mailbox will be read in a moment."), "success")
    else:
        flash(_("The mailbox is already waiting to be read."), "info")
    return redirect(url_for("inboxes.mailbox", inbox_id=box.id))


@bp.route("/mailboxes/<int:inbox_id>/active", methods=["POST"])
@requires(MAILBOXES)
def mailbox_active(inbox_id: int):
    box = _mailbox_or_404(inbox_id)
    active = request.form.get("active") == "1"
    mailboxes.set_active(box, active)
    flash(_("The mailbox is on.") if active else _("The mailbox is off."), "success")
    return redirect(url_for("inboxes.mailbox", inbox_id=box.id))


@bp.route("/mailboxes/<int:inbox_id>/forget-password", methods=["POST"])
@requires(MAILBOXES)
def mailbox_forget_password(inbox_id: int):
    box = _mailbox_or_404(inbox_id)
    mailboxes.forget_password(box)
    flash(_("The saved password has been deleted."), "success")
    return redirect(url_for("inboxes.mailbox", inbox_id=box.id))


# --- quarantine ----------------------------------------------------------------------------------


@bp.route("/quarantine/")
@requires(MAILBOXES)
def quarantine():
    """Messages that could not be processed: kept raw, with the reason; retry or discard them."""
    state = request.args.get("state", PENDING)
    inbox_id = request.args.get("mailbox", type=int)
    stmt = select(Quarantined).options(selectinload(Quarantined.mailbox))
    if state in (PENDING, DISCARDED, "imported"):
        stmt = stmt.where(Quarantined.state == state)
    if inbox_id:
        stmt = stmt.where(Quarantined.mailbox_id == inbox_id)
    page = keyset_page(db.session, stmt, [Quarantined.id], request.args.get("after"), per_page=50, descending=True)
    return render_template(
        "inboxes/quarantine.html",
        page=page,
        state=state,
        inbox_id=inbox_id,
        inbound=db.session.scalars(select(Mailbox).where(Mailbox.direction == INBOUND).order_by(Mailbox.name)).all(),
        reason_message=ingest.reason_message,
    )


@bp.route("/quarantine/<int:inbox_quarantine_id>/raw")
@requires(MAILBOXES)
def quarantine_raw(inbox_quarantine_id: int):
    row = db.get_or_404(Quarantined, inbox_quarantine_id)
    if row.raw is None:
        abort(404)
    return _raw_response(bytes(row.raw))


def _raw_response(raw: bytes) -> Response:
    return Response(
        raw,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": 'attachment; filename="message.eml"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@bp.route("/quarantine/<int:inbox_quarantine_id>/retry", methods=["POST"])
@requires(MAILBOXES)
def quarantine_retry(inbox_quarantine_id: int):
    row = db.get_or_404(Quarantined, inbox_quarantine_id)
    if row.state != PENDING or row.raw is None or row.reason == "too_large":
        flash(_("This message cannot be read again."), "warning")
    else:
        result = ingest.retry(row, current_user)
        if result.request_id:
            flash(_("The message is now in request #%(number)s.", number=result.request_id), "success")
        else:
            flash(_("It still cannot be processed: %(reason)s", reason=ingest.reason_message(result.reason)), "warning")
    return redirect(url_for("inboxes.quarantine"))


@bp.route("/quarantine/<int:inbox_quarantine_id>/discard", methods=["POST"])
@requires(MAILBOXES)
def quarantine_discard(inbox_quarantine_id: int):
    row = db.get_or_404(Quarantined, inbox_quarantine_id)
    if row.state == PENDING:
        ingest.discard(row, current_user)
        flash(_("The message has been discarded."), "success")
    return redirect(url_for("inboxes.quarantine"))


# --- contracts -----------------------------------------------------------------------------------


@bp.route("/contracts/")
@requires(CONTRACTS)
def contracts_index():
    q = request.args.get("q", "").strip()
    stmt = contracts.list_statement(current_user, q=q)
    page = keyset_page(db.session, stmt, [Contract.id], request.args.get("after"), per_page=50, descending=True)
    return render_template("inboxes/contracts.html", page=page, q=q)


def _contract_form(contract: Contract | None) -> ContractForm:
    form = ContractForm(obj=contract)
    if contract is not None and request.method == "GET":
        form.inbound_mailbox_ids.data = [m.id for m in contract.inbound_mailboxes]
    clients = db.session.scalars(visible_clients(current_user).order_by("name").limit(500)).all()
    form.client_id.choices = choices([("", _("Choose…"))] + [(c.id, c.name) for c in clients])
    if contract is not None and contract.client_id not in {c.id for c in clients}:
        form.client_id.choices.append(choices([(contract.client_id, contract.client.name)])[0])
    form.outbound_mailbox_id.choices = choices(
        [("", _("None: the system's default outbound mailbox"))]
        + [(m.id, f"{m.name} <{m.sender_address}>") for m in contracts.outbound_choices()]
    )
    form.inbound_mailbox_ids.choices = choices(
        (m.id, f"{m.name} ({m.email_address or m.username})") for m in contracts.inbound_choices(contract)
    )
    form.flow_id.choices = choices(
        [("", _("No flow"))] + [(f.id, f.name) for f in db.session.scalars(select(Flow).order_by(Flow.name))]
    )
    return form


def _contract_page(contract: Contract | None):
    form = _contract_form(contract)
    if form.validate_on_submit():
        data = contracts.ContractData(
            client_id=form.client_id.data,
            name=form.name.data,
            reference=form.reference.data or "",
            outbound_mailbox_id=form.outbound_mailbox_id.data,
            inbound_mailbox_ids=form.inbound_mailbox_ids.data or [],
            flow_id=form.flow_id.data,
            active=form.active.data,
        )
        try:
            saved = contracts.save_contract(current_user, contract, data)
        except DomainError as error:
            _form_error(form, error)
        else:
            flash(_("The contract has been saved."), "success")
            return redirect(url_for("inboxes.contract", inbox_contract_id=saved.id))
    counts = {}
    if contract is not None:
        counts = dict(
            db.session.execute(
                select(Request.status, func.count()).where(Request.contract_id == contract.id).group_by(Request.status)
            ).all()
        )
    return render_template(
        "inboxes/contract_form.html", form=form, contract=contract, counts=counts, status_labels=STATUS_LABELS
    )


@bp.route("/contracts/new", methods=["GET", "POST"])
@requires(CONTRACTS)
def new_contract():
    return _contract_page(None)


@bp.route("/contracts/<int:inbox_contract_id>", methods=["GET", "POST"])
@requires(CONTRACTS)
def contract(inbox_contract_id: int):
    found = contracts.get_visible(current_user, inbox_contract_id)
    if found is None:
        abort(404)
    return _contract_page(found)


# --- flows ---------------------------------------------------------------------------------------


@bp.route("/flows/")
@requires(FLOWS)
def flows_index():
    rows = db.session.scalars(select(Flow).options(selectinload(Flow.steps)).order_by(Flow.name)).all()
    used = dict(
        db.session.execute(
            select(Contract.flow_id, func.count()).where(Contract.flow_id.is_not(None)).group_by(Contract.flow_id)
        ).all()
    )
    return render_template("inboxes/flows.html", flows=rows, used=used)


def _flow_page(flow: Flow | None):
    form = FlowForm(obj=flow)
    if form.validate_on_submit():
        try:
            saved = flows.save_flow(
                flow,
                flows.FlowData(form.name.data, form.description.data or "", form.reply_mode.data, form.active.data),
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            flash(_("The flow has been saved."), "success")
            return redirect(url_for("inboxes.flow", inbox_flow_id=saved.id))
    return render_template("inboxes/flow_form.html", form=form, flow=flow, trigger_labels=flows.TRIGGER_LABELS)


@bp.route("/flows/new", methods=["GET", "POST"])
@requires(FLOWS)
def new_flow():
    return _flow_page(None)


@bp.route("/flows/<int:inbox_flow_id>", methods=["GET", "POST"])
@requires(FLOWS)
def flow(inbox_flow_id: int):
    return _flow_page(db.get_or_404(Flow, inbox_flow_id))


def _step_page(flow: Flow, step: FlowStep | None):
    form = StepForm(obj=step)
    if step is not None and request.method == "GET":
        form.extra_recipients.data = ", ".join(step.extra_recipients or [])
    elif step is None and request.method == "GET":
        form.name.data = _("Send message - E-mail")
        form.subject.data = _("We have received your request {number}: {subject}")
        form.body.data = _(
            "Hello {requester},\n\nWe have received your request and registered it as {number}. "
            "We will answer you as soon as possible.\n\n{organisation}"
        )
        form.position.data = 10 * (len(flow.steps) + 1)
    if form.validate_on_submit():
        data = flows.StepData(
            name=form.name.data,
            trigger=form.trigger.data,
            mailbox_mode=form.mailbox_mode.data,
            subject=form.subject.data,
            body=form.body.data,
            to_requester=form.to_requester.data,
            to_client=form.to_client.data,
            extra_recipients=form.extra_recipients.data or "",
            position=form.position.data or 0,
        )
        try:
            flows.save_step(flow, step, data)
        except DomainError as error:
            _form_error(form, error)
        else:
            flash(_("The step has been saved."), "success")
            return redirect(url_for("inboxes.flow", inbox_flow_id=flow.id))
    return render_template("inboxes/step_form.html", form=form, flow=flow, step=step, placeholders=flows.PLACEHOLDERS)


@bp.route("/flows/<int:inbox_flow_id>/steps/new", methods=["GET", "POST"])
@requires(FLOWS)
def new_step(inbox_flow_id: int):
    return _step_page(db.get_or_404(Flow, inbox_flow_id), None)


def _step_or_404(inbox_flow_id: int, inbox_step_id: int) -> tuple[Flow, FlowStep]:
    flow = db.get_or_404(Flow, inbox_flow_id)
    step = db.session.get(FlowStep, inbox_step_id)
    if step is None or step.flow_id != flow.id:
        abort(404)
    return flow, step


@bp.route("/flows/<int:inbox_flow_id>/steps/<int:inbox_step_id>", methods=["GET", "POST"])
@requires(FLOWS)
def step(inbox_flow_id: int, inbox_step_id: int):
    return _step_page(*_step_or_404(inbox_flow_id, inbox_step_id))


@bp.route("/flows/<int:inbox_flow_id>/steps/<int:inbox_step_id>/delete", methods=["POST"])
@requires(FLOWS)
def delete_step(inbox_flow_id: int, inbox_step_id: int):
    flow, found = _step_or_404(inbox_flow_id, inbox_step_id)
    flows.delete_step(found)
    flash(_("The step has been deleted."), "success")
    return redirect(url_for("inboxes.flow", inbox_flow_id=flow.id))
