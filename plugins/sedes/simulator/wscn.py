"""The simulated WSCN service of the Seguridad Social (``/INFRWSCN/WSCNService``).

Users are certificates: each sees notifications as **propias** (addressed to its own NIFs), as
**autorizado RED** (addressed to the CCCs/NAF of its RED authorisation) and as **apoderado** (of
the NIFs that empowered it). Listings page by each role's ``codigoSiguienteNotificacion…``
(``page_size`` per role and answer) while ``hayMas``. Acceptance: ``solicitarAcuseNotificacion``
hands out an acuse XML with a one-use identifier; ``enviarAcuseNotificacion`` takes it back only
signed (XAdES) by the certificate that asked, of this simulator's CA, unchanged; the notification
is then accepted, and the answer carries its PDF and the time stamp.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from lxml import etree

from plugins.sedes.connectors.seguridad_social import acuse as acuses
from plugins.sedes.connectors.seguridad_social import messages as m
from plugins.sedes.simulator.pdf import tiny_pdf
from plugins.sedes.simulator.service import Fault, certificate_nifs, fingerprint
from plugins.sedes.ssid import control_digits

TIPOS_DESTINATARIO = {"CCC": "Código de Cuenta de Cotización", "NAF": "Número de Afiliación"}
ESTADOS = {
    m.ESTADO_PENDIENTE: "Pendiente de comparecencia",
    m.ESTADO_ACEPTADA: "Aceptada",
    m.ESTADO_RECHAZADA: "Rechazada",
    m.ESTADO_CADUCADA: "Caducada",
}
AVAILABLE_DAYS = 10
DEMO_PROCEDURES = (
    "Reclamación de deuda por cuotas",
    "Resolución sobre alta en el Régimen General",
    "Providencia de apremio",
    "Requerimiento de documentación",
)


def wscn_fault(code: str, reason: str = "") -> Fault:
    """A ``WSCNExcepcionSistema`` fault with ``code``."""
    return Fault(code, "soapenv:Server", reason or m.DESCRIPTIONS.get(code, "Error"))


@dataclass
class WscnUser:
    nifs: set[str] = field(default_factory=set)
    red_codes: set[str] = field(default_factory=set)
    poderdantes: dict[str, str] = field(default_factory=dict)  # NIF -> name


@dataclass
class SsNotification:
    codigo: int
    titular_nif: str
    titular_name: str
    destinatario: str
    tipo_destinatario: str
    procedimiento: str
    made_available_at: datetime
    available_until: datetime
    pdf: bytes
    estado: int = m.ESTADO_PENDIENTE
    accepted_at: datetime | None = None
    accepted_by: str | None = None  # the signer's certificate fingerprint
    sellado: str | None = None
    signed_acuse: bytes | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("pdf", "signed_acuse"):
            data[key] = base64.b64encode(data[key]).decode() if data[key] is not None else None
        for key in ("made_available_at", "available_until", "accepted_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> SsNotification:
        data = dict(data)
        for key in ("pdf", "signed_acuse"):
            data[key] = base64.b64decode(data[key]) if data[key] is not None else None
        for key in ("made_available_at", "available_until", "accepted_at"):
            data[key] = datetime.fromisoformat(data[key]) if data[key] else None
        return cls(**data)


class WscnState:
    """The WSCN service's data and operations (thread-safe)."""

    def __init__(
        self,
        ca_cert: x509.Certificate,
        *,
        page_size: int = 50,
        auto_enrol: bool = False,
        demo_notifications: int = 0,
        state_file: Path | None = None,
    ):
        self.lock = threading.RLock()
        self.state_file = state_file
        self.ca_cert = ca_cert
        self.page_size = page_size
        self.auto_enrol = auto_enrol
        self.demo_notifications = demo_notifications
        self.users: dict[str, WscnUser] = {}
        self.notifications: dict[int, SsNotification] = {}
        self.acuses: dict[str, tuple[int, str, bytes]] = {}  # identificador -> (codigo, fingerprint, xml)
        self.seeded: set[str] = set()
        self.next_codigo = 1001
        if state_file is not None and state_file.exists():
            self._load()

    # --- persistence (the demo's process keeps its state across restarts) -------------------------

    def _load(self) -> None:
        data = json.loads(self.state_file.read_text())
        self.users = {
            fp: WscnUser(set(u["nifs"]), set(u["red_codes"]), dict(u["poderdantes"])) for fp, u in data["users"].items()
        }
        for item in data["notifications"]:
            notification = SsNotification.from_json(item)
            self.notifications[notification.codigo] = notification
        self.seeded = set(data["seeded"])
        self.next_codigo = int(data["next_codigo"])

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            data = {
                "users": {
                    fp: {"nifs": sorted(u.nifs), "red_codes": sorted(u.red_codes), "poderdantes": u.poderdantes}
                    for fp, u in self.users.items()
                },
                "notifications": [n.to_json() for n in self.notifications.values()],
                "seeded": sorted(self.seeded),
                "next_codigo": self.next_codigo,
            }
            partial = self.state_file.with_suffix(".tmp")
            partial.write_text(json.dumps(data))
            partial.replace(self.state_file)

    # --- the handle's -------------------------------------------------------------------------

    def enrol(self, cert: x509.Certificate, *, nifs=(), red_codes=(), poderdantes=None) -> None:
        with self.lock:
            user = self.users.setdefault(fingerprint(cert), WscnUser())
            user.nifs.update(n.upper() for n in nifs)
            user.red_codes.update(c.upper() for c in red_codes)
            user.poderdantes.update({k.upper(): v for k, v in (poderdantes or {}).items()})
            self.save()

    def add(
        self,
        titular_nif: str,
        destinatario: str,
        *,
        tipo_destinatario: str = "CCC",
        titular_name: str = "",
        procedimiento: str = "Reclamación de deuda por cuotas",
        made_available_at: datetime | None = None,
        estado: int = m.ESTADO_PENDIENTE,
        pdf: bytes | None = None,
    ) -> SsNotification:
        with self.lock:
            codigo = self.next_codigo
            self.next_codigo += 1
            made = (made_available_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
            notification = SsNotification(
                codigo=codigo,
                titular_nif=titular_nif.upper(),
                titular_name=titular_name or f"TITULAR {titular_nif.upper()}",
                destinatario=destinatario.upper(),
                tipo_destinatario=tipo_destinatario,
                procedimiento=procedimiento,
                made_available_at=made,
                available_until=made + timedelta(days=AVAILABLE_DAYS),
                pdf=pdf if pdf is not None else tiny_pdf("Seguridad Social (simulador)", procedimiento, f"{codigo}"),
                estado=estado,
            )
            self.notifications[codigo] = notification
            self.save()
            return notification

    # --- the service ----------------------------------------------------------------------------

    def handle(self, operation: etree._Element, cert: x509.Certificate, now: datetime) -> etree._Element:
        name = etree.QName(operation).localname
        user = self._user(cert)
        fields = {etree.QName(e).localname: (e.text or "").strip() for e in operation if isinstance(e.tag, str)}
        if name == m.SOLICITAR_PODERDANTES:
            return self._poderdantes(user)
        rol, poderdante = self._rol(fields, user)
        if name == m.CONSULTAR_LISTADO:
            return self._listado(fields, user, rol, poderdante, now)
        if name == m.SOLICITAR_ACUSE:
            return self._solicitar(fields, user, rol, poderdante, cert, now)
        if name == m.ENVIAR_ACUSE:
            return self._enviar(fields, user, rol, poderdante, cert, now)
        return self._ver(fields, user, rol, poderdante)

    def _user(self, cert: x509.Certificate) -> WscnUser:
        with self.lock:
            user = self.users.get(fingerprint(cert))
            if user is None and self.auto_enrol:
                user = self.users[fingerprint(cert)] = WscnUser(nifs={n.upper() for n in certificate_nifs(cert)})
                self.save()
            if user is None:
                raise wscn_fault(m.E_NOT_AUTHORISED)
            return user

    @staticmethod
    def _int(fields: dict, name: str, *, required: bool = True) -> int:
        value = fields.get(name, "")
        if not value and not required:
            return 0
        try:
            return int(value)
        except ValueError as error:
            raise wscn_fault(m.E_BAD_REQUEST, f"{m.DESCRIPTIONS[m.E_BAD_REQUEST]}: {name}") from error

    def _rol(self, fields: dict, user: WscnUser) -> tuple[int, str | None]:
        rol = self._int(fields, "rol")
        poderdante = (fields.get("identificadorPoderdante") or "").upper() or None
        if rol not in (m.ROL_TODOS, *m.ROLE_LISTS):
            raise wscn_fault(m.E_BAD_REQUEST, f"{m.DESCRIPTIONS[m.E_BAD_REQUEST]}: rol {rol}")
        if rol == m.ROL_APODERADO and poderdante is None:
            raise wscn_fault(m.E_BAD_REQUEST, f"{m.DESCRIPTIONS[m.E_BAD_REQUEST]}: identificadorPoderdante")
        if poderdante is not None and poderdante not in user.poderdantes:
            raise wscn_fault(m.E_NO_POWER)
        if rol == m.ROL_AUTORIZADO_RED and not user.red_codes:
            raise wscn_fault(m.E_NOT_RED)
        return rol, poderdante

    def _visible(self, user: WscnUser, rol: int, poderdante: str | None, n: SsNotification) -> bool:
        if rol == m.ROL_PROPIA:
            return n.titular_nif in user.nifs
        if rol == m.ROL_AUTORIZADO_RED:
            return n.destinatario in user.red_codes
        return n.titular_nif == poderdante if poderdante else n.titular_nif in user.poderdantes

    def _listado(self, fields, user, rol, poderdante, now):
        if self.demo_notifications and rol == m.ROL_PROPIA:
            self._seed_demo(user, now)
        roles = list(m.ROLE_LISTS) if rol == m.ROL_TODOS else [rol]
        if rol == m.ROL_TODOS and not user.red_codes:
            roles.remove(m.ROL_AUTORIZADO_RED)
        answer = etree.Element(f"{{{m.NS}}}{m.CONSULTAR_LISTADO}Response", nsmap={"ns2": m.NS})
        node = etree.SubElement(answer, "listadoNotificaciones")
        pages: dict[int, list[SsNotification]] = {}
        cursors: dict[int, int] = {}
        more = False
        with self.lock:
            for each in roles:
                cursor = self._int(fields, m.ROLE_LISTS[each][1], required=False)
                found = sorted(
                    (
                        n
                        for n in self.notifications.values()
                        if n.codigo >= cursor and self._visible(user, each, poderdante, n)
                    ),
                    key=lambda n: n.codigo,
                )
                pages[each] = found[: self.page_size]
                more = more or len(found) > self.page_size
                cursors[each] = pages[each][-1].codigo + 1 if len(found) > self.page_size else cursor
        # The WSDL's order: the three cursors, error, hayMas, then the lists (apoderado, RED, propias).
        for each in (m.ROL_APODERADO, m.ROL_AUTORIZADO_RED, m.ROL_PROPIA):
            etree.SubElement(node, m.ROLE_LISTS[each][1]).text = str(cursors.get(each, 0))
        etree.SubElement(node, "hayMas").text = "true" if more else "false"
        for each in (m.ROL_APODERADO, m.ROL_AUTORIZADO_RED, m.ROL_PROPIA):
            for n in pages.get(each, ()):
                self._notificacion(node, m.ROLE_LISTS[each][0], n)
        return answer

    @staticmethod
    def _notificacion(parent, tag: str, n: SsNotification) -> None:
        item = etree.SubElement(parent, tag)
        for name, value in (
            ("codigo", str(n.codigo)),
            ("descripcionEstado", ESTADOS.get(n.estado, "")),
            ("descripcionTipoDestinatario", TIPOS_DESTINATARIO.get(n.tipo_destinatario, n.tipo_destinatario)),
            ("destinatario", n.destinatario),
            ("estado", str(n.estado)),
            ("fechaFinDisponibilidad", m.madrid(n.available_until)),
            ("fechaPuestaDisposicion", m.madrid(n.made_available_at)),
            ("nombreAppRazonSocial", n.titular_name),
            ("procedimiento", n.procedimiento),
            ("tipoDestinatario", n.tipo_destinatario),
        ):
            etree.SubElement(item, name).text = value

    def _find(self, fields, user, rol, poderdante) -> SsNotification:
        codigo = self._int(fields, "codigoNotificacion")
        with self.lock:
            n = self.notifications.get(codigo)
        roles = list(m.ROLE_LISTS) if rol == m.ROL_TODOS else [rol]
        if n is None or not any(self._visible(user, each, poderdante, n) for each in roles):
            raise wscn_fault(m.E_NO_NOTIFICATION)
        return n

    def _solicitar(self, fields, user, rol, poderdante, cert, now):
        n = self._find(fields, user, rol, poderdante)
        if n.estado != m.ESTADO_PENDIENTE:
            raise wscn_fault(m.E_NOT_PENDING)
        tipo = m.ACUSE_ACEPTACION if fields.get("esDeAceptacion") == "true" else m.ACUSE_RECHAZO
        identificador = uuid.uuid4().hex.upper()
        xml = acuses.build(
            codigo=n.codigo,
            tipo=tipo,
            identificador=identificador,
            titular=n.titular_nif,
            destinatario=n.destinatario,
            procedimiento=n.procedimiento,
            made_available=m.madrid(n.made_available_at),
            issued=m.madrid(now),
        )
        with self.lock:
            self.acuses[identificador] = (n.codigo, fingerprint(cert), xml)
        answer = etree.Element(f"{{{m.NS}}}{m.SOLICITAR_ACUSE}Response", nsmap={"ns2": m.NS})
        node = etree.SubElement(answer, "acuseNotificacion")
        etree.SubElement(node, "codigoNotificacion").text = str(n.codigo)
        etree.SubElement(node, "XML").text = base64.b64encode(xml).decode()
        return answer

    def _enviar(self, fields, user, rol, poderdante, cert, now):
        try:
            signed = base64.b64decode(fields.get("xmlAcuseFirmado") or "", validate=True)
            acuse, signer = acuses.verify(signed)
            signer.verify_directly_issued_by(self.ca_cert)
        except (acuses.AcuseError, binascii.Error, InvalidSignature, ValueError, TypeError) as error:
            raise wscn_fault(m.E_BAD_SIGNATURE, f"{m.DESCRIPTIONS[m.E_BAD_SIGNATURE]}: {error}") from error
        if signer != cert:
            raise wscn_fault(m.E_BAD_SIGNATURE, f"{m.DESCRIPTIONS[m.E_BAD_SIGNATURE]}: not the caller's certificate")
        with self.lock:
            handed = self.acuses.get(acuse.identificador)
            if handed is None or handed[0] != acuse.codigo or handed[1] != fingerprint(cert):
                raise wscn_fault(m.E_WRONG_ACUSE)
            if not _same_content(handed[2], signed):
                raise wscn_fault(m.E_WRONG_ACUSE)
            n = self._find({"codigoNotificacion": str(acuse.codigo)}, user, rol, poderdante)
            if n.estado != m.ESTADO_PENDIENTE:
                raise wscn_fault(m.E_NOT_PENDING)
            del self.acuses[acuse.identificador]
            n.estado = m.ESTADO_ACEPTADA if acuse.tipo == m.ACUSE_ACEPTACION else m.ESTADO_RECHAZADA
            n.accepted_at = now.astimezone(UTC).replace(microsecond=0)
            n.accepted_by = fingerprint(cert)
            n.sellado = m.madrid(n.accepted_at)
            n.signed_acuse = signed
            self.save()
        return self._recuperada(m.ENVIAR_ACUSE, n)

    def _ver(self, fields, user, rol, poderdante):
        n = self._find(fields, user, rol, poderdante)
        if n.estado != m.ESTADO_ACEPTADA:
            raise wscn_fault(m.E_NOT_PENDING, "La notificación no está aceptada")
        return self._recuperada(m.VER_ACEPTADA, n)

    @staticmethod
    def _recuperada(operation: str, n: SsNotification) -> etree._Element:
        answer = etree.Element(f"{{{m.NS}}}{operation}Response", nsmap={"ns2": m.NS})
        node = etree.SubElement(answer, "notificacionRecuperada")
        etree.SubElement(node, "codigoNotificacion").text = str(n.codigo)
        etree.SubElement(node, "pdfNotificacion").text = base64.b64encode(n.pdf).decode()
        etree.SubElement(node, "selladoTiempo").text = n.sellado
        return answer

    @staticmethod
    def _poderdantes(user: WscnUser) -> etree._Element:
        answer = etree.Element(f"{{{m.NS}}}{m.SOLICITAR_PODERDANTES}Response", nsmap={"ns2": m.NS})
        node = etree.SubElement(answer, "listadoPoderdantes")
        for nif, name in sorted(user.poderdantes.items()):
            item = etree.SubElement(node, "poderdantes")
            etree.SubElement(item, "denominacion").text = name
            etree.SubElement(item, "identificador").text = nif
        etree.SubElement(node, "tienePoderdantes").text = "true" if user.poderdantes else "false"
        return answer

    def _seed_demo(self, user: WscnUser, now: datetime) -> None:
        for nif in sorted(user.nifs - self.seeded):
            self.seeded.add(nif)
            for index in range(self.demo_notifications):
                tipo, code = demo_code(nif)
                self.add(
                    nif,
                    code,
                    tipo_destinatario=tipo,
                    procedimiento=DEMO_PROCEDURES[index % len(DEMO_PROCEDURES)],
                    made_available_at=now - timedelta(days=index * 3 % 8, hours=2 + index),
                )


def misdirect_acuse(answer: etree._Element) -> None:
    """Damage a solicitarAcuseNotificacion answer: its acuse names the next notification instead."""
    node = answer.find("acuseNotificacion/XML")
    if node is None:
        return
    root = acuses.parse(base64.b64decode(node.text))
    codigo = root.find(f"{{{m.ACUSE_NS}}}codigoNotificacion")
    codigo.text = str(int(codigo.text) + 1)
    node.text = base64.b64encode(etree.tostring(root, xml_declaration=True, encoding="UTF-8")).decode()


def demo_code(nif: str) -> tuple[str, str]:
    """The Seguridad Social code the demo's notifications of ``nif`` are addressed to, made from its
    digits (Madrid): a NAF for a person, a CCC for a company; (tipoDestinatario, code)."""
    digits = "".join(c for c in nif if c.isdigit()) + "00000000"
    if nif[:1].isdigit() or nif[:1] in "XYZ":
        return "NAF", "28" + digits[:8] + control_digits("28", digits[:8])
    return "CCC", "28" + digits[:7] + control_digits("28", digits[:7])


def _same_content(handed: bytes, signed: bytes) -> bool:
    """Whether the signed acuse holds exactly the elements handed out (the signature set aside)."""
    original = acuses.parse(handed)
    returned = acuses.parse(signed)
    for signature in returned.findall(f"{{{acuses.DS}}}Signature"):
        returned.remove(signature)
    return etree.tostring(original, method="c14n") == etree.tostring(returned, method="c14n")
