from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from core.auth.forms import language_choices
from core.forms import choices
from core.provisioning import time_zones


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    language = SelectField(_l("Default language"), validators=[DataRequired()])
    timezone = SelectField(_l("Time zone"), validators=[DataRequired()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = language_choices()
        self.timezone.choices = choices((tz, tz) for tz in time_zones())
