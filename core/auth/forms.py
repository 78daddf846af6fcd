from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from core.config import LANGUAGES
from core.forms import choices
from core.i18n import LANGUAGE_NAMES


class LoginForm(FlaskForm):
    # Not an e-mail field: a plugin may let people sign in with another identifier (a panel code).
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(), Length(max=200)])


def language_choices(with_default: str | None = None):
    pairs = [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]
    if with_default is not None:
        pairs.insert(0, ("", with_default))
    return choices(pairs)


class LanguageForm(FlaskForm):
    """What a client changes about their own portal account."""

    locale = SelectField(_l("Language"), validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.locale.choices = language_choices(str(_l("The organisation's language")))

    def apply_to(self, user) -> None:
        user.locale = self.locale.data or None


class ProfileForm(LanguageForm):
    """What a member of staff changes about themselves."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])

    def apply_to(self, user) -> None:
        super().apply_to(user)
        user.name = self.name.data.strip()


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(), Length(max=200)])
