"""A DEHú simulator: the LEMA and Realizadas services on a loopback HTTPS server, because the real
service cannot be reached from here; the same server also speaks the Seguridad Social's WSCN service
(``/INFRWSCN/WSCNService``, ``wscn``), so one simulator serves both sedes.

It makes its own CA at start (kept in ``state_dir`` when one is given), serves TLS with a server
certificate for 127.0.0.1/localhost, requires a client certificate from that CA, checks each
envelope's WS-Security signature and timestamp window, maps client certificates to the NIFs
enrolled for them (else fault 4102) and answers with real-shaped envelopes and attachments.

In tests (the ``dehu_simulator`` fixture)::

    with DehuSimulator() as sim:
        cert = sim.ca.persona_fisica("12345678Z")
        sim.enrol(cert, ["12345678Z"])
        n = sim.add_notification("12345678Z", subject="Requerimiento")
        sim.inject_fault("4102")            # the next request answers fault 4102
        sim.unavailable(retry_after=30)     # the next request answers 503 Retry-After: 30
        sim.delay(2.0, times=1)             # the next request waits 2 s
        sim.requests_served                 # how many requests it answered
        sim.requests[0].started, .finished  # when each arrived and was answered (time.monotonic())
        sim.most_in_flight()                # the most requests it answered at the same time

        # Seguridad Social (WSCN): the catalogue's base URL is the same ``url``
        sim.ss_enrol(cert, nifs=["12345678Z"], red_codes=["28123456742"], poderdantes={"B12345674": "ACME SL"})
        n = sim.ss_add_notification("12345678Z", "28123456742", procedimiento="Providencia de apremio")
        sim.ss_notification(n.codigo).estado  # 1 pendiente, 2 aceptada

As a process for the demo: ``python -m plugins.sedes.simulator --port 8443 --state-dir DIR``.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from plugins.sedes import pki
from plugins.sedes.connectors.dehu import messages as m
from plugins.sedes.connectors.seguridad_social import messages as wscn_messages
from plugins.sedes.simulator.server import DehuApp, Injection, serve, tls_context
from plugins.sedes.simulator.service import DehuState, Notification, Served
from plugins.sedes.simulator.wscn import SsNotification, WscnState

__all__ = ["DehuSimulator", "Notification", "Served", "SsNotification"]

CA_NAME = "DEHú Simulador AC"


def _certificate(cert) -> x509.Certificate:
    if isinstance(cert, pki.Issued):
        return cert.cert
    if isinstance(cert, x509.Certificate):
        return cert
    return x509.load_pem_x509_certificate(cert)


class DehuSimulator:
    """The simulator's handle: start it, point a connector at ``url`` with ``ca_bundle``, drive it."""

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        page_size: int = 50,
        auto_enrol: bool = False,
        demo_notifications: int = 0,
        trusted_cas: tuple = (),
    ):
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="dehu-simulator-")
        self.state_dir = Path(state_dir or self._tmp.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = self.authority(self.state_dir)
        self.host = host
        self._port = port
        self.state = DehuState(
            page_size=page_size,
            auto_enrol=auto_enrol,
            demo_notifications=demo_notifications,
            state_file=self.state_dir / "state.json" if state_dir else None,
        )
        self.wscn = WscnState(
            self.ca.cert,
            page_size=page_size,
            auto_enrol=auto_enrol,
            demo_notifications=demo_notifications,
            state_file=self.state_dir / "wscn.json" if state_dir else None,
        )
        self.injection = Injection(latency=latency)
        self.app = DehuApp(self.state, self.injection, wscn=self.wscn)
        self._trusted = [
            self.ca.cert_pem,
            *(_certificate(c).public_bytes(pki.serialization.Encoding.PEM) for c in trusted_cas),
        ]
        self._server = None
        self._thread = None

    @staticmethod
    def authority(state_dir: str | Path) -> pki.CertificateAuthority:
        """The CA of a simulator run with ``state_dir`` (made there now if new): the demo issues its
        clients' certificates with it before the simulator's process starts."""
        return pki.CertificateAuthority.stored(state_dir, CA_NAME)

    # --- life -------------------------------------------------------------------------------

    def start(self) -> DehuSimulator:
        server_cert = self.ca.server(("127.0.0.1", "localhost"))
        cert_path, key_path = server_cert.write(self.state_dir, "server")
        self.ca.write_bundle(self.state_dir / "ca-bundle.pem")
        context = tls_context(cert_path, key_path, b"".join(self._trusted))
        self._server, self._thread = serve(self.app, self.host, self._port, context)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DehuSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- where it is ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        """The base URL to configure as the sede's (the catalogue's ``base_url``)."""
        return f"https://{self.host}:{self.port}"

    @property
    def lema_url(self) -> str:
        return self.url + m.LEMA_PATH

    @property
    def realizadas_url(self) -> str:
        return self.url + m.REALIZADAS_PATH

    @property
    def wscn_url(self) -> str:
        """The Seguridad Social's WSCN endpoint (the connector appends its path to ``url`` itself)."""
        return self.url + wscn_messages.PATH

    @property
    def ca_bundle(self) -> str:
        """A PEM file with the CA to trust for the simulator's TLS (``MailboxContext.ca_bundle``)."""
        return str(self.state_dir / "ca-bundle.pem")

    @property
    def ca_pem(self) -> str:
        """The same CA as PEM text (for the catalogue's extra CAs of a sede)."""
        return self.ca.cert_pem.decode()

    # --- what it knows ----------------------------------------------------------------------

    def enrol(self, cert, nifs) -> None:
        """Enrol a certificate (``pki.Issued``, x509 or PEM) as Gran Destinatario for ``nifs``."""
        self.state.enrol(_certificate(cert), [nifs] if isinstance(nifs, str) else nifs)

    def unenrol(self, cert) -> None:
        self.state.unenrol(_certificate(cert))

    def add_notification(self, nif: str, **fields) -> Notification:
        """Put a notification (or ``kind="comunicacion"``) at the disposal of ``nif``; see
        ``DehuState.add`` for the fields (subject, issuer_code/name, made_available_at, document,
        anexos as (name, bytes, mime), state, …). Its ``external_id`` is the connector's."""
        return self.state.add(nif, **fields)

    def notification(self, identificador: str) -> Notification:
        return self.state.get(identificador)

    @property
    def notifications(self) -> list[Notification]:
        with self.state.lock:
            return list(self.state.notifications.values())

    # --- the Seguridad Social (WSCN) ------------------------------------------------------------

    def ss_enrol(self, cert, *, nifs=(), red_codes=(), poderdantes: dict[str, str] | None = None) -> None:
        """Let a certificate use WSCN: its own ``nifs`` (rol propias), the CCCs/NAF of its RED
        authorisation (``red_codes``) and the NIFs that empowered it (``poderdantes``: NIF -> name)."""
        self.wscn.enrol(_certificate(cert), nifs=nifs, red_codes=red_codes, poderdantes=poderdantes)

    def ss_add_notification(self, titular_nif: str, destinatario: str, **fields) -> SsNotification:
        """Put a notification of ``titular_nif`` addressed to its CCC or NAF ``destinatario`` at
        disposal; see ``WscnState.add`` (procedimiento, made_available_at, tipo_destinatario, estado, pdf).
        Its ``codigo`` is the connector's ``external_id``."""
        return self.wscn.add(titular_nif, destinatario, **fields)

    def ss_notification(self, codigo: int | str) -> SsNotification:
        with self.wscn.lock:
            return self.wscn.notifications[int(codigo)]

    # --- what it is told to do ----------------------------------------------------------------

    def inject_fault(self, code: str, *, operation: str | None = None, times: int | None = 1) -> None:
        """The next ``times`` requests (of ``operation``, or any; ``None``: all) answer fault ``code``
        (4102, 4103, 4202, 4207, 2001, …)."""
        with self.app.lock:
            self.injection.faults.append([code, operation, times])

    def delay(self, seconds: float, *, operation: str | None = None, times: int | None = 1) -> None:
        """The next ``times`` requests wait ``seconds`` before answering."""
        with self.app.lock:
            self.injection.delays.append([seconds, operation, times])

    def unavailable(self, *, times: int | None = 1, retry_after: int | None = None, status: int = 503) -> None:
        """The next ``times`` requests answer HTTP 503 (with ``Retry-After`` when given)."""
        with self.app.lock:
            self.injection.outages.append([status, None, times, retry_after])

    def damage(self, kind: str, *, operation: str | None = None, times: int | None = 1) -> None:
        """The next ``times`` answers arrive damaged: ``"truncated"`` (half the envelope),
        ``"attachment"`` (the first attachment no longer matches its hash) or ``"acuse"`` (WSCN's
        solicitarAcuseNotificacion hands out the acuse of another notification)."""
        if kind not in ("truncated", "attachment", "acuse"):
            raise ValueError(kind)
        with self.app.lock:
            self.injection.damages.append([kind, operation, times])

    @property
    def latency(self) -> float:
        return self.injection.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        """Every request waits this long (the benchmark's 100 ms)."""
        self.injection.latency = seconds

    @property
    def clock_offset(self) -> timedelta:
        return self.injection.clock_offset

    @clock_offset.setter
    def clock_offset(self, offset: timedelta) -> None:
        """How far the simulator's clock is ahead of ours (for the timestamp window checks)."""
        self.injection.clock_offset = offset

    def reset(self) -> None:
        """Forget injected faults, delays, outages and damages, and the request log."""
        with self.app.lock:
            self.injection.faults.clear()
            self.injection.delays.clear()
            self.injection.outages.clear()
            self.injection.damages.clear()
            self.app.in_flight.most.clear()
        with self.state.lock:
            self.state.served.clear()

    # --- what it saw --------------------------------------------------------------------------

    @property
    def requests(self) -> list[Served]:
        with self.state.lock:
            return list(self.state.served)

    @property
    def requests_served(self) -> int:
        with self.state.lock:
            return len(self.state.served)

    def most_in_flight(self, service: str = "dehu") -> int:
        """The most requests it was answering at the same time (``dehu``: LEMA and Realizadas,
        ``wscn``: the Seguridad Social): what a per-sede concurrency limit bounds."""
        with self.app.lock:
            return self.app.in_flight.most.get(service, 0)

    def operations(self) -> list[str | None]:
        """The operations asked, in order (``None`` for requests that named none)."""
        return [served.operation for served in self.requests]

    def now(self) -> datetime:
        return self.app.now()
