"""The simulator's HTTPS side: a WSGI app on a threaded HTTP/1.1 server with client-certificate TLS
and kept-alive connections, as a sede's front end keeps them.

Each POST to ``/ws/v2/lema`` or ``/ws/v1/realizadas`` (DEHú), or to ``/INFRWSCN/WSCNService`` (the
Seguridad Social's WSCN, ``wscn``), goes through what the services do: injected
outages (503) and delays first, then the WS-Security check (signature over Timestamp and Body,
the Timestamp's window against the simulator's clock), the TLS client certificate must be the
token's, the operation must match the SOAPAction and the path, injected faults, the enrolment of
the certificate (4102), and finally the operation itself.
"""

from __future__ import annotations

import io
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from cryptography import x509
from lxml import etree

from plugins.sedes.connectors.dehu import messages as m
from plugins.sedes.connectors.dehu import mime, wsse
from plugins.sedes.connectors.seguridad_social import messages as wscn_messages
from plugins.sedes.simulator.service import DESCRIPTIONS, DehuState, Fault, Served
from plugins.sedes.simulator.wscn import WscnState, misdirect_acuse

MAX_BODY = 5 * 1024 * 1024


@dataclass
class Injection:
    """What the simulator was told to do to the next requests."""

    faults: list[list] = field(default_factory=list)  # [code, operation or None, remaining]
    delays: list[list] = field(default_factory=list)  # [seconds, operation or None, remaining or None]
    outages: list[list] = field(default_factory=list)  # [status, operation or None, remaining, retry_after]
    damages: list[list] = field(default_factory=list)  # [kind, operation or None, remaining]
    latency: float = 0.0
    clock_offset: timedelta = timedelta()


@dataclass
class InFlight:
    """Requests being answered now, and the most there ever were at once, per service (``dehu`` for
    LEMA and Realizadas, ``wscn`` for the Seguridad Social)."""

    now: dict[str, int] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)


def _take(queue: list[list], operation: str | None):
    """The first entry for ``operation`` (``[value, operation or None, remaining or None, …]``), used once."""
    for entry in queue:
        if entry[1] is None or entry[1] == operation:
            if entry[2] is not None:
                entry[2] -= 1
                if entry[2] <= 0:
                    queue.remove(entry)
            return entry
    return None


def fault_envelope(fault: Fault, *, wscn: bool = False) -> bytes:
    """A SOAP fault; a coded one carries DEHú's ``codigoError`` or, for ``wscn``, the WSCN service's
    ``WSCNExcepcionSistema {error {codigo, descripcion}, message}``."""
    root = etree.Element(f"{{{wsse.SOAP}}}Envelope", nsmap={"soapenv": wsse.SOAP, "wsse": wsse.WSSE})
    body = etree.SubElement(root, f"{{{wsse.SOAP}}}Body")
    node = etree.SubElement(body, f"{{{wsse.SOAP}}}Fault")
    etree.SubElement(node, "faultcode").text = fault.faultcode
    etree.SubElement(node, "faultstring").text = f"{fault.code} {fault.reason}" if fault.code else fault.reason
    if fault.code and wscn:
        exception = etree.SubElement(
            etree.SubElement(node, "detail"),
            f"{{{wscn_messages.NS}}}WSCNExcepcionSistema",
            nsmap={"ns2": wscn_messages.NS},
        )
        error = etree.SubElement(exception, "error")
        etree.SubElement(error, "codigo").text = fault.code
        etree.SubElement(error, "descripcion").text = fault.reason
        etree.SubElement(exception, "message").text = fault.reason
    elif fault.code:
        detail = etree.SubElement(node, "detail")
        etree.SubElement(detail, "codigoError").text = fault.code
        etree.SubElement(detail, "descripcionError").text = fault.reason
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def answer_envelope(answer: etree._Element) -> bytes:
    root = etree.Element(f"{{{wsse.SOAP}}}Envelope", nsmap={"soapenv": wsse.SOAP})
    etree.SubElement(root, f"{{{wsse.SOAP}}}Body").append(answer)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _connection(environ) -> str:
    """The client's end of the TCP connection a request came on: one per TLS session."""
    return f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}"


