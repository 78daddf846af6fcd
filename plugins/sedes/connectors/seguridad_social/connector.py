"""The Seguridad Social connector: the WSCN web service of "Notificaciones Telemáticas".

Requests are SOAP 1.1 envelopes signed with WS-Security by the mailbox's certificate, which is also
the TLS client certificate (the same machinery as DEHú's: ``connectors.dehu.transport`` and
``wsse``). The service has no date filter: ``consultarListadoNotificaciones`` lists what each role
of the certificate's holder may see, page after page by the role's ``codigoSiguienteNotificacion…``
while ``hayMas``:

- a client's own certificate reads its notifications as **propias** (rol 1);
- the office's certificate (a mailbox "bajo perfil de apoderamiento") reads them as **apoderado**
  of the client (rol 3, the client's NIF as ``identificadorPoderdante``) and as **autorizado RED**
  (rol 2), whose list holds every client of the office's RED authorisation: only the notifications
  addressed to the client's CCCs or NAF are the client's. That is why the mailbox needs them
  (seed 001), and a mailbox without them is refused before any traffic (``MissingClientData``).
  That list is the same for every client of the office: a process reads it once per certificate
  and ``shared_list_ttl`` seconds (``SharedListings``), not once per client of a sweep.

Opening (comparecencia) is the service's acceptance: ``solicitarAcuseNotificacion`` hands out the
acuse XML, the connector signs it (XAdES, ``acuse``) with the certificate and sends it with
``enviarAcuseNotificacion``, which answers the notification's PDF and its time stamp.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import ssl
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar

from flask_babel import lazy_gettext as _l
from lxml import etree

from plugins.sedes.connectors.dehu import wsse
from plugins.sedes.connectors.dehu.transport import (
    Session,
    TransportError,
    client_context,
    post_to_sede,
)
from plugins.sedes.connectors.seguridad_social import acuse as acuses
from plugins.sedes.connectors.seguridad_social import messages as m
from plugins.sedes.contract import (
    AuthError,
    Document,
    DocumentRef,
    InvalidRequest,
    Kind,
    Link,
    MailboxContext,
    MissingClientData,
    NotConfirmed,
    NotificationRecord,
    OpenedNotification,
    ProtocolError,
    SedeError,
    SedeState,
    SedeUnavailable,
    SyncResult,
    check_certificate,
    plain_nif,
)

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://ws.seg-social.gob.es"
TEST_PATH = "/INFRWSCN_Pruebas/WSCNPruebasService"

ISSUER = "Seguridad Social"
ROLE_LINKS = {m.ROL_PROPIA: Link.TITULAR, m.ROL_AUTORIZADO_RED: Link.AUTORIZADO_RED, m.ROL_APODERADO: Link.APODERADO}
LINK_ROLES = {link: rol for rol, link in ROLE_LINKS.items()}
STATES = {
    m.ESTADO_PENDIENTE: SedeState.PENDIENTE,
    m.ESTADO_ACEPTADA: SedeState.ACEPTADA,
    m.ESTADO_RECHAZADA: SedeState.RECHAZADA,
    m.ESTADO_CADUCADA: SedeState.EXPIRADA,
}

MAIN_DOCUMENT = "documento"
ACUSE = "acuse"

BAD_URL = _l("The sede's address in the catalogue is not an https:// URL.")
NO_CODES = _l(
    "The Seguridad Social's mailbox needs the client's CCC or NAF: add them in the client's data "
    "(Datos de la Seguridad Social)."
)
ACUSE_REFUSED = _l("The Seguridad Social handed out an acuse that is not this notification's acceptance.")
NO_SECOND_ACUSE = _l("The signed acuse is kept with the notification; the Seguridad Social does not give it again.")

FAULTS: dict[str, tuple[type[SedeError], object]] = {
    m.E_NOT_AUTHORISED: (
        AuthError,
        _l(
            "The Seguridad Social does not authorise this certificate for its notifications web service: "
            "ask for access to Notificaciones Telemáticas by web services."
        ),
    ),
    m.E_NO_POWER: (
        AuthError,
        _l("The Seguridad Social has no apoderamiento in force from this client to the certificate's holder."),
    ),
    m.E_NOT_RED: (AuthError, _l("The certificate's holder is not an autorizado RED at the Seguridad Social.")),
    m.E_BAD_REQUEST: (InvalidRequest, _l("The Seguridad Social refused the request as invalid.")),
    m.E_NO_NOTIFICATION: (
        InvalidRequest,
        _l("The Seguridad Social does not have this notification for this certificate any more."),
    ),
    m.E_NOT_PENDING: (
        InvalidRequest,
        _l("The notification is no longer pending at the Seguridad Social (accepted, rejected or expired)."),
    ),
    m.E_BAD_SIGNATURE: (AuthError, _l("The Seguridad Social did not accept the signature of the acuse.")),
    m.E_WRONG_ACUSE: (InvalidRequest, _l("The Seguridad Social did not accept the acuse as the one it handed out.")),
    m.E_SYSTEM: (SedeUnavailable, _l("The Seguridad Social's service failed; the sync will be tried again.")),
}
SECURITY_FAULTS: dict[str, tuple[type[SedeError], object]] = {
    "MessageExpired": (
        InvalidRequest,
        _l("The Seguridad Social refused the request's time as out of its margin: check this server's clock."),
    ),
    "FailedCheck": (AuthError, _l("The Seguridad Social did not accept the request's signature.")),
    "InvalidSecurity": (AuthError, _l("The Seguridad Social did not accept the request's signature.")),
    "InvalidSecurityToken": (AuthError, _l("The Seguridad Social did not accept this certificate.")),
}


class SharedListings:
    """Listings several mailboxes share (the autorizado RED list of one certificate), read once per
    key within ``ttl`` seconds by whichever mailbox asks first while the others wait for it; a
    refusal is shared too. Kept per process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[float, object]] = {}
        self._key_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, ttl: float, fetch):
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            now = time.monotonic()
            with self._lock:
                entry = self._entries.get(key)
            if entry is None or now - entry[0] >= ttl:
                try:
                    value = fetch()
                except AuthError as error:
                    value = error
                with self._lock:
                    for old in [k for k, (at, _) in self._entries.items() if now - at >= ttl]:
                        del self._entries[old]
                        self._key_locks.pop(old, None)
                    self._entries[key] = (now, value)
                    self._key_locks[key] = key_lock
                entry = (now, value)
        if isinstance(entry[1], AuthError):
            raise entry[1]
        return entry[1]


