"""The reseller's panel: Info Servizio, holders, boxes (wizard, list, detail, actions, documents),
domains, agents and their packages, assistants, imports, settings, and the provider's callback.

Views parse, call a service, commit, render; a ``DomainError`` goes back onto the form's fields.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.api import (
    Client,
    DomainError,
    JobRun,
    choices,
    csrf_exempt,
    csv_response,
    db,
    has_permission,
    history,
    keyset_page,
    live_progress,
    public,
    requires,
    send_stored_file,
)
from plugins.pec import (
    AGENTS_MANAGE,
    AGENTS_VIEW,
    ASSISTANTS_MANAGE,
    BOXES_CREATE,
    BOXES_EXPORT,
    BOXES_MANAGE,
    BOXES_VIEW,
    DOCUMENTS,
    DOMAINS_VIEW,
    HOLDERS_MANAGE,
    HOLDERS_VIEW,
    IMPORTS,
    SERVICE,
    SETTINGS,
    accounts,
    agents,
    assistants,
    boxes,
    bulk,
    domains,
    exports,
    holders,
    service_info,
)
from plugins.pec.activation import service as activation
from plugins.pec.catalogue import DEFAULT_BOX_TYPES
from plugins.pec.comuni import ATTRIBUTION, comuni
from plugins.pec.errors import PecError
from plugins.pec.forms import (
    ActivityForm,
    AddressForm,
    AgentChoiceForm,
    AgentDomainForm,
    AgentForm,
    AssistantForm,
    BoxForm,
    BoxSearchForm,
    ChooseActivityForm,
    ChooseAddressForm,
    DocumentForm,
    ImportForm,
    PackageChoiceForm,
    PackageForm,
    PecAddressesForm,
    ProfileForm,
    RenewForm,
    SettingsForm,
    SubentroForm,
    show_errors,
)
from plugins.pec.lifecycle import STATE_LABELS, Action, BoxState
from plugins.pec.models import (
    DOCUMENT_LABELS,
    PACKAGE_MODES,
    PACKAGE_STATES,
    Agent,
    Assistant,
    Box,
    BoxDocument,
    Domain,
    ImportRun,
    Package,
)

bp = Blueprint(
    "pec", __name__, template_folder="templates", static_folder="static", static_url_path="/static", url_prefix="/pec"
)

STATE_STYLES = {
    BoxState.PENDING.value: "warning",
    BoxState.REFUSED.value: "secondary",
    BoxState.ACTIVE.value: "success",
    BoxState.EXPIRED.value: "danger",
    BoxState.SUSPENDED.value: "dark",
    BoxState.DELETED.value: "light",
}
BOX_TYPES = {t.code: t for t in DEFAULT_BOX_TYPES}

bp.record_once(
    lambda state: state.app.jinja_env.globals.update(
        PEC_STATE_LABELS={s.value: label for s, label in STATE_LABELS.items()},
        PEC_STATE_STYLES=STATE_STYLES,
        PEC_BOX_TYPES=BOX_TYPES,
        PEC_DOCUMENT_LABELS=DOCUMENT_LABELS,
        PEC_PACKAGE_STATES=PACKAGE_STATES,
        PEC_PACKAGE_MODES=PACKAGE_MODES,
    )
)


def _fail(form, error: DomainError) -> None:
    """Roll back and show a refusal on the form (fields) or as a message (the rest)."""
    db.session.rollback()
    for message in show_errors(form, error):
        flash(message, "danger")


def _flash_error(error: DomainError) -> None:
    db.session.rollback()
    problems = getattr(error, "errors", None) or [error]
    for problem in problems:
        flash(str(problem.message), "danger")


# --- Info Servizio --------------------------------------------------------------------------


@bp.route("/")
@requires(SERVICE)
def index():
    summary = service_info.summary(g.tenant, current_user)
    return render_template("pec/index.html", summary=summary, states=list(BoxState))


@bp.route("/comuni")
@requires(HOLDERS_VIEW)
def comuni_search():
    """Search-as-you-type of the address form: comuni whose name starts with ``q``, with their
    provincia (homonyms are told apart by it) and CAP (fixed when the data knows one)."""
    q = request.args.get("q", "")[:60]
    found = comuni().search(q, limit=12, sigla=request.args.get("sigla", "")[:2] or None)
    return jsonify(comuni=[c.as_dict() for c in found], attribution=ATTRIBUTION)


@bp.route("/holders/lookup")
@requires(BOXES_CREATE)
def holder_lookup():
    """The wizard's "Verifica": the holder with this codice fiscale, if there is one."""
    code = request.args.get("cf", "")[:20]
    try:
        holders.validate_codice_fiscale(code)
    except PecError as error:
        return jsonify(valid=False, message=str(error.message), holder=None)
    client = holders.find_by_tax_id(code)
    return jsonify(valid=True, message="", holder=holders.holder_summary(client) if client else None)


# --- holders --------------------------------------------------------------------------------


def _holder_or_404(client_id: int) -> Client:
    client = holders.get_visible(current_user, client_id)
    if client is None:
        abort(404)
    return client


@bp.route("/holders/")
@requires(HOLDERS_VIEW)
def holders_list():
    q = request.args.get("q", "").strip()
    page = keyset_page(
        db.session,
        holders.search_statement(current_user, q),
        [Client.name, Client.id],
        request.args.get("after"),
        per_page=50,
    )
    return render_template("pec/holders.html", page=page, q=q)


