"""The staff pages of the sedes data: the list of services accessible with a digital certificate,
certificates, mailboxes (Configuración → Servicios y buzones) and the client's Buzones electrónicos.

Views parse, call a service, commit, render; a ``DomainError`` goes back onto the form.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from core.api import authenticated
from plugins.sedes import catalogue

bp = Blueprint("sedes", __name__, template_folder="templates", url_prefix="/sedes")


@bp.get("/services")
@authenticated
def services():
    """Lista de servicios accesibles con certificado digital: every active sede's portal links."""
    return render_template("sedes/services.html", sedes=catalogue.all_sedes(active_only=True))
