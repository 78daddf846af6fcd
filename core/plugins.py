"""The plugin manager: loading, start-up guardrails, and per-tenant hook dispatch.

Plugins come from the entry-point group ``ventanilla.plugins`` (the built-in ones are declared
there too) and from ``EXTRA_PLUGINS`` module paths. Core registers its own hook
implementations as the plugin ``core``, which every tenant always has.
"""

from __future__ import annotations

import importlib
import itertools
import logging
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy
from flask import Blueprint, Flask

from core import hookspecs
from core.hooktypes import PluginInfo
from core.permissions import PermissionRegistry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ventanilla.plugins"
CORE = "core"


class PluginError(RuntimeError):
    """A plugin broke the contract; the application refuses to start."""


class PluginHost:
    """Everything the application knows about its plugins."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("ventanilla")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.modules: dict[str, ModuleType] = {}
        self.blueprint_plugin: dict[str, str] = {}
        self.permissions = PermissionRegistry()
        self._subset_callers: dict[tuple[str, frozenset[str]], object] = {}
        self.core_names: list[str] = []

    # -- loading -----------------------------------------------------------------------

    def load(self, app: Flask, core_modules: tuple[ModuleType, ...] = ()) -> None:
        """Register core's own hook modules (``core.hooks``: part of core, always called), then
        every installed plugin, and check the contract."""
        for module in core_modules:
            name = f"{CORE}:{module.__name__.rpartition('.')[2]}"
            self.pm.register(module, name=name)
            self.core_names.append(name)
        allow = app.config.get("PLUGIN_ALLOWLIST")
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if allow is not None and entry_point.name not in allow:
                continue
            self._register(entry_point.name, entry_point.load())
        for dotted in app.config.get("EXTRA_PLUGINS") or []:
            module = importlib.import_module(dotted)
            self._register(self._declared_name(module), module)
        for name in self.modules:
            info = next(iter(self.call_one(name, "ventanilla_plugin")), None)
            if info is None or info.name != name:
                raise PluginError(f"plugin {name!r} must describe itself with ventanilla_plugin() named {name!r}")
            self.infos[name] = info
            if info.hookspecs is not None:
                self.pm.add_hookspecs(info.hookspecs)
        self.pm.check_pending()
        for name in [CORE, *self.modules]:
            for permission in self.call_one(name, "register_permissions"):
                self.permissions.add(permission, name)

    def _declared_name(self, module: ModuleType) -> str:
        info = module.ventanilla_plugin() if hasattr(module, "ventanilla_plugin") else None
        if info is None:
            raise PluginError(f"{module.__name__} has no ventanilla_plugin() hook")
        return info.name

    def _register(self, name: str, module: ModuleType) -> None:
        if name == CORE or name.startswith(f"{CORE}:") or name in self.modules:
            raise PluginError(f"plugin name {name!r} is taken")
        self.pm.register(module, name=name)
        self.modules[name] = module

    def call_one(self, name: str, hook: str, **kwargs) -> list:
        """Call one plugin's implementation of a hook (``core``: all of core's hook modules); a
        single result is wrapped in a list."""
        names = set(self.core_names) if name == CORE else {name}
        results: list = []
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            if impl.plugin_name in names:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
                if result is not None:
                    results += list(result) if isinstance(result, list | tuple) else [result]
        return results

    # -- mounting ----------------------------------------------------------------------

    def mount_blueprints(self, app: Flask) -> None:
        for name, module in self.modules.items():
            for blueprint in self.call_one(name, "register_blueprints", app=app):
                self._check_blueprint(name, module, blueprint)
                prefix = blueprint.url_prefix or f"/{name}"
                app.register_blueprint(blueprint, url_prefix=f"/<tenant>{prefix}")
                self.blueprint_plugin[blueprint.name] = name
            for blueprint in self.call_one(name, "operator_views", app=app):
                self._check_blueprint(name, module, blueprint)
                prefix = blueprint.url_prefix or f"/{name}"
                app.register_blueprint(blueprint, url_prefix=f"/operator{prefix}")
                self.blueprint_plugin[blueprint.name] = name

    def _check_blueprint(self, plugin: str, module: ModuleType, blueprint: Blueprint) -> None:
        if not isinstance(blueprint, Blueprint):
            raise PluginError(f"plugin {plugin!r} returned {blueprint!r}, not a Blueprint")
        if blueprint.name != plugin and not blueprint.name.startswith(f"{plugin}_"):
            raise PluginError(f"blueprint {blueprint.name!r} of plugin {plugin!r} must be named after the plugin")
        if blueprint.template_folder:
            folder = Path(blueprint.root_path) / blueprint.template_folder
            extra = [p.name for p in folder.iterdir() if p.name != plugin] if folder.is_dir() else []
            if extra:
                raise PluginError(f"templates of plugin {plugin!r} must live in templates/{plugin}/ (found {extra})")

    def check_models(self, metadata_models) -> None:
        """Guardrail: a plugin's tables are prefixed with its name and are tenant-scoped."""
        from tenants.isolation import TenantScoped

        for mapper in metadata_models:
            cls = mapper.class_
            for name, module in self.modules.items():
                package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
                if not cls.__module__.startswith(package + "."):
                    continue
                table = mapper.local_table.name
                if not table.startswith(f"{name}_"):
                    raise PluginError(f"table {table!r} of plugin {name!r} must be prefixed {name}_")
                if not issubclass(cls, TenantScoped) and not getattr(cls, "ventanilla_global", False):
                    raise PluginError(f"model {cls.__name__} of plugin {name!r} must be TenantScoped")

    # -- dispatch ----------------------------------------------------------------------

    @property
    def installed(self) -> list[str]:
        return sorted(self.modules)

    def plugin_of_blueprint(self, blueprint: str | None) -> str | None:
        if not blueprint:
            return None
        return self.blueprint_plugin.get(blueprint.split(".", 1)[0])

    def caller(self, hook: str, enabled: set[str]):
        """A hook caller that reaches core and the plugins in ``enabled`` only."""
        key = (hook, frozenset(enabled))
        if key not in self._subset_callers:
            removed = [m for n, m in self.modules.items() if n not in enabled]
            self._subset_callers[key] = self.pm.subset_hook_caller(hook, remove_plugins=removed)
        return self._subset_callers[key]

    def call_for_tenant(self, hook: str, enabled: set[str], **kwargs) -> list:
        """Call a per-tenant hook and flatten the lists it returns."""
        results = self.caller(hook, enabled)(**kwargs)
        return list(itertools.chain.from_iterable(r for r in results if r))

    def call_all(self, hook: str, **kwargs) -> list:
        """Call a hook on every installed plugin (not per tenant) and flatten the lists it returns."""
        results = getattr(self.pm.hook, hook)(**kwargs)
        return list(itertools.chain.from_iterable(r if isinstance(r, list | tuple) else [r] for r in results if r))

    def call_by_plugin(self, hook: str, enabled: set[str], **kwargs) -> list[tuple[str, list]]:
        """Call a per-tenant hook and say which plugin gave what: ``[(plugin, results)]``."""
        answers = []
        for impl in reversed(self.caller(hook, enabled).get_hookimpls()):
            result = impl.function(**{name: kwargs[name] for name in impl.argnames})
            if result:
                answers.append((impl.plugin_name, list(result) if isinstance(result, list | tuple) else [result]))
        return answers

    def announce(self, hook: str, enabled: set[str], **kwargs) -> None:
        """Tell each plugin of something already committed (``clients_created``...): one plugin's
        failure is logged and its unfinished work rolled back; it cannot undo or fail the change
        that was made, nor keep the other plugins from hearing of it."""
        from core.extensions import db

        for impl in reversed(self.caller(hook, enabled).get_hookimpls()):
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception:
                log.exception("%s of plugin %s failed", hook, impl.plugin_name)
                db.session.rollback()


EXTENSION = "ventanilla_plugins"


def host() -> PluginHost:
    """The application's plugin host: the one way to reach it."""
    from flask import current_app

    return current_app.extensions[EXTENSION]
