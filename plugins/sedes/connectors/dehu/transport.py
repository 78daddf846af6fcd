"""HTTPS to DEHú: the certificate presented for client-certificate TLS, one connection per session.

The sede's host is resolved once and checked (``core.api.checked_address``: no private addresses
unless the operator allows them, as for the simulator); TLS is verified against the host name,
with the system's CAs or ``ca_bundle``. The key reaches OpenSSL through an anonymous in-memory
file (``memfd``), never a file on disk. Bodies are sent with a Content-Length (DEHú does not take
chunked requests).
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.client
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from core.api import DomainError, pinned_http_connection
from plugins.sedes.contract import AuthError, RateLimited, SedeError, SedeUnavailable


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class TransportError(Exception):
    """No answer: the connection failed or timed out. ``refused`` when the address is not allowed
    or TLS was refused (not worth retrying)."""

    def __init__(self, detail: str, *, refused: bool = False, message=None):
        super().__init__(detail)
        self.detail = detail
        self.refused = refused
        self.message = message


@contextlib.contextmanager
def _secret_file(data: bytes):
    """A path holding ``data`` only in memory where the system allows it (Linux ``memfd``)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("ventanilla-credential", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ventanilla-") as directory:
        path = os.path.join(directory, "credential.pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        yield path


@functools.lru_cache(maxsize=32)
def client_context(
    cert_pem: bytes, key_pem: bytes, chain_pem: bytes = b"", ca_bundle: str | None = None
) -> ssl.SSLContext:
    """A TLS client context that presents the certificate and trusts the system's CAs (or ``ca_bundle``).

    Kept for the last few certificates: loading the system's CAs costs tens of milliseconds, and a
    sweep uses one certificate (an office's, under apoderamiento) for many mailboxes."""
    context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with _secret_file(cert_pem + chain_pem + key_pem) as path:
        context.load_cert_chain(path)
    return context


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds from now (it gives seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Session:
    """Requests to one sede endpoint over one kept-alive TLS connection."""

    def __init__(self, base_url: str, context: ssl.SSLContext, timeout: float):
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise TransportError(f"not an https URL: {base_url}", refused=True)
        self.host = parts.hostname
        self.port = parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.context = context
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        try:
            return pinned_http_connection("https", self.host, self.port, context=self.context, timeout=self.timeout)
        except DomainError as error:
            raise TransportError(f"address refused: {self.host}", refused=True, message=error.message) from error

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = self._connect()
            try:
                self._connection.request("POST", self.prefix + path, body=body, headers=headers)
                answer = self._connection.getresponse()
                data = answer.read()
            except ssl.SSLCertVerificationError as error:
                self.close()
                raise TransportError(f"TLS verification failed: {error}", refused=True) from error
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                self.close()
                if attempt == 2:
                    raise TransportError(f"connection lost: {error}") from error
                continue
            except ssl.SSLError as error:
                self.close()
                raise TransportError(f"TLS failed: {error}", refused=True) from error
            except (TimeoutError, OSError, http.client.HTTPException) as error:
                self.close()
                raise TransportError(f"{type(error).__name__}: {error}") from error
            response = Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
            if answer.will_close:
                self.close()
            return response

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def post_to_sede(
    session: Session, sede: str, path: str, body: bytes, headers: dict[str, str], *, answers_soap
) -> Response:
    """POST to a sede's SOAP endpoint, mapping what went wrong below SOAP to the contract's errors.

    A refused address is a ``SedeError`` in the tenant's words; a TLS failure, 401 and 403 are
    ``AuthError``; the network, 5xx, 429 and 503 are ``SedeUnavailable`` (``RateLimited`` with a
    Retry-After). An answer ``answers_soap(response)`` recognises (a SOAP Fault may come with 500)
    is returned for the connector to read.
    """
    try:
        response = session.post(path, body, headers)
    except TransportError as error:
        if error.refused:
            if error.message is not None:
                raise SedeError(error.message, sede=sede, code="address", detail=error.detail) from error
            raise AuthError(sede=sede, code="tls", detail=error.detail) from error
        raise SedeUnavailable(sede=sede, code="network", detail=error.detail) from error
    status, detail = response.status, f"HTTP {response.status}"
    if status in (429, 503) and not answers_soap(response):
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        error_class = RateLimited if retry_after is not None else SedeUnavailable
        raise error_class(sede=sede, code=str(status), detail=detail, retry_after=retry_after)
    if status >= 500 and not answers_soap(response):
        raise SedeUnavailable(sede=sede, code=str(status), detail=detail)
    if status in (401, 403):
        raise AuthError(sede=sede, code=str(status), detail=detail)
    return response
