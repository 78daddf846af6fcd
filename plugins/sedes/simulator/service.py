"""What the simulated DEHú knows and does: enrolled certificates, notifications, the operations.

The HTTP side (``server``) verifies the envelope and hands each operation here as the verified
Body child; the answer is the ``Respuesta<Op>`` element plus its attachments (swaRef for LEMA,
MTOM for Realizadas). Faults are raised as ``Fault``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from lxml import etree

from plugins.sedes.connectors.dehu import messages as m
from plugins.sedes.simulator.pdf import tiny_pdf

DESCRIPTIONS = {
    "2001": "Error en la decodificación del mensaje",
    "4102": "No está dado de alta en nuestro sistema",
    "4103": "Error en el control de acceso, el certificado utilizado no está autorizado",
    "4202": "Debe informar el NIF del titular o del destinatario",
    "4207": "La fecha está fuera del margen permitido",
    "4301": "El envío no existe",
    "4302": "El envío no está disponible para esta operación",
    "4303": "El documento solicitado no existe",
}

PENDIENTE = "PENDIENTE"
ACEPTADA = "ACEPTADA"
REALISED = ("ACEPTADA", "RECHAZADA", "EXPIRADA", "REALIZADA_TEU", "LEIDA")

# Issuers for made-up notifications (DIR3-shaped codes).
ISSUERS = (
    ("EA0028512", "Agencia Estatal de Administración Tributaria", "Q2826000H"),
    ("EA0042198", "Tesorería General de la Seguridad Social", "Q2827003A"),
    ("E00130502", "Dirección General de Tráfico", "Q2816003D"),
    ("L01280796", "Ayuntamiento de Madrid", "P2807900B"),
)
SUBJECTS = (
    ("2", "Requerimiento de documentación. IRPF 2025"),
    ("2", "Providencia de apremio"),
    ("2", "Notificación de sanción de tráfico"),
    ("1", "Comunicación de inicio de actuaciones"),
    ("2", "Resolución de aplazamiento"),
    ("1", "Aviso de cita previa"),
)


class Fault(Exception):
    """A SOAP fault: ``code`` the DEHú error code (or None), ``faultcode`` the SOAP one."""

    def __init__(self, code: str | None, faultcode: str = "soapenv:Client", reason: str = ""):
        self.code = code
        self.faultcode = faultcode
        self.reason = reason or DESCRIPTIONS.get(code or "", "Error")
        super().__init__(f"{code} {self.reason}")


@dataclass
class Anexo:
    referencia: str
    nombre: str
    mime: str
    content: bytes


@dataclass
class Notification:
    """A notification or communication as DEHú holds it."""

    identificador: str
    codigo_origen: str
    titular_nif: str
    titular_name: str
    tipo_envio: str  # "1" comunicación, "2" notificación
    concepto: str
    descripcion: str
    issuer_code: str
    issuer_name: str
    issuer_nif: str
    made_available_at: datetime
    document_name: str
    document: bytes
    anexos: list[Anexo] = field(default_factory=list)
    destinatario_nif: str | None = None
    vinculo: str = "1"
    procedure: str | None = None
    state: str = PENDIENTE
    state_at: datetime | None = None
    receptor_nif: str | None = None
    receptor_name: str | None = None
    acuse_ref: str = field(default_factory=lambda: uuid.uuid4().hex)
    csv: str = field(default_factory=lambda: "CSV" + uuid.uuid4().hex[:16].upper())
    acuse: bytes | None = None

    @property
    def external_id(self) -> str:
        """The connector's ``NotificationRecord.external_id`` for it."""
        return f"{self.codigo_origen}-{self.identificador}"

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("document", "acuse"):
            data[key] = base64.b64encode(data[key]).decode() if data[key] is not None else None
        for anexo in data["anexos"]:
            anexo["content"] = base64.b64encode(anexo["content"]).decode()
        for key in ("made_available_at", "state_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> Notification:
        data = dict(data)
        for key in ("document", "acuse"):
            data[key] = base64.b64decode(data[key]) if data[key] is not None else None
        data["anexos"] = [Anexo(**{**a, "content": base64.b64decode(a["content"])}) for a in data["anexos"]]
        for key in ("made_available_at", "state_at"):
            data[key] = datetime.fromisoformat(data[key]) if data[key] else None
        return cls(**data)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def certificate_nifs(cert: x509.Certificate) -> set[str]:
    """The NIFs a certificate names: the person (``IDCES-``) and the entity (``VATES-``)."""
    found = set()
    for oid in (NameOID.SERIAL_NUMBER, NameOID.ORGANIZATION_IDENTIFIER):
        for attribute in cert.subject.get_attributes_for_oid(oid):
            value = str(attribute.value)
            found.add(value.split("-", 1)[1] if "-" in value[:6] else value)
    return found


@dataclass
class Served:
    """One request the simulator answered."""

    operation: str | None
    status: int
    fault: str | None = None
    nif: str | None = None
    fields: dict = field(default_factory=dict)  # the operation's simple elements, as sent
    started: float = 0.0  # time.monotonic() when it arrived
    finished: float = field(default_factory=time.monotonic)  # when its answer was ready
    connection: str = ""  # the client's address and port: requests on one connection share it


class DehuState:
    """The simulated service: thread-safe; persisted to ``state_file`` when given."""

    def __init__(
        self,
        *,
        page_size: int = 50,
        auto_enrol: bool = False,
        demo_notifications: int = 0,
        state_file: Path | None = None,
    ):
        self.lock = threading.RLock()
        self.page_size = page_size
        self.auto_enrol = auto_enrol
        self.demo_notifications = demo_notifications
        self.state_file = state_file
        self.enrolments: dict[str, set[str]] = {}
        self.notifications: dict[tuple[str, str], Notification] = {}
        self.seeded: set[str] = set()
        self.served: list[Served] = []
        self.next_number = 1
        if state_file is not None and state_file.exists():
            self._load()

    # --- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        data = json.loads(self.state_file.read_text())
        self.enrolments = {fp: set(nifs) for fp, nifs in data["enrolments"].items()}
        for item in data["notifications"]:
            notification = Notification.from_json(item)
            self.notifications[(notification.codigo_origen, notification.identificador)] = notification
        self.seeded = set(data.get("seeded", []))
        self.next_number = int(data.get("next_number", 1))

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            data = {
                "enrolments": {fp: sorted(nifs) for fp, nifs in self.enrolments.items()},
                "notifications": [n.to_json() for n in self.notifications.values()],
                "seeded": sorted(self.seeded),
                "next_number": self.next_number,
            }
            partial = self.state_file.with_suffix(".tmp")
            partial.write_text(json.dumps(data))
            partial.replace(self.state_file)

    # --- the handle's operations ---------------------------------------------------------

    def enrol(self, cert: x509.Certificate, nifs) -> None:
        with self.lock:
            self.enrolments.setdefault(fingerprint(cert), set()).update(nif.upper() for nif in nifs)
            self.save()

    def unenrol(self, cert: x509.Certificate) -> None:
        with self.lock:
            self.enrolments.pop(fingerprint(cert), None)
            self.save()

    def add(
        self,
        nif: str,
        *,
        subject: str = "Requerimiento de información",
        kind: str = "notificacion",
        titular_name: str = "",
        issuer_code: str = ISSUERS[0][0],
        issuer_name: str = ISSUERS[0][1],
        issuer_nif: str = ISSUERS[0][2],
        made_available_at: datetime | None = None,
        document: bytes | None = None,
        document_name: str | None = None,
        anexos: list[tuple[str, bytes, str]] | tuple = (),
        destinatario_nif: str | None = None,
        vinculo: str = "1",
        procedure: str | None = None,
        description: str = "",
        state: str = PENDIENTE,
        state_at: datetime | None = None,
        codigo_origen: str = "1",
    ) -> Notification:
        with self.lock:
            number = self.next_number
            self.next_number += 1
            identificador = f"N{number:010d}{uuid.uuid4().hex[:6].upper()}"
            made = (made_available_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
            notification = Notification(
                identificador=identificador,
                codigo_origen=codigo_origen,
                titular_nif=nif.upper(),
                titular_name=titular_name or f"TITULAR {nif.upper()}",
                tipo_envio=m.COMUNICACION if kind == "comunicacion" else m.NOTIFICACION,
                concepto=subject,
                descripcion=description or subject,
                issuer_code=issuer_code,
                issuer_name=issuer_name,
                issuer_nif=issuer_nif,
                made_available_at=made,
                document_name=document_name or f"{identificador}.pdf",
                document=document if document is not None else tiny_pdf(issuer_name, subject, identificador),
                anexos=[
                    Anexo(referencia=f"ANX{number}-{i}", nombre=name, mime=mime_type, content=content)
                    for i, (name, content, mime_type) in enumerate(anexos, start=1)
                ],
                destinatario_nif=destinatario_nif,
                vinculo=vinculo,
                procedure=procedure,
                state=state,
                state_at=None if state == PENDIENTE else (state_at or datetime.now(UTC)).replace(microsecond=0),
            )
            if state == ACEPTADA:
                notification.acuse = self._acuse_pdf(notification)
            self.notifications[(codigo_origen, identificador)] = notification
            self.save()
            return notification

    def get(self, identificador: str) -> Notification:
        with self.lock:
            for (_, ident), notification in self.notifications.items():
                if ident == identificador:
                    return notification
        raise KeyError(identificador)

    # --- the service ------------------------------------------------------------------------

    def authorise(self, cert: x509.Certificate) -> set[str]:
        """The NIFs this certificate may act for; fault 4102 when it is not enrolled."""
        with self.lock:
            nifs = self.enrolments.get(fingerprint(cert))
            if nifs is None and self.auto_enrol:
                nifs = certificate_nifs(cert)
                self.enrolments[fingerprint(cert)] = nifs
                self.save()
            if not nifs:
                raise Fault("4102")
            return set(nifs)

    def handle(self, operation: etree._Element, nifs: set[str], now: datetime) -> tuple[etree._Element, dict, bool]:
        """Answer one operation: (answer element, attachments by Content-ID, whether MTOM)."""
        name = etree.QName(operation).localname
        handler = {
            m.LOCALIZA: self._localiza,
            m.PETICION_ACCESO: self._peticion_acceso,
            m.CONSULTA_ANEXOS: self._consulta_anexos,
            m.CONSULTA_ACUSE_PDF: self._consulta_acuse,
            m.LOCALIZA_REALIZADAS: self._localiza_realizadas,
            m.CONSULTA_REALIZADAS: self._consulta_realizadas,
        }[name]
        return handler(operation, nifs, now)

    # Localiza --------------------------------------------------------------------------------

    @staticmethod
    def _range(operation, now: datetime) -> tuple[datetime | None, datetime | None]:
        dates = []
        for key in ("fechaDesde", "fechaHasta"):
            value = m.text(operation, key)
            try:
                dates.append(m.parse_date(value) if value else None)
            except m.DateError as error:
                raise Fault("2001", "soapenv:Server", f"{DESCRIPTIONS['2001']}: {error}") from error
        since, until = dates
        if until is not None and until > now + timedelta(minutes=5):
            raise Fault("4207")
        if since is not None and until is not None and since > until:
            raise Fault("4207")
        return since, until

    def _titular(self, operation, nifs: set[str]) -> tuple[str | None, str | None]:
        titular = (m.text(operation, "nifTitular") or "").upper() or None
        destinatario = (m.text(operation, "nifDestinatario") or "").upper() or None
        if titular is None and destinatario is None:
            raise Fault("4202")
        if (titular or destinatario) not in nifs:
            raise Fault("4102")
        return titular, destinatario

    def _matching(self, titular, destinatario, tipo) -> list[Notification]:
        return [
            n
            for n in self.notifications.values()
            if (titular is None or n.titular_nif == titular)
            and (destinatario is None or n.destinatario_nif == destinatario)
            and (tipo is None or n.tipo_envio == tipo)
        ]

    def _localiza(self, operation, nifs, now):
        titular, destinatario = self._titular(operation, nifs)
        since, until = self._range(operation, now)
        with self.lock:
            if self.demo_notifications and (titular or destinatario) not in self.seeded:
                self._seed_demo(titular or destinatario, now)
            found = sorted(
                (
                    n
                    for n in self._matching(titular, destinatario, m.text(operation, "tipoEnvio"))
                    if n.state == PENDIENTE
                    and (since is None or n.made_available_at >= since)
                    and (until is None or n.made_available_at <= until)
                ),
                key=lambda n: (n.made_available_at, n.identificador),
            )
        page = found[: self.page_size]
        answer, ns = self._answer(m.LOCALIZA, "000", "Operación realizada correctamente")
        etree.SubElement(answer, f"{{{ns}}}nifPeticion").text = titular or destinatario
        envios = etree.SubElement(answer, f"{{{ns}}}envios")
        for notification in page:
            self._envio(envios, ns, notification, realised=False)
        etree.SubElement(answer, f"{{{ns}}}hayMasResultados").text = "true" if len(found) > len(page) else "false"
        return answer, {}, False

    def _seed_demo(self, nif: str, now: datetime) -> None:
        self.seeded.add(nif)
        for index in range(self.demo_notifications):
            issuer = ISSUERS[index % len(ISSUERS)]
            tipo, subject = SUBJECTS[index % len(SUBJECTS)]
            self.add(
                nif,
                subject=subject,
                kind="comunicacion" if tipo == m.COMUNICACION else "notificacion",
                issuer_code=issuer[0],
                issuer_name=issuer[1],
                issuer_nif=issuer[2],
                made_available_at=now - timedelta(days=index * 2 % 9, hours=3 + index),
                anexos=[("Anexo I.pdf", tiny_pdf("Anexo I", subject), "application/pdf")] if index % 3 == 0 else (),
            )

    # Realizadas --------------------------------------------------------------------------------

    def _localiza_realizadas(self, operation, nifs, now):
        titular, destinatario = self._titular(operation, nifs)
        since, until = self._range(operation, now)
        try:
            page_number = max(1, int(m.text(operation, "pagina") or 1))
        except ValueError as error:
            raise Fault("2001", "soapenv:Server") from error
        with self.lock:
            found = sorted(
                (
                    n
                    for n in self._matching(titular, destinatario, m.text(operation, "tipoEnvio"))
                    if n.state in REALISED
                    and n.state_at is not None
                    and (since is None or n.state_at >= since)
                    and (until is None or n.state_at <= until)
                ),
                key=lambda n: (n.state_at, n.identificador),
            )
        pages = max(1, -(-len(found) // self.page_size))
        page = found[(page_number - 1) * self.page_size : page_number * self.page_size]
        answer, ns = self._answer(m.LOCALIZA_REALIZADAS, "000", "Operación realizada correctamente")
        envios = etree.SubElement(answer, f"{{{ns}}}envios")
        for notification in page:
            self._envio(envios, ns, notification, realised=True)
        etree.SubElement(answer, f"{{{ns}}}totalPaginas").text = str(pages)
        etree.SubElement(answer, f"{{{ns}}}paginaActual").text = str(page_number)
        return answer, {}, False

    def _consulta_realizadas(self, operation, nifs, now):
        notification = self._find(operation, nifs)
        if notification.state not in REALISED:
            raise Fault("4302")
        answer, ns = self._answer(m.CONSULTA_REALIZADAS, "000", "Operación realizada correctamente")
        etree.SubElement(answer, f"{{{ns}}}identificador").text = notification.identificador
        etree.SubElement(answer, f"{{{ns}}}codigoOrigen").text = notification.codigo_origen
        etree.SubElement(answer, f"{{{ns}}}fechaUltimoEstado").text = m.madrid(notification.state_at)
        attachments: dict[str, bytes] = {}
        self._document(
            answer, ns, "documento", notification.document_name, notification.document, attachments, mtom=True
        )
        self._anexos(answer, ns, notification)
        return answer, attachments, True

    # PeticionAcceso and what follows -----------------------------------------------------------

    def _find(self, operation, nifs) -> Notification:
        key = (m.text(operation, "codigoOrigen") or "", m.text(operation, "identificador") or "")
        with self.lock:
            notification = self.notifications.get(key)
        if notification is None:
            raise Fault("4301")
        if notification.titular_nif not in nifs and notification.destinatario_nif not in nifs:
            raise Fault("4102")
        return notification

    def _peticion_acceso(self, operation, nifs, now):
        notification = self._find(operation, nifs)
        if m.text(operation, "evento") != m.EVENTO_ACEPTAR:
            raise Fault("2001", "soapenv:Server", "evento no soportado")
        with self.lock:
            if notification.state == PENDIENTE:
                notification.state = ACEPTADA
                notification.state_at = now.astimezone(UTC).replace(microsecond=0)
                notification.receptor_nif = (m.text(operation, "nifReceptor") or "").upper()
                notification.receptor_name = m.text(operation, "nombreReceptor") or ""
                notification.acuse = self._acuse_pdf(notification)
                self.save()
            elif notification.state != ACEPTADA:
                raise Fault("4302")
        answer, ns = self._answer(m.PETICION_ACCESO, "000", "Operación realizada correctamente")
        etree.SubElement(answer, f"{{{ns}}}identificador").text = notification.identificador
        etree.SubElement(answer, f"{{{ns}}}codigoOrigen").text = notification.codigo_origen
        etree.SubElement(answer, f"{{{ns}}}fechaEvento").text = m.madrid(notification.state_at)
        attachments: dict[str, bytes] = {}
        document = self._document(
            answer, ns, "documento", notification.document_name, notification.document, attachments, mtom=False
        )
        etree.SubElement(document, f"{{{ns}}}referenciaPdfAcuse").text = notification.acuse_ref
        etree.SubElement(document, f"{{{ns}}}csvResguardo").text = notification.csv
        self._anexos(answer, ns, notification)
        return answer, attachments, False

    def _consulta_anexos(self, operation, nifs, now):
        notification = self._find(operation, nifs)
        if notification.state not in REALISED:
            raise Fault("4302")
        reference = m.text(operation, "referencia")
        anexo = next((a for a in notification.anexos if a.referencia == reference), None)
        if anexo is None:
            raise Fault("4303")
        answer, ns = self._answer(m.CONSULTA_ANEXOS, "000", "Operación realizada correctamente")
        attachments: dict[str, bytes] = {}
        self._document(answer, ns, "documento", anexo.nombre, anexo.content, attachments, mtom=False, mime=anexo.mime)
        return answer, attachments, False

    def _consulta_acuse(self, operation, nifs, now):
        notification = self._find(operation, nifs)
        identifier = m.child(operation, "identificadorAcusePdf")
        if notification.acuse is None or (
            m.text(identifier, "referencia") != notification.acuse_ref
            and m.text(identifier, "csvResguardo") != notification.csv
        ):
            raise Fault("4303")
        answer, ns = self._answer(m.CONSULTA_ACUSE_PDF, "000", "Operación realizada correctamente")
        attachments: dict[str, bytes] = {}
        self._document(
            answer,
            ns,
            "acusePdf",
            f"acuse-{notification.identificador}.pdf",
            notification.acuse,
            attachments,
            mtom=False,
        )
        return answer, attachments, False

    # pieces -------------------------------------------------------------------------------------

    @staticmethod
    def _answer(operation: str, code: str, description: str) -> tuple[etree._Element, str]:
        ns = m.answer_namespace(operation)
        answer = etree.Element(f"{{{ns}}}Respuesta{operation}", nsmap={"resp": ns})
        etree.SubElement(answer, f"{{{ns}}}codigoRespuesta").text = code
        etree.SubElement(answer, f"{{{ns}}}descripcionRespuesta").text = description
        return answer, ns

    @staticmethod
    def _organismo(parent, ns, tag, code, name, nif) -> None:
        node = etree.SubElement(parent, f"{{{ns}}}{tag}")
        etree.SubElement(node, f"{{{ns}}}codigoOrganismo").text = code
        etree.SubElement(node, f"{{{ns}}}nombreOrganismo").text = name
        etree.SubElement(node, f"{{{ns}}}nifOrganismo").text = nif

    def _envio(self, envios, ns, n: Notification, *, realised: bool) -> None:
        item = etree.SubElement(envios, f"{{{ns}}}item")
        etree.SubElement(item, f"{{{ns}}}identificador").text = n.identificador
        etree.SubElement(item, f"{{{ns}}}codigoOrigen").text = n.codigo_origen
        etree.SubElement(item, f"{{{ns}}}concepto").text = n.concepto
        etree.SubElement(item, f"{{{ns}}}descripcion").text = n.descripcion
        etree.SubElement(item, f"{{{ns}}}tipoEnvio").text = n.tipo_envio
        self._organismo(item, ns, "organismoEmisor", n.issuer_code, n.issuer_name, n.issuer_nif)
        self._organismo(item, ns, "organismoEmisorRaiz", n.issuer_code, n.issuer_name, n.issuer_nif)
        titular = etree.SubElement(item, f"{{{ns}}}titular")
        etree.SubElement(titular, f"{{{ns}}}nifTitular").text = n.titular_nif
        etree.SubElement(titular, f"{{{ns}}}nombreTitular").text = n.titular_name
        etree.SubElement(item, f"{{{ns}}}fechaPuestaDisposicion").text = m.madrid(n.made_available_at)
        etree.SubElement(item, f"{{{ns}}}vinculo").text = n.vinculo
        if realised:
            etree.SubElement(item, f"{{{ns}}}estado").text = n.state
            etree.SubElement(item, f"{{{ns}}}fechaUltimoEstado").text = m.madrid(n.state_at)
            if n.receptor_nif:
                receptor = etree.SubElement(item, f"{{{ns}}}receptor")
                etree.SubElement(receptor, f"{{{ns}}}nifReceptor").text = n.receptor_nif
                etree.SubElement(receptor, f"{{{ns}}}nombreReceptor").text = n.receptor_name
            if n.procedure:
                etree.SubElement(item, f"{{{ns}}}codigoProcedimiento").text = n.procedure
            if n.acuse is not None:
                etree.SubElement(item, f"{{{ns}}}referenciaPdfAcuse").text = n.acuse_ref
                etree.SubElement(item, f"{{{ns}}}csvResguardo").text = n.csv

    @staticmethod
    def _document(parent, ns, tag, name, content, attachments, *, mtom: bool, mime: str = "application/pdf"):
        node = etree.SubElement(parent, f"{{{ns}}}{tag}")
        etree.SubElement(node, f"{{{ns}}}nombre").text = name
        content_id = f"{uuid.uuid4().hex}@dehu.simulador"
        attachments[content_id] = content
        holder = etree.SubElement(node, f"{{{ns}}}contenido")
        if mtom:
            etree.SubElement(holder, f"{{{m.XOP}}}Include", nsmap={"xop": m.XOP}, href=f"cid:{content_id}")
        else:
            holder.set("href", f"cid:{content_id}")
        digest = etree.SubElement(node, f"{{{ns}}}hashDocumento")
        etree.SubElement(digest, f"{{{ns}}}hash").text = base64.b64encode(hashlib.sha256(content).digest()).decode()
        etree.SubElement(digest, f"{{{ns}}}algoritmoHash").text = "SHA-256"
        etree.SubElement(node, f"{{{ns}}}mimeType").text = mime
        return node

    @staticmethod
    def _anexos(parent, ns, n: Notification) -> None:
        if not n.anexos:
            return
        holder = etree.SubElement(etree.SubElement(parent, f"{{{ns}}}anexos"), f"{{{ns}}}anexosReferencia")
        for anexo in n.anexos:
            item = etree.SubElement(holder, f"{{{ns}}}anexoReferencia")
            etree.SubElement(item, f"{{{ns}}}nombre").text = anexo.nombre
            etree.SubElement(item, f"{{{ns}}}referenciaDocumento").text = anexo.referencia
            etree.SubElement(item, f"{{{ns}}}mimeType").text = anexo.mime

    @staticmethod
    def _acuse_pdf(n: Notification) -> bytes:
        return tiny_pdf(
            "Acuse de recibo - DEHU (simulador)",
            f"Envio {n.identificador}",
            f"Titular {n.titular_nif}",
            f"Comparecencia {m.madrid(n.state_at or datetime.now(UTC))}",
            f"Receptor {n.receptor_nif or ''}",
            f"CSV {n.csv}",
        )
