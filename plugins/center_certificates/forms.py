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
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from core.api import CheckboxListField, DomainError, choices, db
from plugins.center_certificates import services
from plugins.center_certificates.models import DEFAULT_LEAD_DAYS, NOTE_MAX, STATUS_LABELS, STATUSES, Certificate


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    lead_days = IntegerField(
        _l("“Expiring soon” starts this many days before the validity date"),
        default=DEFAULT_LEAD_DAYS,
        # InputRequired, not DataRequired: 0 (expiring soon only from the validity date) is a value.
        validators=[InputRequired(), NumberRange(min=0, max=365)],
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

    def hand_in(self, tenant, certificate: Certificate, *, by_client: bool, actor, following: bool = False):
        """Gives what was filled in to the services: the certificate's own document, or with
        ``following`` the next document of one that expires soon. Returns the certificate written,
        or None: a refusal is shown on the field it is about (the file's when it names none) and
        nothing of it is kept."""
        upload = self.file.data if self.file.data and self.file.data.filename else None
        document = {
            "validity_date": self.validity_date.data,
            "notes": self.notes.data,
            "upload": upload,
            "filename": upload.filename if upload else None,
            "by_client": by_client,
            "actor": actor,
        }
        try:
            if following:
                return services.hand_in_next(tenant, certificate, **document)
            if not by_client and upload is None and certificate.file_id is None and not self.validity_date.data:
                # Staff may write notes on a certificate before the client has sent anything.
                return services.update_notes(certificate, self.notes.data)
            return services.submit(tenant, certificate, **document)
        except DomainError as error:
            db.session.rollback()
            getattr(self, error.field or "file").errors.append(str(error.message))
            return None


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Why is it rejected? The client will read it."), validators=[Length(max=NOTE_MAX)])


class RequestForm(FlaskForm):
    template = SelectField(_l("Certificate to request"), coerce=int, validators=[DataRequired()])


class GenerateForm(FlaskForm):
    # Offered only to who sees every client (the view leaves it out for the others).
    scope = RadioField(
        _l("For whom"),
        choices=choices(
            [
                (services.CENTRES, _l("The active clients of the centres I choose")),
                (services.ALL_CLIENTS, _l("Every active client, also those in no centre")),
            ]
        ),
        default=services.CENTRES,
        validators=[Optional()],
    )
    groups = CheckboxListField(_l("Centres"), coerce=int)
    # What the confirmation shown was counted for: confirming anything else counts again.
    counted_scope = HiddenField()
    counted_groups = HiddenField()
    counted = HiddenField()
    counted_notices = HiddenField()
    # Off by default: a bulk action tells the clients only when the person chooses so.
    notify = BooleanField(_l("Notify the clients by e-mail"), default=False)


class HeldNoticesForm(FlaskForm):
    """The confirmation of telling the clients after all: the number it was shown with."""

    counted = HiddenField()


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
