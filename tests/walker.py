"""Enumerates every route of the application for the isolation and permission walkers.

A route is covered only if each of its URL arguments is known here: a new route with a new
kind of argument makes both walkers fail until someone says what to pass for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.access import is_static_endpoint
from core.permissions import access_of

# Arguments that name a tenant-owned row: calling a route of tenant A with B's value must 404.
ROW_ARGUMENTS = {
    "user_id": "user",
    "role_id": "role",
    "group_id": "group",
    "run_id": "run",
    "note_id": "note",
    "client_id": "client",
    "address_id": "address",
    "import_id": "client_import",
    "certificate_id": "certificate",
    "template_id": "certificate_template",
}
# Arguments that are not row ids: the walker passes a value and checks that nothing leaks.
OTHER_ARGUMENTS = {"plugin", "token"}
OPERATOR_ARGUMENTS = {"tenant_id", "plugin", "eml"}

WALKED_METHODS = ("GET", "POST")


@dataclass(frozen=True)
class Route:
    rule: str
    endpoint: str
    methods: tuple[str, ...]
    arguments: frozenset[str]
    access: object

    @property
    def tenant_scoped(self) -> bool:
        return "tenant" in self.arguments

    @property
    def row_arguments(self) -> set[str]:
        return set(self.arguments) & set(ROW_ARGUMENTS)

    def build(self, values: dict) -> str:
        path = self.rule
        for name in self.arguments:
            for pattern in (f"<int:{name}>", f"<{name}>", f"<string:{name}>", f"<path:{name}>"):
                path = path.replace(pattern, str(values[name]))
        return path


def routes(app) -> list[Route]:
    found = []
    for rule in app.url_map.iter_rules():
        if is_static_endpoint(rule.endpoint):
            continue
        view = app.view_functions[rule.endpoint]
        methods = tuple(m for m in WALKED_METHODS if m in rule.methods)
        found.append(Route(rule.rule, rule.endpoint, methods, frozenset(rule.arguments), access_of(view)))
    return sorted(found, key=lambda r: r.rule)


def uncovered(all_routes: list[Route]) -> list[str]:
    """Routes whose arguments the walkers do not know how to fill."""
    problems = []
    for route in all_routes:
        known = {"tenant"} | set(ROW_ARGUMENTS) | OTHER_ARGUMENTS
        if not route.tenant_scoped:
            known = OPERATOR_ARGUMENTS
        unknown = set(route.arguments) - known
        if unknown:
            problems.append(f"{route.rule} ({route.endpoint}): unknown argument(s) {sorted(unknown)}")
    return problems


def certificate_of(app, tenant_id: int, client_id: int, marker: str) -> tuple[int, int]:
    """A template and a certificate of the client, pending approval with an uploaded image."""
    from datetime import date, timedelta

    from core.clients.models import Client
    from core.extensions import db
    from plugins.center_certificates.services import TemplateData, request_certificate, save_template, submit
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from tests.core.files.samples import png

    with app.app_context(), tenant_context(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        template = save_template(None, TemplateData(f"{marker} Template"))
        certificate = request_certificate(tenant, db.session.get(Client, client_id), template)
        submit(
            tenant,
            certificate,
            validity_date=date.today() + timedelta(days=90),
            notes=f"{marker} notes",
            upload=png(),
            filename="scan.png",
            by_client=False,
            actor=None,
        )
        return template.id, certificate.id
