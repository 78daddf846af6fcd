"""Enumerates every route of the application for the isolation and permission walkers.

A route is covered only if each of its URL arguments is known here: a new route with a new
kind of argument makes both walkers fail until someone says what to pass for it.

Each plugin says it for its own routes in ``tests/plugins/<plugin>/walker.py`` (found here by
itself, so that plugins never edit this file):

- ``ROW_ARGUMENTS``: ``{url argument: kind}`` of its rows (``"box_id": "pec_box"``);
- ``OPERATOR_ARGUMENTS`` (optional): ``{url argument: kind}`` of rows its operator pages take;
- ``populate(app, tenant_id, client_id, marker) -> {kind: id}``: one row of each kind in the
  tenant (for its client ``client_id``), every text of it carrying ``marker``;
- ``snapshot(app, tenant_id) -> dict`` (optional): what a leaking write could change.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from core.access import is_static_endpoint
from core.permissions import access_of


def plugin_walkers() -> list[ModuleType]:
    """The ``walker`` module of every plugin test package that has one."""
    import tests.plugins

    found = []
    for package in pkgutil.iter_modules(tests.plugins.__path__):
        try:
            found.append(importlib.import_module(f"tests.plugins.{package.name}.walker"))
        except ModuleNotFoundError as error:
            if error.name != f"tests.plugins.{package.name}.walker":
                raise
    return found


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
}
# Arguments of operator pages that name a tenant's row, by kind.
OPERATOR_ROW_ARGUMENTS: dict[str, str] = {}
for _walker in plugin_walkers():
    ROW_ARGUMENTS.update(_walker.ROW_ARGUMENTS)
    OPERATOR_ROW_ARGUMENTS.update(getattr(_walker, "OPERATOR_ARGUMENTS", {}))
# Arguments that are not row ids: the walker passes a value and checks that nothing leaks.
OTHER_ARGUMENTS = {"plugin", "token"}
OPERATOR_ARGUMENTS = {"tenant_id", "plugin", "eml", *OPERATOR_ROW_ARGUMENTS}


def plugin_rows(app, tenant_id: int, client_id: int, marker: str) -> dict:
    """``{kind: id}`` of every plugin's rows in the tenant (each plugin's ``populate``)."""
    rows = {}
    for walker in plugin_walkers():
        rows.update(walker.populate(app, tenant_id, client_id, marker))
    return rows


def plugin_snapshot(app, tenant_id: int) -> dict:
    """Every plugin's ``snapshot`` of the tenant, by plugin."""
    return {
        walker.__name__: walker.snapshot(app, tenant_id) for walker in plugin_walkers() if hasattr(walker, "snapshot")
    }


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
