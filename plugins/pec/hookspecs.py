"""The hooks the pec plugin offers to other packages.

Registered on the platform's plugin manager (project ``ventanilla``) when the plugin loads;
another package implements them with ``hookimpl = pluggy.HookimplMarker("ventanilla")``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ventanilla")


@hookspec
def pec_activation_providers():
    """Offer ways of activating PEC boxes. Called (with ``core.api.call_plugins``) whenever the plugin
    builds its provider registry: to offer the operator the providers of a domain, to submit a box,
    to read a callback.

    The pec plugin itself answers with the manual gestore (``ManualProvider``: the operator
    activates each box in the console) and the HTTP one (``HttpActivationProvider``).

    :return: a list of ``plugins.pec.activation.contract.ActivationProvider`` subclasses (classes,
        not instances: the operator chooses one and fills in its ``settings``, and the plugin
        builds it with ``from_settings``). Each has a ``code`` unique among all providers.
    """
