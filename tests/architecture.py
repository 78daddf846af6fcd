"""An import-linter contract type of our own: no import cycle among the modules of some packages.

import-linter's ``acyclic_siblings`` looks at packages; this looks at modules, counting every
import statement (those inside functions too), and names each cycle's imports with their lines.
Used by the ``core-acyclic`` contract in pyproject.toml (``make lint``).
"""

from __future__ import annotations

import sys

from importlinter import Contract, ContractCheck, fields, output


def import_cycles(graph, packages: list[str]) -> list[list[str]]:
    """The strongly connected groups (of two or more modules) of the import graph of ``packages``."""
    modules = sorted(m for m in graph.modules if m.split(".", 1)[0] in packages)
    inside = set(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in modules:
        if module not in index:
            visit(module)
    return cycles


class AcyclicModulesContract(Contract):
    """No module of ``packages`` imports, directly or around a loop, a module that imports it."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        cycles = import_cycles(graph, list(self.packages))
        details = []
        for cycle in cycles:
            members = set(cycle)
            lines = []
            for importer in cycle:
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                    for detail in graph.get_import_details(importer=importer, imported=imported):
                        lines.append(f"{importer} -> {imported} (l.{detail['line_number']})")
            details.append(lines)
        return ContractCheck(kept=not cycles, metadata={"cycles": details})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for lines in check.metadata["cycles"]:
            output.print("These modules import each other, around a loop:")
            for line in lines:
                output.print(f"    {line}")
            output.new_line()
