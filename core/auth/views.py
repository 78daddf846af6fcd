"""Logging in and out of a tenant, password reset, invitations, the user's own profile."""

from __future__ import annotations

from babel.lists import format_list
from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from core.auth import services, sessions
from core.auth.forms import ChangePasswordForm, ForgotPasswordForm, LoginForm, NewPasswordForm, ProfileForm
from core.auth.models import TOKEN_INVITE, TOKEN_RESET
from core.errors import DomainError
from core.extensions import db
from core.permissions import authenticated, public
from core.templating import safe_next

bp = Blueprint("auth", __name__)


def client_address() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated and not current_user.is_operator:
        return redirect(url_for("portal.home") if current_user.is_portal else url_for("dashboard.index"))
    form = LoginForm()
    # The field keeps its label ("E-mail": what most people type); other identifiers are a hint.
    others = [str(identifier.label) for identifier in services.login_identifiers(g.tenant)]
    identifier_help = (
        _("You may also sign in with your %(others)s.", others=format_list(others, style="or", locale=get_locale()))
        if others
        else None
    )
    if form.validate_on_submit():
        try:
            user = services.authenticate_user(g.tenant, form.email.data, form.password.data, client_address())
        except DomainError as error:
            flash(str(error.message), "danger")
        else:
            session.clear()
            login_user(user)
            sessions.open_session(user.get_id())
            session.permanent = True
            home = url_for("portal.home") if user.is_portal else url_for("dashboard.index")
            target = safe_next(request.args.get("next"), home)
            if user.is_portal and not target.startswith(home):
                target = home
            return redirect(target)
    return render_template("auth/login.html", form=form, identifier_help=identifier_help)


@bp.route("/logout", methods=["POST"])
@authenticated
def logout():
    sessions.close_session()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@public
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        try:
            # Only queues the work: the same time whether or not the account exists.
            services.request_password_reset(g.tenant, form.email.data, client_address())
        except services.ResetThrottled as error:
            flash(str(error.message), "danger")
            return render_template("auth/forgot_password.html", form=form), 429
        # The same answer whether or not the account exists: it must not reveal accounts.
        flash(_("If an account with that e-mail exists, we have sent a link to it to choose a new password."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


def _password_from_link(purpose: str, template: str, done_message: str):
    token = request.view_args["token"]
    try:
        user = services.token_user(token, purpose)
    except DomainError as error:
        return render_template("auth/link_invalid.html", message=error.message), 404
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            services.consume_token(token, purpose, form.password.data, form.confirm.data)
        except DomainError as error:
            getattr(form, error.field or "password").errors.append(str(error.message))
        else:
            flash(done_message, "success")
            return redirect(url_for("auth.login"))
    return render_template(template, form=form, user=user)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    return _password_from_link(
        TOKEN_RESET, "auth/reset_password.html", _("Your password has been changed. You can log in now.")
    )


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@public
def accept_invitation(token: str):
    return _password_from_link(
        TOKEN_INVITE, "auth/accept_invitation.html", _("Welcome! Your account is ready: log in with your new password.")
    )


@bp.route("/profile", methods=["GET", "POST"])
@authenticated
def profile():
    return own_account_page(ProfileForm, "profile-name", "auth/profile.html")


def own_account_page(profile_form_class, sent_when: str, template: str):
    """One's own page: a profile form and the change-password form (staff profile, portal account).

    Two forms on one page: each reads the request only when it is the one submitted, which the
    field ``sent_when`` of the profile form tells.
    """
    user = current_user._get_current_object()
    profile_sent = request.method == "POST" and sent_when in request.form
    password_sent = request.method == "POST" and "password-current" in request.form
    form = profile_form_class(formdata=request.form if profile_sent else None, obj=user, prefix="profile")
    password_form = ChangePasswordForm(formdata=request.form if password_sent else None, prefix="password")
    here = url_for(request.endpoint, **request.view_args)
    if profile_sent and form.validate():
        form.apply_to(user)
        db.session.commit()
        session.pop("lang", None)
        flash(_("Your profile has been saved."), "success")
        return redirect(here)
    if password_sent and password_form.validate() and _change_own_password(user, password_form):
        return redirect(here)
    return render_template(template, form=form, password_form=password_form)


def _change_own_password(user, password_form: ChangePasswordForm) -> bool:
    """Check the current password and set the new one.

    False leaves the reasons on the form's fields.
    """
    if not services.verify_password(user.password_hash, password_form.current.data):
        password_form.current.errors.append(_("The current password is not correct."))
        return False
    try:
        services.set_password(user, password_form.password.data, password_form.confirm.data)
    except DomainError as error:
        getattr(password_form, error.field or "password").errors.append(str(error.message))
        return False
    db.session.commit()
    # The session nonce changed: log in again on this browser, every other one is out.
    login_user(user)
    sessions.open_session(user.get_id())
    flash(_("Your password has been changed."), "success")
    return True
