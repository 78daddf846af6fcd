"""Sending one message now through an outbound mailbox's SMTP server: its "send a test message" button.

Everyday delivery goes through core's outbox (``mail_transport``), which retries; this is the
administrator's immediate check, so every failure comes back at once as a ``MailError`` in words
(never the server's reply). As for the fetchers, the socket goes to the checked address while TLS is
verified against the host name typed (``Endpoint``).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import parseaddr

from plugins.inboxes.connectors.base import Credentials, Endpoint, Security
from plugins.inboxes.connectors.errors import ErrorKind, MailError, Stage, classify
from plugins.inboxes.connectors.tls import endpoint_context, open_socket


class _Pinned:
    """smtplib's clients with the socket opened to the endpoint's checked address.

    smtplib gives TLS the ``_host`` it was connected with as ``server_hostname``: ``connect(host, port)``
    keeps the typed name there, and ``_get_socket`` ignores it for the address.
    """

    pinned: tuple[str, int]

    def _get_socket(self, host, port, timeout):
        sock = open_socket(self.pinned, timeout)
        if isinstance(self, smtplib.SMTP_SSL):
            try:
                return self.context.wrap_socket(sock, server_hostname=self._host)
            except BaseException:
                sock.close()
                raise
        return sock


class PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class PinnedSMTP_SSL(_Pinned, smtplib.SMTP_SSL):
    pass


def open_client(endpoint: Endpoint, helo: str | None = None) -> smtplib.SMTP:
    """A connected SMTP client (after STARTTLS when asked); failures raise a classified ``MailError``."""
    context = endpoint_context(endpoint)
    try:
        if endpoint.security == Security.SSL:
            client: smtplib.SMTP = PinnedSMTP_SSL(local_hostname=helo, timeout=endpoint.timeout, context=context)
        else:
            client = PinnedSMTP(local_hostname=helo, timeout=endpoint.timeout)
        client.pinned = endpoint.connect_to
        client._host = endpoint.host
        client.connect(endpoint.host, endpoint.port)
    except smtplib.SMTPConnectError as exc:
        raise MailError(ErrorKind.PROTOCOL, f"SMTPConnectError {exc.smtp_code}") from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise MailError(ErrorKind.PROTOCOL, "SMTPServerDisconnected at greeting") from exc
    except Exception as exc:
        raise classify(exc, Stage.CONNECT) from exc
    if endpoint.security == Security.STARTTLS:
        try:
            client.starttls(context=context)
        except smtplib.SMTPNotSupportedError as exc:
            _close(client)
            raise MailError(ErrorKind.STARTTLS_UNSUPPORTED, "no STARTTLS in EHLO") from exc
        except smtplib.SMTPResponseException as exc:
            _close(client)
            raise MailError(ErrorKind.STARTTLS_UNSUPPORTED, f"STARTTLS {exc.smtp_code}") from exc
        except Exception as exc:
            _close(client)
            raise classify(exc, Stage.TLS) from exc
    return client


def send(endpoint: Endpoint, credentials: Credentials | None, message: EmailMessage, helo: str | None = None) -> dict:
    """Send ``message`` to its To/Cc now; returns the recipients refused while others were accepted."""
    client = open_client(endpoint, helo)
    try:
        if credentials is not None:
            try:
                client.login(credentials.username, credentials.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise MailError(ErrorKind.AUTH_FAILED, f"SMTP {exc.smtp_code}") from exc
            except smtplib.SMTPNotSupportedError as exc:
                encrypted = endpoint.security != Security.NONE
                raise MailError(
                    ErrorKind.AUTH_UNSUPPORTED if encrypted else ErrorKind.ENCRYPTION_REQUIRED, "no AUTH in EHLO"
                ) from exc
            except smtplib.SMTPException as exc:
                raise MailError(ErrorKind.AUTH_FAILED, type(exc).__name__) from exc
            except Exception as exc:
                raise classify(exc, Stage.LOGIN) from exc
        try:
            return client.send_message(message, from_addr=parseaddr(str(message["From"]))[1])
        except smtplib.SMTPSenderRefused as exc:
            raise MailError(ErrorKind.SENDER_REFUSED, f"SMTP {exc.smtp_code}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = ",".join(sorted({str(code) for code, _ in exc.recipients.values()}))
            raise MailError(ErrorKind.RECIPIENT_REFUSED, f"SMTP {codes}") from exc
        except smtplib.SMTPDataError as exc:
            raise MailError(ErrorKind.MESSAGE_REFUSED, f"SMTP {exc.smtp_code}") from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise MailError(ErrorKind.CONNECTION_LOST, "SMTPServerDisconnected") from exc
        except (ssl.SSLError, OSError) as exc:
            raise classify(exc, Stage.SESSION) from exc
    finally:
        _close(client)


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except Exception:
        client.close()
