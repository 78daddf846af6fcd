"""Which tenant the running code acts for.

Requests enter the context when the URL names a tenant; jobs enter it themselves. Code that
must cross tenants (the operator console, the job fan-out) says so with ``all_tenants()``.
Everything else that touches a tenant table without a context raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_tenant_id: ContextVar[int | None] = ContextVar("ventanilla_tenant_id", default=None)
_all_tenants: ContextVar[bool] = ContextVar("ventanilla_all_tenants", default=False)


class TenantContextMissing(RuntimeError):
    """A tenant-owned table was touched with no tenant in context: isolation fails closed."""


class TenantMismatch(RuntimeError):
    """A row of one tenant was written while another tenant is in context."""


def current_tenant_id() -> int | None:
    return _tenant_id.get()


def crossing_tenants() -> bool:
    return _all_tenants.get()


# Called whenever the context changes (tenants.isolation registers the one that tells an open
# PostgreSQL transaction), so that this module depends on nothing.
_on_change: list = []


def on_change(callback) -> None:
    """Call ``callback()`` whenever the tenant context changes."""
    _on_change.append(callback)


def _sync_database_setting() -> None:
    for callback in _on_change:
        callback()


@contextmanager
def tenant_context(tenant_or_id) -> Iterator[None]:
    """Act for one tenant inside the block (and only that tenant)."""
    tenant_id = getattr(tenant_or_id, "id", tenant_or_id)
    if tenant_id is None:
        raise ValueError("tenant_context needs a tenant")
    # Already acting for this tenant alone (a request reading its own tenant's licences): the
    # database already has the setting, and telling it again cost two statements.
    unchanged = _tenant_id.get() == int(tenant_id) and not _all_tenants.get()
    token = _tenant_id.set(int(tenant_id))
    crossing = _all_tenants.set(False)
    if not unchanged:
        _sync_database_setting()
    try:
        yield
    finally:
        _all_tenants.reset(crossing)
        _tenant_id.reset(token)
        if not unchanged:
            _sync_database_setting()


@contextmanager
def all_tenants() -> Iterator[None]:
    """Explicitly cross tenants (operator code). Rows of every tenant become visible."""
    token = _all_tenants.set(True)
    _sync_database_setting()
    try:
        yield
    finally:
        _all_tenants.reset(token)
        _sync_database_setting()


def enter_tenant(tenant_id: int | None):
    """Set the context for the rest of a request; returns the token for ``leave_tenant``."""
    token = _tenant_id.set(tenant_id)
    _sync_database_setting()
    return token


def leave_tenant(token) -> None:
    _tenant_id.reset(token)
