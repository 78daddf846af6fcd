"""Client list, client page with tabs, create/edit, addresses, CSV export and import."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.audit.services import history
from core.clients import fields as client_fields
from core.clients import imports, portal, services
from core.clients.forms import AddressForm, ClientFilterForm, ClientForm, HeldNoticesForm, ImportForm
from core.clients.models import Client, ClientAddress, ClientImport
from core.clients.taxids import TYPE_NAMES
from core.csvstream import csv_response
from core.errors import DomainError
from core.extensions import db
from core.forms import choices
from core.jobs.models import JobRun
from core.jobs.services import live_progress
from core.pagination import keyset_page
from core.permissions import requires
from core.plugins import host
from core.templating import can
from tenants.licensing import enabled_for_current_tenant

bp = Blueprint("clients", __name__)


def _visible_or_404(client_id: int) -> Client:
    client = services.get_visible(current_user, client_id)
    if client is None:
        abort(404)
    return client


def _filters() -> tuple[ClientFilterForm, int | None]:
    filters = ClientFilterForm(request.args)
    # Staff choose among their own groups: the names of the others are not theirs to see.
    groups = services.group_choices(current_user)
    filters.group.choices = choices([("", _("All groups"))] + [(str(grp.id), grp.name) for grp in groups])
    filters.validate()
    group_id = int(filters.group.data) if (filters.group.data or "").isdigit() else None
    return filters, group_id


def _list() -> tuple[ClientFilterForm, services.ListExtensions, object]:
    """The search form, the plugins' columns and filters, and the statement of the filtered list."""
    filters, group_id = _filters()
    extensions = services.list_extensions(g.tenant, current_user)
    stmt = services.list_statement(current_user, filters.q.data, group_id, filters.active.data or "yes")
    return filters, extensions, extensions.filtered(stmt, request.args)


@bp.route("/")
@requires("core.clients:view")
def index():
    filters, extensions, stmt = _list()
    page = keyset_page(
        db.session,
        extensions.select(stmt).options(selectinload(Client.groups)),
        [Client.name, Client.id],
        request.args.get("after"),
        per_page=50,
        rows=True,
    )
    return render_template("clients/index.html", page=page, filters=filters, extensions=extensions)


@bp.route("/export.csv")
@requires("core.clients:export")
def export():
    _filters_form, _extensions, stmt = _list()
    return csv_response(services.export_rows(g.tenant, current_user, stmt), f"clients-{g.tenant.slug}.csv")


def _as_json(client: Client, extras=(), extensions: services.ListExtensions | None = None) -> dict:
    columns = (
        {name: value for (name, _column), value in zip(extensions.columns, extras, strict=True)} if extensions else {}
    )
    return {
        "id": client.id,
        "name": client.name,
        "tax_id": client.tax_id,
        "tax_id_type": client.tax_id_type,
        "kind": client.kind,
        "email": client.email,
        "phone": client.phone,
        "language": client.locale,
        "active": client.active,
        "groups": [grp.name for grp in client.groups],
        "url": url_for("clients.show", client_id=client.id),
        **({"columns": columns} if columns else {}),
    }


@bp.route("/api/")
@requires("core.clients:view")
def api_list():
    """The client list as JSON for pickers and scripts: same search, filters, visibility and
    keyset cursor as the page; ``limit`` up to 100."""
    _filters_form, extensions, stmt = _list()
    limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), 100)
    page = keyset_page(
        db.session,
        extensions.select(stmt).options(selectinload(Client.groups)),
        [Client.name, Client.id],
        request.args.get("after"),
        per_page=limit,
        rows=True,
    )
    return jsonify(clients=[_as_json(row[0], row[1:], extensions) for row in page.items], next=page.next_cursor)


@bp.route("/api/<int:client_id>")
@requires("core.clients:view")
def api_show(client_id: int):
    return jsonify(_as_json(_visible_or_404(client_id)))


def _client_form(client: Client | None = None):
    """The client form with the enabled plugins' sections, and those sections."""
    sets = client_fields.field_sets(g.tenant, current_user)
    form_class = type("ClientFormWithPlugins", (ClientForm,), client_fields.form_fields(sets)) if sets else ClientForm
    form = form_class(obj=client, groups=services.assignable_groups(current_user))
    if not form.is_submitted():
        if client is not None:
            form.groups.data = [grp.id for grp in client.groups]
        if sets:
            values = client_fields.load(sets, [client.id])[client.id] if client else client_fields.defaults(sets)
            client_fields.fill_form(sets, form, values)
    return form, sets


