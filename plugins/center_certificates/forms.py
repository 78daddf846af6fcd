from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from core.forms import CheckboxListField, choices
from plugins.center_certificates.models import DEFAULT_LEAD_DAYS, NOTE_MAX, STATUS_LABELS, STATUSES


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    lead_days = IntegerField(
        _l("“Expiring soon” starts this many days before the validity date"),
        default=DEFAULT_LEAD_DAYS,
        validators=[DataRequired(), NumberRange(min=0, max=365)],
    )
    auto_for_new_clients = BooleanField(_l("Request a certificate from this template for every new client"))
    renew_on_expiry = BooleanField(
        _l("When a certificate expires, request a new one from this template (the old one goes to the history)")
    )
    active = BooleanField(_l("In use"), default=True)


class DocumentForm(FlaskForm):
    """The document: file, validity date and notes (Editar; also the client's upload)."""

    file = FileField(_l("File (JPG, PNG, HEIC or PDF)"))
    validity_date = DateField(_l("Valid until (as written on the document)"), validators=[Optional()])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=NOTE_MAX)])


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Why is it rejected? The client will read it."), validators=[Length(max=NOTE_MAX)])


class RequestForm(FlaskForm):
    template = SelectField(_l("Certificate to request"), coerce=int, validators=[DataRequired()])


class GenerateForm(FlaskForm):
    groups = CheckboxListField(_l("Centres"), coerce=int)


class ReportFilterForm(FlaskForm):
    class Meta:
        csrf = False

    group = SelectField(_l("Centre"), validators=[Optional()])
    status = SelectField(_l("Status"), validators=[Optional()])

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.group.choices = choices([("", _l("All centres"))] + [(str(g.id), g.name) for g in groups])
        self.status.choices = choices(
            [("", _l("Any status")), ("none", _l("Not requested"))] + [(s, STATUS_LABELS[s]) for s in STATUSES]
        )
