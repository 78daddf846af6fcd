"""Checks on what an administrator types as a mail server: a bare host name or IP, a port, an address."""

from __future__ import annotations

import ipaddress
import re

from flask_babel import lazy_gettext as _l

from core.errors import DomainError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A host name (``smtp.example.com``) or an IP address, nothing else: no scheme, path, port or space."""
    host = (value or "").strip()
    problem = DomainError(
        _l("Enter only the server's name or IP address, such as smtp.example.com (no https://, port or spaces)."),
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
    if not ascii_host or len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise problem
    if labels[-1].isdigit():
        # 10.0.0.999 or 300.1.1.1: meant as an address but not a valid one.
        raise problem
    return ascii_host


def check_port(value) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise DomainError(_l("The port is a number from 1 to 65535 (usually 587, or 465 for SSL)."), field="port")
    return port


def check_from_address(value: str | None, *, required: bool) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    address = (value or "").strip()
    if not address:
        if required:
            raise DomainError(_l("Enter the address your messages are sent from."), field="from_address")
        return None
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise DomainError(_l("This is not a valid e-mail address."), field="from_address") from error


def check_rate(value, ceiling: int) -> int | None:
    """Messages a minute: a whole number from 1 to the operator's ``ceiling`` (0: no ceiling), or
    None (empty) for the platform's default."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        rate = int(text)
    except ValueError:
        rate = 0
    if rate < 1 or (ceiling and rate > ceiling):
        if ceiling:
            message = _l("Enter a whole number from 1 to %(ceiling)s, or leave it empty.", ceiling=ceiling)
        else:
            message = _l("Enter a whole number from 1 up, or leave it empty.")
        raise DomainError(message, field="rate_per_minute")
    return rate