class DehuApp:
    """The WSGI application."""

    def __init__(
        self,
        state: DehuState,
        injection: Injection,
        *,
        wscn: WscnState | None = None,
        skew: timedelta = timedelta(minutes=5),
    ):
        self.state = state
        self.wscn = wscn
        self.injection = injection
        self.skew = skew
        self.lock = threading.Lock()
        self.in_flight = InFlight()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.injection.clock_offset

    def _served(self, served: Served) -> None:
        with self.state.lock:
            self.state.served.append(served)

    def __call__(self, environ, start_response):
        service = "wscn" if environ.get("PATH_INFO", "") == wscn_messages.PATH else "dehu"
        with self.lock:
            now = self.in_flight.now[service] = self.in_flight.now.get(service, 0) + 1
            self.in_flight.most[service] = max(self.in_flight.most.get(service, 0), now)
        try:
            return self._answer(environ, start_response, time.monotonic())
        finally:
            with self.lock:
                self.in_flight.now[service] -= 1

    def _answer(self, environ, start_response, started: float):
        path = environ.get("PATH_INFO", "")
        connection = _connection(environ)
        action = environ.get("HTTP_SOAPACTION", "").strip('"')
        operation = re.split(r"[/:]", action)[-1] or None
        is_wscn = path == wscn_messages.PATH and self.wscn is not None
        if environ["REQUEST_METHOD"] != "POST" or (path not in (m.LEMA_PATH, m.REALIZADAS_PATH) and not is_wscn):
            self._served(Served(operation, 404, started=started, connection=connection))
            return self._plain(start_response, "404 Not Found", b"Not found")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            self._served(Served(operation, 413, started=started, connection=connection))
            return self._plain(start_response, "413 Payload Too Large", b"Too large")
        body = environ["wsgi.input"].read(length)

        with self.lock:
            outage = _take(self.injection.outages, operation)
            delay = _take(self.injection.delays, operation)
        pause = self.injection.latency + (delay[0] if delay else 0.0)
        if pause:
            time.sleep(pause)
        if outage:
            self._served(Served(operation, outage[0], started=started, connection=connection))
            headers = [("Retry-After", str(outage[3]))] if outage[3] is not None else []
            return self._plain(start_response, f"{outage[0]} Service Unavailable", b"Service Unavailable", headers)

        nif, fields = None, {}
        try:
            verified = wsse.verify(body, now=self.now(), skew=self.skew)
            peer = environ.get("SSL_CLIENT_CERT")
            if not peer or x509.load_pem_x509_certificate(peer.encode()) != verified.certificate:
                raise Fault(None, "wsse:InvalidSecurityToken", "The TLS client certificate is not the token's")
            name = etree.QName(verified.operation).localname
            if is_wscn:
                expected, namespace = wscn_messages.OPERATIONS, wscn_messages.NS
            else:
                expected = m.REALIZADAS_OPERATIONS if path == m.REALIZADAS_PATH else m.LEMA_OPERATIONS
                namespace = m.namespace(name)
            if name not in expected or (operation and operation != name):
                raise Fault(None, "soapenv:Client", f"Operation {name} not offered here")
            if verified.operation.tag != f"{{{namespace}}}{name}":
                raise Fault(None, "soapenv:Client", f"Unexpected namespace for {name}")
            operation = name
            fields = {
                etree.QName(e).localname: e.text or ""
                for e in verified.operation.iter()
                if isinstance(e.tag, str) and len(e) == 0
            }
            nif = fields.get("nifTitular") or fields.get("nifReceptor") or fields.get("identificadorPoderdante")
            with self.lock:
                injected = _take(self.injection.faults, operation)
            if injected:
                raise Fault(
                    injected[0],
                    "soapenv:Server" if injected[0] == "2001" or is_wscn else "soapenv:Client",
                    (wscn_messages.DESCRIPTIONS if is_wscn else DESCRIPTIONS).get(injected[0], ""),
                )
            if is_wscn:
                answer, attachments, mtom = (
                    self.wscn.handle(verified.operation, verified.certificate, self.now()),
                    {},
                    False,
                )
            else:
                nifs = self.state.authorise(verified.certificate)
                answer, attachments, mtom = self.state.handle(verified.operation, nifs, self.now())
        except wsse.SecurityFault as error:
            self._served(Served(operation, 500, error.code, nif, fields, started=started, connection=connection))
            return self._xml(
                start_response, "500 Internal Server Error", fault_envelope(Fault(None, error.code, error.reason))
            )
        except Fault as fault:
            code = fault.code or fault.faultcode
            self._served(Served(operation, 500, code, nif, fields, started=started, connection=connection))
            return self._xml(start_response, "500 Internal Server Error", fault_envelope(fault, wscn=is_wscn))
        self._served(Served(operation, 200, None, nif, fields, started=started, connection=connection))
        with self.lock:
            damage = _take(self.injection.damages, operation)
        if damage and damage[0] == "attachment" and attachments:
            first = next(iter(attachments))
            attachments[first] = attachments[first] + b" altered in transit"
        if damage and damage[0] == "acuse":
            misdirect_acuse(answer)
        envelope = answer_envelope(answer)
        if damage and damage[0] == "truncated":
            envelope = envelope[: len(envelope) // 2]
        if not attachments:
            return self._xml(start_response, "200 OK", envelope)
        payload, content_type = mime.related(envelope, attachments, mtom=mtom)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
        return [payload]

    @staticmethod
    def _plain(start_response, status, body, headers=()):
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *headers])
        return [body]

    @staticmethod
    def _xml(start_response, status, body):
        start_response(status, [("Content-Type", "text/xml; charset=UTF-8"), ("Content-Length", str(len(body)))])
        return [body]


