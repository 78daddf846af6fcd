"""The tenant administrator's SMTP form. Values are checked in ``core.mail.validation``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import Length, Optional

from core.forms import choices
from core.mail.models import SECURITY_NONE, SECURITY_SSL, SECURITY_STARTTLS


class MailSettingsForm(FlaskForm):
    host = StringField(_l("SMTP server"), validators=[Optional(), Length(max=253)])
    port = StringField(_l("Port"), default="587", validators=[Optional(), Length(max=5)])
    security = SelectField(_l("Security"), default=SECURITY_STARTTLS)
    username = StringField(_l("User name"), validators=[Optional(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[Optional(), Length(max=500)])
    from_address = StringField(_l("From address"), validators=[Optional(), Length(max=254)])
    rate_per_minute = StringField(_l("Messages per minute"), validators=[Optional(), Length(max=9)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.security.choices = choices(
            [
                (SECURITY_STARTTLS, _l("STARTTLS (usually port 587)")),
                (SECURITY_SSL, _l("SSL/TLS (usually port 465)")),
                (SECURITY_NONE, _l("None: not encrypted")),
            ]
        )