def _address_form(row=None, prefix: str = "address") -> AddressForm:
    form = AddressForm(prefix=prefix, obj=row)
    if row is not None and not form.is_submitted():
        form.nazione.data = row.nazione
    return form


def _holder_page(client: Client, editing: str = "", **forms):
    """The holder's page; ``editing`` opens a section's editable fields (after a refused save)."""
    edit = editing or request.args.get("edit", "")
    can_manage = has_permission(current_user, HOLDERS_MANAGE)
    profile = holders.profile_of(client.id)
    addresses = holders.addresses_of(client.id)
    activities = holders.activities_of(client.id)
    profile_form = forms.get("profile_form") or ProfileForm(prefix="profile", obj=profile)
    new_address = forms.get("new_address") or _address_form(prefix="new-address")
    new_activity = forms.get("new_activity") or ActivityForm(prefix="new-activity")
    new_activity.address_id.choices = choices([(0, "—")] + [(a.id, a.one_line) for a in addresses])
    address_forms = forms.get("address_forms") or {}
    for row in addresses:
        address_forms.setdefault(row.id, _address_form(row, prefix=f"address-{row.id}"))
    activity_forms = forms.get("activity_forms") or {}
    for row in activities:
        form = activity_forms.setdefault(row.id, ActivityForm(prefix=f"activity-{row.id}", obj=row))
        form.address_id.choices = new_activity.address_id.choices
    return render_template(
        "pec/holder.html",
        client=client,
        profile=profile,
        addresses=addresses,
        activities=activities,
        boxes=boxes.holder_boxes(current_user, client.id),
        edit=edit if can_manage else "",
        can_manage=can_manage,
        profile_form=profile_form,
        new_address=new_address,
        new_activity=new_activity,
        address_forms=address_forms,
        activity_forms=activity_forms,
    )


@bp.route("/holders/<int:client_id>")
@requires(HOLDERS_VIEW)
def holder(client_id: int):
    return _holder_page(_holder_or_404(client_id))


def _address_data(form: AddressForm) -> holders.AddressData:
    return holders.AddressData(
        street=form.street.data or "",
        comune=form.comune.data or "",
        provincia=form.provincia.data or "",
        cap=form.cap.data or "",
        nazione=form.nazione.data or "",
        phone=form.phone.data or "",
        mobile=form.mobile.data or "",
        fax=form.fax.data or "",
    )


@bp.route("/holders/<int:client_id>/data", methods=["POST"])
@requires(HOLDERS_MANAGE)
def holder_data(client_id: int):
    client = _holder_or_404(client_id)
    form = ProfileForm(prefix="profile")
    if form.validate_on_submit():
        try:
            values = holders.holder_fields().validate(
                {key: getattr(form, key).data or "" for key in form.data if key != "csrf_token"}, client.id
            )
            holders.holder_fields().save({client.id: values})
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The holder's data has been saved."), "success")
            return redirect(url_for("pec.holder", client_id=client.id, _anchor="data"))
    return _holder_page(client, "data", profile_form=form), 400


