"""The sede connector contract: what the sedes plugin asks of whoever reads an official mailbox.

A connector speaks to one sede electrónica (DEHú, Seguridad Social, …) on behalf of one client with
one digital certificate. The plugin finds connectors through its hookspec ``sede_connectors``
(``plugins.sedes.hookspecs``); a new sede is a package of its own that depends only on this module.

Rules every connector keeps:

- ``list`` never changes the state of a notification at the sede: listing is not comparecencia.
- ``open`` is a legal act (it starts the deadlines of a notification): the plugin calls it only
  after a user's explicit confirmation, passing ``confirmed=True``; a connector refuses otherwise.
- Records are identified by ``(sede, external_id)``; the plugin stores each once, so a connector may
  return a record again (the plugin re-queries with an overlap of a day).
- ``check_credential`` looks only at the certificate and the mailbox, before any network traffic.
- Every failure is a ``SedeError``; ``retryable`` says whether trying later may work (a timeout, a
  503, a fault the service marks temporary) or not (a refused certificate, an invalid request).
  ``message`` is for people (translatable, never the server's raw reply); ``detail`` for the log.
- The certificate (key included) is never logged, and is sent only to the sede's own hosts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from flask_babel import lazy_gettext as _l


class Kind(StrEnum):
    NOTIFICACION = "notificacion"
    COMUNICACION = "comunicacion"
    TEU = "teu"  # an edict of the Tablón Edictal Único naming the client (plugins.sedes.teu)


class SedeState(StrEnum):
    """The state of a notification at the sede (not the staff's own workflow)."""

    PENDIENTE = "pendiente"
    ACEPTADA = "aceptada"
    RECHAZADA = "rechazada"
    EXPIRADA = "expirada"
    LEIDA = "leida"
    PUBLICADA_TEU = "publicada_teu"
    DESCONOCIDO = "desconocido"


class Link(StrEnum):
    """How the certificate's holder relates to the notification's titular."""

    TITULAR = "titular"
    DESTINATARIO = "destinatario"
    APODERADO = "apoderado"
    AUTORIZADO_RED = "autorizado_red"


class CertificateKind(StrEnum):
    PERSONA_FISICA = "persona_fisica"
    REPRESENTANTE = "representante"
    SELLO = "sello"


@dataclass(frozen=True, repr=False)
class Credential:
    """A digital certificate ready for use: parsed once from the PKCS#12, never logged."""

    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes
    kind: CertificateKind
    holder_name: str
    holder_nif: str | None  # the person (persona física, representante)
    entity_nif: str | None  # the company (representante, sello)
    not_before: datetime
    not_after: datetime
    serial: str
    issuer: str

    @property
    def titular_nif(self) -> str:
        """The NIF whose notifications this certificate reads as titular."""
        return self.entity_nif or self.holder_nif or ""

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind}, titular={self.titular_nif}, serial={self.serial})"


@dataclass(frozen=True)
class MailboxContext:
    sede: str
    client_nif: str
    credential: Credential
    as_proxy: bool = False  # "Buzón bajo perfil de apoderamiento"
    base_url: str | None = None  # the sede's endpoint; the catalogue's, or the simulator's
    ca_bundle: str | None = None  # a PEM file of CAs to trust for the sede's TLS (the simulator's)
    ssid_codes: tuple[str, ...] = ()  # the client's CCCs and NAF, for sedes that need them
    timeout_s: float = 25.0


@dataclass(frozen=True)
class DocumentRef:
    name: str
    mime: str
    reference: str | None = None  # the sede's id for fetching it later
    sha256: str | None = None


@dataclass(frozen=True)
class Document:
    name: str
    mime: str
    content: bytes


