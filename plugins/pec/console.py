"""The gestore's console (operator only): the activation queue across resellers, each reseller's
domains and the way its boxes are activated (by hand here, or the gestore's HTTP API).

Operator pages run outside any tenant: they read across tenants explicitly (``all_tenants``)
and change a reseller's rows inside that reseller's context (``tenant_context``).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import PasswordField, StringField
from wtforms.validators import Optional

from core.api import DomainError, Tenant, all_tenants, choices, db, operator_only, tenant_context
from plugins.pec import accounts, domains
from plugins.pec.activation import service as activation
from plugins.pec.forms import DomainForm, RefuseForm, show_errors
from plugins.pec.lifecycle import BoxState
from plugins.pec.models import MANUAL_PROVIDER, Box, Domain, PanelAccount

console = Blueprint("pec_console", __name__, template_folder="templates", url_prefix="/pec")


def _rollback_and_show(form, error: DomainError) -> None:
    db.session.rollback()
    for message in show_errors(form, error):
        flash(message, "danger")


@console.route("/")
@operator_only
def index():
    """The activation queue of every reseller, oldest first, and the resellers."""
    with all_tenants():
        queue = db.session.scalars(
            activation.pending_queue_statement()
            .options(selectinload(Box.holder), selectinload(Box.domain))
            .order_by(Box.created_at, Box.id)
            .limit(200)
        ).all()
        codes = dict(
            db.session.execute(
                select(PanelAccount.tenant_id, PanelAccount.code).where(PanelAccount.kind == accounts.RESELLER)
            ).all()
        )
        counts = dict(
            db.session.execute(
                select(Box.tenant_id, func.count()).where(Box.state == BoxState.ACTIVE.value).group_by(Box.tenant_id)
            ).all()
        )
        domain_counts = dict(
            db.session.execute(select(Domain.tenant_id, func.count()).group_by(Domain.tenant_id)).all()
        )
    tenants = {
        t.id: t
        for t in db.session.scalars(select(Tenant).where(Tenant.id.in_(set(codes) | {b.tenant_id for b in queue})))
    }
    resellers = sorted((tenants[t] for t in codes if t in tenants), key=lambda t: t.name)
    return render_template(
        "pec/console/index.html",
        queue=queue,
        tenants=tenants,
        codes=codes,
        counts=counts,
        domain_counts=domain_counts,
        resellers=resellers,
        refuse_form=RefuseForm(),
    )


def _box_in_tenant(pec_box_id: int) -> tuple[Tenant, int]:
    with all_tenants():
        tenant_id = db.session.scalar(select(Box.tenant_id).where(Box.id == pec_box_id))
    if tenant_id is None:
        abort(404)
    return db.session.get(Tenant, tenant_id), tenant_id


@console.route("/boxes/<int:pec_box_id>/activate", methods=["POST"])
@operator_only
def activate(pec_box_id: int):
    """The manual gestore activates: ATTIVA, and the reseller and the holder are e-mailed."""
    tenant, tenant_id = _box_in_tenant(pec_box_id)
    with tenant_context(tenant_id):
        box = db.session.get(Box, pec_box_id)
        try:
            if not activation.ready(box):
                raise DomainError(_("This box is not waiting for activation."))
            activation.activate(tenant, box)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "danger")
        else:
            flash(_("%(address)s is active.", address=box.address), "success")
    return redirect(url_for("pec_console.index"))


@console.route("/boxes/<int:pec_box_id>/refuse", methods=["POST"])
@operator_only
def refuse(pec_box_id: int):
    tenant, tenant_id = _box_in_tenant(pec_box_id)
    form = RefuseForm()
    with tenant_context(tenant_id):
        box = db.session.get(Box, pec_box_id)
        try:
            if not form.validate_on_submit() or not activation.ready(box):
                raise DomainError(_("This box is not waiting for activation."))
            activation.refuse(tenant, box, form.reason.data or "")
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "danger")
        else:
            flash(_("The activation of %(address)s has been refused.", address=box.address), "success")
    return redirect(url_for("pec_console.index"))


def _reseller_or_404(tenant_id: int) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        abort(404)
    return tenant


def _provider_form(provider):
    """A form of the provider's own settings (secrets are never shown back)."""
    fields = {
        setting.name: (PasswordField if setting.secret else StringField)(
            setting.label, description=setting.help or "", validators=[Optional()]
        )
        for setting in provider.settings
    }
    return type(f"ProviderForm_{provider.code}", (FlaskForm,), fields)(prefix=f"provider-{provider.code}")


def _provider_forms() -> dict:
    return {
        code: _provider_form(provider)
        for code, provider in sorted(activation.registry().providers.items())
        if provider.settings
    }


