"""The operator's catalogue of sedes electrónicas: what every tenant's "Lista de servicios accesibles
con certificado digital" shows, and which sedes a licence may name.

The catalogue starts with the services of the seed (``DEFAULTS``); the operator edits it in the
operator console. A sede with a ``connector`` can be synced; the others are portal links only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.api import DomainError, Tenant, db, licence_value
from plugins.sedes.models import DEFAULT_MAX_CONCURRENCY, Sede

LEXNET_DEADLINE_DAYS = 3  # LexNET: three working days to pick a notification up (art. 162 LEC)
ADMINISTRATIVE_DEADLINE_DAYS = 10  # Ley 39/2015 art. 43.2: ten natural days

DEHU_BASE_URL = "https://gd-dehuws.redsara.es"  # the connector adds the LEMA and Realizadas paths
SEGURIDAD_SOCIAL_BASE_URL = "https://ws.seg-social.gob.es/INFRWSCN/WSCNService"  # WSCN (Notificaciones Telemáticas)

MAX_CONCURRENCY_CEILING = 1000
CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass
class SedeData:
    """What the operator's form gives for one sede."""

    code: str
    name: str
    portal_url: str = ""
    register_url: str = ""
    signature_test_url: str = ""
    connector: str | None = None
    base_url: str | None = None
    needs_ssid: bool = False
    deadline_days: int | None = ADMINISTRATIVE_DEADLINE_DAYS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    position: int = 0
    active: bool = True


# The seed's list (seed 001), in its order. DEHú and the Seguridad Social have connectors; the others
# are the portals staff open with the client's certificate.
DEFAULTS = (
    SedeData(
        "dehu",
        "Dirección electrónica habilitada - 060",
        portal_url="https://dehu.redsara.es/",
        register_url="https://dehu.redsara.es/",
        connector="dehu",
        base_url=DEHU_BASE_URL,
    ),
    SedeData("dgt", "Dirección Electrónica Vial - DGT", portal_url="https://sede.dgt.gob.es/"),
    SedeData(
        "seg_social",
        "Seguridad Social - Sede electrónica",
        portal_url="https://sede.seg-social.gob.es/",
        register_url="https://sede.seg-social.gob.es/wps/portal/sede/sede/Inicio/NotificacionesTelematicas",
        connector="seguridad_social",
        base_url=SEGURIDAD_SOCIAL_BASE_URL,
        needs_ssid=True,
    ),
    SedeData(
        "aeat",
        "Agencia Tributaria - Sede electrónica",
        portal_url="https://sede.agenciatributaria.gob.es/",
        signature_test_url="https://sede.agenciatributaria.gob.es/Sede/ayuda/consultas-informaticas/"
        "firma-electronica-certificados-electronicos-ayuda-tecnica.html",
    ),
    SedeData("minetur", "MINETUR", portal_url="https://sede.serviciosmin.gob.es/"),
    SedeData("gencat", "GENCAT - Oficina Virtual de Trámites", portal_url="https://web.gencat.cat/ca/tramits/"),
    SedeData(
        "lexnet",
        "Administración de justicia - LexNET",
        portal_url="https://lexnet.justicia.es/",
        deadline_days=LEXNET_DEADLINE_DAYS,
    ),
    SedeData("bizkaia", "Bizkaia - Oficina Virtual de Hacienda", portal_url="https://www.ebizkaia.eus/"),
    SedeData(
        "gipuzkoa",
        "Sede Electrónica de la Diputación Foral de Gipuzkoa",
        portal_url="https://egoitza.gipuzkoa.eus/",
    ),
    SedeData(
        "justizianet",
        "JustiziaNet - Administración de Justicia en Euskadi",
        portal_url="https://www.justizia.eus/",
        deadline_days=LEXNET_DEADLINE_DAYS,
    ),
)


def ensure_catalogue() -> None:
    """Fill an empty catalogue with the seed's services (a new installation); an edited one is kept."""
    if db.session.scalar(select(func.count()).select_from(Sede)):
        return
    for position, data in enumerate(DEFAULTS):
        db.session.add(_apply(Sede(code=data.code), data, position))
    db.session.commit()


def all_sedes(*, active_only: bool = False) -> list[Sede]:
    stmt = select(Sede).order_by(Sede.position, Sede.name)
    if active_only:
        stmt = stmt.where(Sede.active.is_(True))
    return list(db.session.scalars(stmt))


def get_sede(code: str) -> Sede | None:
    return db.session.get(Sede, code)


def licence_choices() -> list[tuple[str, str]]:
    """The codes a licence's ``sedes`` limit may name: the catalogue's."""
    ensure_catalogue()
    return [(sede.code, sede.name) for sede in all_sedes()]


def licensed_codes(tenant: Tenant) -> set[str]:
    """The codes of the active catalogue sedes the tenant's licence allows (an empty limit: all)."""
    value = licence_value(tenant, "sedes", "sedes")
    if value is False:
        return set()
    codes = {sede.code for sede in all_sedes(active_only=True)}
    if not value:
        return codes
    allowed = {code.strip() for code in (value if isinstance(value, list | tuple) else str(value).split(","))}
    return codes & allowed


def licensed_sedes(tenant: Tenant) -> list[Sede]:
    codes = licensed_codes(tenant)
    return [sede for sede in all_sedes(active_only=True) if sede.code in codes]


def _check(data: SedeData) -> None:
    if not data.code or not set(data.code) <= CODE_CHARS or len(data.code) > 32:
        raise DomainError(_l("A code is up to 32 lowercase letters, digits or underscores."), field="code")
    if not data.name.strip():
        raise DomainError(_l("The sede needs a name."), field="name")
    for field in ("portal_url", "register_url", "signature_test_url", "base_url"):
        value = getattr(data, field) or ""
        if value and (urlsplit(value).scheme != "https" or not urlsplit(value).hostname):
            raise DomainError(_l("A link must start with https:// and name a server."), field=field)
    if data.connector and not data.base_url:
        raise DomainError(_l("A sede read by a connector needs the service's base URL."), field="base_url")
    if data.deadline_days is not None and not 1 <= data.deadline_days <= 60:
        raise DomainError(_l("The deadline is between 1 and 60 days, or none."), field="deadline_days")
    if not 1 <= (data.max_concurrency or 0) <= MAX_CONCURRENCY_CEILING:
        raise DomainError(
            _l("At most between 1 and %(most)s mailboxes at a time.", most=MAX_CONCURRENCY_CEILING),
            field="max_concurrency",
        )


def save_sede(data: SedeData, *, existing: Sede | None = None) -> Sede:
    """Create a sede of the catalogue, or change ``existing`` (its code stays)."""
    if existing is not None:
        data.code = existing.code
    _check(data)
    if existing is None and get_sede(data.code) is not None:
        raise DomainError(_l("There is already a sede with this code."), field="code")
    sede = _apply(existing or Sede(code=data.code), data, data.position)
    if existing is None:
        db.session.add(sede)
    db.session.commit()
    return sede


def _apply(sede: Sede, data: SedeData, position: int) -> Sede:
    sede.name = data.name.strip()
    sede.portal_url = data.portal_url or ""
    sede.register_url = data.register_url or ""
    sede.signature_test_url = data.signature_test_url or ""
    sede.connector = data.connector or None
    sede.base_url = data.base_url or None
    sede.needs_ssid = data.needs_ssid
    sede.deadline_days = data.deadline_days
    sede.max_concurrency = data.max_concurrency
    sede.position = position
    sede.active = data.active
    return sede
