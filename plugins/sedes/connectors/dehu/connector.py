"""The DEHú connector: LEMA (Localiza, PeticionAcceso, ConsultaAnexos, ConsultaAcusePdf) and the
Realizadas service (LocalizaRealizadas, ConsultaRealizadas), spoken as a "Gran Destinatario".

Every request is a SOAP 1.1 envelope signed with WS-Security (``wsse``) by the mailbox's
certificate, which is also the TLS client certificate. ``list`` only calls Localiza (no legal
effect); ``open`` calls PeticionAcceso (comparecencia) and only with ``confirmed=True``.

Localiza has no cursor: when it says ``hayMasResultados`` the date range is split in halves and
each half asked again, oldest first, within a budget of requests per sync; what the budget leaves
unread is reported as an incomplete result whose ``next_since`` is where the next sync goes on.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from flask_babel import lazy_gettext as _l
from lxml import etree

from plugins.sedes.connectors.dehu import messages as m
from plugins.sedes.connectors.dehu import mime, wsse
from plugins.sedes.connectors.dehu.transport import (
    Session,
    TransportError,
    client_context,
    post_to_sede,
)
from plugins.sedes.contract import (
    AuthError,
    CertificateKind,
    Document,
    DocumentRef,
    InvalidRequest,
    Kind,
    Link,
    MailboxContext,
    NotConfirmed,
    NotificationRecord,
    OpenedNotification,
    ProtocolError,
    SedeError,
    SedeState,
    SedeUnavailable,
    SyncResult,
    check_certificate,
    merged,
)

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://gd-dehuws.redsara.es"
TEST_URL = "https://se-gd-dehuws.redsara.es"

LINKS = {"1": Link.TITULAR, "2": Link.DESTINATARIO, "3": Link.APODERADO}
REALIZED_STATES = {
    "ACEPTADA": SedeState.ACEPTADA,
    "RECHAZADA": SedeState.RECHAZADA,
    "EXPIRADA": SedeState.EXPIRADA,
    "REALIZADA_TEU": SedeState.PUBLICADA_TEU,
    "LEIDA": SedeState.LEIDA,
}
HASHES = {"SHA-256": hashlib.sha256, "SHA256": hashlib.sha256, "SHA-512": hashlib.sha512, "SHA512": hashlib.sha512}

MAIN_DOCUMENT = "documento"
ANEXO = "anexo:"
ACUSE = "acuse:"

BAD_URL = _l("The sede's address in the catalogue is not an https:// URL.")
# What each DEHú error code means for the mailbox; the server's own words go only to the log.
FAULTS: dict[str, tuple[type[SedeError], object]] = {
    "4102": (
        AuthError,
        _l(
            "DEHú does not know this certificate as a Gran Destinatario for this NIF: enrol it at "
            "dehu.redsara.es (Configuración Gran Destinatario). Error 4102."
        ),
    ),
    "4103": (
        AuthError,
        _l("DEHú's test service has not authorised this certificate yet. Error 4103."),
    ),
    "4202": (InvalidRequest, _l("DEHú needs the titular's NIF to look for notifications. Error 4202.")),
    "4207": (
        InvalidRequest,
        _l("DEHú refused the dates of the request as out of its margin: check this server's clock. Error 4207."),
    ),
    "2001": (SedeUnavailable, _l("DEHú could not read the request; the sync will be tried again. Error 2001.")),
}
SECURITY_FAULTS: dict[str, tuple[type[SedeError], object]] = {
    "MessageExpired": FAULTS["4207"],
    "FailedCheck": (AuthError, _l("DEHú did not accept the request's signature with this certificate.")),
    "InvalidSecurity": (AuthError, _l("DEHú did not accept the request's signature with this certificate.")),
    "InvalidSecurityToken": (AuthError, _l("DEHú did not accept this certificate.")),
}


def split_external_id(external_id: str) -> tuple[str, str]:
    """``codigoOrigen`` and ``identificador`` of a record's ``external_id`` (``<origen>-<identificador>``)."""
    origin, _, identifier = external_id.partition("-")
    if not origin.isdigit() or not identifier:
        raise InvalidRequest(sede="dehu", code="external_id", detail=f"not a DEHú id: {external_id!r}")
    return origin, identifier


