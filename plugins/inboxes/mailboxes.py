"""Mailboxes: saving them (passwords kept for their own server only), and the administrator's buttons.

A password is encrypted at rest (``EncryptedText``), never shown again, and only ever sent to the
server and user it was saved for: changing the server or the user forgets it (it must be typed
again). Servers go through core's ``checked_address``: loopback, private and link-local addresses
are refused unless the operator allows them, and connections go to the address that was checked
while TLS is verified against the name typed.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core.api import DomainError, db, new_message_id, utcnow
from plugins.inboxes import hosts
from plugins.inboxes.connectors import (
    AfterFetch,
    ConnectionReport,
    Credentials,
    Endpoint,
    ErrorKind,
    FetchPolicy,
    Folder,
    MailError,
    Protocol,
    Security,
    fetcher_for,
)
from plugins.inboxes.connectors import smtp as smtp_connector
from plugins.inboxes.connectors.base import DEFAULT_PORTS, MIB
from plugins.inboxes.connectors.presets import provider as find_provider
from plugins.inboxes.models import (
    DEFAULT_MAX_MB,
    DEFAULT_POLL_MINUTES,
    INBOUND,
    OUTBOUND,
    PENDING,
    ContractInbox,
    Mailbox,
    Quarantined,
)

DEFAULT_PROCESSED = "Processed"
DEFAULT_QUARANTINE = "Quarantine"
MAX_POLL_MINUTES = 24 * 60
MAX_MESSAGE_MB = 50
SMTP_PORTS = {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25}
MAX_PER_RUN = 200


@dataclass
class MailboxData:
    """What the mailbox form gives. ``password`` empty: keep the stored one (if it still applies)."""

    name: str
    host: str = ""
    port: int | None = None
    security: str = Security.SSL
    verify_tls: bool = True
    username: str = ""
    password: str = ""
    active: bool = True
    # Entrada
    email_address: str = ""
    provider: str = ""
    protocol: str = Protocol.IMAP
    ca_certificate: str = ""
    folder: str = "INBOX"
    after_fetch: str = AfterFetch.MOVE
    processed_folder: str = DEFAULT_PROCESSED
    quarantine_folder: str = DEFAULT_QUARANTINE
    poll_minutes: int = DEFAULT_POLL_MINUTES
    max_message_mb: int = DEFAULT_MAX_MB
    # Salida
    sender_address: str = ""
    sender_name: str = ""
    use_auth: bool = True
    is_default: bool = False


def _email(value: str, field: str, required: bool = True) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise DomainError(_l("Enter an e-mail address."), field=field)
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise DomainError(_l("This is not a valid e-mail address."), field=field) from error


def _ca_certificate(value: str) -> str:
    pem = (value or "").strip()
    if not pem:
        return ""
    try:
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise DomainError(
            _l("This is not a certificate in PEM format (-----BEGIN CERTIFICATE-----)."), field="ca_certificate"
        ) from error
    return pem + "\n"


def _apply_provider(data: MailboxData, direction: str) -> None:
    """A provider chosen with no server typed fills server, port and security from its preset."""
    chosen = find_provider(data.provider) if data.provider else None
    if data.provider and chosen is None:
        raise DomainError(_l("Choose a provider from the list."), field="provider")
    if chosen is None or data.host.strip():
        return
    preset = chosen.server(data.protocol if direction == INBOUND else "smtp")
    if preset is None:
        raise DomainError(_l("This provider does not offer this protocol."), field="provider")
    data.host, data.port, data.security = preset.host, preset.port, preset.security


def _default_port(direction: str, protocol: str, security: str) -> int:
    if direction == OUTBOUND:
        return SMTP_PORTS[Security(security)]
    return DEFAULT_PORTS[(Protocol(protocol), Security(security))]


def _check(data: MailboxData, direction: str) -> None:
    data.name = " ".join((data.name or "").split())
    if not data.name:
        raise DomainError(_l("Give the mailbox a name."), field="name")
    if len(data.name) > 120:
        raise DomainError(_l("At most 120 characters."), field="name")
    if direction == INBOUND and data.protocol not in Protocol.__members__.values():
        raise DomainError(_l("Choose IMAP or POP3."), field="protocol")
    _apply_provider(data, direction)
    if data.security not in Security.__members__.values():
        raise DomainError(_l("Choose the security of the connection."), field="security")
    data.host = hosts.check_host(data.host)
    data.port = hosts.check_port(data.port or _default_port(direction, data.protocol, data.security))
    hosts.check_public(data.host, data.port)
    data.username = (data.username or "").strip()
    if len(data.username) > 254:
        raise DomainError(_l("At most 254 characters."), field="username")
    if direction == INBOUND:
        data.email_address = _email(data.email_address, "email_address", required=False)
        if not data.username and data.email_address:
            data.username = data.email_address  # most servers log in with the address
        if not data.username:
            raise DomainError(_l("Enter the user (usually the e-mail address)."), field="username")
        data.ca_certificate = _ca_certificate(data.ca_certificate)
        data.folder = (data.folder or "").strip() or "INBOX"
        data.processed_folder = (data.processed_folder or "").strip()
        data.quarantine_folder = (data.quarantine_folder or "").strip()
        if data.after_fetch not in AfterFetch.__members__.values():
            raise DomainError(_l("Choose what happens to a message once it is read."), field="after_fetch")
        if data.after_fetch == AfterFetch.MOVE and not data.processed_folder:
            data.processed_folder = DEFAULT_PROCESSED
        if data.protocol == Protocol.POP3:
            data.quarantine_folder = ""  # POP3 has no folders
        if not 1 <= int(data.poll_minutes or 0) <= MAX_POLL_MINUTES:
            raise DomainError(_l("Every 1 to 1440 minutes."), field="poll_minutes")
        if not 1 <= int(data.max_message_mb or 0) <= MAX_MESSAGE_MB:
            raise DomainError(_l("From 1 to %(n)s MB.", n=MAX_MESSAGE_MB), field="max_message_mb")
        problems = policy_of(data).problems(Protocol(data.protocol))
        if problems:
            field = "folder" if "inbox" in str(problems[0]).lower() else "after_fetch"
            raise DomainError(problems[0], field=field)
    else:
        data.sender_address = _email(data.sender_address, "sender_address")
        data.sender_name = " ".join((data.sender_name or "").split())[:120]
        if data.use_auth and not data.username:
            raise DomainError(_l("Enter the user, or say the server needs no authentication."), field="username")


def policy_of(data) -> FetchPolicy:
    """The fetch policy of a mailbox (or of the form's data)."""
    return FetchPolicy(
        folder=data.folder or "INBOX",
        after_fetch=AfterFetch(data.after_fetch),
        processed_folder=data.processed_folder or (DEFAULT_PROCESSED if data.after_fetch == AfterFetch.MOVE else None),
        quarantine_folder=data.quarantine_folder or None,
        max_message_bytes=int(data.max_message_mb or DEFAULT_MAX_MB) * MIB,
        max_messages=MAX_PER_RUN,
    )


_SERVER_FIELDS = ("host", "port", "security", "username", "protocol")


def save_mailbox(mailbox: Mailbox | None, direction: str, data: MailboxData) -> Mailbox:
    """Create or change a mailbox; raises ``DomainError`` (with the field) for what is wrong. Commits."""
    if direction not in (INBOUND, OUTBOUND):
        raise ValueError(f"unknown direction {direction!r}")
    if mailbox is not None and mailbox.direction != direction:
        raise ValueError("a mailbox does not change direction")
    _check(data, direction)
    taken = select(Mailbox.id).where(func.lower(Mailbox.name) == data.name.lower())
    if mailbox is not None:
        taken = taken.where(Mailbox.id != mailbox.id)
    if db.session.scalar(taken) is not None:
        raise DomainError(_l("Another mailbox already has this name."), field="name")
    creating = mailbox is None
    if creating:
        mailbox = Mailbox(direction=direction, fetch_state={})
        db.session.add(mailbox)
    same_server = (
        not creating and (mailbox.host or "").lower() == data.host.lower() and mailbox.username == data.username
    )
    moved = not creating and any(
        getattr(mailbox, name) != getattr(data, name) for name in _SERVER_FIELDS if direction == INBOUND
    )
    mailbox.name = data.name
    mailbox.host, mailbox.port, mailbox.security = data.host, data.port, str(data.security)
    mailbox.verify_tls = bool(data.verify_tls)
    mailbox.username = data.username
    if data.password:
        mailbox.password = data.password
    elif not same_server:
        # Given for another server or user: never sent anywhere else.
        mailbox.password = None
    mailbox.provider = data.provider or ""
    if direction == INBOUND:
        mailbox.email_address = data.email_address
        mailbox.protocol = str(data.protocol)
        mailbox.ca_certificate = data.ca_certificate
        mailbox.folder = data.folder
        mailbox.after_fetch = str(data.after_fetch)
        mailbox.processed_folder = data.processed_folder
        mailbox.quarantine_folder = data.quarantine_folder
        mailbox.poll_minutes = int(data.poll_minutes)
        mailbox.max_message_mb = int(data.max_message_mb)
        if moved:
            # Another server, user or protocol: its message numbers mean nothing here.
            mailbox.fetch_state = {}
    else:
        mailbox.sender_address = data.sender_address
        mailbox.sender_name = data.sender_name
        mailbox.use_auth = bool(data.use_auth)
        if data.is_default and not mailbox.is_default:
            db.session.execute(
                update(Mailbox).where(Mailbox.is_default.is_(True)).values(is_default=False),
                execution_options={"synchronize_session": "fetch"},
            )
            db.session.flush()
        mailbox.is_default = bool(data.is_default)
    if not mailbox.active and data.active:
        _wake(mailbox)
    mailbox.active = bool(data.active)
    if creating or moved:
        _wake(mailbox)
    db.session.commit()
    return mailbox


def _wake(mailbox: Mailbox) -> None:
    """Read it at the next poll, with a clean slate."""
    mailbox.next_sync_at = utcnow()
    mailbox.failures = 0
    mailbox.alerted_at = None


def set_active(mailbox: Mailbox, active: bool) -> None:
    if active and not mailbox.active:
        _wake(mailbox)
    mailbox.active = active
    if not active and mailbox.is_default:
        mailbox.is_default = False
    db.session.commit()


def forget_password(mailbox: Mailbox) -> None:
    mailbox.password = None
    db.session.commit()


# --- connecting -------------------------------------------------------------------------------


def endpoint_of(mailbox: Mailbox, timeout: float = 30.0) -> Endpoint:
    """Where to connect: the checked address of the mailbox's server (raises ``MailError``)."""
    address = hosts.resolve(mailbox.host, mailbox.port)
    return Endpoint(
        host=mailbox.host,
        port=mailbox.port,
        security=Security(mailbox.security),
        verify_tls=mailbox.verify_tls,
        ca_data=mailbox.ca_certificate or None,
        address=address,
        timeout=timeout,
    )


def credentials_of(mailbox: Mailbox) -> Credentials:
    if mailbox.password is None:
        raise MailError(ErrorKind.NO_PASSWORD, "no password stored", field="password")
    return Credentials(mailbox.username, mailbox.password)


def fetcher_of(mailbox: Mailbox, timeout: float = 30.0):
    return fetcher_for(mailbox.protocol, endpoint_of(mailbox, timeout), credentials_of(mailbox), policy_of(mailbox))


def test_connection(mailbox: Mailbox) -> ConnectionReport:
    """Log in, open the folder, count (raises ``MailError`` in words)."""
    if not mailbox.inbound:
        raise ValueError("only an inbound mailbox is read")
    return fetcher_of(mailbox, timeout=15).test()


def list_folders(mailbox: Mailbox) -> list[Folder]:
    if not mailbox.inbound:
        raise ValueError("only an inbound mailbox has folders")
    return fetcher_of(mailbox, timeout=15).list_folders()


def sender_of(mailbox: Mailbox) -> str:
    return formataddr((mailbox.sender_name, mailbox.sender_address)) if mailbox.sender_name else mailbox.sender_address


def message_domain() -> str:
    """The domain of our Message-IDs (core's: the public host name)."""
    return new_message_id().strip("<>").rpartition("@")[2] or "ventanilla.localhost"


def send_test_message(mailbox: Mailbox, tenant, user) -> None:
    """Send a short message to ``user`` now through the outbound mailbox (raises ``MailError``)."""
    if mailbox.inbound:
        raise ValueError("only an outbound mailbox sends")
    credentials = credentials_of(mailbox) if mailbox.use_auth else None
    message = EmailMessage()
    message["From"] = sender_of(mailbox)
    message["To"] = user.email
    message["Subject"] = _("Test message from %(organisation)s", organisation=tenant.name)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = new_message_id()
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        _(
            "This message was sent through the outbound mailbox %(mailbox)s (%(host)s). "
            "If you can read it, the mailbox works.",
            mailbox=mailbox.name,
            host=mailbox.host,
        )
    )
    smtp_connector.send(endpoint_of(mailbox, timeout=15), credentials, message, helo=message_domain())


