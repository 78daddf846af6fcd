"""Fixtures of the pec plugin's core-independent engine: no app, no database, no Redis.

The engine's tests need none of the suite's services, so the suite-wide ``_clean_state`` (which
brings up the app to empty its tables) is replaced here by one that does nothing.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_state():
    """These tests touch no table, Redis database or outbox: nothing to clean."""
    yield
