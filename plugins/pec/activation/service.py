"""Activation of boxes through the provider contract: choosing the provider, submitting, applying
results (from the job, a callback, or the gestore's click), and the two e-mails of an activation.

Which provider a box uses is its domain's choice (``Domain.provider``), copied on the box when it
is registered. The manual provider makes every request wait in the operator console's queue; the
HTTP provider is called by a ``sync`` job (retried with back-off on transient errors, idempotent
on the box's ``request_id``) and answers later through a signed callback.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.api import (
    Client,
    DomainError,
    TransientJobError,
    User,
    checked_address,
    db,
    enqueue,
    external_url,
    send_email,
    user_language,
    utcnow,
)
from core.api import call_plugins as _call_plugins
from plugins.pec import accounts, holders, people
from plugins.pec.activation.contract import (
    ActivationProvider,
    ActivationRequest,
    ActivationResult,
    ActivationStatus,
    HolderData,
    InvalidCallback,
    ManualProvider,
    PostalAddress,
    ProviderError,
    ProviderRegistry,
)
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.lifecycle import Action, BoxState, check_action, expiry_date
from plugins.pec.models import MANUAL_PROVIDER, Box, CallbackEvent, ProviderConfig

log = logging.getLogger(__name__)

SUBMIT_JOB = "pec.submit_activation"
CALLBACK_ENDPOINT = "pec.activation_callback"


# --- providers ------------------------------------------------------------------------------


def registry() -> ProviderRegistry:
    """Every provider offered through the ``pec_activation_providers`` hookspec (the plugin's own
    manual and HTTP providers, and any other package's)."""
    return ProviderRegistry.from_hook_results([_call_plugins("pec_activation_providers")])


def provider_choices() -> list[tuple[str, object]]:
    return [(code, provider.title) for code, provider in sorted(registry().providers.items())]


def config_of(code: str) -> ProviderConfig | None:
    return db.session.scalar(select(ProviderConfig).where(ProviderConfig.provider == code))


def settings_of(code: str) -> dict[str, str]:
    config = config_of(code)
    if config is None:
        return {}
    try:
        return dict(json.loads(config.settings or "{}"))
    except ValueError:
        return {}


def _host_of(values: dict) -> str | None:
    base_url = values.get("base_url") or ""
    parts = urlsplit(base_url)
    return (
        f"{parts.scheme}://{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        if parts.hostname
        else None
    )


def _check_reachable(values: dict) -> None:
    """A provider's API address must be a server on the internet (unless the operator allows
    private hosts): checked on saving and before every call."""
    base_url = values.get("base_url")
    if not base_url:
        return
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PecError(_l("Enter an http(s) address."), field="base_url", code="provider.url")
    try:
        checked_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except DomainError as error:  # an unknown name, or a host that is not on the internet
        raise PecError(error.message, field="base_url", code="provider.host") from error


def save_config(code: str, values: dict[str, str]) -> ProviderConfig:
    """The operator's settings of a provider for the current tenant. A secret left empty keeps the
    saved one — only while the API address stays on the same host: a secret is sent only to the
    host it was saved for."""
    provider = registry().providers.get(code)
    if provider is None:
        raise PecError(_l("Choose how boxes are activated."), field="provider", code="provider.unknown")
    old = settings_of(code)
    same_host = _host_of(old) == _host_of(values)
    merged: dict[str, str] = {}
    errors: list[PecError] = []
    for setting in provider.settings:
        value = (values.get(setting.name) or "").strip()
        if setting.secret and not value and same_host:
            value = old.get(setting.name, "")
        if setting.required and not value:
            message = (
                _l("The address changed host: enter this secret again.")
                if setting.secret and old.get(setting.name) and not same_host
                else _l("This setting is required.")
            )
            errors.append(PecError(message, field=setting.name, code="provider.setting"))
        if value:
            merged[setting.name] = value
    if errors:
        raise PecErrors(errors)
    _check_reachable(merged)
    try:
        provider.from_settings(merged)
    except ValueError as error:
        raise PecError(str(error), field="base_url", code="provider.settings") from error
    config = config_of(code)
    if config is None:
        config = ProviderConfig(provider=code)
        db.session.add(config)
    config.settings = json.dumps(merged, sort_keys=True)
    db.session.flush()
    return config


def provider_for(code: str) -> ActivationProvider:
    """The configured provider ``code`` of the current tenant. Raises ``ProviderError`` (not
    retryable) when it is unknown or not configured."""
    if code == MANUAL_PROVIDER:
        return ManualProvider()
    provider = registry().providers.get(code)
    if provider is None:
        raise ProviderError(f"unknown activation provider {code!r}", retryable=False)
    values = settings_of(code)
    try:
        return provider.from_settings(values)
    except ValueError as error:
        raise ProviderError(f"provider {code!r} is not configured: {error}", retryable=False) from error


# --- requests -------------------------------------------------------------------------------


def build_request(tenant, box: Box) -> ActivationRequest:
    """What the provider is told: the box, its holder, the holder's address, the reseller, and where
    to call back."""
    client: Client = box.holder
    profile = holders.profile_of(client.id)
    address = box.holder_address
    birth = date.fromisoformat(profile.birth_date) if profile and profile.birth_date else None
    holder = HolderData(
        kind=client.kind,
        codice_fiscale=client.tax_id,
        email=client.email,
        phone=address.phone if address else client.phone,
        partita_iva=(profile.partita_iva or None) if profile else None,
        first_name=client.first_name or None,
        last_name=client.last_name or None,
        company_name=client.company_name or None,
        birth_date=birth,
        sex=(profile.sex or None) if profile else None,
        birth_place=((profile.birth_comune or profile.birth_country) or None) if profile else None,
        birth_provincia=(profile.birth_provincia or None) if profile else None,
    )
    postal = PostalAddress(
        street=address.street,
        cap=address.cap,
        comune=address.comune,
        provincia=address.provincia,
        nazione=address.nazione,
    )
    return ActivationRequest(
        request_id=box.request_id,
        address=box.address,
        box_type=box.box_type,
        mailbox_mb=box.mailbox_mb,
        years=box.years,
        renewal=box.renewal,
        holder=holder,
        holder_address=postal,
        reseller=accounts.reseller_code(tenant),
        callback_url=external_url(CALLBACK_ENDPOINT, tenant=tenant.slug),
    )


def ready(box: Box) -> bool:
    """A request can go out once the holder's address is known (the provider needs it)."""
    return box.state == BoxState.PENDING.value and box.holder_address_id is not None


def request_activation(tenant, box: Box, started_by=None) -> None:
    """Send the box to its provider, after the caller's commit: the HTTP provider through the
    ``sync`` job; a manual one waits in the operator console's queue (nothing to send)."""
    if not ready(box) or box.provider == MANUAL_PROVIDER or box.submitted_at is not None:
        return
    try:
        enqueue(tenant, SUBMIT_JOB, {"box_id": box.id}, started_by=started_by)
    except Exception as error:  # Redis away: the daily job sends what is still unsent.
        log.warning("could not queue the activation of box %s now: %s", box.id, error)


def run_submit(ctx, box_id: int) -> dict:
    """The job: ask the provider to activate the box; idempotent (the box's request id is the
    provider's idempotency key, and a box no longer pending is left alone)."""
    box = db.session.get(Box, box_id)
    if box is None or not ready(box):
        return {"submitted": False}
    try:
        provider = provider_for(box.provider)
        if box.provider != MANUAL_PROVIDER:
            _check_reachable(settings_of(box.provider))
        result = provider.submit(build_request(ctx.tenant, box))
    except PecError as error:
        box.provider_error = str(error.message)[:400]
        db.session.commit()
        return {"submitted": False, "error": box.provider_error}
    except ProviderError as error:
        if error.retryable:
            raise TransientJobError(error.message) from error
        box.provider_error = error.message[:400]
        db.session.commit()
        return {"submitted": False, "error": box.provider_error}
    box.submitted_at = utcnow()
    box.provider_error = ""
    apply_result(ctx.tenant, box, result)
    db.session.commit()
    return {"submitted": True, "status": result.status.value}


def apply_result(tenant, box: Box, result: ActivationResult) -> bool:
    """What a provider said about a box: activated, refused, or still pending. Whether it changed
    the box (a result about a box no longer pending changes nothing)."""
    if result.reference:
        box.provider_reference = result.reference[:100]
    if box.state != BoxState.PENDING.value:
        return False
    if result.status == ActivationStatus.ACTIVE:
        activate(tenant, box, result.activated_at, result.expires_on)
        return True
    if result.status == ActivationStatus.REFUSED:
        refuse(tenant, box, result.message or "")
        return True
    return False


# --- the gestore's decisions ----------------------------------------------------------------


def activate(tenant, box: Box, activated_at: datetime | None = None, expires_on: date | None = None) -> Box:
    """ATTIVA: valid for its years from today (or as the provider says); the reseller and the
    holder are told by e-mail. Flushed; the caller commits (the e-mails leave with the commit)."""
    check_action(Action.ACTIVATE, box.box_state, None, date.today())
    activated_at = activated_at or utcnow()
    local_day = activated_at.astimezone(ZoneInfo(tenant.timezone)).date()
    box.state = BoxState.ACTIVE.value
    box.activated_at = activated_at
    box.expires_on = expires_on or expiry_date(local_day, box.years)
    box.refusal_reason = ""
    box.provider_error = ""
    db.session.flush()
    _tell_activation(tenant, box)
    return box


def refuse(tenant, box: Box, reason: str) -> Box:
    check_action(Action.REFUSE, box.box_state, None, date.today())
    reason = " ".join((reason or "").split())[:400]
    if not reason:
        raise PecError(_l("Write why the activation is refused."), field="reason", code="refuse.reason")
    box.state = BoxState.REFUSED.value
    box.refusal_reason = reason
    box.package_id = None
    db.session.flush()
    for user in reseller_recipients(tenant, box):
        send_email(
            tenant,
            user.email,
            _l("Activation refused: %(address)s", address=box.address),
            "pec/mail/refused",
            user_language(user, tenant),
            commit=False,
            box=box,
            reason=reason,
            link=external_url("pec.box_detail", tenant=tenant.slug, box_id=box.id),
        )
    return box


def reseller_recipients(tenant, box: Box | None = None) -> list[User]:
    """Who hears, on the reseller's side: the reseller's panel account (else whoever sees every
    box) and the person who entered the box, once each."""
    recipients: dict[int, User] = {}
    account = accounts.reseller_account()
    if account is not None and account.user is not None and account.user.active:
        recipients[account.user.id] = account.user
    else:
        for user in people.users_with_permission(tenant, "pec.boxes:view_all"):
            recipients.setdefault(user.id, user)
    if box is not None and box.created_by_id:
        creator = db.session.get(User, box.created_by_id)
        if creator is not None and creator.active:
            recipients.setdefault(creator.id, creator)
    return list(recipients.values())


def _tell_activation(tenant, box: Box) -> None:
    """The two e-mails of an activation: to the reseller (and whoever entered the box) and to the
    holder."""
    subject = _l("PEC box activated: %(address)s", address=box.address)
    for user in reseller_recipients(tenant, box):
        send_email(
            tenant,
            user.email,
            subject,
            "pec/mail/activated",
            user_language(user, tenant),
            commit=False,
            box=box,
            holder=box.holder,
            for_holder=False,
            link=external_url("pec.box_detail", tenant=tenant.slug, box_id=box.id),
        )
    holder = box.holder
    if holder.email:
        send_email(
            tenant,
            holder.email,
            subject,
            "pec/mail/activated",
            holder.locale or tenant.language,
            commit=False,
            box=box,
            holder=holder,
            for_holder=True,
            link="",
        )


# --- callbacks ------------------------------------------------------------------------------


def handle_callback(tenant, headers, body: bytes) -> tuple[int, str]:
    """A provider's callback: authenticated by the provider of the tenant's configuration, applied
    once per event id. Returns an HTTP status and a word for the provider."""
    event = None
    provider = None
    for code in sorted(registry().providers):
        candidate = registry().providers[code]
        if not candidate.calls_back or config_of(code) is None:
            continue
        try:
            provider = provider_for(code)
            event = provider.parse_callback(headers, body)
            break
        except (InvalidCallback, ProviderError):
            continue
    if event is None:
        return 400, "invalid"
    box = db.session.scalar(select(Box).where(Box.request_id == event.result.request_id))
    if box is None:
        return 404, "unknown request"
    if box.provider != provider.code:
        return 400, "invalid"
    try:
        with db.session.begin_nested():
            db.session.add(CallbackEvent(event_id=event.event_id[:64], box_id=box.id, status=event.result.status.value))
    except IntegrityError:
        return 200, "already applied"
    apply_result(tenant, box, event.result)
    db.session.commit()
    return 200, "ok"


def pending_queue_statement():
    """Boxes waiting for the manual gestore (every reseller's, when run across tenants): ready to
    activate, or whose HTTP request failed for good."""
    return (
        select(Box)
        .where(Box.state == BoxState.PENDING.value, Box.holder_address_id.is_not(None))
        .where((Box.provider == MANUAL_PROVIDER) | (Box.provider_error != ""))
    )