# --- what the lists and the dashboard show -------------------------------------------------------


def contract_of(mailbox: Mailbox):
    link = db.session.scalar(select(ContractInbox).where(ContractInbox.mailbox_id == mailbox.id))
    return link.contract if link is not None else None


def default_outbound() -> Mailbox | None:
    return db.session.scalar(
        select(Mailbox).where(Mailbox.direction == OUTBOUND, Mailbox.is_default.is_(True), Mailbox.active.is_(True))
    )


def health_summary() -> dict:
    """For the dashboard: inbound mailboxes in use, those failing, and quarantined messages waiting."""
    failing = db.session.scalars(
        select(Mailbox)
        .where(Mailbox.direction == INBOUND, Mailbox.active.is_(True), Mailbox.failures > 0)
        .order_by(Mailbox.name)
        .limit(5)
    ).all()
    reading = db.session.scalar(
        select(func.count()).select_from(Mailbox).where(Mailbox.direction == INBOUND, Mailbox.active.is_(True))
    )
    quarantined = db.session.scalar(select(func.count()).select_from(Quarantined).where(Quarantined.state == PENDING))
    return {"reading": reading, "failing": failing, "quarantined": quarantined}


def error_message(kind: str | None):
    """The words for a stored error kind (``Mailbox.last_error``)."""
    if not kind:
        return ""
    try:
        return MailError(ErrorKind(kind)).message
    except ValueError:
        return _l("The messages could not be stored. They will be read again.")
