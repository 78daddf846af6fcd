"""The hooks the sedes plugin offers to other packages.

Registered on the platform's plugin manager (project ``ventanilla``) when the plugin loads;
another package implements them with ``hookimpl = pluggy.HookimplMarker("ventanilla")``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ventanilla")


@hookspec
def sede_connectors():
    """Offer connectors to sedes electrónicas (``plugins.sedes.contract.SedeConnector``).

    :return: a list of connector classes, each with a ``code`` unique among all connectors; the
        operator's sede catalogue names the connector of each sede by that code.
    """
