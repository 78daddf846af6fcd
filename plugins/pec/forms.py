"""The panel's forms. They carry CSRF and draw the fields; the rules are in the services, whose
``PecError`` s come back onto the fields they name (``show_errors``)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from core.api import choices
from plugins.pec.catalogue import DEFAULT_BOX_TYPES, RenewalMode
from plugins.pec.errors import PecErrors
from plugins.pec.holders import KINDS, SEXES
from plugins.pec.lifecycle import STATE_LABELS, BoxState
from plugins.pec.models import CONSUMO, DOCUMENT_KINDS, DOCUMENT_LABELS, PACCHETTO, PACKAGE_MODES


def show_errors(form, error) -> list[str]:
    """Put a service's refusal on the fields it names; what names no field of the form is returned
    to be shown above it."""
    loose = []
    problems = error.errors if isinstance(error, PecErrors) else [error]
    for problem in problems:
        field = form._fields.get(problem.field or "") if problem.field else None
        if field is not None and field.name != "csrf_token":
            field.errors = [*field.errors, str(problem.message)]
        else:
            loose.append(str(problem.message))
    return loose


def _box_types():
    return choices((t.code, f"{t.name} ({t.mailbox_mb // 1024} GB)") for t in DEFAULT_BOX_TYPES)


def _renewals():
    return choices((mode.value, mode.label) for mode in (RenewalMode.MANUAL, RenewalMode.TACIT))


def _years():
    return choices((str(n), str(n)) for n in range(1, 6))


class BoxForm(FlaskForm):
    """ "Inserisci nuovo account certificato": box, domain, holder, agent; the holder's data when new."""

    local_part = StringField(_l("Box name (before @)"))
    domain_id = SelectField(_l("Domain"), coerce=int, validators=[Optional()], validate_choice=False)
    codice_fiscale = StringField(_l("Holder's codice fiscale"))
    box_type = SelectField(_l("Type of box"), choices=_box_types, validate_choice=False)
    years = SelectField(_l("Duration (years)"), choices=_years, default="1", validate_choice=False)
    renewal = SelectField(_l("Renewal"), choices=_renewals, default=RenewalMode.MANUAL.value, validate_choice=False)
    want_agent = RadioField(
        _l("Assign the box to a sales agent?"),
        choices=choices((("no", _l("No")), ("yes", _l("Yes")))),
        default="no",
        validate_choice=False,
    )
    agent_id = SelectField(_l("Agent"), coerce=int, validators=[Optional()], validate_choice=False)
    # A new holder.
    kind = SelectField(_l("Type of holder"), choices=choices(KINDS), validate_choice=False)
    first_name = StringField(_l("First name"))
    last_name = StringField(_l("Surname"))
    company_name = StringField(_l("Ragione sociale"))
    partita_iva = StringField(_l("Partita IVA"))
    email = StringField(_l("Holder's e-mail"))
    phone = StringField(_l("Holder's telephone"))
    verify = HiddenField()


class AddressForm(FlaskForm):
    street = StringField(_l("Address (street and number)"))
    comune = StringField(_l("Comune"))
    provincia = StringField(_l("Provincia"))
    cap = StringField(_l("CAP"))
    nazione = StringField(_l("Country"), default="IT")
    phone = StringField(_l("Telephone for communications"))
    mobile = StringField(_l("Mobile (optional)"))
    fax = StringField(_l("Fax (optional)"))


class ChooseAddressForm(FlaskForm):
    address_id = RadioField(_l("Holder's addresses"), coerce=int, validators=[Optional()], validate_choice=False)


class ActivityForm(FlaskForm):
    company_name = StringField(_l("Ragione sociale"))
    partita_iva = StringField(_l("Partita IVA (optional)"))
    description = StringField(_l("Activity (optional)"))
    address_id = SelectField(_l("At the address"), coerce=int, validators=[Optional()], validate_choice=False)


class ChooseActivityForm(FlaskForm):
    activity_id = RadioField(_l("Holder's activities"), coerce=int, validators=[Optional()], validate_choice=False)


class ProfileForm(FlaskForm):
    partita_iva = StringField(_l("Partita IVA"))
    birth_date = StringField(_l("Date of birth"))
    sex = SelectField(_l("Sex"), choices=choices([("", "—"), *SEXES]), validate_choice=False)
    birth_comune = StringField(_l("Comune of birth"))
    birth_provincia = StringField(_l("Provincia of birth"))
    birth_country = StringField(_l("Country of birth"))


class BoxSearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Box"))
    domain = SelectField(_l("Domain"), validators=[Optional()], validate_choice=False)
    state = SelectField(_l("State"), validators=[Optional()], validate_choice=False)
    inserted_from = DateField(_l("Inserted from"), validators=[Optional()])
    inserted_to = DateField(_l("Inserted until"), validators=[Optional()])
    activated_from = DateField(_l("Activated from"), validators=[Optional()])
    activated_to = DateField(_l("Activated until"), validators=[Optional()])
    holder = StringField(_l("Holder"))
    agent = SelectField(_l("Agent"), validators=[Optional()], validate_choice=False)
    expiring = SelectField(_l("Expiring"), validators=[Optional()], validate_choice=False)

    def __init__(self, *args, domains=(), agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.domain.choices = choices([("", _l("Every domain"))] + [(str(d.id), d.name) for d in domains])
        self.state.choices = choices([("", _l("Every state"))] + [(s.value, STATE_LABELS[s]) for s in BoxState])
        self.agent.choices = choices([("", _l("Every agent"))] + [(str(a.id), a.name) for a in agents])
        self.expiring.choices = choices(
            [("", "—"), ("7", _l("within 7 days")), ("30", _l("within 30 days")), ("90", _l("within 90 days"))]
        )


class RenewForm(FlaskForm):
    years = SelectField(_l("Renew for (years)"), choices=_years, default="1", validate_choice=False)


class RefuseForm(FlaskForm):
    reason = TextAreaField(_l("Why is the activation refused?"))


class AgentChoiceForm(FlaskForm):
    agent_id = SelectField(_l("Replace with"), coerce=int, validators=[Optional()], validate_choice=False)


class PackageChoiceForm(FlaskForm):
    package_id = SelectField(_l("Package"), coerce=int, validators=[Optional()], validate_choice=False)


class DocumentForm(FlaskForm):
    kind = SelectField(
        _l("Document"), choices=choices((k, DOCUMENT_LABELS[k]) for k in DOCUMENT_KINDS), validate_choice=False
    )
    file = FileField(_l("PDF file"))
    notes = StringField(_l("Notes (optional)"))


class SubentroForm(FlaskForm):
    codice_fiscale = StringField(_l("Codice fiscale or partita IVA of the new holder record"))


class AgentForm(FlaskForm):
    company_name = StringField(_l("Ragione sociale"))
    first_name = StringField(_l("First name"))
    last_name = StringField(_l("Surname"))
    email = StringField(_l("E-mail"))
    phone = StringField(_l("Telephone (optional)"))
    partita_iva = StringField(_l("Partita IVA (optional)"))
    domains = SelectField(_l("Domain"), validators=[Optional()], validate_choice=False)


class AgentDomainForm(FlaskForm):
    domain = StringField(_l("Domain to associate"))


class PackageForm(FlaskForm):
    name = StringField(_l("Name of the package"))
    size = IntegerField(_l("Number of boxes"), validators=[Optional()])
    years = SelectField(_l("Duration of the fee (years)"), choices=_years, default="1", validate_choice=False)


class AssistantForm(FlaskForm):
    first_name = StringField(_l("First name"))
    last_name = StringField(_l("Surname"))
    codice_fiscale = StringField(_l("Codice fiscale (optional)"))
    email = StringField(_l("E-mail (their login)"))
    phone = StringField(_l("Telephone (optional)"))
    company_name = StringField(_l("Ragione sociale (optional)"))
    partita_iva = StringField(_l("Partita IVA (optional)"))
    street = StringField(_l("Address (optional)"))
    comune = StringField(_l("Comune"))
    provincia = StringField(_l("Provincia"))
    cap = StringField(_l("CAP"))
    domain_id = SelectField(
        _l("Domain on which they register boxes"), coerce=int, validators=[Optional()], validate_choice=False
    )
    pec_addresses = TextAreaField(_l("PEC addresses for communications (one per line)"))
    package_mode = RadioField(
        _l("Boxes"),
        choices=choices(((CONSUMO, PACKAGE_MODES[CONSUMO]), (PACCHETTO, PACKAGE_MODES[PACCHETTO]))),
        default=CONSUMO,
        validate_choice=False,
    )


class PecAddressesForm(FlaskForm):
    pec_addresses = TextAreaField(_l("PEC addresses for communications (one per line)"))


class ImportForm(FlaskForm):
    kind = RadioField(
        _l("The file holds"),
        choices=choices((("holders", _l("Holders")), ("boxes", _l("Boxes")))),
        default="holders",
        validate_choice=False,
    )
    file = FileField(_l("CSV file"))


class SettingsForm(FlaskForm):
    user_id = SelectField(
        _l("Who holds the reseller's panel code"), coerce=int, validators=[Optional()], validate_choice=False
    )
    resend = BooleanField(_l("Send the panel code to them by e-mail"))


class DomainForm(FlaskForm):
    name = StringField(_l("Domain"))
    certified_on = DateField(_l("Certified on"), validators=[Optional()])
    expires_on = DateField(_l("Registration expires on"), validators=[Optional()])
    mx_host = StringField(_l("Mail server (MX)"))
    provider = SelectField(_l("Activation"), validate_choice=False)
    default_box_type = SelectField(_l("Default type of box"), choices=_box_types, validate_choice=False)
    active = BooleanField(_l("In use"), default=True)
    notes = TextAreaField(_l("Notes"))
