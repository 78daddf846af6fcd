"""The staff pages of the sedes data: the list of services accessible with a digital certificate,
Certificados digitales, Configuración → Servicios y buzones (by sede, Nuevo buzón) and the client's
Buzones electrónicos tab.

Views parse, call a service, render; a ``DomainError`` goes back onto the form.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.api import (
    ClientTab,
    DomainError,
    Widget,
    authenticated,
    choices,
    current_tenant,
    db,
    get_visible_client,
    has_permission,
    history,
    requires,
    utcnow,
)
from plugins.sedes import (
    CERTIFICATES_DOWNLOAD,
    CERTIFICATES_MANAGE,
    CERTIFICATES_VIEW,
    MAILBOXES_MANAGE,
    MAILBOXES_SYNC,
    MAILBOXES_VIEW,
    catalogue,
    certificates,
    mailboxes,
)
from plugins.sedes.forms import OWNER_OFFICE, CertificateUploadForm, MailboxForm
from plugins.sedes.models import CERTIFICATE_KINDS, SYNC_RESULTS, Certificate, Mailbox

bp = Blueprint("sedes", __name__, template_folder="templates", url_prefix="/sedes")

MAX_UPLOAD = 64 * 1024


@bp.app_template_global("sedes_certificate_kinds")
def _certificate_kinds():
    return CERTIFICATE_KINDS


FIELD_ALIASES = {"client_id": "client_tax_id"}  # the mailbox form names the client by its NIF


def _show_errors(form, error: DomainError) -> None:
    """Roll back, and put the refusal on the field it names (or above the form)."""
    db.session.rollback()
    name = FIELD_ALIASES.get(error.field or "", error.field or "")
    field = form._fields.get(name) if name else None
    if field is not None and field.name != "csrf_token":
        field.errors = [*field.errors, str(error.message)]
    else:
        flash(str(error.message), "danger")


def _local(moment: datetime | None) -> datetime | None:
    """A time typed in the tenant's zone, in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=ZoneInfo(current_tenant().timezone)).astimezone(ZoneInfo("UTC"))


# --- Lista de servicios accesibles con certificado digital -----------------------------------------


@bp.get("/services")
@authenticated
def services():
    """Every active sede's portal links: what "Abrir navegador" gave, for the browser the user has."""
    return render_template("sedes/services.html", sedes=catalogue.all_sedes(active_only=True))


# --- Certificados digitales ---------------------------------------------------------------------


@bp.get("/certificates/")
@requires(CERTIFICATES_VIEW)
def certificates_list():
    expiring = request.args.get("expiring", type=int)
    office = request.args.get("office") == "1"
    page = certificates.list_page(
        current_user,
        request.args.get("after"),
        expiring_within=expiring if expiring in (7, 15, 30) else None,
        office_only=office,
    )
    return render_template(
        "sedes/certificates.html",
        page=page,
        expiring=expiring,
        office=office,
        now=utcnow(),
        can_manage=has_permission(current_user, CERTIFICATES_MANAGE),
    )


@bp.route("/certificates/new", methods=["GET", "POST"])
@requires(CERTIFICATES_MANAGE)
def certificate_new():
    client_id = request.args.get("client_id", type=int)
    client = get_visible_client(current_user, client_id) if client_id else None
    if client_id and client is None:
        abort(404)
    form = CertificateUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read(MAX_UPLOAD + 1) if upload else b""
        try:
            certificate = certificates.upload(
                current_tenant(),
                current_user,
                certificates.UploadData(
                    data, form.password.data or "", client_id=client_id, office=form.owner.data == OWNER_OFFICE
                ),
            )
        except DomainError as error:
            _show_errors(form, error)
        else:
            flash(_("The certificate of %(holder)s has been kept.", holder=certificate.holder_name), "success")
            if certificate.client_id is not None and has_permission(current_user, MAILBOXES_MANAGE):
                return redirect(url_for(".certificate_offers", certificate_id=certificate.id))
            return redirect(url_for(".certificate_detail", certificate_id=certificate.id))
    return render_template("sedes/certificate_new.html", form=form, client=client)


def _certificate_or_404(certificate_id: int) -> Certificate:
    certificate = certificates.get_certificate(current_user, certificate_id)
    if certificate is None:
        abort(404)
    return certificate


@bp.get("/certificates/<int:certificate_id>")
@requires(CERTIFICATES_VIEW)
def certificate_detail(certificate_id: int):
    return _render_certificate(_certificate_or_404(certificate_id))


def _render_certificate(certificate: Certificate, password: str | None = None):
    used_by = list(
        db.session.scalars(
            mailboxes.visible_statement(current_user)
            .where(Mailbox.certificate_id == certificate.id)
            .order_by(Mailbox.id)
        )
    )
    return render_template(
        "sedes/certificate.html",
        certificate=certificate,
        used_by=used_by,
        events=history("sedes_certificate", certificate.id, limit=50),
        days_left=certificates.days_left(certificate),
        password=password,
        can_download=has_permission(current_user, CERTIFICATES_DOWNLOAD),
        can_manage=has_permission(current_user, CERTIFICATES_MANAGE),
    )