@dataclass(frozen=True)
class NotificationRecord:
    sede: str
    external_id: str
    kind: Kind
    state: SedeState
    titular_nif: str
    issuer_name: str
    subject: str
    made_available_at: datetime  # aware
    issuer_code: str | None = None  # DIR3
    titular_name: str | None = None
    link: Link | None = None
    state_at: datetime | None = None
    expires_at: datetime | None = None  # the sede's own; else the catalogue's rule applies
    procedure: str | None = None
    documents: tuple[DocumentRef, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    records: list[NotificationRecord]
    complete: bool  # False: the sede had more than was read (the next sync goes on from next_since)
    next_since: datetime


@dataclass(frozen=True)
class OpenedNotification:
    """What comparecencia gives: the record in its new state, its documents and the acuse."""

    record: NotificationRecord
    documents: tuple[Document, ...]
    acuse: Document | None


class SedeConnector(Protocol):
    code: ClassVar[str]  # the catalogue's ``connector`` names it
    # of: list, list_realized, list_all, open, fetch_document, acuse, poderdantes
    capabilities: ClassVar[frozenset[str]]

    def check_credential(self, ctx: MailboxContext) -> None: ...

    def list(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult: ...

    def open(self, ctx: MailboxContext, record: NotificationRecord, *, confirmed: bool) -> OpenedNotification: ...

    def fetch_document(self, ctx: MailboxContext, record: NotificationRecord, ref: DocumentRef) -> Document: ...

    # Only connectors whose capabilities include "list_realized": the notifications already realised
    # (accepted, rejected, expired, read, published in TEU) by any channel, with their sede state.
    def list_realized(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult: ...

    # Only connectors whose capabilities include "list_all": what ``list`` and ``list_realized`` give
    # together (``merged``), read in one visit to the sede (one TLS handshake, the key loaded once).
    def list_all(self, ctx: MailboxContext, since: datetime, until: datetime | None = None) -> SyncResult: ...

    # Only connectors whose capabilities include "poderdantes": who has empowered the certificate's
    # holder at the sede (apoderamientos), as (NIF, name) pairs; the Seguridad Social's solicitarPoderdantes.
    def poderdantes(self, ctx: MailboxContext) -> list[tuple[str, str]]: ...


def merged(pending: SyncResult, realized: SyncResult) -> SyncResult:
    """A mailbox's pending and realised notifications as one answer: a notification in both lists has
    moved meanwhile, and its realised state wins; complete only when both were."""
    records = {r.external_id: r for r in pending.records}
    records.update({r.external_id: r for r in realized.records})
    return SyncResult(
        list(records.values()), pending.complete and realized.complete, min(pending.next_since, realized.next_since)
    )


class SedeError(Exception):
    """A failure talking to a sede. ``message`` is shown to people; ``detail`` only logged."""

    retryable: ClassVar[bool] = False
    default_message: ClassVar[Any] = _l("The sede could not be read.")

    def __init__(
        self,
        message=None,
        *,
        sede: str = "",
        code: str | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ):
        self.message = message or self.default_message
        self.sede = sede
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{sede} {code or ''}: {detail or self.message}")


class CertificateExpired(SedeError):
    default_message = _l("The certificate has expired.")


class CertificateNotYetValid(SedeError):
    default_message = _l("The certificate is not valid yet.")


class CertificateMismatch(SedeError):
    default_message = _l("The certificate is not the client's: its NIF is not the client's NIF.")


class MissingClientData(SedeError):
    default_message = _l("This sede needs the client's CCC or NAF.")


class AuthError(SedeError):
    default_message = _l("The sede refused the certificate for this mailbox.")


class InvalidRequest(SedeError):
    default_message = _l("The sede refused the request as invalid.")


class NotConfirmed(SedeError):
    default_message = _l("Opening a notification needs the user's confirmation.")


class SedeUnavailable(SedeError):
    retryable = True
    default_message = _l("The sede is not answering; the sync will be tried again.")


class RateLimited(SedeUnavailable):
    default_message = _l("The sede asked to wait before trying again.")


class ProtocolError(SedeError):
    default_message = _l("The sede answered something that could not be understood.")


NO_KEY = _l("The certificate has no private key: upload the PKCS#12 file that includes it.")


def plain_nif(value: str | None) -> str:
    """A NIF as a sede compares it: upper case, letters and digits only."""
    return re.sub(r"[^0-9A-Z]", "", (value or "").upper())


def check_certificate(ctx: MailboxContext) -> None:
    """What every connector checks before a certificate goes to a sede: it has its key, it is valid
    now, and (unless the mailbox is read under an apoderamiento) it is the client's own."""
    credential, now = ctx.credential, datetime.now(UTC)
    if not credential.key_pem or not credential.cert_pem:
        raise AuthError(NO_KEY, sede=ctx.sede, code="no_key", detail="credential without key or certificate")
    if credential.not_after <= now:
        raise CertificateExpired(sede=ctx.sede, code="expired", detail=f"expired {credential.not_after:%Y-%m-%d}")
    if credential.not_before > now:
        raise CertificateNotYetValid(
            sede=ctx.sede, code="not_yet_valid", detail=f"valid from {credential.not_before:%Y-%m-%d}"
        )
    if ctx.as_proxy:
        return
    if plain_nif(ctx.client_nif) not in {plain_nif(credential.holder_nif), plain_nif(credential.entity_nif)} - {""}:
        raise CertificateMismatch(sede=ctx.sede, code="nif", detail=f"certificate {credential!r}")
