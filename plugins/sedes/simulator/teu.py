"""A BOE simulator for the Tablón Edictal Único: the day's index and each announcement's PDF, on a
loopback HTTPS server with a CA made at start (tests and the demo; the real BOE cannot be used).

It serves what ``plugins.sedes.teu.boe`` reads: ``/boe_n/dias/YYYY/MM/DD/index.php`` (the
announcements grouped under section, department and issuing body, each ``<li class="notif">``
with a link ``pdfs/BOE-N-YYYY-NNNNNN.pdf``), the PDFs, and 404 for a day without announcements.

In a test::

    with BoeSimulator() as boe:
        boe.add_announcement(day, issuer="Jefatura Provincial de Tráfico de Madrid", title="…", pdf=data)
        # the catalogue's ``teu`` entry: base_url=boe.url, ca_certificates=boe.ca_pem

``realistic_day(day, nifs)`` publishes a day like the BOE's (traffic fines in tables, a tax
citation, a Seguridad Social claim, a town hall's edict) naming ``nifs`` among other people. As the
demo's process: ``python -m plugins.sedes.simulator.teu --port 8444 --state-dir instance/boe
--nifs 12345678Z,B12345674`` publishes a realistic today and yesterday (Madrid's days), the numbers
shared between them, and prints its URL.
"""

from __future__ import annotations

import argparse
import html
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from werkzeug.serving import WSGIRequestHandler, make_server

from plugins.sedes import pki

CA_NAME = "Ventanilla BOE Pruebas AC"


@dataclass
class Published:
    identifier: str
    day: date
    section: str
    department: str
    issuer: str
    title: str
    pdf: bytes