@bp.post("/certificates/<int:certificate_id>/download")
@requires(CERTIFICATES_DOWNLOAD)
def certificate_download(certificate_id: int):
    from flask import Response

    certificate = _certificate_or_404(certificate_id)
    filename, data = certificates.download(current_user, certificate)
    response = Response(data, mimetype="application/x-pkcs12")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/certificates/<int:certificate_id>/password")
@requires(CERTIFICATES_DOWNLOAD)
def certificate_password(certificate_id: int):
    certificate = _certificate_or_404(certificate_id)
    password = certificates.reveal_password(current_user, certificate)
    return _render_certificate(certificate, password), 200, {"Cache-Control": "no-store"}


@bp.post("/certificates/<int:certificate_id>/delete")
@requires(CERTIFICATES_MANAGE)
def certificate_delete(certificate_id: int):
    certificate = _certificate_or_404(certificate_id)
    try:
        certificates.delete(current_user, certificate)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return redirect(url_for(".certificate_detail", certificate_id=certificate_id))
    flash(_("The certificate has been deleted."), "success")
    return redirect(url_for(".certificates_list"))


def _offers_from_form(offers: list[mailboxes.Offer]) -> list[mailboxes.Offer]:
    ticked = set(request.form.getlist("offer"))
    return [offer for offer in offers if offer.key in ticked]


@bp.route("/certificates/<int:certificate_id>/mailboxes", methods=["GET", "POST"])
@requires(MAILBOXES_MANAGE)
def certificate_offers(certificate_id: int):
    """After an upload: the mailboxes the certificate's client could have at the licensed sedes."""
    certificate = _certificate_or_404(certificate_id)
    offers = mailboxes.offers(current_tenant(), current_user, certificate=certificate)
    if request.method == "POST":
        return _accept(offers, url_for(".certificate_detail", certificate_id=certificate.id))
    return render_template("sedes/offers.html", certificate=certificate, client=certificate.client, offers=offers)


@bp.post("/clients/<int:client_id>/mailboxes")
@requires(MAILBOXES_MANAGE)
def client_offers(client_id: int):
    """The offers of the client's Buzones electrónicos tab, ticked and accepted."""
    client = get_visible_client(current_user, client_id)
    if client is None:
        abort(404)
    offers = mailboxes.offers(current_tenant(), current_user, client=client)
    return _accept(offers, url_for("clients.show", client_id=client.id, tab="sedes_mailboxes"))


def _accept(offers: list[mailboxes.Offer], back: str):
    chosen = _offers_from_form(offers)
    period = request.form.get("period_days", type=int) or 1
    try:
        made = mailboxes.accept_offers(current_tenant(), current_user, chosen, period_days=period)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return redirect(request.url)
    if made:
        flash(_("%(count)s mailboxes have been added.", count=len(made)), "success")
    return redirect(back)


# --- Configuración → Servicios y buzones ----------------------------------------------------------


@bp.get("/settings/services")
@requires(MAILBOXES_VIEW)
def settings_services():
    return render_template(
        "sedes/settings_services.html",
        summaries=mailboxes.sede_summaries(current_tenant(), current_user),
        settings_active="sedes",
    )


def _licensed_or_404(code: str):
    sede = mailboxes.licensed_sede(current_tenant(), code)
    if sede is None:
        abort(404)
    return sede


@bp.get("/settings/services/<code>")
@requires(MAILBOXES_VIEW)
def settings_sede(code: str):
    from plugins.sedes.sync import mailbox_states

    sede = _licensed_or_404(code)
    page = mailboxes.sede_page(current_user, sede.code, request.args.get("after"))
    boxes = [row[0] for row in page.items]
    return render_template(
        "sedes/settings_sede.html",
        sede=sede,
        page=page,
        boxes=boxes,
        states=mailbox_states(boxes),
        results=SYNC_RESULTS,
        can_manage=has_permission(current_user, MAILBOXES_MANAGE),
        can_sync=has_permission(current_user, MAILBOXES_SYNC),
        settings_active="sedes",
    )


def _certificate_choices():
    rows = certificates.usable(current_user)
    return choices(
        [(0, "—")]
        + [
            (c.id, f"{c.holder_name} ({c.titular_nif}) — {_('until %(date)s', date=c.not_after.date().isoformat())}")
            for c in rows
        ]
    )


def _mailbox_data(form: MailboxForm, sede_code: str, client_id: int | None) -> mailboxes.MailboxData:
    return mailboxes.MailboxData(
        sede_code,
        form.certificate_id.data or None,
        client_id,
        as_proxy=form.as_proxy.data,
        next_sync_at=_local(form.next_sync_at.data),
        period_days=form.period_days.data or 1,
    )