@bp.route("/holders/<int:client_id>/addresses", methods=["POST"])
@requires(HOLDERS_MANAGE)
def holder_address_new(client_id: int):
    client = _holder_or_404(client_id)
    form = _address_form(prefix="new-address")
    if form.validate_on_submit():
        try:
            holders.add_address(client, _address_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The address has been added."), "success")
            return redirect(url_for("pec.holder", client_id=client.id, _anchor="addresses"))
    return _holder_page(client, new_address=form), 400


@bp.route("/holders/<int:client_id>/addresses/<int:holder_address_id>", methods=["POST"])
@requires(HOLDERS_MANAGE)
def holder_address_edit(client_id: int, holder_address_id: int):
    client = _holder_or_404(client_id)
    row = holders.address_of(client.id, holder_address_id)
    if row is None:
        abort(404)
    form = _address_form(prefix=f"address-{row.id}")
    if form.validate_on_submit():
        try:
            holders.update_address(row, _address_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The address has been saved."), "success")
            return redirect(url_for("pec.holder", client_id=client.id, _anchor="addresses"))
    return _holder_page(client, "addresses", address_forms={row.id: form}), 400


def _activity_data(form: ActivityForm) -> holders.ActivityData:
    return holders.ActivityData(
        company_name=form.company_name.data or "",
        partita_iva=form.partita_iva.data or "",
        description=form.description.data or "",
        address_id=form.address_id.data or None,
    )


def _activity_form(client: Client, prefix: str) -> ActivityForm:
    form = ActivityForm(prefix=prefix)
    form.address_id.choices = choices([(0, "—")] + [(a.id, a.one_line) for a in holders.addresses_of(client.id)])
    return form


@bp.route("/holders/<int:client_id>/activities", methods=["POST"])
@requires(HOLDERS_MANAGE)
def holder_activity_new(client_id: int):
    client = _holder_or_404(client_id)
    form = _activity_form(client, "new-activity")
    if form.validate_on_submit():
        try:
            holders.add_activity(client, _activity_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The activity has been added."), "success")
            return redirect(url_for("pec.holder", client_id=client.id, _anchor="activities"))
    return _holder_page(client, new_activity=form), 400


@bp.route("/holders/<int:client_id>/activities/<int:activity_id>", methods=["POST"])
@requires(HOLDERS_MANAGE)
def holder_activity_edit(client_id: int, activity_id: int):
    client = _holder_or_404(client_id)
    row = holders.activity_of(client.id, activity_id)
    if row is None:
        abort(404)
    form = _activity_form(client, f"activity-{row.id}")
    if form.validate_on_submit():
        try:
            holders.update_activity(client, row, _activity_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The activity has been saved."), "success")
            return redirect(url_for("pec.holder", client_id=client.id, _anchor="activities"))
    return _holder_page(client, "activities", activity_forms={row.id: form}), 400


def client_tab_context(client: Client, user) -> dict:
    """The PEC tab of core's client page."""
    return {
        "client": client,
        "profile": holders.profile_of(client.id),
        "addresses": holders.addresses_of(client.id),
        "activities": holders.activities_of(client.id),
        "boxes": boxes.holder_boxes(user, client.id),
        "in_scope": holders.get_visible(user, client.id) is not None,
    }


# --- boxes: list and export -----------------------------------------------------------------


def _search() -> tuple[BoxSearchForm, boxes.Search]:
    form = BoxSearchForm(
        request.args,
        domains=boxes.domains_for(current_user, active_only=False),
        agents=db.session.scalars(select(Agent).order_by(Agent.company_name, Agent.last_name)).all(),
    )
    form.validate()

    def number(value):
        return int(value) if (value or "").isdigit() else None

    search = boxes.Search(
        q=form.q.data or "",
        domain_id=number(form.domain.data),
        state=form.state.data or "",
        inserted_from=form.inserted_from.data,
        inserted_to=form.inserted_to.data,
        activated_from=form.activated_from.data,
        activated_to=form.activated_to.data,
        holder=form.holder.data or "",
        agent_id=number(form.agent.data),
        expiring_within=number(form.expiring.data),
    )
    return form, search


@bp.route("/boxes/")
@requires(BOXES_VIEW)
def boxes_list():
    form, search = _search()
    stmt = boxes.search_statement(g.tenant, current_user, search).options(
        selectinload(Box.holder), selectinload(Box.agent), selectinload(Box.domain)
    )
    page = keyset_page(db.session, stmt, [Box.id], request.args.get("after"), per_page=50, descending=True)
    return render_template("pec/boxes.html", page=page, form=form)


@bp.route("/boxes/export.csv")
@requires(BOXES_EXPORT)
def boxes_export():
    """ "Esporta Dati": the searched list as CSV, streamed (core neutralises formula cells)."""
    _form, search = _search()
    rows = boxes.export_rows(g.tenant, current_user, search)
    return csv_response(exports.with_header(rows), f"caselle-pec-{g.tenant.slug}.csv")


@bp.route("/boxes/bulk", methods=["POST"])
@requires(BOXES_MANAGE)
def boxes_bulk():
    """Suspend or reactivate the selected boxes."""
    try:
        action = Action(request.form.get("action", ""))
    except ValueError:
        action = None
    ids = [int(x) for x in request.form.getlist("box_ids") if x.isdigit()]
    try:
        if action is None:
            raise PecError(_("Choose suspend or reactivate."), field="action")
        done, refused = boxes.bulk_act(g.tenant, current_user, ids, action)
        db.session.commit()
    except DomainError as error:
        _flash_error(error)
    else:
        flash(_("%(n)s boxes changed.", n=done), "success")
        for box_id, reason in list(refused.items())[:20]:
            flash(f"#{box_id}: {reason.message}", "warning")
    return redirect(request.form.get("back") if _safe(request.form.get("back")) else url_for("pec.boxes_list"))


def _safe(target: str | None) -> bool:
    return bool(target) and target.startswith(f"/{g.tenant.slug}/pec/") and "//" not in target


# --- boxes: the wizard ----------------------------------------------------------------------


def _box_form() -> BoxForm:
    form = BoxForm()
    domains_offered = boxes.domains_for(current_user)
    form.domain_id.choices = choices([(0, "—")] + [(d.id, d.name) for d in domains_offered])
    if len(domains_offered) == 1 and not form.is_submitted():
        form.domain_id.data = domains_offered[0].id
    form.agent_id.choices = choices([(0, "—")] + [(a.id, a.name) for a in agents.active_agents()])
    return form


@bp.route("/boxes/new", methods=["GET", "POST"])
@requires(BOXES_CREATE)
def box_new():
    """ "Inserisci nuovo account certificato": box name, domain, the holder's codice fiscale (a
    holder already in the database is found and filled in; a new one is entered here), optional
    agent; "Verifica" looks the holder up, "Salva" saves the box in attesa di attivazione."""
    form = _box_form()
    found = None
    if form.is_submitted() and form.codice_fiscale.data:
        found = holders.find_by_tax_id(form.codice_fiscale.data)
    if form.validate_on_submit() and request.form.get("action") == "save":
        holder = None
        if found is None:
            holder = holders.HolderData(
                kind=form.kind.data,
                codice_fiscale=form.codice_fiscale.data or "",
                first_name=form.first_name.data or "",
                last_name=form.last_name.data or "",
                company_name=form.company_name.data or "",
                partita_iva=form.partita_iva.data or "",
                email=form.email.data or "",
                phone=form.phone.data or "",
            )
        data = boxes.Registration(
            local_part=form.local_part.data or "",
            domain_id=form.domain_id.data or None,
            codice_fiscale=form.codice_fiscale.data or "",
            box_type=form.box_type.data,
            years=form.years.data,
            renewal=form.renewal.data,
            want_agent=form.want_agent.data == "yes",
            agent_id=form.agent_id.data or None,
            holder=holder,
        )
        try:
            box = boxes.register_box(g.tenant, current_user, data)
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The box %(address)s has been saved: now its address.", address=box.address), "success")
            return redirect(url_for("pec.box_address", box_id=box.id))
    elif form.is_submitted() and request.form.get("action") == "verify" and form.codice_fiscale.data and not found:
        try:
            holders.validate_codice_fiscale(form.codice_fiscale.data)
        except PecError as error:
            form.codice_fiscale.errors = [str(error.message)]
    return render_template("pec/box_new.html", form=form, found=found)


def _box_or_404(box_id: int) -> Box:
    box = boxes.get_visible(current_user, box_id)
    if box is None:
        abort(404)
    return box


@bp.route("/boxes/<int:box_id>/address", methods=["GET", "POST"])
@requires(BOXES_CREATE)
def box_address(box_id: int):
    """Step 2: the holder's address — one already in the list, or a new one (every field mandatory
    but fax and cellulare; the comune proposes provincia and CAP)."""
    box = _box_or_404(box_id)
    existing = holders.addresses_of(box.holder_id)
    choose = ChooseAddressForm(prefix="choose")
    choose.address_id.choices = [(a.id, a.one_line) for a in existing]
    if not choose.is_submitted() and box.holder_address_id:
        choose.address_id.data = box.holder_address_id
    form = _address_form(prefix="address")
    if request.method == "POST" and box.state == BoxState.PENDING.value:
        target = choose if request.form.get("action") == "choose" else form
        if target.validate_on_submit():
            try:
                if target is choose:
                    row = holders.address_of(box.holder_id, choose.address_id.data or 0)
                    if row is None:
                        raise PecError(_("Choose one of the holder's addresses."), field="address_id")
                else:
                    row = holders.add_address(box.holder, _address_data(form))
                boxes.set_address(box, row)
                db.session.commit()
            except DomainError as error:
                _fail(target, error)
            else:
                activation.request_activation(g.tenant, box, current_user)
                flash(_("The address has been saved."), "success")
                return redirect(url_for("pec.box_activity", box_id=box.id))
    return render_template("pec/box_address.html", box=box, choose=choose, form=form, existing=existing)


@bp.route("/boxes/<int:box_id>/activity", methods=["GET", "POST"])
@requires(BOXES_CREATE)
def box_activity(box_id: int):
    """Step 3: the holder's activity (ragione sociale), if there is one."""
    box = _box_or_404(box_id)
    existing = holders.activities_of(box.holder_id)
    choose = ChooseActivityForm(prefix="choose")
    choose.activity_id.choices = [(a.id, a.company_name) for a in existing]
    form = _activity_form(box.holder, "activity")
    if box.holder_address_id and not form.is_submitted():
        form.address_id.data = box.holder_address_id
    if request.method == "POST":
        action = request.form.get("action")
        target = {"add": form, "choose": choose}.get(action) or FlaskForm()
        if target.validate_on_submit():
            try:
                if action == "add":
                    boxes.set_activity(box, holders.add_activity(box.holder, _activity_data(form)))
                elif action == "choose":
                    boxes.set_activity(box, holders.activity_of(box.holder_id, choose.activity_id.data or 0))
                db.session.commit()
            except DomainError as error:
                _fail(target, error)
            else:
                if box.agent_requested:
                    return redirect(url_for("pec.box_agent", box_id=box.id))
                flash(_("The box is registered: it is awaiting activation."), "success")
                return redirect(url_for("pec.box_detail", box_id=box.id))
    return render_template("pec/box_activity.html", box=box, choose=choose, form=form, existing=existing)


# --- boxes: detail and actions --------------------------------------------------------------


@bp.route("/boxes/<int:box_id>")
@requires(BOXES_VIEW)
def box_detail(box_id: int):
    box = _box_or_404(box_id)
    return render_template(
        "pec/box.html",
        box=box,
        renew_form=RenewForm(),
        documents=boxes.documents_of(box.id),
        ready=activation.ready(box),
        box_type=BOX_TYPES.get(box.box_type),
    )


@bp.route("/boxes/<int:box_id>/state")
@requires(BOXES_VIEW)
def box_state(box_id: int):
    """The box's state as JSON: the detail page asks while a box awaits activation, so that it
    turns ATTIVA on screen when the gestore (or the provider's callback) activates it."""
    box = _box_or_404(box_id)
    return jsonify(
        state=box.state,
        label=str(STATE_LABELS[box.box_state]),
        style=STATE_STYLES[box.state],
        expires_on=box.expires_on.isoformat() if box.expires_on else None,
    )


@bp.route("/boxes/<int:box_id>/history")
@requires(BOXES_VIEW)
def box_history(box_id: int):
    """ "Visualizzazione storico": every change of the box, from the audit trail."""
    box = _box_or_404(box_id)
    return render_template("pec/box_history.html", box=box, events=history("pec_box", box.id))


@bp.route("/boxes/<int:box_id>/renew", methods=["POST"])
@requires(BOXES_MANAGE)
def box_renew(box_id: int):
    box = _box_or_404(box_id)
    form = RenewForm()
    try:
        if not form.validate_on_submit():
            raise PecError(_("Choose the number of years."), field="years")
        boxes.renew(g.tenant, box, form.years.data)
        db.session.commit()
    except DomainError as error:
        _flash_error(error)
    else:
        flash(_("Renewed: valid until %(day)s.", day=box.expires_on.isoformat()), "success")
    return redirect(url_for("pec.box_detail", box_id=box.id))


ACTIONS = {"suspend": Action.SUSPEND, "reactivate": Action.REACTIVATE, "close": Action.DELETE}


@bp.route("/boxes/<int:box_id>/action", methods=["POST"])
@requires(BOXES_MANAGE)
def box_action(box_id: int):
    box = _box_or_404(box_id)
    action = ACTIONS.get(request.form.get("action", ""))
    try:
        if action is None:
            raise PecError(_("Choose what to do."), field="action")
        boxes.act(g.tenant, box, action)
        db.session.commit()
    except DomainError as error:
        _flash_error(error)
    else:
        flash(_("The box is now: %(state)s.", state=STATE_LABELS[box.box_state]), "success")
    return redirect(url_for("pec.box_detail", box_id=box.id))


@bp.route("/boxes/<int:box_id>/agent", methods=["GET", "POST"])
@requires(BOXES_MANAGE)
def box_agent(box_id: int):
    """ "Gestione associazione agente": the agent of the box, replaced with one of the list
    ("Applica subentro agente")."""
    box = _box_or_404(box_id)
    q = request.args.get("q", "").strip()
    candidates = list(db.session.scalars(agents.search_statement(q, "yes").order_by(Agent.company_name, Agent.id)))
    form = AgentChoiceForm()
    form.agent_id.choices = choices([(0, "—")] + [(a.id, a.name) for a in candidates])
    if form.validate_on_submit():
        try:
            boxes.assign_agent(box, db.session.get(Agent, form.agent_id.data or 0))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The agent of %(address)s is now %(agent)s.", address=box.address, agent=box.agent.name), "success")
            return redirect(url_for("pec.box_detail", box_id=box.id))
    return render_template("pec/box_agent.html", box=box, form=form, candidates=candidates, q=q)


@bp.route("/boxes/<int:box_id>/agent/remove", methods=["POST"])
@requires(BOXES_MANAGE)
def box_agent_remove(box_id: int):
    box = _box_or_404(box_id)
    boxes.remove_agent(box)
    db.session.commit()
    flash(_("The agent association has been removed."), "success")
    return redirect(url_for("pec.box_detail", box_id=box.id))


@bp.route("/boxes/<int:box_id>/agent/cancel-request", methods=["POST"])
@requires(BOXES_MANAGE)
def box_agent_cancel(box_id: int):
    box = _box_or_404(box_id)
    try:
        boxes.cancel_agent_request(box)
        db.session.commit()
    except DomainError as error:
        _flash_error(error)
    else:
        flash(_("The agent assignment request has been removed."), "success")
    return redirect(url_for("pec.box_detail", box_id=box.id))


@bp.route("/boxes/<int:box_id>/package", methods=["GET", "POST"])
@requires(BOXES_MANAGE)
def box_package(box_id: int):
    """ "Modifica associazione pacchetto": a package of the box's agent (only an ATTIVA box)."""
    box = _box_or_404(box_id)
    offered = agents.packages_of(box.agent_id) if box.agent_id else []
    usage = boxes.package_usage([p.id for p in offered])
    form = PackageChoiceForm()
    form.package_id.choices = choices([(0, "—")] + [(p.id, p.name) for p in offered])
    if form.validate_on_submit():
        try:
            boxes.set_package(box, form.package_id.data or 0)
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The box is now in the package %(name)s.", name=box.package.name), "success")
            return redirect(url_for("pec.box_detail", box_id=box.id))
    return render_template("pec/box_package.html", box=box, form=form, packages=offered, usage=usage)


@bp.route("/boxes/<int:box_id>/package/remove", methods=["POST"])
@requires(BOXES_MANAGE)
def box_package_remove(box_id: int):
    box = _box_or_404(box_id)
    boxes.remove_package(box)
    db.session.commit()
    flash(_("The package association has been removed."), "success")
    return redirect(url_for("pec.box_detail", box_id=box.id))


@bp.route("/boxes/<int:box_id>/subentro", methods=["GET", "POST"])
@requires(BOXES_MANAGE)
def box_subentro(box_id: int):
    box = _box_or_404(box_id)
    form = SubentroForm()
    if form.validate_on_submit():
        try:
            boxes.subentro(box, form.codice_fiscale.data or "", current_user)
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The box now belongs to %(name)s.", name=box.holder.name), "success")
            return redirect(url_for("pec.box_detail", box_id=box.id))
    return render_template("pec/box_subentro.html", box=box, form=form)


@bp.route("/boxes/<int:box_id>/documents", methods=["GET", "POST"])
@requires(DOCUMENTS)
def box_documents(box_id: int):
    """ "Carica documentazione PDF" and "Gestione documentazione"."""
    box = _box_or_404(box_id)
    form = DocumentForm()
    if not form.is_submitted() and request.args.get("kind") in DOCUMENT_LABELS:
        form.kind.data = request.args["kind"]
    if form.validate_on_submit():
        upload = form.file.data if form.file.data and form.file.data.filename else None
        try:
            boxes.add_document(
                g.tenant,
                box,
                form.kind.data,
                upload,
                upload.filename if upload else None,
                form.notes.data,
                current_user,
            )
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The document has been uploaded."), "success")
            return redirect(url_for("pec.box_documents", box_id=box.id))
    return render_template("pec/box_documents.html", box=box, form=form, documents=boxes.documents_of(box.id))


@bp.route("/boxes/<int:box_id>/documents/<int:document_id>")
@requires(DOCUMENTS)
def box_document(box_id: int, document_id: int):
    box = _box_or_404(box_id)
    document = db.session.scalar(select(BoxDocument).where(BoxDocument.box_id == box.id, BoxDocument.id == document_id))
    if document is None or document.file is None:
        abort(404)
    return send_stored_file(
        document.file, as_attachment=request.args.get("inline") != "1", download_name=document.filename
    )


@bp.route("/activation/callback", methods=["POST"])
@public
@csrf_exempt
def activation_callback():
    """The gestore's HTTP API calls back here; the signature (with the secret the operator saved for
    this reseller) is what authenticates it."""
    status, word = activation.handle_callback(g.tenant, dict(request.headers), request.get_data(cache=False))
    return jsonify(result=word), status


# --- domains --------------------------------------------------------------------------------


@bp.route("/domains/")
@requires(DOMAINS_VIEW)
def domains_list():
    return render_template("pec/domains.html", rows=domains.domains_with_counts())


@bp.route("/domains/<int:domain_id>")
@requires(DOMAINS_VIEW)
def domain_detail(domain_id: int):
    domain = db.get_or_404(Domain, domain_id)
    counts = dict(domains.domains_with_counts())[domain]
    linked = db.session.scalars(select(Agent).where(Agent.domains.any(Domain.id == domain.id))).all()
    return render_template("pec/domain.html", domain=domain, counts=counts, agents=linked)


# --- agents and their packages --------------------------------------------------------------


@bp.route("/agents/")
@requires(AGENTS_VIEW)
def agents_list():
    q = request.args.get("q", "").strip()
    active = request.args.get("active", "")
    page = keyset_page(
        db.session, agents.search_statement(q, active), [Agent.id], request.args.get("after"), per_page=50
    )
    return render_template("pec/agents.html", page=page, q=q, active=active)


def _agent_data(form: AgentForm) -> agents.AgentData:
    return agents.AgentData(
        company_name=form.company_name.data or "",
        first_name=form.first_name.data or "",
        last_name=form.last_name.data or "",
        email=form.email.data or "",
        phone=form.phone.data or "",
        partita_iva=form.partita_iva.data or "",
    )


def _domain_choices():
    return choices(
        [("", "—")] + [(str(d.id), d.name) for d in db.session.scalars(select(Domain).order_by(Domain.name))]
    )


@bp.route("/agents/new", methods=["GET", "POST"])
@requires(AGENTS_MANAGE)
def agent_new():
    """ "Inserisci nuovo agente commerciale", with its domains."""
    form = AgentForm()
    form.domains.choices = _domain_choices()
    if form.validate_on_submit():
        chosen = [x for x in request.form.getlist("domain_ids") if x.isdigit()]
        try:
            agent = agents.create_agent(_agent_data(form), [int(x) for x in chosen])
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The agent %(name)s has been saved.", name=agent.name), "success")
            return redirect(url_for("pec.agent_detail", agent_id=agent.id))
    all_domains = db.session.scalars(select(Domain).order_by(Domain.name)).all()
    return render_template("pec/agent_form.html", form=form, agent=None, domains=all_domains)


def _agent_page(agent: Agent, form=None, domain_form=None, package_form=None, status: int = 200):
    if form is None:
        form = AgentForm(obj=agent)
        form.domains.choices = _domain_choices()
    packages = agents.packages_of(agent.id)
    return (
        render_template(
            "pec/agent.html",
            agent=agent,
            form=form,
            domain_form=domain_form or AgentDomainForm(),
            package_form=package_form or PackageForm(),
            packages=packages,
            usage=boxes.package_usage([p.id for p in packages]),
            all_domains=db.session.scalars(select(Domain).order_by(Domain.name)).all(),
        ),
        status,
    )


@bp.route("/agents/<int:agent_id>")
@requires(AGENTS_VIEW)
def agent_detail(agent_id: int):
    return _agent_page(db.get_or_404(Agent, agent_id))


@bp.route("/agents/<int:agent_id>/edit", methods=["POST"])
@requires(AGENTS_MANAGE)
def agent_edit(agent_id: int):
    agent = db.get_or_404(Agent, agent_id)
    form = AgentForm()
    form.domains.choices = _domain_choices()
    if form.validate_on_submit():
        try:
            agents.update_agent(agent, _agent_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The agent has been saved."), "success")
            return redirect(url_for("pec.agent_detail", agent_id=agent.id))
    return _agent_page(agent, form=form, status=400)


@bp.route("/agents/<int:agent_id>/active", methods=["POST"])
@requires(AGENTS_MANAGE)
def agent_active(agent_id: int):
    agent = db.get_or_404(Agent, agent_id)
    agents.set_active(agent, request.form.get("active") == "1")
    db.session.commit()
    flash(_("The agent is active.") if agent.active else _("The agent is deactivated."), "success")
    return redirect(url_for("pec.agent_detail", agent_id=agent.id))


@bp.route("/agents/<int:agent_id>/domains", methods=["POST"])
@requires(AGENTS_MANAGE)
def agent_domain_add(agent_id: int):
    agent = db.get_or_404(Agent, agent_id)
    form = AgentDomainForm()
    if form.validate_on_submit():
        try:
            domain = agents.add_domain(agent, form.domain.data or "")
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
            return _agent_page(agent, domain_form=form, status=400)
        flash(_("%(domain)s is associated with the agent.", domain=domain.name), "success")
    return redirect(url_for("pec.agent_detail", agent_id=agent.id))


@bp.route("/agents/<int:agent_id>/domains/<int:domain_id>/remove", methods=["POST"])
@requires(AGENTS_MANAGE)
def agent_domain_remove(agent_id: int, domain_id: int):
    agent = db.get_or_404(Agent, agent_id)
    domain = db.get_or_404(Domain, domain_id)
    try:
        agents.remove_domain(agent, domain.id)
        db.session.commit()
    except DomainError as error:
        _flash_error(error)
    else:
        flash(_("%(domain)s is no longer associated with the agent.", domain=domain.name), "success")
    return redirect(url_for("pec.agent_detail", agent_id=agent.id))


@bp.route("/agents/<int:agent_id>/packages", methods=["POST"])
@requires(AGENTS_MANAGE)
def agent_package_add(agent_id: int):
    agent = db.get_or_404(Agent, agent_id)
    form = PackageForm()
    if form.validate_on_submit():
        try:
            package = agents.add_package(agent, form.name.data or "", form.size.data, form.years.data)
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The package %(name)s has been saved.", name=package.name), "success")
            back = request.form.get("back")
            return redirect(back if _safe(back) else url_for("pec.agent_detail", agent_id=agent.id))
    return _agent_page(agent, package_form=form, status=400)


@bp.route("/packages/<int:package_id>/state", methods=["POST"])
@requires(AGENTS_MANAGE)
def package_state(package_id: int):
    package = db.session.scalar(select(Package).where(Package.id == package_id, Package.agent_id.is_not(None)))
    if package is None:
        abort(404)
    agents.set_package_state(package, request.form.get("active") == "1")
    db.session.commit()
    flash(_("The package has been saved."), "success")
    return redirect(url_for("pec.agent_detail", agent_id=package.agent_id))


@bp.route("/packages/")
@requires(AGENTS_VIEW)
def agent_packages():
    """ "Gestione pacchetti agente commerciale": the agents, and the packages of the chosen one."""
    everyone = db.session.scalars(select(Agent).order_by(Agent.company_name, Agent.last_name)).all()
    chosen = request.args.get("agent", type=int)
    agent = next((a for a in everyone if a.id == chosen), None)
    packages = agents.packages_of(agent.id) if agent else []
    return render_template(
        "pec/agent_packages.html",
        agents=everyone,
        agent=agent,
        packages=packages,
        usage=boxes.package_usage([p.id for p in packages]),
        form=PackageForm(),
    )


# --- assistants -----------------------------------------------------------------------------


def _assistant_form(obj=None) -> AssistantForm:
    form = AssistantForm(obj=obj)
    form.domain_id.choices = choices(
        [(0, "—")] + [(d.id, d.name) for d in db.session.scalars(select(Domain).order_by(Domain.name))]
    )
    if obj is not None and not form.is_submitted():
        form.pec_addresses.data = "\n".join(obj.pec_addresses or [])
    return form


def _assistant_data(form: AssistantForm) -> assistants.AssistantData:
    return assistants.AssistantData(
        first_name=form.first_name.data or "",
        last_name=form.last_name.data or "",
        codice_fiscale=form.codice_fiscale.data or "",
        email=form.email.data or "",
        phone=form.phone.data or "",
        company_name=form.company_name.data or "",
        partita_iva=form.partita_iva.data or "",
        street=form.street.data or "",
        cap=form.cap.data or "",
        comune=form.comune.data or "",
        provincia=form.provincia.data or "",
        domain_id=form.domain_id.data or None,
        pec_addresses=(form.pec_addresses.data or "").splitlines(),
        package_mode=form.package_mode.data or "consumo",
    )


@bp.route("/assistants/")
@requires(ASSISTANTS_MANAGE)
def assistants_list():
    rows = db.session.scalars(
        select(Assistant).options(selectinload(Assistant.domain)).order_by(Assistant.last_name, Assistant.id)
    ).all()
    return render_template(
        "pec/assistants.html",
        assistants=rows,
        postmaster=assistants.postmaster_size(g.tenant),
        assigned=assistants.assigned_to_assistants(),
    )


@bp.route("/assistants/new", methods=["GET", "POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_new():
    """ "Inserisci nuovo assistente": data, address, company, domain, packages or not. They receive
    their panel code and first password by e-mail."""
    form = _assistant_form()
    if form.validate_on_submit():
        try:
            assistant, _password = assistants.create_assistant(g.tenant, _assistant_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("%(name)s is an assistant: their credentials have been e-mailed.", name=assistant.name), "success")
            if assistant.package_mode == "pacchetto":
                return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id, _anchor="packages"))
            return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id))
    return render_template("pec/assistant_form.html", form=form, assistant=None)


def _assistant_page(assistant: Assistant, form=None, package_form=None, pec_form=None, status: int = 200):
    return (
        render_template(
            "pec/assistant.html",
            assistant=assistant,
            form=form or _assistant_form(assistant),
            package_form=package_form or PackageForm(),
            pec_form=pec_form or PecAddressesForm(pec_addresses="\n".join(assistant.pec_addresses or [])),
            packages=assistants.packages_of(assistant),
            allowance=assistants.allowance(assistant),
            used=assistants.boxes_entered(assistant),
            account=accounts.account_of(assistant.user) if assistant.user else None,
            postmaster=assistants.postmaster_size(g.tenant),
            assigned=assistants.assigned_to_assistants(),
            history=history("pec_assistant", assistant.id),
        ),
        status,
    )


@bp.route("/assistants/<int:assistant_id>")
@requires(ASSISTANTS_MANAGE)
def assistant_detail(assistant_id: int):
    return _assistant_page(db.get_or_404(Assistant, assistant_id))


@bp.route("/assistants/<int:assistant_id>/edit", methods=["POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_edit(assistant_id: int):
    assistant = db.get_or_404(Assistant, assistant_id)
    form = _assistant_form()
    form.email.data = assistant.email
    if form.validate_on_submit():
        try:
            assistants.update_assistant(assistant, _assistant_data(form))
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The assistant has been saved."), "success")
            return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id))
    return _assistant_page(assistant, form=form, status=400)


@bp.route("/assistants/<int:assistant_id>/active", methods=["POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_active(assistant_id: int):
    assistant = db.get_or_404(Assistant, assistant_id)
    assistants.set_active(assistant, request.form.get("active") == "1")
    db.session.commit()
    flash(_("The assistant is active.") if assistant.active else _("The assistant is deactivated."), "success")
    return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id))


@bp.route("/assistants/<int:assistant_id>/pec-addresses", methods=["POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_pec(assistant_id: int):
    assistant = db.get_or_404(Assistant, assistant_id)
    form = PecAddressesForm()
    if form.validate_on_submit():
        try:
            assistants.set_pec_addresses(assistant, (form.pec_addresses.data or "").splitlines())
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
            return _assistant_page(assistant, pec_form=form, status=400)
        flash(_("The PEC addresses for communications have been saved."), "success")
    return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id))


@bp.route("/assistants/<int:assistant_id>/package-mode", methods=["POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_package_mode(assistant_id: int):
    """ "Abilita gestione pacchetto" (a consumo → a pacchetto), or back."""
    assistant = db.get_or_404(Assistant, assistant_id)
    if request.form.get("mode") == "pacchetto":
        assistants.enable_packages(assistant)
    else:
        assistants.disable_packages(assistant)
    db.session.commit()
    flash(_("Saved: %(mode)s.", mode=PACKAGE_MODES[assistant.package_mode]), "success")
    return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id))


@bp.route("/assistants/<int:assistant_id>/packages", methods=["POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_package_add(assistant_id: int):
    """ "Gestione pacchetti assistente": a new package, never beyond the pacchetto postmaster."""
    assistant = db.get_or_404(Assistant, assistant_id)
    form = PackageForm()
    if form.validate_on_submit():
        try:
            package = assistants.add_package(g.tenant, assistant, form.name.data or "", form.size.data, form.years.data)
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The package %(name)s has been saved.", name=package.name), "success")
            return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id, _anchor="packages"))
    return _assistant_page(assistant, package_form=form, status=400)


@bp.route("/assistants/<int:assistant_id>/packages/<int:assistant_package_id>/state", methods=["POST"])
@requires(ASSISTANTS_MANAGE)
def assistant_package_state(assistant_id: int, assistant_package_id: int):
    """ "Sospendi gestione pacchetto", or resume it (within the pacchetto postmaster)."""
    assistant = db.get_or_404(Assistant, assistant_id)
    package = db.session.scalar(
        select(Package).where(Package.id == assistant_package_id, Package.assistant_id == assistant.id)
    )
    if package is None:
        abort(404)
    try:
        if request.form.get("active") == "1":
            assistants.resume_package(g.tenant, package)
        else:
            assistants.suspend_package(package)
        db.session.commit()
    except DomainError as error:
        _flash_error(error)
    else:
        flash(_("The package has been saved."), "success")
    return redirect(url_for("pec.assistant_detail", assistant_id=assistant.id, _anchor="packages"))


# --- imports --------------------------------------------------------------------------------


@bp.route("/imports/", methods=["GET", "POST"])
@requires(IMPORTS)
def imports():
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data if form.file.data and form.file.data.filename else None
        try:
            if upload is None:
                raise PecError(_("Choose the CSV file."), field="file")
            run = bulk.start(g.tenant, current_user, form.kind.data, upload.filename, upload.read(bulk.MAX_BYTES + 1))
        except DomainError as error:
            _fail(form, error)
        else:
            return redirect(url_for("pec.import_detail", pec_import_id=run.id))
    recent = db.session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(20)).all()
    return render_template("pec/imports.html", form=form, recent=recent)


@bp.route("/imports/<int:pec_import_id>")
@requires(IMPORTS)
def import_detail(pec_import_id: int):
    run = db.get_or_404(ImportRun, pec_import_id)
    job = db.session.get(JobRun, run.run_id) if run.run_id and run.finished_at is None else None
    progress = live_progress(job)[0] if job is not None else None
    return render_template("pec/import.html", run=run, job=job, progress=progress)


@bp.route("/imports/<int:pec_import_id>/report.csv")
@requires(IMPORTS)
def import_report(pec_import_id: int):
    run = db.get_or_404(ImportRun, pec_import_id)
    return csv_response(bulk.report_rows(run), f"import-pec-{run.id}.csv")


# --- settings -------------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@requires(SETTINGS)
def settings():
    """Who holds the reseller's panel code (and receives it by e-mail)."""
    account = accounts.ensure_reseller_account(g.tenant)
    form = SettingsForm()
    form.user_id.choices = choices([(0, "—")] + [(u.id, f"{u.name} <{u.email}>") for u in assistants.staff_users()])
    if not form.is_submitted():
        form.user_id.data = account.user_id or 0
    if form.validate_on_submit():
        try:
            if form.user_id.data and form.user_id.data != account.user_id:
                accounts.set_reseller_user(g.tenant, form.user_id.data)
            if form.resend.data or account.credentials_sent_at is None:
                accounts.send_credentials(g.tenant, account)
            db.session.commit()
        except DomainError as error:
            _fail(form, error)
        else:
            flash(_("The PEC panel settings have been saved."), "success")
            return redirect(url_for("pec.settings"))
    else:
        db.session.commit()
    return render_template("pec/settings.html", form=form, account=account, settings_active="pec")
