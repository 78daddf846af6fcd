"""The Seguridad Social's WSCN web service ("Consulta y Firma de Notificaciones Telemáticas"): names,
the shape of its messages, its dates and its error codes.

Shapes follow the service's WSDL (``WSCNService``, namespace ``http://ws.wscn.infra.gi.org/``, as
public clients generated from it show): document/literal SOAP 1.1, ``SOAPAction: urn:<operation>``,
the operation's element qualified and its children unqualified; answers wrap one object
(``listadoNotificaciones``, ``acuseNotificacion``, ``notificacionRecuperada``,
``listadoPoderdantes``) that may carry an ``error {codigo, descripcion}``; system failures come as
a SOAP fault whose detail is ``WSCNExcepcionSistema {error, message}``.

The service's manual (WSCN_API_1.0.0) has a table of error codes that could not be read here; the
codes below are the ones this connector and the simulator agree on, each with the meaning the
manual's operations describe.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree

MADRID = ZoneInfo("Europe/Madrid")
NS = "http://ws.wscn.infra.gi.org/"
PATH = "/INFRWSCN/WSCNService"

CONSULTAR_LISTADO = "consultarListadoNotificaciones"
SOLICITAR_ACUSE = "solicitarAcuseNotificacion"
ENVIAR_ACUSE = "enviarAcuseNotificacion"
VER_ACEPTADA = "verNotificacionAceptada"
SOLICITAR_PODERDANTES = "solicitarPoderdantes"
OPERATIONS = (CONSULTAR_LISTADO, SOLICITAR_ACUSE, ENVIAR_ACUSE, VER_ACEPTADA, SOLICITAR_PODERDANTES)

# rol: whose notifications a request is about.
ROL_TODOS = 0
ROL_PROPIA = 1
ROL_AUTORIZADO_RED = 2
ROL_APODERADO = 3
# Each role's list in consultarListadoNotificaciones' answer, and its cursor.
ROLE_LISTS = {
    ROL_PROPIA: ("notificacionesPropias", "codigoSiguienteNotificacionPropia"),
    ROL_AUTORIZADO_RED: ("notificacionesAutorizadoRED", "codigoSiguienteNotificacionAutorizadoRED"),
    ROL_APODERADO: ("notificacionesApoderado", "codigoSiguienteNotificacionApoderado"),
}

# estado of a notificacion.
ESTADO_PENDIENTE = 1
ESTADO_ACEPTADA = 2
ESTADO_RECHAZADA = 3
ESTADO_CADUCADA = 4

# The acuse the service hands out to be signed (solicitarAcuseNotificacion's XML).
ACUSE_NS = "http://ws.wscn.infra.gi.org/acuse"
ACUSE_ACEPTACION = "ACEPTACION"
ACUSE_RECHAZO = "RECHAZO"

# Error codes (see the module's note).
E_NOT_AUTHORISED = "1001"  # the certificate may not use the service
E_NO_POWER = "1002"  # no apoderamiento in force from that poderdante
E_NOT_RED = "1003"  # the certificate's holder is not an autorizado RED
E_BAD_REQUEST = "2001"  # parameters missing or wrong (rol, codigo)
E_NO_NOTIFICATION = "2002"  # no such notification for this user and role
E_NOT_PENDING = "2003"  # already accepted, rejected or expired
E_BAD_SIGNATURE = "2004"  # the acuse's signature does not verify
E_WRONG_ACUSE = "2005"  # the signed acuse is not the one handed out
E_SYSTEM = "9999"  # the service failed: try later

DESCRIPTIONS = {
    E_NOT_AUTHORISED: "El certificado no está autorizado para acceder al servicio",
    E_NO_POWER: "No existe apoderamiento vigente para el poderdante indicado",
    E_NOT_RED: "El usuario no está autorizado en el Sistema RED",
    E_BAD_REQUEST: "Parámetros de entrada incorrectos",
    E_NO_NOTIFICATION: "La notificación no existe o no está disponible para el usuario",
    E_NOT_PENDING: "La notificación no está pendiente de aceptar",
    E_BAD_SIGNATURE: "La firma del acuse de recibo no es válida",
    E_WRONG_ACUSE: "El acuse firmado no corresponde con el solicitado",
    E_SYSTEM: "Error del sistema. Inténtelo más tarde",
}


def soap_action(operation: str) -> str:
    return f"urn:{operation}"


def request(operation: str, fields: list[tuple[str, object]]) -> etree._Element:
    """``<tns:operation>`` with unqualified children in the WSDL's order; None is left out, bools
    are ``true``/``false``, bytes go base64."""
    root = etree.Element(f"{{{NS}}}{operation}", nsmap={"tns": NS})
    for name, value in fields:
        if value is None:
            continue
        child = etree.SubElement(root, name)
        if isinstance(value, bool):
            child.text = "true" if value else "false"
        elif isinstance(value, bytes):
            child.text = base64.b64encode(value).decode()
        else:
            child.text = str(value)
    return root


def madrid(moment: datetime) -> str:
    """A moment as the service writes dates: Madrid wall time, ``dd/mm/yyyy hh:mm:ss``."""
    return moment.astimezone(MADRID).strftime("%d/%m/%Y %H:%M:%S")


_SPANISH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_date(text: str | None) -> datetime | None:
    """A date of the service (``dd/mm/yyyy[ hh:mm[:ss]]`` or ISO 8601), Madrid unless it says; aware."""
    if not text or not text.strip():
        return None
    text = text.strip()
    match = _SPANISH.match(text)
    if match:
        day, month, year, hour, minute, second = match.groups()
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=MADRID
        )
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=MADRID)


# --- reading -------------------------------------------------------------------------------------


def children(node: etree._Element | None, name: str) -> list[etree._Element]:
    if node is None:
        return []
    return [e for e in node if isinstance(e.tag, str) and etree.QName(e).localname == name]


def child(node: etree._Element | None, name: str) -> etree._Element | None:
    found = children(node, name)
    return found[0] if found else None


def text(node: etree._Element | None, name: str) -> str | None:
    element = child(node, name)
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def error_of(node: etree._Element | None) -> tuple[str, str] | None:
    """The ``error`` an answer object carries, as (codigo, descripcion); None when it has none."""
    error = child(node, "error")
    code = text(error, "codigo")
    if error is None or code in (None, "0"):
        return None
    return code, text(error, "descripcion") or ""


@dataclass(frozen=True)
class Notificacion:
    """One ``notificacion`` of a listing, with the role it was listed under."""

    rol: int
    codigo: int
    estado: int
    descripcion_estado: str | None
    destinatario: str | None  # the CCC or NAF it is addressed to
    tipo_destinatario: str | None
    descripcion_tipo_destinatario: str | None
    titular_name: str | None  # nombreAppRazonSocial
    procedimiento: str | None
    made_available_at: datetime | None
    available_until: datetime | None


def read_notificacion(item: etree._Element, rol: int) -> Notificacion:
    return Notificacion(
        rol=rol,
        codigo=int(text(item, "codigo") or "0"),
        estado=int(text(item, "estado") or "0"),
        descripcion_estado=text(item, "descripcionEstado"),
        destinatario=text(item, "destinatario"),
        tipo_destinatario=text(item, "tipoDestinatario"),
        descripcion_tipo_destinatario=text(item, "descripcionTipoDestinatario"),
        titular_name=text(item, "nombreAppRazonSocial"),
        procedimiento=text(item, "procedimiento"),
        made_available_at=parse_date(text(item, "fechaPuestaDisposicion")),
        available_until=parse_date(text(item, "fechaFinDisponibilidad")),
    )
