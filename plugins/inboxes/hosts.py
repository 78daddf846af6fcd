"""The servers an administrator types: their syntax, and core's ``checked_address`` on saving and connecting.

``checked_address(host, port)`` answers one ``DomainError`` for two different things: a name that does
not resolve (now: it may later) and an address outside the public internet (refused for good). The
name is looked up first here to tell them apart: on saving, a name that does not resolve yet is
accepted (it is checked again at every connection), as core does for its own SMTP settings; on
connecting, each becomes a ``MailError`` of its own kind (the first is retried, the second is not).
core.api could export ``check_host_now`` and its two error classes, and this module would shrink to
the syntax checks.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from flask_babel import lazy_gettext as _l

from core.api import DomainError, checked_address
from plugins.inboxes.connectors import ErrorKind, MailError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A host name (``imap.example.com``) or an IP address: no scheme, path, port or spaces."""
    host = (value or "").strip()
    problem = DomainError(
        _l("Enter only the server's name or IP address, such as imap.example.com (no https://, port or spaces)."),
        field="host",
    )
    if not host or any(ch.isspace() for ch in host) or "/" in host or "@" in host or len(host) > 253:
        raise problem
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise problem from error
    labels = ascii_host.split(".")
    if not ascii_host or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise problem
    return ascii_host


def check_port(value) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise DomainError(_l("The port is a number from 1 to 65535."), field="port")
    return port


def _resolves(host: str, port: int) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    try:
        return bool(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except (OSError, UnicodeError):
        return False


def check_public(host: str, port: int) -> None:
    """On saving: refuse a server that is (or resolves to) a private address; accept a name that
    does not resolve now (it is checked again at every connection)."""
    if _resolves(host, port):
        try:
            checked_address(host, port)
        except DomainError as error:
            raise DomainError(error.message, field="host") from error


def resolve(host: str, port: int) -> tuple[str, int]:
    """On connecting: the checked address to open the socket to, or a ``MailError``."""
    try:
        return checked_address(host, port)
    except DomainError as error:
        if _resolves(host, port):
            raise MailError(ErrorKind.ADDRESS_REFUSED, "checked_address refused it", field="host") from error
        raise MailError(ErrorKind.HOST_NOT_FOUND, "name does not resolve", field="host") from error