def _reseller_page(tenant: Tenant, domain_form=None, provider_forms=None, status: int = 200):
    with tenant_context(tenant.id):
        rows = domains.domains_with_counts()
        account = accounts.reseller_account()
        configured = {code: bool(activation.config_of(code)) for code in activation.registry().providers}
        saved = {code: activation.settings_of(code) for code in configured if configured[code]}
        page = render_template(
            "pec/console/reseller.html",
            tenant=tenant,
            rows=rows,
            account=account,
            domain_form=domain_form or _domain_form(),
            provider_forms=provider_forms or _provider_forms(),
            configured=configured,
            saved_urls={code: values.get("base_url", "") for code, values in saved.items()},
            callback_url=url_for("pec.activation_callback", tenant=tenant.slug, _external=True),
        )
    return page, status


def _domain_form(obj=None) -> DomainForm:
    form = DomainForm(obj=obj)
    form.provider.choices = choices(activation.provider_choices())
    if obj is None and not form.is_submitted():
        form.provider.data = MANUAL_PROVIDER
    return form


def _domain_data(form: DomainForm) -> domains.DomainData:
    return domains.DomainData(
        name=form.name.data or "",
        certified_on=form.certified_on.data,
        expires_on=form.expires_on.data,
        mx_host=form.mx_host.data or "",
        provider=form.provider.data or MANUAL_PROVIDER,
        default_box_type=form.default_box_type.data or "standard",
        active=bool(form.active.data),
        notes=form.notes.data or "",
    )


@console.route("/resellers/<int:tenant_id>")
@operator_only
def reseller(tenant_id: int):
    return _reseller_page(_reseller_or_404(tenant_id))


@console.route("/resellers/<int:tenant_id>/domains", methods=["POST"])
@operator_only
def domain_add(tenant_id: int):
    tenant = _reseller_or_404(tenant_id)
    form = _domain_form()
    if form.validate_on_submit():
        with tenant_context(tenant.id):
            try:
                domain = domains.save_domain(None, _domain_data(form), dict(activation.provider_choices()))
                db.session.commit()
            except DomainError as error:
                _rollback_and_show(form, error)
            else:
                flash(_("%(name)s has been added.", name=domain.name), "success")
                return redirect(url_for("pec_console.reseller", tenant_id=tenant.id))
    return _reseller_page(tenant, domain_form=form, status=400)


def _domain_or_404(pec_domain_id: int) -> tuple[Tenant, int]:
    with all_tenants():
        tenant_id = db.session.scalar(select(Domain.tenant_id).where(Domain.id == pec_domain_id))
    if tenant_id is None:
        abort(404)
    return db.session.get(Tenant, tenant_id), tenant_id


@console.route("/domains/<int:pec_domain_id>", methods=["GET", "POST"])
@operator_only
def domain_edit(pec_domain_id: int):
    """Only the gestore changes a domain: its dates, mail server, activation, state."""
    tenant, tenant_id = _domain_or_404(pec_domain_id)
    with tenant_context(tenant_id):
        domain = db.session.get(Domain, pec_domain_id)
        form = _domain_form(domain)
        if form.validate_on_submit():
            try:
                domains.save_domain(domain, _domain_data(form), dict(activation.provider_choices()))
                db.session.commit()
            except DomainError as error:
                _rollback_and_show(form, error)
            else:
                flash(_("%(name)s has been saved.", name=domain.name), "success")
                return redirect(url_for("pec_console.reseller", tenant_id=tenant.id))
        return render_template("pec/console/domain.html", tenant=tenant, domain=domain, form=form)


@console.route("/resellers/<int:tenant_id>/provider", methods=["POST"])
@operator_only
def provider_save(tenant_id: int):
    """The settings of a provider for this reseller (a secret left empty keeps the saved one, on
    the same host only)."""
    tenant = _reseller_or_404(tenant_id)
    forms = _provider_forms()
    code = request.form.get("code", "")
    form = forms.get(code)
    if form is None:
        flash(_("Choose how boxes are activated."), "danger")
        return redirect(url_for("pec_console.reseller", tenant_id=tenant.id))
    if form.validate_on_submit():
        values = {name: field.data or "" for name, field in form._fields.items() if name != "csrf_token"}
        with tenant_context(tenant.id):
            try:
                activation.save_config(code, values)
                db.session.commit()
            except DomainError as error:
                _rollback_and_show(form, error)
            else:
                flash(_("The activation settings have been saved."), "success")
                return redirect(url_for("pec_console.reseller", tenant_id=tenant.id))
    return _reseller_page(tenant, provider_forms=forms, status=400)
