"""The operator's sede catalogue (operator console): every sede with its portal links, its
connector and base URL, whether it needs the client's CCC or NAF, and its deadline rule.

The catalogue is the operator's, the same for every tenant; a tenant's licence names which of its
sedes the tenant may sync with.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from core.api import DomainError, choices, db, operator_only
from plugins.sedes import catalogue
from plugins.sedes.connectors import connectors
from plugins.sedes.forms import SedeForm
from plugins.sedes.models import DEFAULT_MAX_CONCURRENCY

console = Blueprint("sedes_console", __name__, template_folder="templates", url_prefix="/sedes")


def _form(sede=None) -> SedeForm:
    form = SedeForm(obj=sede)
    form.connector.choices = choices(
        [("", _("None: portal links only"))] + [(code, code) for code in sorted(connectors())]
    )
    if sede is not None and not form.is_submitted():
        form.connector.data = sede.connector or ""
    return form


def _data(form: SedeForm) -> catalogue.SedeData:
    return catalogue.SedeData(
        code=(form.code.data or "").strip().lower(),
        name=form.name.data or "",
        portal_url=(form.portal_url.data or "").strip(),
        register_url=(form.register_url.data or "").strip(),
        signature_test_url=(form.signature_test_url.data or "").strip(),
        connector=form.connector.data or None,
        base_url=(form.base_url.data or "").strip() or None,
        needs_ssid=form.needs_ssid.data,
        deadline_days=form.deadline_days.data,
        max_concurrency=form.max_concurrency.data or DEFAULT_MAX_CONCURRENCY,
        position=form.position.data or 0,
        active=form.active.data,
    )


def _show(form: SedeForm, error: DomainError) -> None:
    db.session.rollback()
    field = form._fields.get(error.field or "")
    if field is not None:
        field.errors = [*field.errors, str(error.message)]
    else:
        flash(str(error.message), "danger")


@console.get("/")
@operator_only
def index():
    catalogue.ensure_catalogue()
    return render_template("sedes/console/index.html", sedes=catalogue.all_sedes())


@console.route("/new", methods=["GET", "POST"])
@operator_only
def sede_new():
    form = _form()
    if form.validate_on_submit():
        try:
            sede = catalogue.save_sede(_data(form))
        except DomainError as error:
            _show(form, error)
        else:
            flash(_("%(name)s has been added to the catalogue.", name=sede.name), "success")
            return redirect(url_for(".index"))
    return render_template("sedes/console/sede.html", form=form, sede=None)


@console.route("/<sede_code>", methods=["GET", "POST"])
@operator_only
def sede_edit(sede_code: str):
    sede = catalogue.get_sede(sede_code)
    if sede is None:
        abort(404)
    form = _form(sede)
    if form.validate_on_submit():
        try:
            catalogue.save_sede(_data(form), existing=sede)
        except DomainError as error:
            _show(form, error)
        else:
            flash(_("%(name)s has been saved.", name=sede.name), "success")
            return redirect(url_for(".index"))
    return render_template("sedes/console/sede.html", form=form, sede=sede)
