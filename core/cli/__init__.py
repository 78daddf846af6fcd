"""``flask tenants|operators|demo`` commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from core.config import LANGUAGES
from core.errors import DomainError
from core.extensions import db

tenants_cli = AppGroup("tenants", help="Create, list, suspend tenants and license plugins to them.")
operators_cli = AppGroup("operators", help="Manage platform operator accounts.")
demo_cli = AppGroup("demo", help="Demonstration data.")
secrets_cli = AppGroup("secrets", help="Secrets at rest (passwords, certificates, keys).")
storage_cli = AppGroup("storage", help="Where uploaded files and the outbox are kept.")


def _fail(error: DomainError):
    raise click.ClickException(str(error.message))


@tenants_cli.command("create")
@click.argument("slug")
@click.argument("name")
@click.option("--language", default="es", type=click.Choice(LANGUAGES), show_default=True)
@click.option("--timezone", "timezone_name", default="Europe/Madrid", show_default=True)
@click.option("--admin-email", help="Invite this person as the tenant's first administrator.")
@click.option("--admin-name", help="The administrator's name (defaults to the e-mail).")
def create_tenant(slug, name, language, timezone_name, admin_email, admin_name):
    """Create tenant SLUG called NAME, with its default roles."""
    from email_validator import EmailNotValidError, validate_email

    from core import provisioning as services

    if admin_email:
        try:
            validate_email(admin_email, check_deliverability=False)
        except EmailNotValidError as error:
            raise click.BadParameter(str(error), param_hint="--admin-email") from error
    try:
        tenant = services.create_tenant(slug, name, language, timezone_name)
        if admin_email:
            services.invite_administrator(tenant, admin_email, admin_name or admin_email, "Ventanilla")
    except DomainError as error:
        _fail(error)
    click.echo(f"created tenant {tenant.slug} (id {tenant.id})" + (f"; invited {admin_email}" if admin_email else ""))


@tenants_cli.command("list")
def list_tenants():
    """List every tenant with its status and enabled plugins."""
    from tenants.licensing import enabled_plugins
    from tenants.models import Tenant

    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.slug)):
        plugins = ", ".join(sorted(enabled_plugins(tenant))) or "-"
        click.echo(f"{tenant.slug:<24} {tenant.status:<10} {tenant.language}  {tenant.name}  [{plugins}]")


def _set_status(slug: str, suspended: bool):
    from core import provisioning as services

    try:
        tenant = services.find(slug)
    except DomainError as error:
        _fail(error)
    services.set_status(tenant, suspended)
    click.echo(f"{slug}: {tenant.status}")


@tenants_cli.command("suspend")
@click.argument("slug")
def suspend_tenant(slug):
    """Suspend tenant SLUG: its pages answer 404 and its jobs stop."""
    _set_status(slug, True)


@tenants_cli.command("activate")
@click.argument("slug")
def activate_tenant(slug):
    """Make a suspended tenant active again."""
    _set_status(slug, False)


@tenants_cli.command("license")
@click.argument("slug")
@click.argument("plugin")
@click.option("--revoke", is_flag=True, help="Take the licence away instead of granting it.")
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="KEY=VALUE",
    help="A licence limit (repeatable): a number (mailboxes=500), a list of codes (sedes=dehu,tgss) or text; "
    "KEY= removes it.",
)
def license_plugin(slug, plugin, revoke, limits):
    """License PLUGIN to tenant SLUG (or revoke it)."""
    from core import provisioning as services
    from tenants import licensing

    raw = {}
    for item in limits:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--limit")
        raw[key.strip()] = value
    try:
        parsed = licensing.parse_limits(plugin, raw) if raw else None
    except DomainError as error:
        raise click.BadParameter(str(error.message), param_hint="--limit") from error
    try:
        tenant = services.find(slug)
        if parsed is not None:
            stored = licensing.licences(tenant).get(plugin)
            parsed = {**(stored.limits if stored else {}), **parsed}
        licensing.set_licence(tenant, plugin, not revoke, parsed)
    except DomainError as error:
        _fail(error)
    click.echo(f"{slug}: {plugin} {'revoked' if revoke else 'licensed'}")


@operators_cli.command("create")
@click.argument("email")
@click.option("--name", default=None)
@click.password_option()
def create_operator(email, name, password):
    """Create a platform operator account."""
    from core.auth.models import Operator
    from core.auth.services import check_new_password, hash_password, normalise_email

    try:
        check_new_password(password, password)
    except DomainError as error:
        _fail(error)
    email = normalise_email(email)
    if db.session.scalar(select(Operator).where(Operator.email == email)) is not None:
        raise click.ClickException(f"operator {email} exists")
    db.session.add(Operator(email=email, name=name or email, password_hash=hash_password(password)))
    db.session.commit()
    click.echo(f"created operator {email}")


@demo_cli.command("load")
@click.option("--force", is_flag=True, help="Load it even though the database has tenants of its own.")
def load_demo(force):
    """Load the demonstration tenants and accounts (safe to run again).

    It creates an operator account with a published password: never on a database people use.
    """
    from core.demo import OPERATOR, DemoRefused, load, operator_warning

    try:
        lines = load(force=force)
    except DemoRefused as refused:
        raise click.ClickException(f"demo not loaded: {refused}") from None
    for line in lines:
        click.echo(line)
    if f"operator {OPERATOR[0]} created" in lines:
        click.secho(operator_warning(), fg="red", bold=True, err=True)


@secrets_cli.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
def rotate_secrets(batch_size):
    """Re-encrypt every stored secret with the newest key (the first of VENTANILLA_SECRET_KEYS)."""
    from core.crypto.rotation import rotate_secrets as rotate

    results = rotate(batch_size)
    for counts in results:
        click.echo(str(counts))
    rotated = sum(c.rotated for c in results)
    current = sum(c.current for c in results)
    click.echo(f"{rotated} secret(s) re-encrypted, {current} already with the newest key")
    if any(c.unreadable for c in results):
        raise click.ClickException("some secrets could not be opened with any configured key: keep the old keys")


@storage_cli.command("check")
def check_storage():
    """Reach the file store and the outbox store; write, read and remove a probe in the outbox."""
    import secrets

    from core.files.store import StorageUnavailable, get_named_store, get_store

    try:
        files = get_store()
        files.exists(1, "0" * 64)
        click.echo(f"files: {files.describe()}: reachable")
        outbox = get_named_store("outbox")
        probe = f"storage-check-{secrets.token_hex(8)}"
        outbox.put(probe, b"probe")
        if outbox.get(probe)[1] != b"probe":
            raise StorageUnavailable(f"{outbox.describe()}: the probe read back differs from what was written")
        outbox.delete(probe)
        click.echo(f"outbox: {outbox.describe()}: writable")
    except (StorageUnavailable, OSError) as error:
        raise click.ClickException(str(error)) from None


@storage_cli.command("copy-local")
def copy_local_files():
    """Copy the files of FILES_DIR and the .eml files of OUTBOX_DIR into the configured stores
    (FILES_STORE, OUTBOX_STORE); run it again until it copies nothing, then switch every machine."""
    from flask import current_app

    from core.files.store import LocalFileStore, StorageUnavailable, get_named_store, get_store
    from core.files.transfer import copy_local

    config = current_app.config
    try:
        files, outbox = get_store(), get_named_store("outbox")
        if isinstance(files, LocalFileStore):
            raise click.ClickException("FILES_STORE is local: set it (and the S3_* settings) to the new store first")
        copied = copy_local(config["FILES_DIR"], config["OUTBOX_DIR"], files, outbox)
    except (StorageUnavailable, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"{copied.files} file(s), {copied.variants} thumbnail(s), {copied.outbox} outbox message(s) copied "
        f"into {files.describe()}; {copied.skipped} already there"
    )
    for path in copied.damaged:
        click.secho(f"not copied, its bytes do not match its name: {path}", fg="red", err=True)


def register_commands(app: Flask) -> None:
    app.cli.add_command(tenants_cli)
    app.cli.add_command(operators_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(secrets_cli)
    app.cli.add_command(storage_cli)
