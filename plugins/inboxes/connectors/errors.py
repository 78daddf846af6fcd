"""What went wrong talking to a mail server, in words an administrator can act on.

Every failure of a fetcher is turned into a ``MailError`` with a ``kind`` and a translatable
``message``. The server's own reply is never shown (it can echo what was typed, leak internals,
or be in any language); ``detail`` keeps a short technical note for the log — the exception's type,
its errno or the TLS library's reason — never a password and never the server's text.
"""

from __future__ import annotations

import enum
import errno
import imaplib
import poplib
import socket
import ssl

from flask_babel import lazy_gettext as _l

from core.api import DomainError


class ErrorKind(enum.StrEnum):
    HOST_NOT_FOUND = "host_not_found"
    HOST_UNREACHABLE = "host_unreachable"
    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    TLS_CERTIFICATE = "tls_certificate"
    TLS_FAILED = "tls_failed"
    STARTTLS_UNSUPPORTED = "starttls_unsupported"
    AUTH_FAILED = "auth_failed"
    ENCRYPTION_REQUIRED = "encryption_required"
    FOLDER_MISSING = "folder_missing"
    CONNECTION_LOST = "connection_lost"
    IN_USE = "in_use"
    PROTOCOL = "protocol"
    UNSUPPORTED = "unsupported"
    # SMTP (the outbound mailbox's test message)
    SENDER_REFUSED = "sender_refused"
    RECIPIENT_REFUSED = "recipient_refused"
    MESSAGE_REFUSED = "message_refused"
    AUTH_UNSUPPORTED = "auth_unsupported"
    # Before connecting
    ADDRESS_REFUSED = "address_refused"
    NO_PASSWORD = "no_password"


MESSAGES = {
    ErrorKind.HOST_NOT_FOUND: _l("The server name could not be found. Check the server."),
    ErrorKind.HOST_UNREACHABLE: _l("The server cannot be reached from here. Check the server and the network."),
    ErrorKind.CONNECTION_REFUSED: _l("The server refused the connection. Check the server and the port."),
    ErrorKind.TIMEOUT: _l("The server did not answer in time. Check the server, the port and the security."),
    ErrorKind.TLS_CERTIFICATE: _l(
        "The server's certificate could not be verified (not trusted, expired, or issued for another name)."
    ),
    ErrorKind.TLS_FAILED: _l("The secure connection failed. Check the port and the security (SSL or STARTTLS)."),
    ErrorKind.STARTTLS_UNSUPPORTED: _l("The server does not offer STARTTLS on this port. Check the security setting."),
    ErrorKind.AUTH_FAILED: _l("The server refused the user name or the password."),
    ErrorKind.ENCRYPTION_REQUIRED: _l(
        "The server accepts the password only over an encrypted connection. Choose SSL or STARTTLS."
    ),
    ErrorKind.FOLDER_MISSING: _l("The folder does not exist on the server."),
    ErrorKind.CONNECTION_LOST: _l("The server closed the connection unexpectedly. It will be tried again."),
    ErrorKind.IN_USE: _l("The mailbox is in use by another connection. It will be tried again."),
    ErrorKind.PROTOCOL: _l("The server answered in an unexpected way. Check the port and the protocol."),
    ErrorKind.UNSUPPORTED: _l("The server does not support what these settings ask for."),
    ErrorKind.SENDER_REFUSED: _l("The server refused the sender. Check the sender address and the user."),
    ErrorKind.RECIPIENT_REFUSED: _l("The server refused the recipient."),
    ErrorKind.MESSAGE_REFUSED: _l("The server refused the message."),
    ErrorKind.AUTH_UNSUPPORTED: _l(
        "The server does not accept a login on this connection. Check the security, or turn authentication off."
    ),
    ErrorKind.ADDRESS_REFUSED: _l(
        "The server is not on the internet (a private or local address): enter its public name or address."
    ),
    ErrorKind.NO_PASSWORD: _l(
        "No password is saved for this mailbox (it is forgotten when the server or the user changes): enter it again."
    ),
}

# Waiting may fix these; the others need someone to change the settings.
TRANSIENT = frozenset(
    {
        ErrorKind.HOST_UNREACHABLE,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION_LOST,
        ErrorKind.CONNECTION_REFUSED,
        ErrorKind.IN_USE,
        ErrorKind.HOST_NOT_FOUND,
    }
)