class _Handler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 requests, kept alive between them, handed to the WSGI app.

    Werkzeug's development server closes every connection after its answer, which would hide what a
    connector saves by keeping its session (a TLS handshake per request). This one can keep it because
    the app always answers with a Content-Length and every request's body is read whole before the
    next request line (one too big to read closes the connection instead)."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            length = 0
        if length > MAX_BODY:
            body = b""  # the app refuses it unread: the rest of the stream is no request line
            self.close_connection = True
        else:
            body = self.rfile.read(length)
        target = urlsplit(self.path)
        environ = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(target.path),
            "QUERY_STRING": target.query,
            "CONTENT_LENGTH": str(length),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "SERVER_NAME": str(self.server.server_address[0]),
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[f"HTTP_{key}"] = value
        peer = self.connection.getpeercert(binary_form=True)
        if peer:
            environ["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(peer)
        answer: list = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            answer[:] = [status, headers]

        chunks = self.server.app(environ, start_response)
        status, headers = answer
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(chunk)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, app):
        super().__init__(address, _Handler)
        self.app = app

    def handle_error(self, request, client_address) -> None:
        """A client that fails the TLS handshake (no certificate, an unknown CA) or goes away: nothing
        to report, the client sees it."""


def tls_context(cert_path: str, key_path: str, client_cas_pem: bytes) -> ssl.SSLContext:
    """The server side: our certificate, and a client certificate from ``client_cas_pem`` required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_cas_pem.decode())
    return context


def serve(app: DehuApp, host: str, port: int, context: ssl.SSLContext):
    """A started threaded server (``server.shutdown()`` stops it) and its thread."""
    server = _Server((host, port), app)
    # TLS on the listening socket, but each handshake in its connection's thread (on its first read):
    # a slow or silent client never holds up the others.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="dehu-simulator", daemon=True)
    thread.start()
    return server, thread
