from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, EmailField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from core.auth.forms import language_choices
from core.clients.taxids import COUNTRIES
from core.forms import CheckboxListField, choices


def country_choices():
    """Spain and Italy first, then every country in the user's language."""
    names = get_locale().territories
    others = sorted(
        ((code, name) for code, name in names.items() if code in COUNTRIES and code not in ("ES", "IT")),
        key=lambda pair: pair[1],
    )
    return choices([("ES", names.get("ES", "España")), ("IT", names.get("IT", "Italia")), *others])


class ClientForm(FlaskForm):
    kind = RadioField(
        _l("Type"), choices=choices([("person", _l("Person")), ("company", _l("Company"))]), default="person"
    )
    country = SelectField(_l("Country of the tax id"), default="ES")
    tax_id = StringField(_l("Tax id (NIF, NIE, CIF, codice fiscale, partita IVA…)"), validators=[Length(max=40)])
    first_name = StringField(_l("First name"), validators=[Optional(), Length(max=120)])
    last_name = StringField(_l("Last names"), validators=[Optional(), Length(max=200)])
    company_name = StringField(_l("Company name"), validators=[Optional(), Length(max=250)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=5000)])
    locale = SelectField(_l("Language"), validators=[Optional()])
    groups = CheckboxListField(_l("Groups"), coerce=int)

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()
        self.locale.choices = language_choices(str(_l("The organisation's language")))
        self.groups.choices = choices((g.id, g.name) for g in groups)


class AddressForm(FlaskForm):
    label = StringField(_l("Label (home, office…)"), validators=[Optional(), Length(max=80)])
    street = StringField(_l("Street and number"), validators=[Length(max=250)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=16)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=120)])
    province = StringField(_l("Province"), validators=[Optional(), Length(max=120)])
    country = SelectField(_l("Country"), default="ES")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()


class ClientFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)])
    group = SelectField(_l("Group"), validators=[Optional()])
    active = SelectField(
        _l("Status"),
        choices=choices([("yes", _l("Active clients")), ("no", _l("Deactivated clients")), ("all", _l("All"))]),
        default="yes",
        validators=[Optional()],
    )


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()])
    group = SelectField(_l("Put new clients in the group"), validators=[Optional()])
    # Off by default: an import of a whole client base must not mail every client by accident.
    notify = BooleanField(_l("Notify the new clients by e-mail"), default=False)


class HeldNoticesForm(FlaskForm):
    """The confirmation of sending an import's held notices: the number it was shown with."""

    counted = HiddenField()
