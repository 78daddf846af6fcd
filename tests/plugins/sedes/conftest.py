"""Fixtures of the sedes plugin's tests. DEHú is a real local server speaking its protocol
(``dehu_simulator``: HTTPS with client certificates, WS-Security, SOAP with attachments)."""

from __future__ import annotations

import pytest

from plugins.sedes.simulator import DehuSimulator
from plugins.sedes.simulator.teu import BoeSimulator


@pytest.fixture
def dehu_simulator():
    """The DEHú simulator on a free loopback port, with its own CA (``dehu_simulator.ca`` issues the
    certificates it trusts): ``url`` for the catalogue's base URL, ``ca_bundle``/``ca_pem`` to trust
    its TLS, ``enrol(cert, nifs)``, ``add_notification(nif, …)``, ``inject_fault(code)``,
    ``delay(seconds)``, ``unavailable(retry_after=…)``, ``latency``, ``clock_offset``,
    ``requests_served``, ``operations()``."""
    with DehuSimulator() as simulator:
        yield simulator


@pytest.fixture
def boe_simulator():
    """The BOE's Tablón Edictal Único on a free loopback port (HTTPS, its own CA): ``url`` and
    ``ca_pem`` for the catalogue's ``teu`` entry, ``add_announcement(day, issuer=, title=, pdf=|text=,
    table=)``, ``realistic_day(day, nifs)``, ``unavailable(times)``, ``requests``."""
    with BoeSimulator() as simulator:
        yield simulator