@bp.route("/settings/services/<code>/new", methods=["GET", "POST"])
@requires(MAILBOXES_MANAGE)
def mailbox_new(code: str):
    """Nuevo buzón: certificate, client (its NIF is the certificate's, or any under apoderamiento),
    next sync and period."""
    sede = _licensed_or_404(code)
    if not sede.syncable:
        abort(404)
    form = MailboxForm()
    form.certificate_id.choices = _certificate_choices()
    if request.method == "GET" and request.args.get("certificate_id", type=int):
        form.certificate_id.data = request.args.get("certificate_id", type=int)
    if form.validate_on_submit():
        try:
            certificate = certificates.get_certificate(current_user, form.certificate_id.data or 0)
            client = mailboxes.client_for_form(current_user, form.client_tax_id.data, certificate)
            mailboxes.create_mailbox(
                current_tenant(), current_user, _mailbox_data(form, sede.code, client.id if client else None)
            )
        except DomainError as error:
            _show_errors(form, error)
        else:
            flash(_("The mailbox has been added."), "success")
            return redirect(url_for(".settings_sede", code=sede.code))
    return render_template("sedes/mailbox_form.html", form=form, sede=sede, mailbox=None, settings_active="sedes")


def _mailbox_or_404(mailbox_id: int) -> Mailbox:
    mailbox = mailboxes.get_mailbox(current_user, mailbox_id)
    if mailbox is None:
        abort(404)
    return mailbox


@bp.route("/mailboxes/<int:mailbox_id>/edit", methods=["GET", "POST"])
@requires(MAILBOXES_MANAGE)
def mailbox_edit(mailbox_id: int):
    mailbox = _mailbox_or_404(mailbox_id)
    form = MailboxForm(obj=None)
    form.certificate_id.choices = _certificate_choices()
    if request.method == "GET":
        form.certificate_id.data = mailbox.certificate_id
        form.as_proxy.data = mailbox.as_proxy
        form.period_days.data = mailbox.period_days
    if form.validate_on_submit():
        try:
            mailboxes.update_mailbox(
                current_tenant(), current_user, mailbox, _mailbox_data(form, mailbox.sede_code, mailbox.client_id)
            )
        except DomainError as error:
            _show_errors(form, error)
        else:
            flash(_("The mailbox has been saved."), "success")
            return redirect(url_for(".settings_sede", code=mailbox.sede_code))
    return render_template(
        "sedes/mailbox_form.html", form=form, sede=mailbox.sede, mailbox=mailbox, settings_active="sedes"
    )


@bp.post("/mailboxes/<int:mailbox_id>/delete")
@requires(MAILBOXES_MANAGE)
def mailbox_delete(mailbox_id: int):
    mailbox = _mailbox_or_404(mailbox_id)
    code = mailbox.sede_code
    mailboxes.delete_mailbox(current_user, mailbox)
    flash(_("The mailbox has been deleted; its notifications stay."), "success")
    back = request.form.get("back") or ""
    if back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect(url_for(".settings_sede", code=code))


# --- the client's Buzones electrónicos tab and the dashboard -------------------------------------


def client_tab(client, user) -> ClientTab:
    """Buzones electrónicos: the client's mailboxes (one per sede) with their last sync, result and
    error, "Consultar buzón" for whoever may sync, the mailboxes it could have, its certificates."""
    from plugins.sedes.sync import mailbox_states

    boxes = mailboxes.client_mailboxes(client)
    can_manage = has_permission(user, MAILBOXES_MANAGE)
    context = {
        "client": client,
        "mailboxes": boxes,
        "states": mailbox_states(boxes),
        "results": SYNC_RESULTS,
        "offers": mailboxes.offers(current_tenant(), user, client=client) if can_manage else [],
        "certificates": certificates.for_client(user, client) if has_permission(user, CERTIFICATES_VIEW) else [],
        "can_sync": has_permission(user, MAILBOXES_SYNC),
        "can_manage": can_manage,
        "can_upload": has_permission(user, CERTIFICATES_MANAGE),
        "now": utcnow(),
    }
    return ClientTab(
        "sedes_mailboxes", _l("Electronic mailboxes"), "sedes/client_mailboxes.html", context, MAILBOXES_VIEW, 31
    )


def widgets(tenant, user) -> list[Widget]:
    """Digital certificates that expire within 30 days (expired ones too), of the clients one sees."""
    if not has_permission(user, CERTIFICATES_VIEW):
        return []
    return [
        Widget(
            _l("Digital certificates expiring within 30 days"),
            "sedes/certificates_widget.html",
            {"count": certificates.expiring_count(user)},
            CERTIFICATES_VIEW,
            order=42,
        )
    ]
