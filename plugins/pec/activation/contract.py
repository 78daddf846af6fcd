"""The activation provider contract: what the plugin asks of whoever activates a box.

A provider receives an ``ActivationRequest`` (the box, its holder and the holder's address) and
answers with an ``ActivationResult`` — at once, or later through a callback or a status query.
The manual gestore in the operator console is one provider (``ManualProvider``: every request
waits for a person); a gestore reached over an HTTP API is another
(``plugins.pec.activation.http_api.HttpActivationProvider``). Other packages add providers
through the plugin's hookspec ``pec_activation_providers`` (``plugins.pec.hookspecs``).

Rules every provider keeps:

- ``submit`` is idempotent on ``request.request_id``: the same id sent twice (a retried job, a
  timeout after the provider had already accepted) never activates two boxes.
- A failure raises ``ProviderError`` whose ``retryable`` says whether trying again later may work
  (a timeout, a 503) or not (a refused credential, an invalid request).
- Results reached by callback are authenticated by the provider (``parse_callback``) before the
  plugin believes them, and carry an ``event_id`` so that a repeated delivery is applied once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from flask_babel import lazy_gettext as _l


class ActivationStatus(StrEnum):
    PENDING = "pending"  # accepted, not activated yet
    ACTIVE = "active"  # the box works
    REFUSED = "refused"  # the provider will not activate it (``message`` says why)


@dataclass(frozen=True)
class HolderData:
    kind: str  # "person" or "company"
    codice_fiscale: str
    email: str
    phone: str  # E.164
    partita_iva: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    birth_place: str | None = None  # the comune, or the country for a person born abroad
    birth_provincia: str | None = None  # the sigla; "EE" abroad


@dataclass(frozen=True)
class PostalAddress:
    street: str
    cap: str
    comune: str
    provincia: str
    nazione: str = "IT"


@dataclass(frozen=True)
class ActivationRequest:
    request_id: str  # the idempotency key: one per activation, the same on every retry
    address: str  # casella@dominio
    box_type: str
    mailbox_mb: int
    years: int
    renewal: str  # a catalogue.RenewalMode value
    holder: HolderData
    holder_address: PostalAddress
    reseller: str  # the reseller's code
    callback_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        birth = self.holder.birth_date
        data["holder"]["birth_date"] = birth.isoformat() if birth else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActivationRequest:
        """The request as a provider receives it; ``KeyError``/``TypeError``/``ValueError`` when malformed."""
        holder = dict(data["holder"])
        if holder.get("birth_date"):
            holder["birth_date"] = date.fromisoformat(holder["birth_date"])
        return cls(
            request_id=str(data["request_id"]),
            address=str(data["address"]),
            box_type=str(data["box_type"]),
            mailbox_mb=int(data["mailbox_mb"]),
            years=int(data["years"]),
            renewal=str(data["renewal"]),
            holder=HolderData(**holder),
            holder_address=PostalAddress(**data["holder_address"]),
            reseller=str(data["reseller"]),
            callback_url=data.get("callback_url"),
        )


@dataclass(frozen=True)
class ActivationResult:
    request_id: str
    status: ActivationStatus
    reference: str | None = None  # the provider's own id of the box or order
    activated_at: datetime | None = None  # timezone-aware
    expires_on: date | None = None  # the last day of validity, when the provider tells it
    message: str | None = None  # the provider's words (a refusal's reason), shown as they are

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status.value,
            "reference": self.reference,
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
            "expires_on": self.expires_on.isoformat() if self.expires_on else None,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActivationResult:
        activated_at = datetime.fromisoformat(data["activated_at"]) if data.get("activated_at") else None
        if activated_at is not None and activated_at.tzinfo is None:
            raise ValueError("activated_at must carry its time zone")
        return cls(
            request_id=str(data["request_id"]),
            status=ActivationStatus(data["status"]),
            reference=data.get("reference"),
            activated_at=activated_at,
            expires_on=date.fromisoformat(data["expires_on"]) if data.get("expires_on") else None,
            message=data.get("message"),
        )


@dataclass(frozen=True)
class CallbackEvent:
    event_id: str  # unique per delivery content: a repeated delivery has the same id
    result: ActivationResult


class ProviderError(Exception):
    """The provider could not be asked, or said no to the request itself.

    ``retryable``: trying the same request again later may succeed (network, timeouts, 429, 5xx);
    otherwise it will not until something changes (credentials, the request's data).
    ``retry_after``: seconds the provider asked to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after


class InvalidCallback(Exception):
    """A callback that cannot be believed: bad or missing signature, too old, malformed. The
    receiving view answers 400 and applies nothing."""


@dataclass(frozen=True)
class ProviderSetting:
    """A setting the operator fills in for a provider (stored encrypted when ``secret``)."""

    name: str
    label: Any  # translatable
    secret: bool = False
    required: bool = True
    help: Any = None


class ActivationProvider(ABC):
    """Activates boxes. Subclasses set ``code``, ``title`` and ``settings`` and implement ``submit``."""

    code: ClassVar[str]
    title: ClassVar[Any]
    settings: ClassVar[tuple[ProviderSetting, ...]] = ()
    # Whether results arrive later by callback (the plugin then shows the box as pending).
    calls_back: ClassVar[bool] = False

    @classmethod
    def from_settings(cls, values: Mapping[str, str]) -> ActivationProvider:
        """An instance configured with the operator's ``values`` for ``settings``."""
        missing = [s.name for s in cls.settings if s.required and not values.get(s.name)]
        if missing:
            raise ValueError(f"missing settings for provider {cls.code}: {', '.join(missing)}")
        known = {s.name for s in cls.settings}
        return cls(**{k: v for k, v in values.items() if k in known})

    @abstractmethod
    def submit(self, request: ActivationRequest) -> ActivationResult:
        """Ask for the activation; idempotent on ``request.request_id``. Raises ``ProviderError``."""

    def status(self, request_id: str) -> ActivationResult | None:
        """What the provider knows of an earlier request, or None when it cannot tell."""
        return None

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """Authenticate and read a callback; raises ``InvalidCallback``."""
        raise InvalidCallback(f"provider {self.code} does not call back")


class ManualProvider(ActivationProvider):
    """The gestore is a person in the operator console: every request waits in their queue, and
    their click (activate or refuse) makes the result."""

    code = "manual"
    title = _l("Manual activation by the gestore")

    def submit(self, request: ActivationRequest) -> ActivationResult:
        return ActivationResult(request_id=request.request_id, status=ActivationStatus.PENDING)


@dataclass
class ProviderRegistry:
    """The providers the hook gave, by code (two with one code are a configuration error)."""

    providers: dict[str, type[ActivationProvider]] = field(default_factory=dict)

    @classmethod
    def from_hook_results(cls, results: list[list[type[ActivationProvider]]]) -> ProviderRegistry:
        registry = cls()
        for provider_classes in results:
            for provider in provider_classes or ():
                if not (isinstance(provider, type) and issubclass(provider, ActivationProvider)):
                    raise TypeError(f"{provider!r} is not an ActivationProvider class")
                if provider.code in registry.providers and registry.providers[provider.code] is not provider:
                    raise ValueError(f"two activation providers use the code {provider.code!r}")
                registry.providers[provider.code] = provider
        return registry

    def get(self, code: str) -> type[ActivationProvider]:
        return self.providers[code]
