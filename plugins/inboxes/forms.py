"""The plugin's forms. They only parse what was typed; the services decide what is valid."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from core.api import CheckboxListField, choices
from plugins.inboxes.connectors.base import AFTER_FETCH_LABELS, SECURITY_LABELS, AfterFetch, Protocol, Security
from plugins.inboxes.connectors.presets import choices as provider_choices
from plugins.inboxes.flows import TRIGGER_LABELS
from plugins.inboxes.mailboxes import DEFAULT_PROCESSED, DEFAULT_QUARANTINE, MailboxData
from plugins.inboxes.models import (
    DEFAULT_MAX_MB,
    DEFAULT_POLL_MINUTES,
    MAILBOX_MODE_LABELS,
    MAILBOX_MODES,
    STATUS_LABELS,
    STATUSES,
)

PASSWORD_HELP = _l("Saved encrypted and never shown again. Leave it empty to keep the saved one.")
SMTP_SECURITY_LABELS = {
    Security.SSL: _l("SSL/TLS (usually port 465)"),
    Security.STARTTLS: _l("STARTTLS (usually port 587)"),
    Security.NONE: _l("None (unencrypted)"),
}


def _optional_int(value):
    return int(value) if value not in (None, "") else None


class _MailboxForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=120)])
    provider = SelectField(_l("Provider"), validators=[Optional()])
    host = StringField(_l("Server"), validators=[Optional(), Length(max=253)])
    port = IntegerField(_l("Server port"), validators=[Optional(), NumberRange(min=1, max=65535)])
    username = StringField(_l("User"), validators=[Optional(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[Optional(), Length(max=1000)])
    active = BooleanField(_l("Active"), default=True)

    def data_for_service(self) -> MailboxData:
        return MailboxData(
            name=self.name.data or "",
            provider=self.provider.data or "",
            host=self.host.data or "",
            port=self.port.data,
            security=self.security.data,
            username=self.username.data or "",
            password=self.password.data or "",
            active=bool(self.active.data),
        )


class InboundForm(_MailboxForm):
    """Entrada: where mail to be read arrives."""

    email_address = StringField(_l("E-mail address"), validators=[Optional(), Length(max=254)])
    protocol = RadioField(
        _l("Protocol"), choices=choices([(Protocol.IMAP.value, "IMAP"), (Protocol.POP3.value, "POP3")]), default="imap"
    )
    security = SelectField(
        _l("Security"), choices=choices((s.value, label) for s, label in SECURITY_LABELS.items()), default="ssl"
    )
    verify_tls = BooleanField(_l("Verify the server's certificate"), default=True)
    ca_certificate = TextAreaField(
        _l("Trusted CA certificate (PEM, optional: for a server whose certificate your own authority issued)"),
        validators=[Optional(), Length(max=20000)],
    )
    folder = StringField(_l("Inbox folder"), default="INBOX", validators=[Optional(), Length(max=200)])
    after_fetch = SelectField(
        _l("After reading a message"),
        choices=choices((a.value, label) for a, label in AFTER_FETCH_LABELS.items()),
        default=AfterFetch.MOVE.value,
    )
    processed_folder = StringField(
        _l("Folder for processed messages"), default=DEFAULT_PROCESSED, validators=[Optional(), Length(max=200)]
    )
    quarantine_folder = StringField(
        _l("Folder for messages that cannot be processed"),
        default=DEFAULT_QUARANTINE,
        validators=[Optional(), Length(max=200)],
    )
    poll_minutes = IntegerField(
        _l("Read every (minutes)"), default=DEFAULT_POLL_MINUTES, validators=[InputRequired(), NumberRange(1, 1440)]
    )
    max_message_mb = IntegerField(
        _l("Maximum message size (MB)"), default=DEFAULT_MAX_MB, validators=[InputRequired(), NumberRange(1, 50)]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider.choices = choices([("", _l("Other (type the server)")), *provider_choices("imap")])

    def data_for_service(self) -> MailboxData:
        data = super().data_for_service()
        data.email_address = self.email_address.data or ""
        data.protocol = self.protocol.data or "imap"
        data.verify_tls = bool(self.verify_tls.data)
        data.ca_certificate = self.ca_certificate.data or ""
        data.folder = self.folder.data or "INBOX"
        data.after_fetch = self.after_fetch.data
        data.processed_folder = self.processed_folder.data or ""
        data.quarantine_folder = self.quarantine_folder.data or ""
        data.poll_minutes = self.poll_minutes.data
        data.max_message_mb = self.max_message_mb.data
        return data


class OutboundForm(_MailboxForm):
    """Salida: where the system's messages leave from."""

    security = SelectField(
        _l("TLS/SSL"),
        choices=choices((s.value, label) for s, label in SMTP_SECURITY_LABELS.items()),
        default="starttls",
    )
    use_auth = BooleanField(_l("The server requires authentication (user and password)"), default=True)
    sender_address = StringField(_l("Sender address"), validators=[Optional(), Length(max=254)])
    sender_name = StringField(_l("Sender name"), validators=[Optional(), Length(max=120)])
    is_default = BooleanField(_l("Default outbound mailbox of the system"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider.choices = choices([("", _l("Other (type the server)")), *provider_choices("smtp")])

    def data_for_service(self) -> MailboxData:
        data = super().data_for_service()
        data.verify_tls = True
        data.use_auth = bool(self.use_auth.data)
        data.sender_address = self.sender_address.data or ""
        data.sender_name = self.sender_name.data or ""
        data.is_default = bool(self.is_default.data)
        return data


class _MailboxChoices(CheckboxListField):
    """Checkboxes whose choice the service checks, saying why a mailbox cannot be chosen (it feeds
    another contract) rather than "not a valid choice"."""

    def pre_validate(self, form) -> None:
        return None


class ContractForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=200)])
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=60)])
    client_id = SelectField(_l("Client"), coerce=_optional_int, validators=[Optional()])
    outbound_mailbox_id = SelectField(
        _l("Outbound e-mail mailbox (Bandeja de Salida)"), coerce=_optional_int, validators=[Optional()]
    )
    inbound_mailbox_ids = _MailboxChoices(
        _l("Inbound mailboxes: their mail becomes this contract's requests"), coerce=int
    )
    flow_id = SelectField(_l("Flow"), coerce=_optional_int, validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)


class FlowForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    reply_mode = RadioField(
        _l("Staff replies to requests leave through"),
        choices=choices((mode, MAILBOX_MODE_LABELS[mode]) for mode in MAILBOX_MODES),
        default="specific",
    )
    active = BooleanField(_l("Active"), default=True)


class StepForm(FlaskForm):
    """The "Envío de Mensaje - E-mail" figure: its message and its recipients."""

    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=120)])
    trigger = SelectField(
        _l("Runs when the request becomes"), choices=choices((s, TRIGGER_LABELS[s]) for s in STATUSES), default="new"
    )
    mailbox_mode = RadioField(
        _l("Outbound e-mail mailbox configuration"),
        choices=choices((mode, MAILBOX_MODE_LABELS[mode]) for mode in MAILBOX_MODES),
        default="specific",
    )
    to_requester = BooleanField(_l("Whoever wrote the request"), default=True)
    to_client = BooleanField(_l("The contract's client (its e-mail address)"))
    extra_recipients = TextAreaField(
        _l("Other recipients (addresses separated by commas)"), validators=[Optional(), Length(max=4000)]
    )
    subject = StringField(_l("Subject"), validators=[InputRequired(), Length(max=300)])
    body = TextAreaField(_l("Message"), validators=[InputRequired(), Length(max=20000)])
    position = IntegerField(_l("Position"), default=10, validators=[Optional(), NumberRange(0, 1000)])


class ReplyForm(FlaskForm):
    to = StringField(_l("To"), validators=[Optional(), Length(max=2000)])
    cc = StringField(lazy_pgettext("mail", "Cc"), validators=[Optional(), Length(max=2000)])
    text = TextAreaField(_l("Answer"), validators=[Optional(), Length(max=100_000)])
    status = SelectField(_l("Then set the status to"), validators=[Optional()])
    files = MultipleFileField(_l("Attachments"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.status.choices = choices([("", _l("(leave it)"))] + [(s, STATUS_LABELS[s]) for s in STATUSES])


class StatusForm(FlaskForm):
    status = SelectField(_l("Status"), choices=choices((s, STATUS_LABELS[s]) for s in STATUSES))


class QuarantineActionForm(FlaskForm):
    back = HiddenField()
