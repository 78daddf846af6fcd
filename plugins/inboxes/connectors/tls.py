"""Sockets to an already-checked address, with TLS verified against the host name.

Core resolves and checks an administrator's host once (``checked_address``: no private or loopback
address unless the operator allows it); connecting must then go to that very address — resolving
again would let DNS answer differently (rebinding) — while the certificate is still checked for the
name the administrator typed. The standard library's clients connect and verify with one ``host``;
these subclasses split the two: the socket goes to ``address``, SNI and verification use ``host``
(also for STARTTLS, which wraps with ``self.host``).
"""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl

from plugins.inboxes.connectors.base import Endpoint


def client_context(verify: bool = True, ca_file: str | None = None, ca_data: str | None = None) -> ssl.SSLContext:
    """A client TLS context: the system's trust store (plus ``ca_file``/``ca_data``), or no verification."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if ca_data:
        context.load_verify_locations(cadata=ca_data)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def endpoint_context(endpoint: Endpoint) -> ssl.SSLContext:
    return client_context(endpoint.verify_tls, endpoint.ca_file, endpoint.ca_data)


def open_socket(address: tuple[str, int], timeout: float | None) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


class PinnedIMAP4(imaplib.IMAP4):
    """Plain IMAP (or STARTTLS later) to ``address``; ``host`` is the name STARTTLS verifies."""

    def __init__(self, host: str, port: int, address: tuple[str, int], timeout: float | None) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout=None):
        return open_socket(self._address, timeout)


class PinnedIMAP4_TLS(imaplib.IMAP4):
    """IMAP over TLS from the first byte to ``address``, verified against ``host``."""

    def __init__(
        self, host: str, port: int, address: tuple[str, int], context: ssl.SSLContext, timeout: float | None
    ) -> None:
        self._address = address
        self.ssl_context = context
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout=None):
        sock = open_socket(self._address, timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class PinnedPOP3(poplib.POP3):
    def __init__(self, host: str, port: int, address: tuple[str, int], timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return open_socket(self._address, timeout)


class PinnedPOP3_SSL(poplib.POP3_SSL):
    def __init__(self, host: str, port: int, address: tuple[str, int], context: ssl.SSLContext, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout):
        sock = open_socket(self._address, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
