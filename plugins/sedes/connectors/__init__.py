"""The sede connectors: found through the plugin's ``sede_connectors`` hook, by the code the
catalogue names (``contract.SedeConnector``)."""

from __future__ import annotations

from core.api import call_plugins
from plugins.sedes.contract import SedeConnector


class UnknownConnector(LookupError):
    pass


def connectors() -> dict[str, type[SedeConnector]]:
    """Every installed connector class by its code."""
    found: dict[str, type[SedeConnector]] = {}
    for connector in call_plugins("sede_connectors"):
        if connector.code in found and found[connector.code] is not connector:
            raise RuntimeError(f"two sede connectors with the code {connector.code!r}")
        found[connector.code] = connector
    return found


def connector_for(code: str) -> SedeConnector:
    """A connector instance for the catalogue's connector ``code``; ``UnknownConnector`` if none."""
    try:
        return connectors()[code]()
    except KeyError:
        raise UnknownConnector(code) from None
