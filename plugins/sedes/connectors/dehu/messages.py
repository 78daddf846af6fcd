"""The DEHú LEMA and Realizadas messages: names, namespaces, dates, and the reading of answers.

Shapes follow the services' WSDL (as the public JAXB classes of GovernIB's ``plugin-lema`` and
other public clients show them): each operation ``<Op>`` lives in the namespace
``http://administracion.gob.es/punto-unico-notificaciones/<op>``, its answer ``Respuesta<Op>``
in ``…/respuesta<Op>``; the order of a request's elements is the WSDL's sequence. Answers are read
by local name (a server may qualify children or not).

Dates are sent as DEHú wants them: Europe/Madrid wall time, whole seconds, no offset; a date
with milliseconds is a decoding error (2001) and one outside the accepted window is 4207.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree

MADRID = ZoneInfo("Europe/Madrid")
BASE_NS = "http://administracion.gob.es/punto-unico-notificaciones/"
SOAP_ACTION = "https://administracionelectronica.gob.es/notifica/ws/lema/"
XOP = "http://www.w3.org/2004/08/xop/include"

LEMA_PATH = "/ws/v2/lema"
REALIZADAS_PATH = "/ws/v1/realizadas"

LOCALIZA = "Localiza"
PETICION_ACCESO = "PeticionAcceso"
CONSULTA_ANEXOS = "ConsultaAnexos"
CONSULTA_ACUSE_PDF = "ConsultaAcusePdf"
LOCALIZA_REALIZADAS = "LocalizaRealizadas"
CONSULTA_REALIZADAS = "ConsultaRealizadas"

LEMA_OPERATIONS = (LOCALIZA, PETICION_ACCESO, CONSULTA_ANEXOS, CONSULTA_ACUSE_PDF)
REALIZADAS_OPERATIONS = (LOCALIZA_REALIZADAS, CONSULTA_REALIZADAS)

# tipoEnvio
COMUNICACION = "1"
NOTIFICACION = "2"
# PeticionAcceso evento: 1 aceptar (comparecencia)
EVENTO_ACEPTAR = "1"
SUCCESS = "000"


def namespace(operation: str) -> str:
    return BASE_NS + operation[0].lower() + operation[1:]


def answer_namespace(operation: str) -> str:
    return BASE_NS + "respuesta" + operation


def soap_action(operation: str) -> str:
    return SOAP_ACTION + operation


def path_for(operation: str) -> str:
    return REALIZADAS_PATH if operation in REALIZADAS_OPERATIONS else LEMA_PATH


def madrid(moment: datetime) -> str:
    """``moment`` (aware) as DEHú reads dates: Madrid wall time, seconds, no offset."""
    return moment.astimezone(MADRID).strftime("%Y-%m-%dT%H:%M:%S")


class DateError(ValueError):
    """A date the service cannot decode (``decoding``) or will not accept."""

    def __init__(self, message: str, *, decoding: bool):
        super().__init__(message)
        self.decoding = decoding


def parse_date(text: str) -> datetime:
    """A date as DEHú writes or reads it (Madrid wall time unless an offset is given); aware."""
    text = text.strip()
    if "." in text:
        raise DateError(f"fractional seconds in {text!r}", decoding=True)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise DateError(f"not an xsd:dateTime: {text!r}", decoding=True) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=MADRID)
    return moment


def request(operation: str, fields: list[tuple[str, object]]) -> etree._Element:
    """``<Op>`` with its children in the given (WSDL) order; None values are left out, a tuple
    of pairs becomes a nested element."""
    ns = namespace(operation)
    root = etree.Element(f"{{{ns}}}{operation}", nsmap={"op": ns})
    _fill(root, ns, fields)
    return root


def _fill(parent: etree._Element, ns: str, fields) -> None:
    for name, value in fields:
        if value is None:
            continue
        child = etree.SubElement(parent, f"{{{ns}}}{name}")
        if isinstance(value, list):
            _fill(child, ns, value)
        else:
            child.text = str(value)


# --- reading ----------------------------------------------------------------------------------


def child(node: etree._Element | None, name: str) -> etree._Element | None:
    if node is None:
        return None
    for element in node:
        if isinstance(element.tag, str) and etree.QName(element).localname == name:
            return element
    return None


def children(node: etree._Element | None, name: str) -> list[etree._Element]:
    if node is None:
        return []
    return [e for e in node if isinstance(e.tag, str) and etree.QName(e).localname == name]


def text(node: etree._Element | None, name: str) -> str | None:
    element = child(node, name)
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None


@dataclass(frozen=True)
class Organismo:
    code: str | None
    name: str | None
    nif: str | None

    @classmethod
    def read(cls, node: etree._Element | None) -> Organismo:
        return cls(text(node, "codigoOrganismo"), text(node, "nombreOrganismo"), text(node, "nifOrganismo"))


@dataclass(frozen=True)
class Envio:
    """One item of ``envios`` in Localiza or LocalizaRealizadas."""

    identificador: str
    codigo_origen: str
    concepto: str
    descripcion: str | None
    tipo_envio: str
    issuer: Organismo
    root_issuer: Organismo
    titular_nif: str | None
    titular_name: str | None
    made_available_at: datetime | None
    vinculo: str | None
    estado: str | None = None  # Realizadas only
    fecha_estado: datetime | None = None
    receptor_nif: str | None = None
    receptor_name: str | None = None
    procedure: str | None = None
    referencia_acuse: str | None = None
    csv_resguardo: str | None = None
    raw: dict = field(default_factory=dict)


def read_envio(item: etree._Element) -> Envio:
    titular, receptor = child(item, "titular"), child(item, "receptor")
    made = text(item, "fechaPuestaDisposicion")
    state_at = text(item, "fechaUltimoEstado") or text(item, "fechaEstado")
    raw = {
        etree.QName(e).localname: (e.text or "").strip()
        for e in item
        if isinstance(e.tag, str) and len(e) == 0 and (e.text or "").strip()
    }
    return Envio(
        identificador=text(item, "identificador") or "",
        codigo_origen=text(item, "codigoOrigen") or "",
        concepto=(child(item, "concepto").text or "").strip() if child(item, "concepto") is not None else "",
        descripcion=text(item, "descripcion"),
        tipo_envio=text(item, "tipoEnvio") or NOTIFICACION,
        issuer=Organismo.read(child(item, "organismoEmisor")),
        root_issuer=Organismo.read(child(item, "organismoEmisorRaiz")),
        titular_nif=text(titular, "nifTitular"),
        titular_name=text(titular, "nombreTitular"),
        made_available_at=parse_date(made) if made else None,
        vinculo=text(item, "vinculo"),
        estado=text(item, "estado"),
        fecha_estado=parse_date(state_at) if state_at else None,
        receptor_nif=text(receptor, "nifReceptor"),
        receptor_name=text(receptor, "nombreReceptor"),
        procedure=text(item, "codigoProcedimiento"),
        referencia_acuse=text(item, "referenciaPdfAcuse"),
        csv_resguardo=text(item, "csvResguardo"),
        raw=raw,
    )


def read_envios(answer: etree._Element) -> list[Envio]:
    return [read_envio(item) for item in children(child(answer, "envios"), "item")]
