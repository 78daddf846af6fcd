"""Loading plugins, the start-up guardrails, and the tenant administrator's plugin page."""

from __future__ import annotations

import re
import sys
import textwrap
import types

import pytest
from flask import Blueprint

from core.hookspecs import hookimpl
from core.permissions import Permission
from core.plugins import PluginError, PluginHost, PluginInfo
from tenants.isolation import TenantScoped
from tests.conftest import login


def _config(app, **extra) -> dict:
    return {
        "INSTANCE_PATH": app.config["INSTANCE_PATH"],
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": "k" * 32,
        "TESTING": True,
        **extra,
    }


def _plugin_module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(f"broken_{name}")
    module.__file__ = f"/nonexistent/broken_{name}/__init__.py"
    module.__path__ = []

    @hookimpl
    def ventanilla_plugin():
        return PluginInfo(name=name, title=name)

    module.ventanilla_plugin = ventanilla_plugin
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    sys.modules[module.__name__] = module
    return module


def _start(app, module) -> None:
    from core.app import create_app

    try:
        create_app(_config(app, EXTRA_PLUGINS=[module.__name__], PLUGIN_ALLOWLIST=[]))
    finally:
        sys.modules.pop(module.__name__, None)


def test_plugins_load_from_the_entry_point_group(app, tmp_path, monkeypatch):
    from core.app import create_app

    dist = tmp_path / "ventanilla_sample-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ventanilla-sample\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [ventanilla.plugins]
        sample = tests.sample_plugin
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    installed = create_app(_config(app, EXTRA_PLUGINS=[], PLUGIN_ALLOWLIST=None))
    assert "sample" in installed.extensions["ventanilla_plugins"].installed
    assert "/<tenant>/notes/" in {r.rule for r in installed.url_map.iter_rules()}
    filtered = create_app(_config(app, EXTRA_PLUGINS=[], PLUGIN_ALLOWLIST=["something-else"]))
    assert "sample" not in filtered.extensions["ventanilla_plugins"].installed


def test_a_blueprint_not_named_after_its_plugin_stops_the_start(app):
    module = _plugin_module("tidy", register_blueprints=lambda app: [Blueprint("messy", __name__)])
    with pytest.raises(PluginError, match="must be named after the plugin"):
        _start(app, module)


def test_a_permission_outside_the_plugins_namespace_stops_the_start(app):
    module = _plugin_module("tidy", register_permissions=lambda: [Permission("core.users:steal", "x")])
    with pytest.raises(ValueError, match="outside its namespace"):
        _start(app, module)


def test_a_malformed_permission_code_stops_the_start(app):
    module = _plugin_module("tidy", register_permissions=lambda: [Permission("tidy-everything", "x")])
    with pytest.raises(ValueError, match=re.escape("<plugin>.<area>:<verb>")):
        _start(app, module)


def test_a_job_outside_the_plugins_namespace_stops_the_start(app):
    def register_jobs(jobs):
        jobs.add("core.hijack", lambda ctx: None)

    module = _plugin_module("tidy", register_jobs=register_jobs)
    with pytest.raises(ValueError, match=re.escape("must be named tidy.<job>")):
        _start(app, module)


def test_an_implementation_of_an_unknown_hook_stops_the_start(app):
    module = _plugin_module("tidy", navigatoin=lambda tenant, user: [])
    with pytest.raises(Exception, match="navigatoin"):
        _start(app, module)


def test_templates_outside_the_plugins_folder_stop_the_start(app, tmp_path):
    (tmp_path / "templates" / "other").mkdir(parents=True)
    blueprint = Blueprint("tidy", __name__, root_path=str(tmp_path), template_folder="templates")
    module = _plugin_module("tidy", register_blueprints=lambda app: [blueprint])
    with pytest.raises(PluginError, match="templates/tidy/"):
        _start(app, module)


def test_plugin_tables_must_be_prefixed_and_tenant_scoped():
    host = PluginHost()
    module = _plugin_module("tidy")
    host.modules["tidy"] = module

    def mapper(cls, table):
        cls.__module__ = f"{module.__name__}.models"
        return types.SimpleNamespace(class_=cls, local_table=types.SimpleNamespace(name=table))

    class Scoped(TenantScoped):
        pass

    class Shared:
        pass

    class Catalogue:
        ventanilla_global = True

    host.check_models([mapper(Scoped, "tidy_things"), mapper(Catalogue, "tidy_catalogue")])
    with pytest.raises(PluginError, match="prefixed tidy_"):
        host.check_models([mapper(Scoped, "things")])
    with pytest.raises(PluginError, match="must be TenantScoped"):
        host.check_models([mapper(Shared, "tidy_shared")])
    sys.modules.pop(module.__name__, None)


def test_administrator_sees_only_licensed_plugins_and_switches_them(app, factory, client):
    from core.extensions import db
    from tenants import licensing
    from tenants.models import Tenant

    tenant = factory.tenant("acme", language="en", plugins=())
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    assert "Sample notes" not in client.get("/acme/settings/plugins").get_data(as_text=True)
    assert client.post("/acme/settings/plugins/sample", data={"enabled": "1"}).status_code == 404

    with app.app_context():
        licensing.set_licence(db.session.get(Tenant, tenant.id), "sample", True, {"notes": 5})
    page = client.get("/acme/settings/plugins").get_data(as_text=True)
    assert 'data-plugin="sample"' in page and "Maximum notes: 5" in page
    assert client.get("/acme/notes/").status_code == 200

    client.post("/acme/settings/plugins/sample", data={"enabled": "0"})
    assert client.get("/acme/notes/").status_code == 404
    assert "/acme/notes/" not in client.get("/acme/").get_data(as_text=True)
    with app.app_context():
        assert licensing.licences(db.session.get(Tenant, tenant.id))["sample"].licensed, (
            "switching off keeps the licence"
        )

    client.post("/acme/settings/plugins/sample", data={"enabled": "1"})
    assert client.get("/acme/notes/").status_code == 200


def test_permissions_of_a_switched_off_plugin_are_inert_and_hidden(app, factory, client):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "admin@acme.test", role_key="admin")
    login(client, "acme", "admin@acme.test")
    assert "sample.notes:view" in client.get("/acme/roles/new").get_data(as_text=True)
    client.post("/acme/settings/plugins/sample", data={"enabled": "0"})
    assert "sample.notes:view" not in client.get("/acme/roles/new").get_data(as_text=True)


def test_a_plugin_declares_hooks_of_its_own_that_packages_implement(app):
    from core.api import call_plugins

    with app.app_context():
        assert call_plugins("sample_stamps") == ["approved"]