def _data(form: ClientForm, sets) -> services.ClientData:
    return services.ClientData(
        tax_id=form.tax_id.data or "",
        country=form.country.data or "ES",
        kind=form.kind.data or "",
        first_name=form.first_name.data or "",
        last_name=form.last_name.data or "",
        company_name=form.company_name.data or "",
        email=form.email.data or "",
        phone=form.phone.data or "",
        notes=form.notes.data or "",
        locale=form.locale.data or "",
        group_ids=form.groups.data or [],
        extra=client_fields.form_values(sets, form),
    )


def _field_error(form, error: DomainError) -> None:
    name = (error.field or "").replace(".", "__")
    field = form._fields.get(name) or form.tax_id
    field.errors = [*field.errors, str(error.message)]


@bp.route("/new", methods=["GET", "POST"])
@requires("core.clients:manage")
def new():
    form, sets = _client_form()
    if form.validate_on_submit():
        try:
            client = services.create_client(g.tenant, current_user, _data(form, sets))
        except DomainError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            flash(_("The client %(name)s has been created.", name=client.name), "success")
            return redirect(url_for("clients.show", client_id=client.id))
    return render_template("clients/form.html", form=form, client=None, field_sets=sets)


def _tabs(client: Client) -> list:
    """Core's own tabs, then every enabled plugin's ``client_tabs`` the user may see."""
    plugin_tabs = host().call_for_tenant("client_tabs", enabled_for_current_tenant(), client=client, user=current_user)
    visible = [t for t in plugin_tabs if not t.permission or can(t.permission)]
    return sorted(visible, key=lambda t: (t.order, str(t.title)))


@bp.route("/<int:client_id>")
@requires("core.clients:view")
def show(client_id: int):
    client = _visible_or_404(client_id)
    tabs = _tabs(client)
    active = request.args.get("tab", "data")
    if active not in {"data", "history"} | {t.key for t in tabs}:
        abort(404)
    sets = client_fields.field_sets(g.tenant, current_user) if active == "data" else []
    return render_template(
        "clients/show.html",
        client=client,
        tabs=tabs,
        active=active,
        field_sets=sets,
        field_values=client_fields.load(sets, [client.id])[client.id] if sets else {},
        field_display=client_fields.display,
        tax_id_names=TYPE_NAMES,
        portal_account=portal.portal_account(client),
        events=history("client", client.id) if active == "history" else [],
    )


@bp.route("/<int:client_id>/edit", methods=["GET", "POST"])
@requires("core.clients:manage")
def edit(client_id: int):
    client = _visible_or_404(client_id)
    form, sets = _client_form(client)
    if form.validate_on_submit():
        try:
            services.update_client(g.tenant, current_user, client, _data(form, sets))
        except DomainError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            flash(_("The client has been saved."), "success")
            return redirect(url_for("clients.show", client_id=client.id))
    return render_template("clients/form.html", form=form, client=client, field_sets=sets)


@bp.route("/<int:client_id>/deactivate", methods=["POST"])
@requires("core.clients:manage")
def deactivate(client_id: int):
    services.set_active(g.tenant, _visible_or_404(client_id), False)
    flash(_("The client has been deactivated."), "success")
    return redirect(url_for("clients.show", client_id=client_id))


@bp.route("/<int:client_id>/reactivate", methods=["POST"])
@requires("core.clients:manage")
def reactivate(client_id: int):
    services.set_active(g.tenant, _visible_or_404(client_id), True)
    flash(_("The client is active again."), "success")
    return redirect(url_for("clients.show", client_id=client_id))


def _address_or_404(client: Client, address_id: int) -> ClientAddress:
    address = db.session.scalar(
        select(ClientAddress).where(ClientAddress.id == address_id, ClientAddress.client_id == client.id)
    )
    if address is None:
        abort(404)
    return address


def _address_data(form: AddressForm) -> services.AddressData:
    return services.AddressData(
        street=form.street.data or "",
        postal_code=form.postal_code.data or "",
        city=form.city.data or "",
        province=form.province.data or "",
        country=form.country.data or "ES",
        label=form.label.data or "",
    )


def _address_page(client: Client, address: ClientAddress | None):
    form = AddressForm(obj=address)
    if form.validate_on_submit():
        try:
            services.save_address(g.tenant, client, _address_data(form), address)
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "street").errors.append(str(error.message))
        else:
            flash(_("The address has been saved."), "success")
            return redirect(url_for("clients.show", client_id=client.id))
    return render_template("clients/address.html", form=form, client=client, address=address)


