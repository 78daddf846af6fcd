from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from core.api import DomainError, all_tenants, db, operator_only, portal, requires
from tests.sample_plugin import services
from tests.sample_plugin.models import SampleNote

bp = Blueprint("sample", __name__, template_folder="templates", url_prefix="/notes")
console = Blueprint("sample_console", __name__, template_folder="templates", url_prefix="/notes")
portal_bp = Blueprint("sample_portal", __name__, template_folder="templates", url_prefix="/portal/notes")


@bp.route("/")
@requires("sample.notes:view")
def index():
    notes = db.session.scalars(select(SampleNote).order_by(SampleNote.id)).all()
    return render_template("sample/index.html", notes=notes)


@bp.route("/new", methods=["POST"])
@requires("sample.notes:manage")
def new():
    title = (request.form.get("title") or "").strip()
    if not title:
        abort(400)
    try:
        note = services.add_note(g.tenant, title, request.form.get("body", ""))
    except DomainError as error:
        flash(str(error.message), "danger")
        return redirect(url_for("sample.index"))
    return redirect(url_for("sample.show", note_id=note.id))


@bp.route("/<int:note_id>")
@requires("sample.notes:view")
def show(note_id: int):
    note = db.get_or_404(SampleNote, note_id)
    return render_template("sample/show.html", note=note)


@bp.route("/settings", methods=["GET", "POST"])
@requires("sample.notes:manage")
def settings():
    if request.method == "POST":
        port = request.form.get("smtp_port", "")
        services.save_settings(request.form.get("greeting", ""), int(port) if port.isdigit() else None)
        flash("saved", "success")
        return redirect(url_for("sample.settings"))
    return render_template("sample/settings.html", greeting=services.greeting())


@console.route("/")
@operator_only
def overview():
    with all_tenants():
        per_tenant = db.session.execute(select(SampleNote.tenant_id, func.count()).group_by(SampleNote.tenant_id)).all()
    return {"notes_per_tenant": {str(t): n for t, n in per_tenant}}


@portal_bp.route("/")
@portal
def notes():
    """What a client sees of the sample plugin: the number of notes (a portal page of a plugin)."""
    return {"notes": services.note_count()}
