"""The application factory."""

from __future__ import annotations

import gc
import importlib
import logging
import os
from pathlib import Path

from flask import Flask
from flask_bootstrap import Bootstrap5
from sqlalchemy import event
from sqlalchemy.engine import Engine

from core.config import PROJECT_ROOT, check_public_url, load_config
from core.extensions import csrf, db, login_manager, migrate

CORE_DIR = Path(__file__).resolve().parent


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@migrate.configure
def _plugin_version_locations(config):
    """Core's migrations and each installed plugin's own branch (``<plugin>/migrations/versions``)."""

    locations = [str(CORE_DIR / "migrations" / "versions")]
    from core.plugins import host

    for module in host().modules.values():
        folder = Path(module.__file__).parent / "migrations" / "versions"
        if folder.is_dir():
            locations.append(str(folder))
    config.set_main_option("version_locations", os.pathsep.join(locations))
    config.set_main_option("path_separator", "os")
    return config


CORE_MODEL_MODULES = (
    "core.audit.models",
    "core.auth.models",
    "core.clients.models",
    "core.files.models",
    "core.groups.models",
    "core.jobs.models",
    "core.mail.models",
    "core.push.models",
    "core.roles.models",
    "tenants.models",
)


def _import_core_models() -> None:
    """Every core model, so the metadata (migrations, guardrails) sees all tables."""
    for module in CORE_MODEL_MODULES:
        importlib.import_module(module)


def _register_core_blueprints(app: Flask) -> None:
    from core.audit.views import bp as audit_bp
    from core.auth.views import bp as auth_bp
    from core.clients.views import bp as clients_bp
    from core.dashboard.views import bp as dashboard_bp
    from core.groups.views import bp as groups_bp
    from core.i18n.views import bp as i18n_bp
    from core.jobs.views import bp as jobs_bp
    from core.mail.views import bp as mail_bp
    from core.mail.views import operator_bp as mail_operator_bp
    from core.operator.views import bp as operator_bp
    from core.portal.views import bp as portal_bp
    from core.roles.views import bp as roles_bp
    from core.settings.views import bp as settings_bp
    from core.site import bp as site_bp
    from core.users.views import bp as users_bp

    app.register_blueprint(site_bp)
    app.register_blueprint(i18n_bp)
    app.register_blueprint(operator_bp, url_prefix="/operator")
    app.register_blueprint(mail_operator_bp, url_prefix="/operator")
    app.register_blueprint(auth_bp, url_prefix="/<tenant>")
    app.register_blueprint(dashboard_bp, url_prefix="/<tenant>")
    app.register_blueprint(users_bp, url_prefix="/<tenant>/users")
    app.register_blueprint(roles_bp, url_prefix="/<tenant>/roles")
    app.register_blueprint(groups_bp, url_prefix="/<tenant>/groups")
    app.register_blueprint(settings_bp, url_prefix="/<tenant>/settings")
    app.register_blueprint(mail_bp, url_prefix="/<tenant>/settings/mail")
    app.register_blueprint(jobs_bp, url_prefix="/<tenant>/jobs")
    app.register_blueprint(clients_bp, url_prefix="/<tenant>/clients")
    app.register_blueprint(audit_bp, url_prefix="/<tenant>/audit")
    app.register_blueprint(portal_bp, url_prefix="/<tenant>/portal")


def create_app(overrides: dict | None = None) -> Flask:
    config = load_config(overrides)
    app = Flask(
        "core",
        root_path=str(CORE_DIR),
        instance_path=config["INSTANCE_PATH"],
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(CORE_DIR / "static"),
    )
    app.config.update(config)
    check_public_url(app.config, app.debug)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Behind an HTTPS proxy: request.remote_addr, scheme and host are the client's, not the proxy's.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        # No JIT: the pages' queries are short, and PostgreSQL's cost estimate of a count over a
        # tenant's certificates crossed the JIT threshold, compiling for 100+ ms a query that runs in 25.
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "connect_args": {"options": "-c jit=off"}}
        )

    if app.config["EMAIL_ALLOW_TEST_DOMAINS"]:
        # The demo accounts live under the reserved .test domain (RFC 2606).
        import email_validator

        email_validator.TEST_ENVIRONMENT = True

    _import_core_models()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(CORE_DIR / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    Bootstrap5(app)

    from core import access, cache, hooks, i18n, sqltrace, templating
    from core.cli import register_commands
    from core.errors import register_error_pages
    from core.jobs.registry import JobRegistry
    from core.plugins import CORE, EXTENSION, PluginHost

    host = PluginHost()
    host.load(app, hooks.MODULES)
    app.extensions[EXTENSION] = host
    jobs = JobRegistry()
    for name in [CORE, *host.installed]:
        host.call_one(name, "register_jobs", jobs=jobs.for_plugin(name))
    app.extensions["ventanilla_jobs"] = jobs

    # Core's catalogue last: a later catalogue wins on a shared message, and a plugin must not
    # change how core's own screens read.
    translation_dirs = []
    for module in host.modules.values():
        folder = Path(module.__file__).parent / "translations"
        if folder.is_dir():
            translation_dirs.append(str(folder))
    i18n.init_app(app, [*translation_dirs, str(CORE_DIR / "translations")])

    _register_core_blueprints(app)
    host.mount_blueprints(app)
    host.check_models(db.Model.registry.mappers)
    access.init_app(app)
    cache.init_app()
    register_error_pages(app)
    templating.init_app(app)
    register_commands(app)
    with app.app_context():
        sqltrace.init_app(app, db.engine)
    if not app.testing:
        _settle_garbage_collection()
    return app


def _settle_garbage_collection() -> None:
    """Keep Python's cycle collector off what lives as long as the process.

    A page allocates enough that the collector ran after nearly every request and, every few
    hundred, went through all of the 280,000 objects the application holds (the ORM's mappers,
    the templates, the routes): over 100 ms for that request, about 0.6 ms a request on average.
    Frozen once built, they are never walked again; a young generation ten times the default
    size then makes one request's garbage one collection, not several."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 10, 10)