@bp.route("/<int:client_id>/addresses/new", methods=["GET", "POST"])
@requires("core.clients:manage")
def new_address(client_id: int):
    return _address_page(_visible_or_404(client_id), None)


@bp.route("/<int:client_id>/addresses/<int:address_id>", methods=["GET", "POST"])
@requires("core.clients:manage")
def edit_address(client_id: int, address_id: int):
    client = _visible_or_404(client_id)
    return _address_page(client, _address_or_404(client, address_id))


@bp.route("/<int:client_id>/addresses/<int:address_id>/delete", methods=["POST"])
@requires("core.clients:manage")
def delete_address(client_id: int, address_id: int):
    client = _visible_or_404(client_id)
    services.delete_address(g.tenant, client, _address_or_404(client, address_id))
    flash(_("The address has been deleted."), "success")
    return redirect(url_for("clients.show", client_id=client_id))


@bp.route("/import", methods=["GET", "POST"])
@requires("core.clients:import")
def start_import():
    form = ImportForm()
    groups = services.assignable_groups(current_user)
    default = [("", _("No group"))] if services.sees_every_client(current_user) else []
    form.group.choices = choices(default + [(str(grp.id), grp.name) for grp in groups])
    if form.validate_on_submit():
        upload = form.file.data
        try:
            job = imports.start_import(
                g.tenant,
                current_user,
                upload.filename or "clients.csv",
                upload.read(),
                int(form.group.data) if (form.group.data or "").isdigit() else None,
                str(get_locale()),
                notify=form.notify.data,
            )
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "file").errors.append(str(error.message))
        else:
            return redirect(url_for("clients.import_report", import_id=job.id))
    recent = db.session.scalars(select(ClientImport).order_by(ClientImport.id.desc()).limit(10)).all()
    plugin_columns = [
        (name, label) for name, label in client_fields.labels(client_fields.field_sets(g.tenant, current_user)).items()
    ]
    return render_template(
        "clients/import.html", form=form, recent=recent, columns=imports.HEADERS, plugin_columns=plugin_columns
    )


def _import_or_404(import_id: int) -> ClientImport:
    job = db.get_or_404(ClientImport, import_id)
    if job.created_by_id != current_user.id and not services.sees_every_client(current_user):
        abort(404)
    return job


@bp.route("/imports/<int:import_id>")
@requires("core.clients:import")
def import_report(import_id: int):
    job = _import_or_404(import_id)
    run = db.session.get(JobRun, job.job_run_id) if job.job_run_id else None
    progress = live_progress(run)[0] if run else 0
    held = imports.held_count(g.tenant, job)
    form = HeldNoticesForm(counted=str(held))
    return render_template(
        "clients/import_report.html",
        job=job,
        run=run,
        progress=progress,
        field_label=imports.field_labeller(g.tenant),
        held=held,
        held_form=form,
    )


@bp.route("/imports/<int:import_id>/notices", methods=["POST"])
@requires("core.clients:import")
def send_import_notices(import_id: int):
    """Send the messages held back for the import's new clients: the number confirmed must be the
    number that would go now."""
    job = _import_or_404(import_id)
    form = HeldNoticesForm()
    if form.validate_on_submit():
        counted = form.counted.data or ""
        try:
            sent = imports.send_held_notices(g.tenant, job, counted=int(counted) if counted.isdigit() else None)
        except DomainError as error:
            flash(str(error.message), "warning")
        else:
            flash(ngettext("%(num)d message is being sent.", "%(num)d messages are being sent.", sent), "success")
    return redirect(url_for("clients.import_report", import_id=job.id))


@bp.route("/imports/<int:import_id>/rejected.csv")
@requires("core.clients:import")
def rejected(import_id: int):
    job = _import_or_404(import_id)
    rows = imports.rejected_rows(job, imports.field_labeller(g.tenant))
    return csv_response(rows, f"rejected-rows-{job.id}.csv")


@bp.route("/<int:client_id>/portal/invite", methods=["POST"])
@requires("core.clients:manage")
def invite_to_portal(client_id: int):
    client = _visible_or_404(client_id)
    try:
        account = portal.invite_to_portal(g.tenant, client, current_user)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
    else:
        flash(_("We have sent an invitation to %(email)s.", email=account.email), "success")
    return redirect(url_for("clients.show", client_id=client_id))


@bp.route("/<int:client_id>/portal/revoke", methods=["POST"])
@requires("core.clients:manage")
def revoke_portal(client_id: int):
    portal.revoke_portal(_visible_or_404(client_id))
    flash(_("The client can no longer log in to the portal."), "success")
    return redirect(url_for("clients.show", client_id=client_id))
