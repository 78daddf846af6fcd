"""The forms of the sedes data: certificate upload, a mailbox (Nuevo buzón and its edit), the
operator's sede of the catalogue. Views give the choices; services check the rules."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, IntegerField, PasswordField, RadioField, SelectField, StringField
from wtforms.fields import DateTimeLocalField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from core.api import choices
from plugins.sedes.models import DEFAULT_MAX_CONCURRENCY

OWNER_CLIENT = "client"
OWNER_OFFICE = "office"


class CertificateUploadForm(FlaskForm):
    file = FileField(_l("Certificate file (.pfx or .p12)"))
    password = PasswordField(_l("Certificate password"), validators=[Length(max=200)])
    owner = RadioField(
        _l("Whose certificate it is"),
        choices=choices(
            [
                (OWNER_CLIENT, _l("A client's: the client whose NIF/CIF is the certificate's")),
                (OWNER_OFFICE, _l("The office's own, to read clients' mailboxes under apoderamiento")),
            ]
        ),
        default=OWNER_CLIENT,
    )


class MailboxForm(FlaskForm):
    certificate_id = SelectField(_l("Digital certificate"), coerce=int, validators=[InputRequired()])
    client_tax_id = StringField(
        _l("Client's NIF/CIF"),
        validators=[Optional(), Length(max=20)],
        description=_l("Empty: the client whose NIF/CIF is the certificate's."),
    )
    as_proxy = BooleanField(_l("Mailbox under apoderamiento"))
    next_sync_at = DateTimeLocalField(
        _l("Next sync"), format="%Y-%m-%dT%H:%M", validators=[Optional()], description=_l("Empty: in a few minutes.")
    )
    period_days = IntegerField(_l("Every (days)"), default=1, validators=[InputRequired(), NumberRange(min=1, max=365)])


class SedeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[InputRequired(), Length(max=32)])
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=200)])
    portal_url = StringField(_l("Portal link (Acceder al portal)"), validators=[Optional(), Length(max=500)])
    register_url = StringField(_l("Registration link (Registrarse)"), validators=[Optional(), Length(max=500)])
    signature_test_url = StringField(
        _l("Signature test link (Prueba de firma)"), validators=[Optional(), Length(max=500)]
    )
    connector = SelectField(_l("Connector"), validators=[Optional()])
    base_url = StringField(_l("Service base URL"), validators=[Optional(), Length(max=500)])
    needs_ssid = BooleanField(_l("Needs the client's CCC or NAF"))
    deadline_days = IntegerField(
        _l("Deadline (natural days)"),
        validators=[Optional(), NumberRange(min=1, max=60)],
        description=_l("10 for notifications, 3 for LexNET; empty: no legal deadline."),
    )
    max_concurrency = IntegerField(
        _l("Mailboxes read at the same time"),
        default=DEFAULT_MAX_CONCURRENCY,
        validators=[Optional(), NumberRange(min=1, max=1000)],
        description=_l(
            "At most, by every worker of every organisation together, so that the sede is never hammered "
            "(empty: %(default)s).",
            default=DEFAULT_MAX_CONCURRENCY,
        ),
    )
    position = IntegerField(_l("Position in the list"), default=0, validators=[Optional()])
    active = BooleanField(_l("In use"), default=True)
