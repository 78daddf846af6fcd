"""The staff's screens: templates, certificates, the client tab, bulk generation, the report, the bin."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy.orm import selectinload

from core.api import (
    Client,
    DomainError,
    choices,
    csv_response,
    db,
    keyset_page,
    remember,
    requires,
    sees_every_client,
)
from core.api import get_visible_client as visible_client
from plugins.center_certificates import MANAGE, REPORT, TEMPLATES, VIEW, badges, services
from plugins.center_certificates.downloads import file_response, thumbnail_response
from plugins.center_certificates.forms import (
    DocumentForm,
    GenerateForm,
    HeldNoticesForm,
    RejectForm,
    ReportFilterForm,
    RequestForm,
    TemplateForm,
)
from plugins.center_certificates.models import (
    NOTE_MAX,
    STATUS_LABELS,
    STATUS_STYLES,
    STATUSES,
    Certificate,
    CertificateTemplate,
)
from plugins.center_certificates.reports import report_page, report_rows

bp = Blueprint("center_certificates", __name__, template_folder="templates", url_prefix="/certificates")


# Globals rather than a context processor: imported macros see them too, and no context.
bp.record_once(
    lambda state: state.app.jinja_env.globals.update(
        CERTIFICATE_STATUS_LABELS=STATUS_LABELS,
        CERTIFICATE_STATUS_STYLES=STATUS_STYLES,
        CERTIFICATE_NOTE_MAX=NOTE_MAX,
        certificate_status_badge=badges.status_badge,
        certificate_validity=badges.validity,
    )
)


def _certificate_or_404(certificate_id: int) -> Certificate:
    certificate = services.get_visible(current_user, certificate_id)
    if certificate is None:
        abort(404)
    return certificate


def widget_counts(user) -> dict[str, int]:
    """The dashboard's numbers (``services.status_counts``), kept until the tenant's data changes:
    counting over every certificate on each dashboard cost more than the rest of the page."""
    scope = "all" if sees_every_client(user) else user.id
    return remember(f"center_certificates.counts:{scope}", lambda: services.status_counts(user))


def client_tab_context(client: Client) -> dict:
    current, history = services.of_client(client.id)
    in_use = services.template_choices(in_use=True)
    # Only what can be asked for: not a template the client already has an open certificate of
    # (one that expired stays among the current ones, and can be asked for again).
    asked = {c.template_id for c in current if c.is_open}
    form = RequestForm()
    form.template.choices = choices((t.id, t.name) for t in in_use if t.id not in asked)
    return {
        "client": client,
        "current": current,
        "history": history,
        "request_form": form,
        "templates_in_use": len(in_use),
    }


# --- certificates -----------------------------------------------------------------------


@bp.route("/")
@requires(VIEW)
def index():
    """Every open certificate of the clients the user sees; searched by client, filtered by state,
    template and centre."""
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    template_id = request.args.get("template", type=int)
    group_id = request.args.get("centre", type=int)
    stmt = services.list_statement(
        current_user, q=q, status=status, template_id=template_id, group_id=group_id
    ).options(selectinload(Certificate.client))
    page = keyset_page(db.session, stmt, [Certificate.id], request.args.get("after"), per_page=50, descending=True)
    return render_template(
        "center_certificates/index.html",
        page=page,
        q=q,
        status=status,
        statuses=STATUSES,
        templates=services.template_choices(),
        template_id=template_id,
        groups=services.centre_choices(current_user),
        group_id=group_id,
    )


@bp.route("/clients/<int:client_id>/request", methods=["POST"])
@requires(MANAGE)
def request_certificate(client_id: int):
    client = visible_client(current_user, client_id)
    if client is None:
        abort(404)
    form = RequestForm()
    form.template.choices = choices((t.id, t.name) for t in services.templates_in_use())
    if form.validate_on_submit():
        template = services.get_template(form.template.data)
        try:
            certificate = services.request_certificate(g.tenant, client, template, current_user)
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "danger")
        else:
            flash(
                _(
                    "%(certificate)s has been requested from %(client)s.",
                    certificate=certificate.name,
                    client=client.name,
                ),
                "success",
            )
    else:
        flash(_("Choose the certificate to request."), "danger")
    return redirect(url_for("clients.show", client_id=client.id, tab="certificates"))


@bp.route("/<int:certificate_id>")
@requires(VIEW)
def show(certificate_id: int):
    certificate = _certificate_or_404(certificate_id)
    return render_template(
        "center_certificates/show.html",
        certificate=certificate,
        reject_form=RejectForm(),
        events=services.history_events(certificate),
    )


@bp.route("/<int:certificate_id>/edit", methods=["GET", "POST"])
@requires(MANAGE)
def edit(certificate_id: int):
    certificate = _certificate_or_404(certificate_id)
    if not certificate.editable:
        flash(_("This certificate can no longer be changed."), "danger")
        return redirect(url_for("center_certificates.show", certificate_id=certificate.id))
    form = DocumentForm(obj=certificate)
    if form.validate_on_submit() and form.hand_in(g.tenant, certificate, by_client=False, actor=current_user):
        flash(_("The certificate has been updated."), "success")
        return redirect(url_for("center_certificates.show", certificate_id=certificate.id))
    return render_template("center_certificates/edit.html", certificate=certificate, form=form)


@bp.route("/<int:certificate_id>/next", methods=["GET", "POST"])
@requires(MANAGE)
def next_document(certificate_id: int):
    """The next document of a certificate that expires soon, handed in by the centre: a new
    certificate pending approval, while this one stays valid until its date."""
    certificate = _certificate_or_404(certificate_id)
    if not certificate.accepts_next:
        following = certificate.next_document
        if following is not None:
            return redirect(url_for("center_certificates.show", certificate_id=following.id))
        flash(_("The next document can only be handed in while the certificate expires soon."), "danger")
        return redirect(url_for("center_certificates.show", certificate_id=certificate.id))
    form = DocumentForm()
    if form.validate_on_submit():
        following = form.hand_in(g.tenant, certificate, by_client=False, actor=current_user, following=True)
        if following is not None:
            flash(_("The next document has been handed in: it waits for approval."), "success")
            return redirect(url_for("center_certificates.show", certificate_id=following.id))
    return render_template("center_certificates/next.html", certificate=certificate, form=form)


def _act(certificate_id: int, action, done: str, back_to_client: bool = False):
    certificate = _certificate_or_404(certificate_id)
    try:
        action(certificate)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
    else:
        flash(done, "success")
        if back_to_client:
            return redirect(url_for("clients.show", client_id=certificate.client_id, tab="certificates"))
    return redirect(url_for("center_certificates.show", certificate_id=certificate_id))


@bp.route("/<int:certificate_id>/approve", methods=["POST"])
@requires(MANAGE)
def approve(certificate_id: int):
    return _act(
        certificate_id, lambda c: services.approve(g.tenant, c, current_user), _("The certificate has been approved.")
    )


@bp.route("/<int:certificate_id>/reject", methods=["POST"])
@requires(MANAGE)
def reject(certificate_id: int):
    form = RejectForm()
    return _act(
        certificate_id,
        lambda c: services.reject(g.tenant, c, form.reason.data, current_user),
        _("The certificate has been sent back to the client."),
    )


@bp.route("/<int:certificate_id>/archive", methods=["POST"])
@requires(MANAGE)
def archive(certificate_id: int):
    return _act(certificate_id, services.archive, _("The certificate has been archived."))


@bp.route("/<int:certificate_id>/delete", methods=["POST"])
@requires(MANAGE)
def delete(certificate_id: int):
    return _act(
        certificate_id,
        lambda c: services.delete(c, current_user),
        _("The certificate has been moved to the bin."),
        back_to_client=True,
    )


@bp.route("/<int:certificate_id>/file")
@requires(VIEW)
def file(certificate_id: int):
    return file_response(_certificate_or_404(certificate_id), inline=request.args.get("inline") == "1")


@bp.route("/<int:certificate_id>/thumbnail")
@requires(VIEW)
def thumbnail(certificate_id: int):
    return thumbnail_response(_certificate_or_404(certificate_id))


@bp.route("/clients/<int:client_id>/history")
@requires(VIEW)
def client_history(client_id: int):
    client = visible_client(current_user, client_id)
    if client is None:
        abort(404)
    _current, history = services.of_client(client.id)
    return render_template("center_certificates/history.html", client=client, history=history)


@bp.route("/bin")
@requires(MANAGE)
def trash():
    """Certificates sent to the bin: listed, never restorable (their files are gone)."""
    stmt = services.bin_statement(current_user)
    page = keyset_page(db.session, stmt, [Certificate.id], request.args.get("after"), per_page=50, descending=True)
    return render_template("center_certificates/trash.html", page=page)


# --- templates and bulk generation --------------------------------------------------------


@bp.route("/templates/")
@requires(TEMPLATES)
def templates():
    return render_template(
        "center_certificates/templates.html", templates=services.all_templates(), open_counts=services.open_counts()
    )


def _template_data(form: TemplateForm) -> services.TemplateData:
    return services.TemplateData(
        form.name.data,
        form.description.data or "",
        form.lead_days.data,
        form.auto_for_new_clients.data,
        form.renew_on_expiry.data,
        form.active.data,
    )


def _template_form_page(form: TemplateForm, template: CertificateTemplate | None, source=None):
    if form.validate_on_submit():
        try:
            saved = services.save_template(template, _template_data(form), current_user)
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "name").errors.append(str(error.message))
        else:
            flash(_("The template has been saved."), "success")
            return redirect(url_for("center_certificates.edit_template", template_id=saved.id))
    return render_template("center_certificates/template_form.html", form=form, template=template, source=source)


@bp.route("/templates/new", methods=["GET", "POST"])
@requires(TEMPLATES)
def new_template():
    return _template_form_page(TemplateForm(), None)


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@requires(TEMPLATES)
def edit_template(template_id: int):
    template = db.get_or_404(CertificateTemplate, template_id)
    return _template_form_page(TemplateForm(obj=template), template)


@bp.route("/templates/<int:template_id>/clone", methods=["GET", "POST"])
@requires(TEMPLATES)
def clone_template(template_id: int):
    """Clonar: the new-template form filled in from this one; nothing is saved until it is sent."""
    source = db.get_or_404(CertificateTemplate, template_id)
    return _template_form_page(TemplateForm(obj=services.clone_data(source)), None, source)


@bp.route("/templates/<int:template_id>/generate", methods=["GET", "POST"])
@requires(TEMPLATES)
def generate(template_id: int):
    """Generar certificados: for every active client of the chosen centres without an open one.

    A first submit counts; the confirmation carries what was counted, and confirming anything
    else (other centres ticked since, or a number that has changed) shows the new count instead.
    """
    template = db.get_or_404(CertificateTemplate, template_id)
    form = GenerateForm()
    form.groups.choices = choices((grp.id, grp.name) for grp in services.centres_for(current_user))
    every_client = sees_every_client(current_user)
    if not every_client:
        del form.scope
    scope = form.scope.data if every_client else services.CENTRES
    choice = services.GenerationChoice.of(form.groups.data, scope)
    if form.validate_on_submit() and request.form.get("confirm") == "1":
        try:
            run = services.start_generation(
                g.tenant,
                template,
                choice,
                current_user,
                counted_for=services.GenerationChoice.parse(form.counted_scope.data, form.counted_groups.data),
                counted=_number(form.counted.data),
                notify=form.notify.data,
                counted_notices=_number(form.counted_notices.data),
            )
        except DomainError as error:
            flash(str(error.message), "warning" if isinstance(error, services.GenerationChanged) else "danger")
        else:
            return redirect(url_for("jobs.show", run_id=run.id))
    count = notices = None
    if choice.made:
        try:
            count = services.generation_count(template, choice, current_user)
            notices = services.generation_notice_count(template, choice, current_user)
        except DomainError as error:
            form.groups.errors = [*form.groups.errors, str(error.message)]
    form.counted_scope.data, form.counted_groups.data = choice.scope, choice.groups_text
    form.counted.data = "" if count is None else str(count)
    form.counted_notices.data = "" if notices is None else str(notices)
    held = services.held_generation_notices(template, current_user)
    return render_template(
        "center_certificates/generate.html",
        template=template,
        form=form,
        count=count,
        notices=notices,
        held=held,
        held_form=HeldNoticesForm(counted=str(held)),
    )


@bp.route("/templates/<int:template_id>/notices", methods=["POST"])
@requires(TEMPLATES)
def send_held_notices(template_id: int):
    """Tell the clients after all of what earlier generations of the template asked them for."""
    template = db.get_or_404(CertificateTemplate, template_id)
    form = HeldNoticesForm()
    if form.validate_on_submit():
        try:
            sent = services.send_held_generation_notices(
                g.tenant, template, current_user, counted=_number(form.counted.data)
            )
        except DomainError as error:
            flash(str(error.message), "warning")
        else:
            flash(ngettext("%(num)d message is being sent.", "%(num)d messages are being sent.", sent), "success")
    return redirect(url_for("center_certificates.generate", template_id=template.id))


def _number(text: str | None) -> int | None:
    return int(text) if (text or "").isdigit() else None


# --- who is missing what ------------------------------------------------------------------


def _report_filters():
    groups = services.centre_choices(current_user)
    filters = ReportFilterForm(request.args, groups=groups)
    filters.validate()
    group_id = int(filters.group.data) if (filters.group.data or "").isdigit() else None
    return filters, group_id, filters.status.data or None


@bp.route("/report")
@requires(REPORT)
def report():
    filters, group_id, status = _report_filters()
    page, templates, cells = report_page(current_user, group_id, status, request.args.get("after"))
    return render_template(
        "center_certificates/report.html", filters=filters, page=page, templates=templates, cells=cells
    )


@bp.route("/report.csv")
@requires(REPORT)
def report_export():
    _filters, group_id, status = _report_filters()
    return csv_response(report_rows(current_user, group_id, status), f"certificates-{g.tenant.slug}.csv")
