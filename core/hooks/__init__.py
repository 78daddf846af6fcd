"""Core's own hook implementations, one module per domain: core uses the same extension points
as every plugin (its menu entries, widgets, search results, jobs and settings sections).
``create_app`` registers each of ``MODULES`` with the plugin host as part of core."""

from __future__ import annotations

from core.hooks import audit, clients, jobs, mail, people, settings

MODULES = (people, clients, jobs, mail, settings, audit)