class MailError(DomainError):
    """A mail server operation failed; ``message`` (translatable) says why in words.

    A ``DomainError``: a view shows ``message`` on the form (on ``field`` when given), never a 500.
    ``str()`` is the kind and the technical detail, for the log.
    """

    def __init__(
        self, kind: ErrorKind, detail: str = "", *, folder: str | None = None, field: str | None = None
    ) -> None:
        self.kind = ErrorKind(kind)
        self.detail = detail
        self.folder = folder
        super().__init__(MESSAGES[self.kind], field)
        self.args = (f"{self.kind.value}: {detail}" if detail else self.kind.value,)

    def __str__(self) -> str:
        return self.args[0]

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT


class Stage(enum.StrEnum):
    """Where the failure happened: the same exception means different things at each step."""

    CONNECT = "connect"
    TLS = "tls"
    LOGIN = "login"
    FOLDER = "folder"
    SESSION = "session"


_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
_LOST_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN}


def _detail(exc: BaseException) -> str:
    """Type and, where it is ours or the OS's (not the server's), a reason."""
    name = type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{name}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"{name}: {exc.reason or ''}".rstrip(": ")
    if isinstance(exc, OSError) and exc.errno:
        return f"{name}: [Errno {exc.errno}] {errno.errorcode.get(exc.errno, '')}".rstrip()
    return name


def classify(exc: BaseException, stage: Stage) -> MailError:
    """Turn an exception raised at ``stage`` into a ``MailError`` (a ``MailError`` passes through)."""
    if isinstance(exc, MailError):
        return exc
    detail = _detail(exc)
    if isinstance(exc, socket.gaierror):
        return MailError(ErrorKind.HOST_NOT_FOUND, detail)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailError(ErrorKind.TLS_CERTIFICATE, detail)
    if isinstance(exc, ssl.SSLError):
        if stage in (Stage.CONNECT, Stage.TLS):
            return MailError(ErrorKind.TLS_FAILED, detail)
        return MailError(ErrorKind.CONNECTION_LOST, detail)
    if isinstance(exc, TimeoutError | socket.timeout):
        return MailError(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, ConnectionRefusedError):
        return MailError(ErrorKind.CONNECTION_REFUSED, detail)
    if isinstance(exc, ConnectionError | EOFError) or (isinstance(exc, OSError) and exc.errno in _LOST_ERRNOS):
        return MailError(ErrorKind.CONNECTION_LOST if stage != Stage.CONNECT else ErrorKind.PROTOCOL, detail)
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return MailError(ErrorKind.HOST_UNREACHABLE, detail)
    if isinstance(exc, imaplib.IMAP4.abort):
        # imaplib's abort: the socket closed or the server said BYE.
        return MailError(ErrorKind.CONNECTION_LOST if stage != Stage.CONNECT else ErrorKind.PROTOCOL, detail)
    if isinstance(exc, poplib.error_proto):
        # RFC 2449/3206 response codes say what kind of -ERR it is; "-ERR EOF" is poplib's closed socket.
        reply = exc.args[0] if exc.args else b""
        reply = reply.encode("ascii", "replace") if isinstance(reply, str) else bytes(reply)
        if b"[IN-USE]" in reply:
            return MailError(ErrorKind.IN_USE, "POP3 [IN-USE]")
        if b"[SYS/TEMP]" in reply or reply.startswith(b"-ERR EOF"):
            return MailError(ErrorKind.CONNECTION_LOST, "POP3 closed" if b"EOF" in reply else "POP3 [SYS/TEMP]")
    if isinstance(exc, imaplib.IMAP4.error | poplib.error_proto):
        if stage == Stage.LOGIN:
            return MailError(ErrorKind.AUTH_FAILED, detail)
        if stage == Stage.FOLDER:
            return MailError(ErrorKind.FOLDER_MISSING, detail)
        if stage == Stage.TLS:
            return MailError(ErrorKind.STARTTLS_UNSUPPORTED, detail)
        return MailError(ErrorKind.PROTOCOL, detail)
    if isinstance(exc, OSError):
        return MailError(ErrorKind.CONNECTION_LOST if stage == Stage.SESSION else ErrorKind.HOST_UNREACHABLE, detail)
    return MailError(ErrorKind.PROTOCOL, detail)