RED_LISTINGS = SharedListings()


class _SignedSession(Session):
    def __init__(self, base_url: str, context: ssl.SSLContext, timeout: float, key):
        super().__init__(base_url, context, timeout)
        self.key = key


class SeguridadSocialConnector:
    code: ClassVar[str] = "seguridad_social"
    capabilities: ClassVar[frozenset[str]] = frozenset({"list", "open", "fetch_document", "acuse", "poderdantes"})
    request_budget: ClassVar[int] = 40  # consultarListadoNotificaciones pages per role and sync
    shared_list_ttl: ClassVar[float] = 60.0  # seconds the office's RED list serves its other clients

    # --- the contract ---------------------------------------------------------------------

    def check_credential(self, ctx: MailboxContext) -> None:
        check_certificate(ctx)
        if not [code for code in ctx.ssid_codes if code and code.strip()]:
            raise MissingClientData(NO_CODES, sede=ctx.sede, code="ssid", detail="mailbox without CCC or NAF")

    def list(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult:
        """What the service lists for the client: its own notifications, or (as apoderado) those of
        the client as poderdante and those of its CCCs/NAF as autorizado RED. The service has no
        date filter: everything it lists comes back, whatever ``since`` says."""
        self.check_credential(ctx)
        until = (until or datetime.now(UTC)).replace(microsecond=0)
        codes = {plain_nif(code) for code in ctx.ssid_codes}
        found: dict[str, NotificationRecord] = {}
        complete = True
        if ctx.as_proxy:
            queries = [(m.ROL_APODERADO, plain_nif(ctx.client_nif)), (m.ROL_AUTORIZADO_RED, None)]
        else:
            queries = [(m.ROL_PROPIA, None)]
        refusals: list[AuthError] = []
        with self._session(ctx) as session:
            for rol, poderdante in queries:
                try:
                    if rol == m.ROL_AUTORIZADO_RED:
                        key = (
                            hashlib.sha256(ctx.credential.cert_pem).hexdigest(),
                            session.host,
                            session.port,
                            session.prefix,
                        )
                        items, finished = RED_LISTINGS.get(
                            key, self.shared_list_ttl, lambda: self._listing(session, ctx, m.ROL_AUTORIZADO_RED, None)
                        )
                    else:
                        items, finished = self._listing(session, ctx, rol, poderdante)
                except AuthError as error:
                    # An office may hold the client's apoderamiento, or be its autorizado RED, or both.
                    if error.code not in (m.E_NO_POWER, m.E_NOT_RED):
                        raise
                    refusals.append(error)
                    continue
                complete = complete and finished
                for item in items:
                    if rol == m.ROL_AUTORIZADO_RED and plain_nif(item.destinatario) not in codes:
                        continue  # another client of the office's RED authorisation
                    record = self._record(ctx, item)
                    found.setdefault(record.external_id, record)
        if len(refusals) == len(queries):
            raise refusals[0]
        return SyncResult(list(found.values()), complete=complete, next_since=until if complete else since)

    def open(self, ctx: MailboxContext, record: NotificationRecord, *, confirmed: bool) -> OpenedNotification:
        """Comparecencia: ask for the acuse of acceptance, sign it, send it; the PDF and time stamp come back."""
        if confirmed is not True:
            raise NotConfirmed(sede=ctx.sede, code="not_confirmed", detail=record.external_id)
        check_certificate(ctx)
        codigo, rol, poderdante = self._address(ctx, record)
        with self._session(ctx) as session:
            answer = self._call(
                session,
                ctx,
                m.SOLICITAR_ACUSE,
                [
                    ("rol", rol),
                    ("identificadorPoderdante", poderdante),
                    ("codigoNotificacion", codigo),
                    ("esDeAceptacion", True),
                ],
            )
            node = self._object(ctx, answer, "acuseNotificacion")
            xml = self._binary(ctx, node, "XML")
            try:
                signed = acuses.sign(xml, codigo=codigo, cert_pem=ctx.credential.cert_pem, key=session.key)
            except acuses.AcuseError as error:
                raise ProtocolError(ACUSE_REFUSED, sede=ctx.sede, code="acuse", detail=str(error)) from error
            answer = self._call(
                session,
                ctx,
                m.ENVIAR_ACUSE,
                [("rol", rol), ("identificadorPoderdante", poderdante), ("xmlAcuseFirmado", signed)],
            )
            pdf, stamp = self._recovered(ctx, answer)
        stamped_at = self._stamp_time(stamp)
        documents = (
            Document(f"{codigo}.pdf", "application/pdf", pdf),
            Document(f"acuse-{codigo}.xml", "application/xml", signed),
        )
        opened = replace(
            record,
            state=SedeState.ACEPTADA,
            state_at=stamped_at or datetime.now(UTC).replace(microsecond=0),
            documents=(
                DocumentRef(documents[0].name, documents[0].mime, MAIN_DOCUMENT),
                DocumentRef(documents[1].name, documents[1].mime, ACUSE),
            ),
            raw={**record.raw, "sellado_tiempo": stamp or ""},
        )
        return OpenedNotification(record=opened, documents=documents[:1], acuse=documents[1])

    def fetch_document(self, ctx: MailboxContext, record: NotificationRecord, ref: DocumentRef) -> Document:
        """The PDF of a notification already accepted (verNotificacionAceptada), with no new legal effect."""
        check_certificate(ctx)
        if (ref.reference or MAIN_DOCUMENT) != MAIN_DOCUMENT:
            raise InvalidRequest(NO_SECOND_ACUSE, sede=ctx.sede, code="reference", detail=str(ref.reference))
        codigo, rol, poderdante = self._address(ctx, record)
        with self._session(ctx) as session:
            answer = self._call(
                session,
                ctx,
                m.VER_ACEPTADA,
                [("rol", rol), ("identificadorPoderdante", poderdante), ("codigoNotificacion", codigo)],
            )
            pdf, _ = self._recovered(ctx, answer)
        return Document(ref.name or f"{codigo}.pdf", "application/pdf", pdf)

    def poderdantes(self, ctx: MailboxContext) -> list[tuple[str, str]]:
        """Who has empowered the certificate's holder at the Seguridad Social: (NIF, name) pairs."""
        check_certificate(ctx)
        with self._session(ctx) as session:
            answer = self._call(session, ctx, m.SOLICITAR_PODERDANTES, [])
        node = self._object(ctx, answer, "listadoPoderdantes")
        return [
            (plain_nif(m.text(item, "identificador")), m.text(item, "denominacion") or "")
            for item in m.children(node, "poderdantes")
            if m.text(item, "identificador")
        ]

    # --- pieces ----------------------------------------------------------------------------

    def _listing(self, session, ctx, rol: int, poderdante: str | None) -> tuple[list[m.Notificacion], bool]:
        """Every page of one role's list; (items, whether the list was read to its end)."""
        list_name, cursor_name = m.ROLE_LISTS[rol]
        cursors = {name: 0 for _, name in m.ROLE_LISTS.values()}
        items: list[m.Notificacion] = []
        for _ in range(self.request_budget):
            answer = self._call(
                session,
                ctx,
                m.CONSULTAR_LISTADO,
                [
                    ("rol", rol),
                    ("identificadorPoderdante", poderdante),
                    ("codigoSiguienteNotificacionPropia", cursors["codigoSiguienteNotificacionPropia"]),
                    ("codigoSiguienteNotificacionAutorizadoRED", cursors["codigoSiguienteNotificacionAutorizadoRED"]),
                    ("codigoSiguienteNotificacionApoderado", cursors["codigoSiguienteNotificacionApoderado"]),
                ],
            )
            node = self._object(ctx, answer, "listadoNotificaciones")
            try:
                items.extend(m.read_notificacion(item, rol) for item in m.children(node, list_name))
                following = int(m.text(node, cursor_name) or "0")
            except ValueError as error:
                raise ProtocolError(sede=ctx.sede, code="listado", detail=f"rol {rol}: {error}") from error
            if m.text(node, "hayMas") != "true":
                return items, True
            if following <= cursors[cursor_name]:
                raise ProtocolError(sede=ctx.sede, code="cursor", detail=f"rol {rol}: cursor did not move on")
            cursors[cursor_name] = following
        log.warning("seguridad_social: rol %s over %s pages; the next sync reads them", rol, self.request_budget)
        return items, False

    def _record(self, ctx: MailboxContext, item: m.Notificacion) -> NotificationRecord:
        if not item.codigo or item.made_available_at is None:
            raise ProtocolError(sede=ctx.sede, code="notificacion", detail=f"incomplete notificacion {item!r}")
        titular = plain_nif(ctx.client_nif)
        state = STATES.get(item.estado, SedeState.DESCONOCIDO)
        # An accepted notification's PDF can be fetched again (verNotificacionAceptada), with no new effect.
        documents = (
            (DocumentRef(f"{item.codigo}.pdf", "application/pdf", MAIN_DOCUMENT),)
            if state is SedeState.ACEPTADA
            else ()
        )
        return NotificationRecord(
            sede=ctx.sede,
            external_id=str(item.codigo),
            kind=Kind.NOTIFICACION,
            state=state,
            titular_nif=titular,
            titular_name=item.titular_name,
            issuer_name=ISSUER,
            subject=item.procedimiento or item.descripcion_estado or f"Notificación {item.codigo}",
            procedure=item.procedimiento,
            made_available_at=item.made_available_at,
            expires_at=item.available_until,
            link=ROLE_LINKS[item.rol],
            documents=documents,
            raw={
                "rol": str(item.rol),
                "destinatario": item.destinatario or "",
                "tipo_destinatario": item.tipo_destinatario or "",
                "estado": str(item.estado),
                "descripcion_estado": item.descripcion_estado or "",
            },
        )

    @staticmethod
    def _address(ctx: MailboxContext, record: NotificationRecord) -> tuple[int, int, str | None]:
        """(codigoNotificacion, rol, identificadorPoderdante) to ask about ``record``."""
        if not record.external_id.isdigit():
            raise InvalidRequest(sede=ctx.sede, code="external_id", detail=f"not a WSCN code: {record.external_id!r}")
        raw_rol = str(record.raw.get("rol") or "")
        rol = int(raw_rol) if raw_rol.isdigit() else LINK_ROLES.get(record.link, m.ROL_PROPIA)
        if rol not in m.ROLE_LISTS:
            raise InvalidRequest(sede=ctx.sede, code="rol", detail=f"unknown rol {rol}")
        return int(record.external_id), rol, plain_nif(ctx.client_nif) if rol == m.ROL_APODERADO else None

    def _object(self, ctx: MailboxContext, answer: etree._Element, name: str) -> etree._Element:
        node = m.child(answer, name)
        if node is None:
            raise ProtocolError(sede=ctx.sede, code="answer", detail=f"{etree.QName(answer).localname} without {name}")
        error = m.error_of(node)
        if error is not None:
            raise self._coded(ctx, name, *error)
        return node

    @staticmethod
    def _binary(ctx: MailboxContext, node: etree._Element, name: str) -> bytes:
        value = m.text(node, name)
        if not value:
            raise ProtocolError(sede=ctx.sede, code="answer", detail=f"{etree.QName(node).localname} without {name}")
        try:
            return base64.b64decode("".join(value.split()), validate=True)
        except ValueError as error:
            raise ProtocolError(sede=ctx.sede, code="base64", detail=f"{name}: {error}") from error

    def _recovered(self, ctx: MailboxContext, answer: etree._Element) -> tuple[bytes, str | None]:
        node = self._object(ctx, answer, "notificacionRecuperada")
        pdf = self._binary(ctx, node, "pdfNotificacion")
        if not pdf.startswith(b"%PDF-"):
            raise ProtocolError(sede=ctx.sede, code="pdf", detail="pdfNotificacion is not a PDF")
        return pdf, m.text(node, "selladoTiempo")

    @staticmethod
    def _stamp_time(stamp: str | None) -> datetime | None:
        try:
            return m.parse_date(stamp)
        except ValueError:
            return None  # a time-stamp token rather than a date: kept as it came, in raw

    def _session(self, ctx: MailboxContext) -> _SignedSession:
        credential = ctx.credential
        try:
            context = client_context(credential.cert_pem, credential.key_pem, credential.chain_pem, ctx.ca_bundle)
            key = wsse.load_key(credential.key_pem)
        except (ssl.SSLError, OSError, ValueError, TypeError) as error:
            raise AuthError(sede=ctx.sede, code="credential", detail=f"TLS context: {error}") from error
        base_url = (ctx.base_url or PRODUCTION_URL).rstrip("/")
        if not base_url.endswith((m.PATH, TEST_PATH)):
            base_url += m.PATH
        try:
            return _SignedSession(base_url, context, ctx.timeout_s, key)
        except TransportError as error:
            raise InvalidRequest(BAD_URL, sede=ctx.sede, code="url", detail=error.detail) from error

    def _call(self, session: _SignedSession, ctx: MailboxContext, operation: str, fields) -> etree._Element:
        message = wsse.sign(wsse.envelope(m.request(operation, fields)), ctx.credential.cert_pem, session.key)
        headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{m.soap_action(operation)}"'}
        response = post_to_sede(session, ctx.sede, "", message, headers, answers_soap=_answers_xml)
        try:
            root = etree.fromstring(response.body, parser=wsse.PARSER)
        except (etree.XMLSyntaxError, ValueError) as error:
            raise ProtocolError(sede=ctx.sede, code=str(response.status), detail=f"{operation}: {error}") from error
        body = root.find(f"{{{wsse.SOAP}}}Body")
        answer = next((e for e in body if isinstance(e.tag, str)), None) if body is not None else None
        if answer is None:
            raise ProtocolError(sede=ctx.sede, code=str(response.status), detail=f"{operation}: empty Body")
        if etree.QName(answer).localname == "Fault":
            raise self._fault(ctx, operation, answer)
        if response.status != 200 or etree.QName(answer).localname != f"{operation}Response":
            raise ProtocolError(
                sede=ctx.sede, code=str(response.status), detail=f"{operation}: {etree.QName(answer).localname}"
            )
        return answer

    def _fault(self, ctx: MailboxContext, operation: str, fault: etree._Element) -> SedeError:
        faultcode = m.text(fault, "faultcode") or ""
        faultstring = m.text(fault, "faultstring") or ""
        exception = next(iter(m.children(m.child(fault, "detail"), "WSCNExcepcionSistema")), None)
        error = m.error_of(exception)
        if error is not None:
            return self._coded(ctx, operation, *error)
        local = faultcode.rpartition(":")[2]
        if local in SECURITY_FAULTS:
            error_class, message = SECURITY_FAULTS[local]
            return error_class(message, sede=ctx.sede, code=local, detail=f"{operation}: {faultstring}")
        error_class = SedeUnavailable if local == "Server" else InvalidRequest
        return error_class(sede=ctx.sede, code=local or None, detail=f"{operation}: {faultcode} {faultstring}")

    @staticmethod
    def _coded(ctx: MailboxContext, operation: str, code: str, description: str) -> SedeError:
        error_class, message = FAULTS.get(code, (InvalidRequest, None))
        return error_class(message, sede=ctx.sede, code=code, detail=f"{operation}: {code} {description}")


def _answers_xml(response) -> bool:
    return "xml" in response.content_type.lower()
