"""The tenant administrator's settings: the organisation, and its plugins."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from core.errors import DomainError
from core.extensions import db
from core.permissions import authenticated, requires
from core.plugins import host
from core.provisioning import update_tenant
from core.settings.forms import OrganisationForm
from core.templating import settings_sections
from tenants import licensing

bp = Blueprint("settings", __name__)


@bp.route("/")
@authenticated
def index():
    """The first section of the settings page the user may open (core's or a plugin's)."""
    sections = settings_sections()
    if not sections:
        return render_template("settings/none.html")
    return redirect(url_for(sections[0].endpoint, **sections[0].url_values))


@bp.route("/organisation", methods=["GET", "POST"])
@requires("core.settings:manage")
def organisation():
    form = OrganisationForm(obj=g.tenant)
    if form.validate_on_submit():
        try:
            update_tenant(g.tenant, form.name.data, form.language.data, form.timezone.data)
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "name").errors.append(str(error.message))
        else:
            flash(_("The settings have been saved."), "success")
            return redirect(url_for("settings.organisation"))
    return render_template("settings/organisation.html", form=form)


@bp.route("/plugins")
@requires("core.plugins:manage")
def plugins():
    rows = licensing.licences(g.tenant)
    infos = host().infos
    licensed = [(infos[name], rows[name]) for name in sorted(rows) if rows[name].licensed and name in infos]
    return render_template("settings/plugins.html", licensed=licensed)


@bp.route("/plugins/<plugin>", methods=["POST"])
@requires("core.plugins:manage")
def toggle_plugin(plugin: str):
    row = licensing.licences(g.tenant).get(plugin)
    if row is None or not row.licensed or plugin not in host().infos:
        abort(404)
    enable = request.form.get("enabled") == "1"
    try:
        licensing.set_enabled(g.tenant, plugin, enable)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
    else:
        title = host().infos[plugin].title
        flash(
            _("%(plugin)s is now on.", plugin=title) if enable else _("%(plugin)s is now off.", plugin=title), "success"
        )
    return redirect(url_for("settings.plugins"))