class _SignedSession(Session):
    """A session to DEHú with the credential's key loaded once for signing its messages."""

    def __init__(self, base_url: str, context: ssl.SSLContext, timeout: float, key):
        super().__init__(base_url, context, timeout)
        self.key = key


class DehuConnector:
    code: ClassVar[str] = "dehu"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"list", "list_realized", "list_all", "open", "fetch_document", "acuse"}
    )
    request_budget: ClassVar[int] = 40  # Localiza calls per sync
    smallest_range: ClassVar[timedelta] = timedelta(seconds=2)

    # --- the contract ---------------------------------------------------------------------

    def check_credential(self, ctx: MailboxContext) -> None:
        check_certificate(ctx)

    def list(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult:
        """Pending notifications and communications put at disposal between ``since`` and ``until``."""
        self.check_credential(ctx)
        with self._session(ctx) as session:
            return self._pending(session, ctx, since, until)

    def list_realized(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult:
        """Notifications already realised (accepted, rejected, expired, read, published in TEU) by
        any channel between ``since`` and ``until``: the Realizadas service, page by page."""
        self.check_credential(ctx)
        with self._session(ctx) as session:
            return self._realized(session, ctx, since, until)

    def list_all(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult:
        """Both lists over one kept-alive connection: the TLS handshake and the loading of the key, most
        of a sync's cost, are paid once per mailbox instead of twice."""
        self.check_credential(ctx)
        until = until or datetime.now(UTC)
        with self._session(ctx) as session:
            return merged(self._pending(session, ctx, since, until), self._realized(session, ctx, since, until))

    def _pending(
        self, session: _SignedSession, ctx: MailboxContext, since: datetime, until: datetime | None
    ) -> SyncResult:
        until = (until or datetime.now(UTC)).replace(microsecond=0)
        since = min(since.replace(microsecond=0), until)
        found: dict[str, NotificationRecord] = {}
        ranges = [(since, until)]  # a stack: the oldest range on top
        calls = 0
        while ranges:
            start, end = ranges.pop()
            if calls >= self.request_budget:
                return SyncResult(list(found.values()), complete=False, next_since=start)
            answer, _ = self._call(
                session,
                ctx,
                m.LOCALIZA,
                [
                    ("nifTitular", ctx.client_nif),
                    ("fechaDesde", m.madrid(start)),
                    ("fechaHasta", m.madrid(end)),
                ],
            )
            calls += 1
            for envio in m.read_envios(answer):
                record = self._record(ctx, envio, SedeState.PENDIENTE)
                found[record.external_id] = record
            if m.text(answer, "hayMasResultados") == "true":
                if end - start < self.smallest_range:
                    log.warning("dehu: more than a page within %s..%s for one mailbox; read what came", start, end)
                    return SyncResult(list(found.values()), complete=False, next_since=end)
                middle = start + (end - start) / 2
                middle = middle.replace(microsecond=0)
                ranges.append((middle, end))
                ranges.append((start, middle))
        return SyncResult(list(found.values()), complete=True, next_since=until)

    def _realized(
        self, session: _SignedSession, ctx: MailboxContext, since: datetime, until: datetime | None
    ) -> SyncResult:
        until = (until or datetime.now(UTC)).replace(microsecond=0)
        found: dict[str, NotificationRecord] = {}
        page, pages = 1, 1
        while page <= pages:
            if page > self.request_budget:
                # Pages go by the date of the last state: what was read ends at the latest one.
                read_until = max((r.state_at for r in found.values() if r.state_at), default=since)
                return SyncResult(list(found.values()), complete=False, next_since=read_until)
            answer, _ = self._call(
                session,
                ctx,
                m.LOCALIZA_REALIZADAS,
                [
                    ("nifTitular", ctx.client_nif),
                    ("fechaDesde", m.madrid(since)),
                    ("fechaHasta", m.madrid(until)),
                    ("pagina", page),
                ],
            )
            for envio in m.read_envios(answer):
                state = REALIZED_STATES.get((envio.estado or "").upper(), SedeState.DESCONOCIDO)
                record = self._record(ctx, envio, state)
                found[record.external_id] = record
            pages = int(m.text(answer, "totalPaginas") or 1)
            page += 1
        return SyncResult(list(found.values()), complete=True, next_since=until)

    def open(self, ctx: MailboxContext, record: NotificationRecord, *, confirmed: bool) -> OpenedNotification:
        """Comparecencia: accept the notification at DEHú and bring its document, annexes and acuse."""
        if confirmed is not True:
            raise NotConfirmed(sede=ctx.sede, code="not_confirmed", detail=record.external_id)
        self.check_credential(ctx)
        origin, identifier = split_external_id(record.external_id)
        receptor_nif, receptor_name = self._receptor(ctx)
        with self._session(ctx) as session:
            answer, attachments = self._call(
                session,
                ctx,
                m.PETICION_ACCESO,
                [
                    ("identificador", identifier),
                    ("codigoOrigen", origin),
                    ("nifReceptor", receptor_nif),
                    ("nombreReceptor", receptor_name),
                    ("evento", m.EVENTO_ACEPTAR),
                    ("concepto", (record.subject or "Notificación")[:255]),
                ],
            )
            node = m.child(answer, "documento")
            main = self._document(node, attachments, default_name=f"{identifier}.pdf")
            documents = [main] if main else []
            refs = (
                [DocumentRef(main.name, main.mime, MAIN_DOCUMENT, hashlib.sha256(main.content).hexdigest())]
                if main
                else []
            )
            for anexo in self._anexos(answer):
                name, mime_type, reference = anexo
                document = self._anexo(session, ctx, origin, identifier, reference, name, mime_type)
                documents.append(document)
                refs.append(
                    DocumentRef(
                        document.name, document.mime, ANEXO + reference, hashlib.sha256(document.content).hexdigest()
                    )
                )
            acuse = None
            acuse_ref, csv = m.text(node, "referenciaPdfAcuse"), m.text(node, "csvResguardo")
            if acuse_ref or csv:
                acuse = self._acuse(session, ctx, origin, identifier, acuse_ref, csv)
                refs.append(DocumentRef(acuse.name, acuse.mime, f"{ACUSE}{acuse_ref or ''}:{csv or ''}"))
        event_at = m.text(answer, "fechaEvento")
        opened = replace(
            record,
            state=SedeState.ACEPTADA,
            state_at=m.parse_date(event_at) if event_at else datetime.now(UTC),
            documents=tuple(refs),
        )
        return OpenedNotification(record=opened, documents=tuple(documents), acuse=acuse)

    def fetch_document(self, ctx: MailboxContext, record: NotificationRecord, ref: DocumentRef) -> Document:
        """A document of a notification already realised, with no new legal effect."""
        self.check_credential(ctx)
        origin, identifier = split_external_id(record.external_id)
        reference = ref.reference or MAIN_DOCUMENT
        with self._session(ctx) as session:
            if reference.startswith(ANEXO):
                return self._anexo(session, ctx, origin, identifier, reference[len(ANEXO) :], ref.name, ref.mime)
            if reference.startswith(ACUSE):
                acuse_ref, _, csv = reference[len(ACUSE) :].partition(":")
                return self._acuse(session, ctx, origin, identifier, acuse_ref or None, csv or None)
            receptor_nif, receptor_name = self._receptor(ctx)
            answer, attachments = self._call(
                session,
                ctx,
                m.CONSULTA_REALIZADAS,
                [
                    ("identificador", identifier),
                    ("codigoOrigen", origin),
                    ("nifPeticion", receptor_nif),
                    ("nombrePeticion", receptor_name),
                    ("concepto", (record.subject or "Notificación")[:255]),
                ],
            )
            document = self._document(m.child(answer, "documento"), attachments, default_name=ref.name)
            if document is None:
                raise ProtocolError(sede=ctx.sede, code="no_document", detail="ConsultaRealizadas without documento")
            return document

    # --- pieces ----------------------------------------------------------------------------

    @staticmethod
    def _receptor(ctx: MailboxContext) -> tuple[str, str]:
        credential = ctx.credential
        if credential.kind is CertificateKind.SELLO:
            return credential.entity_nif or "", credential.holder_name
        return credential.holder_nif or credential.entity_nif or "", credential.holder_name

    def _record(self, ctx: MailboxContext, envio: m.Envio, state: SedeState) -> NotificationRecord:
        if not envio.identificador or not envio.codigo_origen or envio.made_available_at is None:
            raise ProtocolError(sede=ctx.sede, code="envio", detail=f"incomplete envio {envio.raw!r}")
        documents: tuple[DocumentRef, ...] = ()
        if state is not SedeState.PENDIENTE and state is not SedeState.DESCONOCIDO:
            documents = (DocumentRef(f"{envio.identificador}.pdf", "application/pdf", MAIN_DOCUMENT),)
            if envio.referencia_acuse or envio.csv_resguardo:
                documents += (
                    DocumentRef(
                        f"acuse-{envio.identificador}.pdf",
                        "application/pdf",
                        f"{ACUSE}{envio.referencia_acuse or ''}:{envio.csv_resguardo or ''}",
                    ),
                )
        return NotificationRecord(
            sede=ctx.sede,
            external_id=f"{envio.codigo_origen}-{envio.identificador}",
            kind=Kind.COMUNICACION if envio.tipo_envio == m.COMUNICACION else Kind.NOTIFICACION,
            state=state,
            titular_nif=envio.titular_nif or ctx.client_nif,
            issuer_name=envio.issuer.name or envio.root_issuer.name or "",
            subject=envio.concepto,
            made_available_at=envio.made_available_at,
            issuer_code=envio.issuer.code,
            titular_name=envio.titular_name,
            link=LINKS.get(envio.vinculo or ""),
            state_at=envio.fecha_estado,
            procedure=envio.procedure,
            documents=documents,
            raw=envio.raw,
        )

    @staticmethod
    def _anexos(answer: etree._Element) -> list[tuple[str, str, str]]:
        anexos = m.child(answer, "anexos")
        found = []
        for item in m.children(m.child(anexos, "anexosReferencia"), "anexoReferencia"):
            reference = m.text(item, "referenciaDocumento")
            if reference:
                found.append(
                    (m.text(item, "nombre") or reference, m.text(item, "mimeType") or "application/pdf", reference)
                )
        return found

    def _anexo(self, session, ctx, origin, identifier, reference, name, mime_type) -> Document:
        answer, attachments = self._call(
            session,
            ctx,
            m.CONSULTA_ANEXOS,
            [
                ("nifReceptor", self._receptor(ctx)[0]),
                ("identificador", identifier),
                ("codigoOrigen", origin),
                ("referencia", reference),
            ],
        )
        document = self._document(m.child(answer, "documento"), attachments, default_name=name, default_mime=mime_type)
        if document is None:
            raise ProtocolError(sede=ctx.sede, code="no_anexo", detail=f"ConsultaAnexos {reference} without documento")
        return document

    def _acuse(self, session, ctx, origin, identifier, reference, csv) -> Document:
        answer, attachments = self._call(
            session,
            ctx,
            m.CONSULTA_ACUSE_PDF,
            [
                ("nifReceptor", self._receptor(ctx)[0]),
                ("identificador", identifier),
                ("codigoOrigen", origin),
                ("identificadorAcusePdf", [("referencia", reference), ("csvResguardo", csv)]),
            ],
        )
        document = self._document(m.child(answer, "acusePdf"), attachments, default_name=f"acuse-{identifier}.pdf")
        if document is None:
            raise ProtocolError(sede=ctx.sede, code="no_acuse", detail="ConsultaAcusePdf without acusePdf")
        return document

    def _document(
        self, node, attachments, *, default_name: str, default_mime: str = "application/pdf"
    ) -> Document | None:
        if node is None:
            return None
        try:
            content = mime.content(m.child(node, "contenido"), attachments)
        except mime.MimeError as error:
            raise ProtocolError(sede="dehu", code="attachment", detail=str(error)) from error
        if content is None:
            return None
        digest = m.child(node, "hashDocumento")
        algorithm = (m.text(digest, "algoritmoHash") or "").upper()
        expected = m.text(digest, "hash")
        if expected and algorithm in HASHES:
            actual = HASHES[algorithm](content)
            if expected.lower() != actual.hexdigest() and expected != base64.b64encode(actual.digest()).decode():
                raise ProtocolError(sede="dehu", code="hash", detail=f"{default_name}: hash mismatch")
        return Document(
            name=m.text(node, "nombre") or default_name,
            mime=m.text(node, "mimeType") or default_mime,
            content=content,
        )

    def _session(self, ctx: MailboxContext) -> _SignedSession:
        credential = ctx.credential
        try:
            context = client_context(credential.cert_pem, credential.key_pem, credential.chain_pem, ctx.ca_bundle)
            key = wsse.load_key(credential.key_pem)
        except (ssl.SSLError, OSError, ValueError, TypeError) as error:
            # A key that does not match the certificate, or a CA bundle that cannot be read.
            raise AuthError(sede=ctx.sede, code="credential", detail=f"TLS context: {error}") from error
        try:
            return _SignedSession(_service_root(ctx.base_url or PRODUCTION_URL), context, ctx.timeout_s, key)
        except TransportError as error:
            raise InvalidRequest(BAD_URL, sede=ctx.sede, code="url", detail=error.detail) from error

    def _call(
        self, session: _SignedSession, ctx: MailboxContext, operation: str, fields
    ) -> tuple[etree._Element, dict]:
        message = wsse.sign(wsse.envelope(m.request(operation, fields)), ctx.credential.cert_pem, session.key)
        headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{m.soap_action(operation)}"'}
        response = post_to_sede(session, ctx.sede, m.path_for(operation), message, headers, answers_soap=self._is_soap)
        try:
            root_bytes, attachments = mime.split(response.body, response.content_type)
            root = etree.fromstring(root_bytes, parser=wsse.PARSER)
        except (mime.MimeError, etree.XMLSyntaxError, ValueError) as error:
            raise ProtocolError(sede=ctx.sede, code=str(response.status), detail=f"{operation}: {error}") from error
        body = root.find(f"{{{wsse.SOAP}}}Body")
        answer = next((e for e in body if isinstance(e.tag, str)), None) if body is not None else None
        if answer is None:
            raise ProtocolError(sede=ctx.sede, code=str(response.status), detail=f"{operation}: empty Body")
        if etree.QName(answer).localname == "Fault":
            raise self._fault(ctx, operation, answer)
        if response.status != 200:
            raise ProtocolError(sede=ctx.sede, code=str(response.status), detail=f"{operation}: HTTP {response.status}")
        code = m.text(answer, "codigoRespuesta")
        if code and not set(code) <= {"0"}:
            raise self._coded(ctx, operation, code, m.text(answer, "descripcionRespuesta") or "")
        return answer, attachments

    @staticmethod
    def _is_soap(response) -> bool:
        kind = response.content_type.lower()
        return "xml" in kind or "multipart/related" in kind

    def _fault(self, ctx: MailboxContext, operation: str, fault: etree._Element) -> SedeError:
        faultcode = m.text(fault, "faultcode") or ""
        faultstring = m.text(fault, "faultstring") or ""
        detail = m.child(fault, "detail")
        code = m.text(detail, "codigoError") or m.text(detail, "codigo")
        if not code:
            match = re.match(r"\s*(\d{4})\b", faultstring)
            code = match.group(1) if match else None
        if code:
            return self._coded(ctx, operation, code, faultstring)
        local = faultcode.rpartition(":")[2]
        if local in SECURITY_FAULTS:
            error_class, message = SECURITY_FAULTS[local]
            return error_class(message, sede=ctx.sede, code=local, detail=f"{operation}: {faultstring}")
        error_class = SedeUnavailable if local == "Server" else InvalidRequest
        return error_class(sede=ctx.sede, code=local or None, detail=f"{operation}: {faultcode} {faultstring}")

    def _coded(self, ctx: MailboxContext, operation: str, code: str, description: str) -> SedeError:
        error_class, message = FAULTS.get(code, (InvalidRequest, None))
        return error_class(message, sede=ctx.sede, code=code, detail=f"{operation}: {code} {description}")


def _service_root(base_url: str) -> str:
    """The host root the LEMA and Realizadas paths go under: an operator may paste either
    service's whole address."""
    root = base_url.rstrip("/")
    for path in (m.LEMA_PATH, m.REALIZADAS_PATH):
        if root.endswith(path):
            return root[: -len(path)]
    return root
