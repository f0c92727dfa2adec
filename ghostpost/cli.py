"""The `ghostpost` command line."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import click

from ghostpost.settings import PROJECT_DIR, Settings, SettingsError

MIGRATIONS_DIR = PROJECT_DIR / "migrations"


def _settings() -> Settings:
    try:
        return Settings.load()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _container() -> Any:
    from ghostpost.bootstrap import bootstrap

    return bootstrap(_settings())


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """ghostpost: delegated posting with disclosure, and a ledger of who wrote what."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.group()
def db() -> None:
    """Database schema commands."""


def alembic_config(database_url: str) -> Any:
    """Return the Alembic config for our migrations against `database_url`."""
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").exists():
        raise click.ClickException(
            f"migrations not found at {MIGRATIONS_DIR}; install ghostpost from its source tree "
            "(pip install -e .)"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or upgrade the schema to the newest revision."""
    from alembic import command

    from ghostpost.db.engine import redact_url

    settings = _settings()
    command.upgrade(alembic_config(settings.database_url), revision)
    click.echo(f"database at revision {revision}: {redact_url(settings.database_url)}")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from alembic import command

    command.check(alembic_config(_settings().database_url))
    click.echo("models and migrations agree")


@main.command()
def demo() -> None:
    """Seed demo data (idempotent) and publish the demo window's first posts."""
    from ghostpost.demo import seed_demo

    container = _container()
    try:
        report = seed_demo(container)
    finally:
        container.dispose()
    click.echo(report)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the web app (and, by default, a publishing worker thread)."""
    from werkzeug.serving import run_simple

    from ghostpost import create_app
    from ghostpost.bootstrap import bootstrap
    from ghostpost.worker import Worker

    container = bootstrap(_settings())
    app = create_app(container=container)
    stop = threading.Event()
    if container.settings.serve_runs_worker:
        worker = Worker(container)
        threading.Thread(target=worker.run, kwargs={"stop": stop}, daemon=True).start()
    click.echo(f"ghostpost serving on http://{host}:{port}/  (Ctrl+C to stop)")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        stop.set()


@main.command()
@click.option("--once", is_flag=True, help="Publish everything due now, then exit.")
def worker(once: bool) -> None:
    """Publish due posts: claim, publish, record; reconcile crashed claims first."""
    from ghostpost.worker import Worker

    container = _container()
    try:
        published = Worker(container).run(once=once)
    except KeyboardInterrupt:
        published = 0
    finally:
        container.dispose()
    if once:
        click.echo(f"published {published} post(s)")


@main.group()
def users() -> None:
    """Staff users."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "manager", "writer", "auditor"]), required=True)
@click.option("--principal", "principal_name", help="This user IS the named principal.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="GHOSTPOST_NEW_USER_PASSWORD",
    help="Prompted when not given (or set GHOSTPOST_NEW_USER_PASSWORD).",
)
def users_create(
    email: str, name: str, role: str, principal_name: str | None, password: str
) -> None:
    """Create a staff user."""
    from ghostpost.domain.model import Role
    from ghostpost.services import directory
    from ghostpost.services.context import Actor
    from ghostpost.services.errors import ServiceError

    container = _container()
    try:
        principal_id = None
        if principal_name:
            with container.services.uow() as uow:
                principal = uow.principals.by_name(principal_name)
            if principal is None:
                raise click.ClickException(f"no principal named {principal_name!r}")
            principal_id = principal.id
        user = directory.create_user(
            container.services,
            Actor.system("cli"),
            email=email,
            name=name,
            role=Role(role),
            password=password,
            principal_id=principal_id,
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        container.dispose()
    click.echo(f"created {user.role.value} {user.email} (id {user.id})")


@main.group()
def clients() -> None:
    """API clients for schedulers (OAuth 2.0 client credentials)."""


@clients.command("create")
@click.option("--name", required=True, help="What the client is, e.g. 'Buffer'.")
@click.option("--owner", "owner_email", required=True, help="Email of the accountable staff user.")
@click.option("--scopes", required=True, help='Space-separated, e.g. "posts:write posts:read".')
@click.option("--accounts", required=True, help="Comma-separated handles, platform:handle or ids.")
@click.option("--author", "author_email", help="Email of the writer posts default to.")
def clients_create(
    name: str, owner_email: str, scopes: str, accounts: str, author_email: str | None
) -> None:
    """Create an API client and print its id and secret (the secret is shown only now)."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor
    from ghostpost.services.errors import ServiceError

    container = _container()
    try:
        ctx = container.services
        client, secret = client_service.create_client(
            ctx,
            Actor.system("cli"),
            name=name,
            owner_email=owner_email,
            scopes=scopes,
            account_ids=client_service.find_accounts(ctx, accounts.split(",")),
            default_author_email=author_email,
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        container.dispose()
    click.echo(f"created API client {client.name!r}")
    click.echo(f"client_id:     {client.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(f"scopes:        {' '.join(sorted(client.scopes))}")
    click.echo("Store the secret now: it is not shown again (only its hash is kept).", err=True)


@clients.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """Deactivate an API client; its tokens stop working at once."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor
    from ghostpost.services.errors import ServiceError

    container = _container()
    try:
        client = client_service.revoke_client(container.services, Actor.system("cli"), client_id)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        container.dispose()
    click.echo(f"revoked API client {client.name!r} ({client.client_id})")


@clients.command("list")
def clients_list() -> None:
    """List the API clients (never their secrets)."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor

    container = _container()
    try:
        listed = client_service.list_clients(container.services, Actor.system("cli"))
    finally:
        container.dispose()
    if not listed:
        click.echo("no API clients")
    for item in listed:
        client = item.client
        state = "active" if client.is_active else "revoked"
        click.echo(f"{client.client_id}  {state:7}  {client.name}")
        click.echo(f"    owner {item.owner_email}; author {item.default_author_email or '-'}")
        click.echo(f"    scopes {' '.join(sorted(client.scopes))}")
        click.echo(f"    accounts {', '.join(item.account_handles)}")


@main.group()
def api() -> None:
    """The scheduler API (/api/v1)."""


@api.command("purge-keys")
@click.option(
    "--older-than-hours",
    default=24,
    show_default=True,
    type=click.IntRange(min=24),
    help="Delete Idempotency-Keys older than this (keys are kept at least 24 hours).",
)
def api_purge_keys(older_than_hours: int) -> None:
    """Delete old Idempotency-Key records (run it daily, e.g. from cron)."""
    from datetime import timedelta

    from ghostpost.services.idempotency import purge_keys

    container = _container()
    try:
        removed = purge_keys(container.services, older_than=timedelta(hours=older_than_hours))
    finally:
        container.dispose()
    click.echo(f"deleted {removed} idempotency key(s) older than {older_than_hours} h")


def run() -> None:
    """Entry point that never shows a traceback for bad configuration."""
    try:
        main()
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
