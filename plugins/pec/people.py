"""The holders and accounts the panel makes, through core.api: a holder is a core client (core's
checks, groups and ``clients_created``), an assistant a staff account with a first password."""

from __future__ import annotations

from core.api import Client, ClientData, User, create_client, create_staff_account, set_user_active
from core.api import users_with_permission as _users_with_permission
from plugins.pec.identity import COMPANY, HolderIdentity


def create_holder_client(identity: HolderIdentity, email: str, phone: str, user, tenant=None) -> Client:
    """A core client for a holder the plugin has validated (committed, and announced to plugins)."""
    from core.api import current_tenant

    company = identity.kind == COMPANY
    data = ClientData(
        tax_id=identity.codice_fiscale,
        country="IT",
        kind=identity.kind,
        first_name="" if company else identity.first_name or "",
        last_name="" if company else identity.last_name or "",
        company_name=identity.company_name or "" if company else "",
        email=email or "",
        phone=(phone or "")[:40],
    )
    # Who sees a holder is the panel's rule (an assistant, the holders of their own boxes).
    return create_client(tenant or current_tenant(), user, data, by_plugin_rule=True)


def create_panel_user(email: str, name: str, role_key: str, password: str | None = None, actor=None):
    """``core.api.create_staff_account`` for the current tenant: ``(user, first password)``."""
    from core.api import current_tenant

    return create_staff_account(current_tenant(), email, name, role_key, password=password, actor=actor)


def users_with_permission(tenant, code: str) -> list[User]:
    """The tenant's active staff whose roles grant ``code`` (in a request or in a job)."""
    return _users_with_permission(code)


__all__ = ["create_holder_client", "create_panel_user", "set_user_active", "users_with_permission"]