@dataclass
class _Injection:
    outages: int = 0  # the next requests answered 503
    latency: float = 0.0


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def edict_pdf(
    title: str,
    paragraphs: list[str] = (),
    table: list[list[str]] = (),
    widths: list[int] = (),
) -> bytes:
    """A one-page edict (A4, Helvetica): a title, paragraphs wrapped at 90 characters, and a table
    whose cells wrap within their column (a long cell goes on the next line of the same column,
    as narrow columns of real edicts split a document number)."""
    commands = ["BT /F1 11 Tf"]
    y = 800

    def line(x: int, text: str, size: int = 9) -> None:
        commands.append(f"/F1 {size} Tf 1 0 0 1 {x} {y} Tm ({_escape(text)}) Tj")

    line(40, title[:95], 11)
    y -= 24
    for paragraph in paragraphs:
        words, current = paragraph.split(), ""
        for word in words:
            if len(current) + len(word) + 1 > 90:
                line(40, current)
                y -= 13
                current = word
            else:
                current = f"{current} {word}".strip()
        if current:
            line(40, current)
            y -= 13
        y -= 6
    columns = max((len(r) for r in table), default=0)
    widths = (list(widths) + [12] * columns)[:columns]
    for row in table:
        row = (list(row) + [""] * columns)[:columns]
        pieces = [
            [cell[i : i + width] for i in range(0, len(cell), width)] or [""]
            for cell, width in zip(row, widths, strict=True)
        ]
        for depth in range(max(len(p) for p in pieces)):
            x = 40
            for cell_lines, width in zip(pieces, widths, strict=True):
                if depth < len(cell_lines) and cell_lines[depth]:
                    line(x, cell_lines[depth], 8)
                x += width * 5 + 8
            y -= 11
        y -= 3
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class BoeSimulator:
    """The BOE's TEU on ``url`` (HTTPS, its own CA: ``ca_pem``, ``ca_bundle``)."""

    def __init__(self, *, state_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 0):
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="boe-simulator-")
        self.state_dir = Path(state_dir or self._tmp.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = self.authority(self.state_dir)
        self.host = host
        self._port = port
        self.announcements: dict[str, Published] = {}
        self.injection = _Injection()
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @staticmethod
    def authority(state_dir: str | Path) -> pki.CertificateAuthority:
        """The CA of a simulator run with ``state_dir`` (made there now if new): the demo trusts it
        in the catalogue before the simulator's process starts."""
        return pki.CertificateAuthority.stored(state_dir, CA_NAME)

    # --- life -------------------------------------------------------------------------------

    def start(self) -> BoeSimulator:
        import ssl

        cert_path, key_path = self.ca.server((self.host, "localhost")).write(self.state_dir, "server")
        self.ca.write_bundle(self.state_dir / "ca-bundle.pem")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        self._server = make_server(
            self.host, self._port, self._wsgi, threaded=True, ssl_context=context, request_handler=_Quiet
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="boe-simulator", daemon=True)
        self._thread.start()
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

    def __enter__(self) -> BoeSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL of the catalogue's ``teu`` entry."""
        return f"https://{self.host}:{self._server.server_port}"

    @property
    def ca_pem(self) -> str:
        """The CA to trust for its TLS (the catalogue's ``ca_certificates``)."""
        return self.ca.cert_pem.decode()

    @property
    def ca_bundle(self) -> str:
        return str(self.state_dir / "ca-bundle.pem")

    @property
    def requests_served(self) -> int:
        return len(self.requests)

    # --- what it publishes ------------------------------------------------------------------

    def add_announcement(
        self,
        day: date,
        *,
        issuer: str,
        title: str,
        pdf: bytes | None = None,
        text: list[str] = (),
        table: list[list[str]] = (),
        department: str = "",
        section: str = "ADMINISTRACIÓN GENERAL DEL ESTADO",
        identifier: str | None = None,
    ) -> str:
        """Publish an announcement on ``day``: its PDF as given, or written from ``text`` and ``table``.
        Returns its identifier (``BOE-N-YYYY-NNNNNN``, numbered by day and order of publication)."""
        with self._lock:
            if identifier is None:
                count = sum(1 for a in self.announcements.values() if a.day == day)
                identifier = f"BOE-N-{day.year}-{day.timetuple().tm_yday * 1000 + count + 1:06d}"
            data = pdf if pdf is not None else edict_pdf(title, list(text), [list(r) for r in table])
            self.announcements[identifier] = Published(identifier, day, section, department, issuer, title, data)
        return identifier

    def realistic_day(self, day: date, nifs: list[str] = ()) -> list[str]:
        """A day of the TEU naming ``nifs`` (in the forms edicts use) among unrelated people."""
        nifs = list(nifs)
        first, second = [*nifs, "", ""][:2]
        rest = nifs[2:]
        people = [pki.dni(n) for n in (31000001, 44556677, 50607080, 72000003, 9000201)]
        rows = [["EXPEDIENTE", "DENUNCIADO/A", "IDENTIF", "LOCALIDAD", "FECHA", "MATRICULA", "CUANTIA"]]
        for number, person in enumerate([*people[:3], first, *people[3:], *rest], start=1):
            if person:
                rows.append(
                    [
                        f"28{day:%y}{number:08d}",
                        "",
                        person,
                        "MADRID",
                        f"{day - timedelta(days=40):%d/%m/%Y}",
                        f"{1000 + number:04d}KLM",
                        "200,00",
                    ]
                )
        identifiers = [
            self.add_announcement(
                day,
                department="MINISTERIO DEL INTERIOR",
                issuer="Jefatura Provincial de Tráfico de Madrid",
                title="Anuncio de la Jefatura Provincial de Tráfico de Madrid de notificación de resoluciones "
                "sancionadoras en materia de tráfico.",
                text=[
                    "De conformidad con los artículos 44 y 46 de la Ley 39/2015, se hace pública la notificación "
                    "de las resoluciones sancionadoras dictadas a las personas que se relacionan, cuyo domicilio "
                    "último conocido se indica, ya que intentada la notificación en este no se ha podido practicar.",
                    "Las sanciones podrán abonarse en el plazo de quince días naturales siguientes a la firmeza.",
                ],
                table=rows,
            )
        ]
        if second:
            identifiers.append(
                self.add_announcement(
                    day,
                    department="MINISTERIO DE HACIENDA",
                    issuer="Agencia Estatal de Administración Tributaria",
                    title="Anuncio de la Agencia Estatal de Administración Tributaria, Delegación Especial de "
                    "Madrid, de citación para ser notificado por comparecencia.",
                    text=[
                        "No habiendo sido posible realizar la notificación al interesado por causas no "
                        "imputables a la Administración, se le cita para ser notificado por comparecencia "
                        f"en el plazo de quince días naturales. Obligado tributario con N.I.F. {second}, "
                        "procedimiento de comprobación limitada, IVA, ejercicio 2025.",
                    ],
                )
            )
        identifiers.append(
            self.add_announcement(
                day,
                department="MINISTERIO DE INCLUSIÓN, SEGURIDAD SOCIAL Y MIGRACIONES",
                issuer="Tesorería General de la Seguridad Social, Dirección Provincial de Valencia",
                title="Anuncio de la Tesorería General de la Seguridad Social de notificación de reclamaciones "
                "de deuda.",
                text=["Se notifica a los sujetos responsables que se relacionan las reclamaciones de deuda."],
                table=[["IDENTIF", "REGIMEN", "RECLAMACION", "PERIODO", "IMPORTE"]]
                + [[p, "0521", f"46 25 {n:09d}", "0925 0925", "300,00"] for n, p in enumerate(people[3:], 1)],
            )
        )
        identifiers.append(
            self.add_announcement(
                day,
                section="ADMINISTRACIÓN LOCAL",
                issuer="Ayuntamiento de Sevilla",
                title="Anuncio del Ayuntamiento de Sevilla de notificación de la incoación de expedientes de "
                "baja de oficio en el Padrón Municipal.",
                text=[f"Interesado con documento {people[0][:-1]}, expediente 2026/000{day:%d}1."],
            )
        )
        return identifiers

    # --- failures -----------------------------------------------------------------------------

    def unavailable(self, times: int = 1) -> None:
        """The next ``times`` requests are answered 503."""
        self.injection.outages += times

    # --- HTTP -----------------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        with self._lock:
            self.requests.append(path)
            outage = self.injection.outages > 0
            if outage:
                self.injection.outages -= 1
            latency = self.injection.latency
        if latency:
            time.sleep(latency)
        if outage:
            return self._answer(start_response, "503 Service Unavailable", b"busy", "text/plain")
        parts = path.strip("/").split("/")
        if len(parts) >= 6 and parts[:2] == ["boe_n", "dias"]:
            try:
                day = date(int(parts[2]), int(parts[3]), int(parts[4]))
            except ValueError:
                day = None
            if day is not None and parts[5] == "index.php" and len(parts) == 6:
                published = [a for a in self.announcements.values() if a.day == day]
                if published:
                    page = self._index(day, published)
                    return self._answer(start_response, "200 OK", page, "text/html; charset=utf-8")
            if day is not None and len(parts) == 7 and parts[5] == "pdfs" and parts[6].endswith(".pdf"):
                found = self.announcements.get(parts[6][:-4])
                if found is not None and found.day == day:
                    return self._answer(start_response, "200 OK", found.pdf, "application/pdf")
        return self._answer(start_response, "404 Not Found", b"<html><body>No encontrado</body></html>", "text/html")

    @staticmethod
    def _answer(start_response, status: str, body: bytes, content_type: str):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _index(day: date, published: list[Published]) -> bytes:
        e = html.escape
        out = [
            '<!DOCTYPE html><html lang="es"><head><meta charset="utf-8">',
            f"<title>BOE.es - Suplemento de Notificaciones del {day:%d/%m/%Y}</title></head><body>",
            '<div id="contenido"><h2>Suplemento de Notificaciones</h2><div class="sumario">',
        ]
        section = department = issuer = None
        for item in published:
            if item.section != section:
                section, department, issuer = item.section, None, None
                out.append(f"<h3>{e(section)}</h3>")
            if item.department != department:
                department, issuer = item.department, None
                if department:
                    out.append(f"<h4>{e(department)}</h4>")
            if item.issuer != issuer:
                issuer = item.issuer
                out.append(f"<h5>{e(issuer)}</h5>")
            size = max(1, len(item.pdf) // 1024)
            out.append(
                f'<ul><li class="notif"><p>{e(item.title)}</p><div class="enlacesDoc"><ul>'
                f'<li class="puntoPDF"><a href="pdfs/{item.identifier}.pdf" title="PDF de {item.identifier}">'
                f"PDF ({item.identifier} - 1 pág. - {size} KB)</a></li></ul></div></li></ul>"
            )
        out.append("</div></div></body></html>")
        return "".join(out).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.sedes.simulator.teu", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--state-dir", required=True, help="where its CA is kept")
    parser.add_argument("--nifs", default="", help="document numbers the edicts name, comma-separated")
    args = parser.parse_args(argv)
    simulator = BoeSimulator(state_dir=args.state_dir, host=args.host, port=args.port)
    nifs = [n.strip() for n in args.nifs.split(",") if n.strip()]
    today = datetime.now(ZoneInfo("Europe/Madrid")).date()  # the BOE's calendar
    simulator.realistic_day(today - timedelta(days=1), nifs[len(nifs) // 2 :])
    simulator.realistic_day(today, nifs[: len(nifs) // 2] or nifs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with simulator:
        print(f"BOE simulator listening on {simulator.url} (CA bundle {simulator.ca_bundle})", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
