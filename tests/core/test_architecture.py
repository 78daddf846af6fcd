"""The architecture holds: plugins reach core through core.api only and never each other, core
has no import cycle (function-local imports count), and the contracts catch a break by name."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _lint(config: Path | None = None, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (extra_path, ROOT) if p)}
    args = [str(LINT_IMPORTS), "--no-cache"] + (["--config", str(config)] if config else [])
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_plugins_may_import_nothing_of_core_but_the_api():
    """The contract lists core's modules one by one (import-linter has no "all but"): a new module
    of core must join the list, or plugins could import it."""
    forbidden = set(_contracts()["plugins-use-core-api"]["forbidden_modules"])
    modules = {
        f"core.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "core").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert modules - {"core.api"} <= forbidden, sorted(modules - {"core.api"} - forbidden)
    assert "core.api" not in forbidden and "tenants" in forbidden


def test_a_plugin_importing_core_internals_breaks_the_contract_by_name(tmp_path):
    package = tmp_path / "rogueplugin"
    package.mkdir()
    (package / "__init__.py").write_text('"""A plugin that reaches past core.api."""\n')
    (package / "models.py").write_text("def f():\n    from core.clients.models import Client\n\n    return Client\n")
    config = (ROOT / "pyproject.toml").read_text()
    config = config.replace(
        'root_packages = ["core", "tenants", "plugins", "tests"]',
        'root_packages = ["core", "tenants", "plugins", "tests", "rogueplugin"]',
    ).replace(
        'source_modules = ["plugins", "tests.sample_plugin"]',
        'source_modules = ["plugins", "tests.sample_plugin", "rogueplugin"]',
    )
    rogue_config = tmp_path / "pyproject.toml"
    rogue_config.write_text(config)
    result = _lint(rogue_config, tmp_path)
    assert result.returncode != 0
    assert "Plugins talk to core through core.api only BROKEN" in result.stdout
    assert "rogueplugin.models -> core.clients.models" in result.stdout


def test_core_and_tenants_have_no_import_cycle():
    """Counting imports inside functions: grimp reads every import statement."""
    import grimp

    from tests.architecture import import_cycles

    graph = grimp.build_graph("core", "tenants", cache_dir=None)
    assert import_cycles(graph, ["core", "tenants"]) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    import grimp

    from tests.architecture import import_cycles

    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from loopy import b\n")
    (package / "b.py").write_text("from loopy import c\n")
    (package / "c.py").write_text("import loopy.a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("loopy", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert import_cycles(graph, ["loopy"]) == [["loopy.a", "loopy.b", "loopy.c"]]


def test_every_name_of_the_plugin_api_is_documented():
    """Functions and classes by their own docstring; other names in the module's docstring."""
    import inspect

    import core.api as api

    undocumented = []
    for name in api.__all__:
        value = getattr(api, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            if len(inspect.getdoc(value) or "") < 15:
                undocumented.append(name)
        elif f"``{name}``" not in api.__doc__:
            undocumented.append(name)
    assert undocumented == []
    assert sorted(api.__all__) == sorted(set(api.__all__)), "a name is listed twice"
