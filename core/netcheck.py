"""Servers a tenant names (SMTP, IMAP, webhooks, push): only public addresses, checked as connected.

A host typed into a tenant's settings must not reach the operator's own network: the cloud
metadata service (169.254.169.254), the Redis server, the database, an SSH daemon on loopback.
``checked_address(host, port)`` resolves the name once, refuses it when any of its addresses is
loopback, private, link-local, shared (carrier-grade NAT), reserved, multicast or unspecified,
IPv4 or IPv6 (IPv4-mapped, 6to4, Teredo and NAT64 addresses are judged by the IPv4 address inside
them), and returns the address to connect to. Callers connect to that address, not to the name:
a second lookup could answer differently (DNS rebinding). TLS is still verified against the name
(``smtp_client`` does both for SMTP, ``pinned_http_connection`` for HTTP and HTTPS).

``VENTANILLA_ALLOW_PRIVATE_HOSTS=1`` (the ``ALLOW_PRIVATE_HOSTS`` setting) lets the operator allow
such addresses: on in tests and in ``make run``'s demo, whose servers listen on loopback.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import smtplib
import socket
import ssl

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l

from core.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IPv6 prefix of NAT64 (RFC 6052): 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnknownHost(DomainError):
    """The name does not resolve (now): it may later, so a delivery tries again."""


class RefusedAddress(DomainError):
    """The name resolves to an address outside the public internet: refused for good."""


def private_hosts_allowed() -> bool:
    return bool(has_app_context() and current_app.config.get("ALLOW_PRIVATE_HOSTS"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where packets go
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a unicast address of the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    if address.is_multicast or address.is_unspecified or address.is_loopback or address.is_link_local:
        return False
    if address.is_private or address.is_reserved:
        return False
    # is_global leaves out what is neither private nor reserved but not public either (100.64.0.0/10).
    return address.is_global


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as error:
        raise UnknownHost(_l("The server %(host)s could not be found. Check the name.", host=host), "host") from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        # An IPv6 answer may carry a zone ("fe80::1%eth0"): the zone is not part of the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnknownHost(_l("The server %(host)s could not be found. Check the name.", host=host), "host")
    return addresses


def checked_address(host: str, port: int) -> tuple[str, int]:
    """The address to connect to for ``host``:``port``, once it is known to be a public one.

    Raises ``DomainError`` (field ``host``): ``UnknownHost`` when the name does not resolve,
    ``RefusedAddress`` when any address it resolves to is not on the public internet (unless the
    operator allows private hosts). The message never shows the resolved address: what the
    operator's internal names resolve to is not the tenant's business.
    """
    addresses = _resolve(host, int(port))
    if not private_hosts_allowed() and not all(is_public(address) for address in addresses):
        raise RefusedAddress(
            _l(
                "%(host)s is not a server on the internet: enter the public name or address of your server.",
                host=host,
            ),
            "host",
        )
    return str(addresses[0]), int(port)


def check_host_now(host: str, port: int) -> None:
    """What a settings form checks on saving: refuse a host that is (or resolves to) a private address.

    A name that does not resolve now is accepted: it is checked again at every connection.
    """
    with contextlib.suppress(UnknownHost):
        checked_address(host, port)


# --- HTTP ---------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand; the Host header keeps the URL's name."""

    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self.pinned_address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.pinned_address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS, verified (SNI and certificate) against the URL's name, not the address."""

    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self.pinned_address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.pinned_address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def pinned_http_connection(
    scheme: str, host: str, port: int, *, context: ssl.SSLContext | None = None, timeout: float = 30
) -> http.client.HTTPConnection:
    """An ``http.client`` connection (``scheme`` http or https) to ``host``:``port``, made to its
    checked address (``checked_address``, which raises ``UnknownHost`` or ``RefusedAddress``), so no
    second lookup can send it elsewhere. The Host header, SNI and the certificate check use the name.
    The connection opens at its first request and may be kept alive for more.
    """
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) server: {scheme}://{host}")
    address, port = checked_address(host, port)
    if scheme == "https":
        return _PinnedHTTPSConnection(
            host, port, address, context=context or ssl.create_default_context(), timeout=timeout
        )
    return _PinnedHTTPConnection(host, port, address, timeout=timeout)


# --- SMTP ---------------------------------------------------------------------------------


class _Pinned:
    """An SMTP client whose socket goes to an address checked beforehand, whatever the name says.

    ``connect(name, port)`` keeps the name as ``_host``, which smtplib hands to TLS as
    ``server_hostname``: the certificate is verified against the name the tenant typed.
    """

    pinned_address: str

    def _get_socket(self, host, port, timeout):
        return super()._get_socket(self.pinned_address, port, timeout)


class PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class PinnedSMTP_SSL(_Pinned, smtplib.SMTP_SSL):
    pass


def smtp_client(
    host: str,
    port: int,
    *,
    implicit_tls: bool = False,
    context: ssl.SSLContext | None = None,
    timeout: float = 30,
    local_hostname: str | None = None,
) -> smtplib.SMTP:
    """An SMTP client connected to the checked address of ``host`` (``checked_address``).

    ``implicit_tls`` is SMTPS (port 465); otherwise call ``starttls(context=...)`` as usual. TLS
    verifies the server's certificate against ``host``, not against the address connected to.
    """
    address, port = checked_address(host, port)
    if implicit_tls:
        client: smtplib.SMTP = PinnedSMTP_SSL(
            local_hostname=local_hostname, timeout=timeout, context=context or ssl.create_default_context()
        )
    else:
        client = PinnedSMTP(local_hostname=local_hostname, timeout=timeout)
    client.pinned_address = address
    # What TLS verifies the certificate against (STARTTLS and SMTPS); smtplib sets it only when the
    # host is given to the constructor, which would connect before the address is pinned.
    client._host = host
    try:
        client.connect(host, port)
    except BaseException:
        client.close()
        raise
    return client
