"""Outbound e-mail: rendered in the recipient's language, delivered by a ``mail``-queue job.

With no SMTP server configured (the embedded default) messages are written as ``.eml`` files
into ``instance/outbox/``.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale
from rq import Retry

from core.jobs.services import get_queue

DELIVERY_RETRY_INTERVALS = [30, 120, 600, 1800, 3600]


def render_message(to: str, subject, template: str, locale: str, **context) -> EmailMessage:
    """Build a text + HTML message from ``templates/mail/<template>.txt|.html`` in ``locale``."""
    with force_locale(locale):
        subject_text = str(subject)
        text = render_template(f"mail/{template}.txt", subject=subject_text, **context)
        html = render_template(f"mail/{template}.html", subject=subject_text, **context)
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject_text
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="ventanilla.localhost")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    # After the body: set_content() drops every Content-* header already present.
    message["Content-Language"] = locale
    return message


def send_email(to: str, subject, template: str, locale: str, **context) -> str:
    """Queue a message for delivery; returns its Message-ID."""
    message = render_message(to, subject, template, locale, **context)
    get_queue("mail").enqueue(
        "core.mail.services.deliver",
        message.as_string(),
        retry=Retry(max=len(DELIVERY_RETRY_INTERVALS), interval=DELIVERY_RETRY_INTERVALS),
        job_id=f"mail-{uuid.uuid4().hex}",
    )
    return message["Message-ID"]


def deliver(raw_message: str) -> str:
    """The ``mail`` job: hand the message to SMTP, or write it into the outbox folder."""
    from core.jobs.runner import _application

    app = _application()
    with app.app_context():
        config = app.config
        if not config.get("SMTP_HOST"):
            outbox = Path(config["OUTBOX_DIR"])
            outbox.mkdir(parents=True, exist_ok=True)
            path = outbox / f"{uuid.uuid4().hex}.eml"
            path.write_text(raw_message, encoding="utf-8")
            return str(path)
        security = config["SMTP_SECURITY"]
        host, port = config["SMTP_HOST"], config["SMTP_PORT"]
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, context=ssl.create_default_context(), timeout=30)
        else:
            client = smtplib.SMTP(host, port, timeout=30)
        with client:
            if security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USERNAME"):
                client.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
            from email import message_from_string, policy

            client.send_message(message_from_string(raw_message, policy=policy.default))
        return "sent"
