"""Dates in the tenant's time zone, and the state an approved certificate is in on a given day."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from core.api import (
    utcnow,
)
from plugins.center_certificates.models import (
    APPROVED,
    EXPIRED,
    EXPIRING,
)


def today_for(tenant) -> date:
    """Today in the tenant's time zone."""
    return utcnow().astimezone(ZoneInfo(tenant.timezone)).date()


def dated_status(validity: date, expiring_from: date, today: date) -> str:
    """The state of an approved certificate on ``today``."""
    if validity < today:
        return EXPIRED
    if expiring_from <= today:
        return EXPIRING
    return APPROVED
