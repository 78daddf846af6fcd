"""Alembic environment: migrations run as the owner of the tables (``DATABASE_MIGRATION_URL``)."""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_engine, pool, text

from tenants.isolation import made_on, store_all_tenants_key

config = context.config
if config.config_file_name and not current_app.testing:
    fileConfig(config.config_file_name)
log = logging.getLogger("alembic.env")

target_metadata = current_app.extensions["migrate"].db.metadata


def _grant_to_application_role(connection) -> None:
    """Let the application's own role use the tables without owning them (RLS then applies to it)."""
    role = current_app.config.get("DATABASE_APP_ROLE")
    if not role or connection.dialect.name != "postgresql":
        return
    quoted = connection.dialect.identifier_preparer.quote(role)
    connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
    connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}"))
    connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
    connection.execute(text(f"REVOKE ALL ON alembic_version FROM {quoted}"))
    # The audit trail is append-only for the application.
    audit = connection.execute(text("SELECT to_regclass('core_audit_events')")).scalar()
    if audit is not None:
        connection.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON core_audit_events FROM {quoted}"))


def run_migrations_offline() -> None:
    context.configure(
        url=current_app.config["DATABASE_MIGRATION_URL"],
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(current_app.config["DATABASE_MIGRATION_URL"], poolclass=pool.NullPool)

    def skip_empty_autogenerate(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            log.info("no changes in the models")

    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch migrations rebuild tables (copy, drop, rename): with foreign keys on, the drop
            # would cascade into every table that points at the rebuilt one. Set before any
            # transaction starts (SQLite ignores it inside one).
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            process_revision_directives=skip_empty_autogenerate,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=made_on(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
            _grant_to_application_role(connection)
            # Every upgrade: the key follows the application's SECRET_KEY.
            store_all_tenants_key(connection, current_app.config["SECRET_KEY"])
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
