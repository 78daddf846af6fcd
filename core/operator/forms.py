from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from core.auth.forms import language_choices
from core.forms import choices
from core.provisioning import time_zones


class OperatorLoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class TenantForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    language = SelectField(_l("Default language"), validators=[DataRequired()])
    timezone = SelectField(_l("Time zone"), validators=[DataRequired()], default="Europe/Madrid")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = language_choices()
        self.timezone.choices = choices((tz, tz) for tz in time_zones())


class NewTenantForm(TenantForm):
    slug = StringField(_l("Code (appears in the address)"), validators=[DataRequired(), Length(max=40)])
    admin_email = EmailField(_l("Administrator's e-mail"), validators=[Optional(), Email(), Length(max=254)])
    admin_name = StringField(_l("Administrator's name"), validators=[Optional(), Length(max=200)])


class AdministratorForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])


class LicenceForm(FlaskForm):
    licensed = BooleanField(_l("Licensed"))
