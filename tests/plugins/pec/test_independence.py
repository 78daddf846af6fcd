"""The engine stands alone: it imports nothing from core, tenants or another plugin, and no Flask
but flask_babel's lazy strings — so it runs (and is tested) without an app."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import plugins.pec

PACKAGE = Path(plugins.pec.__file__).parent
FORBIDDEN = ("core", "tenants", "flask", "plugins")
ALLOWED = ("flask_babel", "plugins.pec")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_module_of_the_engine_imports_core_tenants_flask_or_another_plugin():
    offending = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        bad = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] in FORBIDDEN and not any(name == a or name.startswith(a + ".") for a in ALLOWED)
        }
        if bad:
            offending[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offending == {}


def test_every_module_imports_in_a_fresh_interpreter_without_loading_core_or_tenants():
    modules = sorted(
        ".".join(("plugins", *path.relative_to(PACKAGE.parent).with_suffix("").parts)).removesuffix(".__init__")
        for path in PACKAGE.rglob("*.py")
    )
    assert "plugins.pec.activation.contract" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('core', 'tenants'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent.parent, timeout=120)
