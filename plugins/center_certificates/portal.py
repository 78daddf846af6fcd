"""The client's side, in the client portal: Perfil → Certificados."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from core.api import portal
from plugins.center_certificates import services
from plugins.center_certificates.downloads import file_response, thumbnail_response
from plugins.center_certificates.forms import DocumentForm
from plugins.center_certificates.models import Certificate

bp = Blueprint("center_certificates_portal", __name__, template_folder="templates", url_prefix="/portal/certificates")


def _own_or_404(certificate_id: int) -> Certificate:
    """Only the certificates of the client this account is, never one in the bin."""
    certificate = services.of_portal_account(current_user.client_id, certificate_id)
    if certificate is None:
        abort(404)
    return certificate


@bp.route("/")
@portal
def index():
    current, history = services.of_client(current_user.client_id)
    return render_template("center_certificates/portal/index.html", current=current, history=history)


@bp.route("/<int:certificate_id>", methods=["GET", "POST"])
@portal
def show(certificate_id: int):
    certificate = _own_or_404(certificate_id)
    form = DocumentForm(obj=certificate)
    if form.validate_on_submit() and form.hand_in(g.tenant, certificate, by_client=True, actor=current_user):
        flash(_("Thank you: the centre will review your document."), "success")
        return redirect(url_for("center_certificates_portal.index"))
    return render_template("center_certificates/portal/show.html", certificate=certificate, form=form)


@bp.route("/<int:certificate_id>/file")
@portal
def file(certificate_id: int):
    return file_response(_own_or_404(certificate_id))


@bp.route("/<int:certificate_id>/thumbnail")
@portal
def thumbnail(certificate_id: int):
    return thumbnail_response(_own_or_404(certificate_id))
