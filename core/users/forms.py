from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from core.auth.forms import language_choices
from core.forms import CheckboxListField, choices


class UserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    roles = CheckboxListField(_l("Roles"), coerce=int)
    groups = CheckboxListField(_l("Groups"), coerce=int)
    locale = SelectField(_l("Language"), validators=[Optional()])

    def __init__(self, *args, roles=(), groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.roles.choices = choices((r.id, r.name) for r in roles)
        self.groups.choices = choices((g.id, g.name) for g in groups)
        self.locale.choices = language_choices(str(_l("The organisation's language")))


class InviteUserForm(UserForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)])
    status = SelectField(
        _l("Status"),
        choices=choices(
            [
                ("", _l("All")),
                ("active", lazy_pgettext("user", "Active")),
                ("invited", lazy_pgettext("user", "Invited")),
                ("inactive", lazy_pgettext("user", "Deactivated")),
            ]
        ),
        validators=[Optional()],
    )
    role = SelectField(_l("Role"), validators=[Optional()])
