"""The `ghostpost` command line."""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import click

from ghostpost.logs import configure_logging
from ghostpost.settings import PROJECT_DIR, Settings, SettingsError

if TYPE_CHECKING:
    from ghostpost.bootstrap import Container

P = ParamSpec("P")
R = TypeVar("R")

MIGRATIONS_DIR = PROJECT_DIR / "migrations"


def _settings() -> Settings:
    try:
        settings = Settings.load()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_format)
    return settings


def _container() -> Container:
    from ghostpost.bootstrap import bootstrap

    return bootstrap(_settings())


def with_container(command: Callable[Concatenate[Container, P], R]) -> Callable[P, R]:
    """Run the command with a container built from the settings (its first argument), disposed
    afterwards; a service's refusal becomes a clean CLI error (exit 1, no traceback)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from ghostpost.services.errors import ServiceError

        container = _container()
        try:
            return command(container, *args, **kwargs)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            container.dispose()

    return run


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
@with_container
def demo(container: Container) -> None:
    """Seed demo data (idempotent) and publish the demo window's first posts."""
    from ghostpost.demo import seed_demo

    click.echo(seed_demo(container))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--mastodon-port",
    type=int,
    default=None,
    help="Also serve the Mastodon client API at the root of this port (on the same --host), "
    "so a Mastodon app given only http://HOST:PORT works.",
)
def serve(host: str, port: int, mastodon_port: int | None) -> None:
    """Serve the web app (and, by default, a publishing worker thread)."""
    from werkzeug.serving import make_server, run_simple

    from ghostpost import create_app, mastodon_face
    from ghostpost.bootstrap import bootstrap
    from ghostpost.worker import Worker

    container = bootstrap(_settings())
    app = create_app(container=container)
    stop = threading.Event()
    if container.settings.serve_runs_worker:
        worker = Worker(container)
        threading.Thread(target=worker.run, kwargs={"stop": stop}, daemon=True).start()
    if mastodon_port is not None:
        # Bound before the main port answers: once /healthz does, the face does too.
        face = make_server(host, mastodon_port, mastodon_face(app), threaded=True)
        threading.Thread(target=face.serve_forever, name="mastodon-face", daemon=True).start()
        click.echo(f"Mastodon client API on http://{host}:{mastodon_port}/")
    click.echo(f"ghostpost serving on http://{host}:{port}/  (Ctrl+C to stop)")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        stop.set()


@main.command()
@click.option("--once", is_flag=True, help="Publish everything due now, then exit.")
@with_container
def worker(container: Container, once: bool) -> None:
    """Publish due posts: claim, publish, record; reconcile crashed claims first."""
    from ghostpost.worker import Worker

    try:
        published = Worker(container).run(once=once)
    except KeyboardInterrupt:
        published = 0
    if once:
        click.echo(f"published {published} post(s)")


@main.group()
def users() -> None:
    """Staff users."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "manager", "writer", "auditor"]), required=True)
@click.option(
    "--principal",
    "principal_name",
    help="This user IS the named principal (only for a principal with no user yet).",
)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="GHOSTPOST_NEW_USER_PASSWORD",
    help="Prompted when not given (or set GHOSTPOST_NEW_USER_PASSWORD).",
)
@with_container
def users_create(
    container: Container,
    email: str,
    name: str,
    role: str,
    principal_name: str | None,
    password: str,
) -> None:
    """Create a staff user."""
    from ghostpost.domain.model import Role
    from ghostpost.services import directory
    from ghostpost.services.context import Actor

    principal_id = None
    if principal_name:
        with container.services.uow(read_only=True) as uow:
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
    click.echo(f"created {user.role.value} {user.email} (id {user.id})")


@users.command("link-principal")
@click.argument("email")
@click.argument("principal_name")
@with_container
def users_link_principal(container: Container, email: str, principal_name: str) -> None:
    """Make an existing user the principal's person: the FIRST link only (recorded in the
    ledger). A principal already linked is handed over only by its own user, from the web app."""
    from ghostpost.services import directory
    from ghostpost.services.context import Actor

    user = directory.link_principal(
        container.services, Actor.system("cli"), email=email, principal_name=principal_name
    )
    click.echo(f"{user.email} is now the principal {principal_name} (recorded in the ledger)")


@users.command("reset-two-factor")
@click.argument("email")
@with_container
def users_reset_two_factor(container: Container, email: str) -> None:
    """Remove a user's TOTP second factor (lost device); they enroll again at next sign-in."""
    from ghostpost.services.context import Actor
    from ghostpost.services.two_factor import reset_totp

    user = reset_totp(container.services, Actor.system("cli"), email)
    click.echo(f"two-factor sign-in removed for {user.email} (recorded in the ledger)")


@main.group()
def clients() -> None:
    """API clients for schedulers (OAuth 2.0 client credentials)."""


@clients.command("create")
@click.option("--name", required=True, help="What the client is, e.g. 'Buffer'.")
@click.option("--owner", "owner_email", required=True, help="Email of the accountable staff user.")
@click.option("--scopes", required=True, help='Space-separated, e.g. "posts:write posts:read".')
@click.option("--accounts", required=True, help="Comma-separated handles, platform:handle or ids.")
@click.option("--author", "author_email", help="Email of the writer posts default to.")
@click.option(
    "--authors",
    "author_emails",
    help="Comma-separated emails of the only writers the client may name (the default author "
    "among them). Without it: the default author alone.",
)
@with_container
def clients_create(
    container: Container,
    name: str,
    owner_email: str,
    scopes: str,
    accounts: str,
    author_email: str | None,
    author_emails: str | None,
) -> None:
    """Create an API client and print its id and secret (the secret is shown only now)."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor

    ctx = container.services
    client, secret = client_service.create_client(
        ctx,
        Actor.system("cli"),
        name=name,
        owner_email=owner_email,
        scopes=scopes,
        account_ids=client_service.find_accounts(ctx, accounts.split(",")),
        default_author_email=author_email,
        author_emails=_emails(author_emails) if author_emails is not None else None,
    )
    click.echo(f"created API client {client.name!r}")
    click.echo(f"client_id:     {client.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(f"scopes:        {' '.join(sorted(client.scopes))}")
    click.echo("Store the secret now: it is not shown again (only its hash is kept).", err=True)


def _emails(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@clients.command("set-authors")
@click.argument("client_id")
@click.option(
    "--authors",
    "author_emails",
    required=True,
    help='Comma-separated emails of the only writers the client may name ("" for nobody).',
)
@click.option(
    "--default-author",
    "default_author",
    help="The writer posts default to (one of --authors); without it the current one stays.",
)
@click.option("--no-default-author", is_flag=True, help="Clear the default author.")
@with_container
def clients_set_authors(
    container: Container,
    client_id: str,
    author_emails: str,
    default_author: str | None,
    no_default_author: bool,
) -> None:
    """Replace the writers an API client may name (recorded in the ledger)."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor

    if default_author and no_default_author:
        raise click.UsageError("--default-author and --no-default-author exclude each other")
    client = client_service.set_client_authors(
        container.services,
        Actor.system("cli"),
        client_id,
        author_emails=_emails(author_emails),
        default_author_email=default_author,
        keep_default=not no_default_author,
    )
    click.echo(
        f"API client {client.name!r} may now name {len(client.author_ids)} author(s) "
        "(recorded in the ledger)"
    )


@clients.command("revoke")
@click.argument("client_id")
@with_container
def clients_revoke(container: Container, client_id: str) -> None:
    """Deactivate an API client; its tokens stop working at once."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor

    client = client_service.revoke_client(container.services, Actor.system("cli"), client_id)
    click.echo(f"revoked API client {client.name!r} ({client.client_id})")


@clients.command("list")
@with_container
def clients_list(container: Container) -> None:
    """List the API clients (never their secrets)."""
    from ghostpost.services import clients as client_service
    from ghostpost.services.context import Actor

    listed = client_service.list_clients(container.services, Actor.system("cli"))
    if not listed:
        click.echo("no API clients")
    for item in listed:
        client = item.client
        state = "active" if client.is_active else "revoked"
        click.echo(f"{client.client_id}  {state:7}  {client.name}")
        click.echo(f"    owner {item.owner_email}; author {item.default_author_email or '-'}")
        click.echo(f"    may name {', '.join(item.author_emails) or 'nobody'}")
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
@with_container
def api_purge_keys(container: Container, older_than_hours: int) -> None:
    """Delete old Idempotency-Key records (run it daily, e.g. from cron)."""
    from datetime import timedelta

    from ghostpost.services.idempotency import purge_keys

    removed = purge_keys(container.services, older_than=timedelta(hours=older_than_hours))
    click.echo(f"deleted {removed} idempotency key(s) older than {older_than_hours} h")


@api.command("purge-media")
@with_container
def api_purge_media(container: Container) -> None:
    """Delete uploaded images never attached to a post for over a day (run it daily, e.g. from
    cron, like purge-keys). The files stay: another upload or a post may share their hash."""
    from ghostpost.services.media import purge_unattached

    removed = purge_unattached(container.services)
    click.echo(f"deleted {removed} unattached upload(s) older than a day")


@main.group()
def sessions() -> None:
    """Staff web sessions (stored server-side)."""


@sessions.command("purge")
@with_container
def sessions_purge(container: Container) -> None:
    """Delete web sessions dead (revoked or timed out) for over a day (run daily, e.g. cron)."""
    from ghostpost.bootstrap import timeouts
    from ghostpost.services.web_sessions import purge_web_sessions

    removed = purge_web_sessions(container.services, timeouts(container.settings))
    click.echo(f"deleted {removed} web session(s) dead for over a day")


@main.group()
def notifications() -> None:
    """Email notifications: the daily digest and delivery (the worker does both too)."""


@notifications.command("digest")
@click.option("--day", help="The UTC day to summarise, YYYY-MM-DD (default: yesterday).")
@with_container
def notifications_digest(container: Container, day: str | None) -> None:
    """Queue one digest of the day's events for each user who turned the digest on (once per
    user and day however often it runs), then send what is due."""
    from datetime import date, timedelta

    from ghostpost.services import notifications as service

    try:
        when = date.fromisoformat(day) if day else container.clock.now().date() - timedelta(days=1)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--day") from None
    queued = service.queue_daily_digests(container.services, when)
    click.echo(f"queued {queued} digest(s) for {when.isoformat()}")
    if container.mailer is None:
        click.echo("no SMTP server configured (smtp_host): notifications are recorded, not sent")
        return
    sent = service.deliver_due(container.services, container.mailer, "cli")
    click.echo(f"sent {sent} email(s) through {container.mailer.describe()}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
def mailbox(host: str, port: int) -> None:
    """A local SMTP server for the demo that prints every email it receives (needs the
    `demo` or `dev` extra: aiosmtpd). Point GHOSTPOST_SMTP_HOST/PORT at it."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        raise click.ClickException("needs aiosmtpd: pip install -e '.[demo]'") from None

    class Printer:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            text = (envelope.original_content or b"").decode("utf-8", "replace")
            click.echo(f"\n--- mail to {', '.join(envelope.rcpt_tos)} ---\n{text}--- end ---")
            return "250 OK"

    controller = Controller(Printer(), hostname=host, port=port)
    controller.start()
    click.echo(f"mailbox: printing every email sent to smtp://{host}:{port} here")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@main.group()
def audit() -> None:
    """The ledger: exports, coverage, verification, the posts-vs-ledger check, the notary."""


@audit.command("export")
@click.option(
    "--report",
    type=click.Choice(["authorship", "ledger"]),
    default="authorship",
    show_default=True,
    help="authorship: one row per post; ledger: the raw ledger, verifiable (JSONL only).",
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="Default: csv for the authorship report, jsonl for the ledger.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write ('-' for standard output).",
)
@click.option("--account", help="Only this account: id, handle, @handle or platform:handle.")
@click.option("--window", "window_id", type=click.IntRange(min=1), help="Only this window.")
@click.option("--author", "author_email", help="Only posts written by this email.")
@click.option("--since", help="From this UTC day (YYYY-MM-DD) or RFC 3339 time, included.")
@click.option("--until", help="Up to this UTC day (included) or RFC 3339 time (excluded).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@with_container
def audit_export(
    container: Container,
    report: str,
    export_format: str | None,
    out_path: str,
    account: str | None,
    window_id: int | None,
    author_email: str | None,
    since: str | None,
    until: str | None,
    quiet: bool,
) -> None:
    """Export the authorship report or the raw ledger, streamed (constant memory)."""
    from ghostpost.bootstrap import ship_checkpoint
    from ghostpost.services import clients as client_service
    from ghostpost.services import exports
    from ghostpost.services.context import Actor

    ctx = container.services
    export_format = export_format or ("jsonl" if report == "ledger" else "csv")
    filters = exports.ExportFilters(
        account_id=client_service.find_accounts(ctx, [account])[0] if account else None,
        window_id=window_id,
        author_email=author_email,
        since=exports.parse_time(since, name="since") if since else None,
        until=exports.parse_time(until, end=True, name="until") if until else None,
    )
    export = exports.prepare_export(
        ctx,
        Actor.system("cli"),
        report,
        export_format,
        filters,
        public_keys=container.keyring.public_keys(),
    )
    ship_checkpoint(container)
    rows = _write_export(export, out_path, quiet)
    where = "standard output" if out_path == "-" else out_path
    click.echo(f"wrote {rows} rows to {where}", err=out_path == "-")


def _write_export(export: Any, out_path: str, quiet: bool) -> int:
    """Stream the export into the file (via FILE.partial, renamed when complete)."""
    import os

    to_stdout = out_path == "-"
    show_bar = not quiet and sys.stderr.isatty()
    partial = f"{out_path}.partial"
    # newline="": the CSV writer's CRLF line ends go out exactly as written.
    target = sys.stdout if to_stdout else open(partial, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        with export.open() as run:
            if not show_bar:
                for chunk in run.chunks():
                    target.write(chunk)
            else:
                with click.progressbar(
                    length=run.count(), label="exporting", file=sys.stderr, show_pos=True
                ) as bar:
                    done = 0
                    for chunk in run.chunks():
                        target.write(chunk)
                        bar.update(run.rows_written - done)
                        done = run.rows_written
            rows = int(run.rows_written)
    except BaseException:
        if not to_stdout:
            target.close()
            os.unlink(partial)
        raise
    if not to_stdout:
        target.close()
        os.replace(partial, out_path)
    else:
        target.flush()
    return rows


@audit.command("coverage")
@click.option("--window", "window_id", required=True, type=click.IntRange(min=1))
@click.option(
    "--out",
    "out_path",
    default="-",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write (default: standard output).",
)
@with_container
def audit_coverage(container: Container, window_id: int, out_path: str) -> None:
    """Write a window's disclosure coverage (the dashboard's numbers) as JSON."""
    import json

    from ghostpost.services.context import Actor
    from ghostpost.services.exports import coverage_report

    data = coverage_report(container.services, Actor.system("cli"), window_id)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if out_path == "-":
        click.echo(text, nl=False)
    else:
        with open(out_path, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote the coverage of window {window_id} to {out_path}")


@audit.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="Public key: a .pub file from `keys generate`, the well-known keys JSON, or a "
    "directory of .pub files. Repeat for retired keys.",
)
@click.option(
    "--trusted-checkpoint",
    "trusted_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Checkpoints kept outside the database (the witness file); the export must extend "
    "them. Repeatable.",
)
@click.option(
    "--notary-state",
    "notary_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The notary's state file (notary-state.json, kept outside the database): the export "
    "must extend the head the notary signed last. Repeatable.",
)
def audit_verify(
    file: str,
    key_paths: tuple[str, ...],
    trusted_paths: tuple[str, ...],
    notary_paths: tuple[str, ...],
) -> None:
    """Verify a raw ledger export offline: chain, signed heads, trusted checkpoints.

    Prints "OK: ..." (exit 0) or "FAIL at seq K: reason" (exit 1), then what the trusted
    inputs vouch for; exit 2 when the export cannot be verified at all (a filtered export, an
    unreadable key).
    """
    from ghostpost.audit.verify import CannotVerify, verify_files

    try:
        result = verify_files(file, key_paths, trusted_paths, notary_paths)
    except CannotVerify as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(result.line())
    if result.ok:
        click.echo(result.vouched())
    sys.exit(0 if result.ok else 1)


@audit.command("verify-post")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_text",
    required=True,
    help="The log's C2SP verifier key (origin+keyid+key, from GET /api/v1/public/log-key), "
    "or a file holding it. The answer's own key is not trusted.",
)
def audit_verify_post(file: str, key_text: str) -> None:
    """Check a verify answer (GET /api/v1/public/verify) offline, as docs/verify-answer.md says.

    Prints "ok: <verdict>" (exit 0), or "FAIL step N (name): reason" (exit 1); exit 2 when the
    file or the key cannot be read.
    """
    import json
    from pathlib import Path

    from ghostpost.audit.notes import check_ed25519
    from ghostpost.domain.signed_note import NoteError, parse_verifier_key
    from ghostpost.domain.verify_answer import AnswerRefused, check_answer

    key_source = Path(key_text)
    if "+" not in key_text and key_source.is_file():
        key_text = key_source.read_text(encoding="utf-8").strip()
    try:
        key = parse_verifier_key(key_text.strip())
    except NoteError as exc:
        click.echo(f"FAIL step 1 (key): not a verifier key: {exc}", err=True)
        sys.exit(2)
    try:
        answer = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        click.echo(f"cannot read {file}: {exc}", err=True)
        sys.exit(2)
    try:
        verdict = check_answer(answer, key, check_ed25519)
    except AnswerRefused as exc:
        click.echo(f"FAIL {exc}")
        sys.exit(1)
    click.echo(
        f"ok: {verdict} (leaf {answer['proof']['leaf_index']} of a tree of "
        f"{answer['proof']['tree_size']} signed by {key.name})"
    )


@audit.command("check")
@with_container
def audit_check(container: Container) -> None:
    """Compare every post with the ledger (author, submitter, source, texts, state, platform
    post id): one line per mismatch naming the post, the field, the table's value and the
    ledger's; exit 1 when there is any. The worker runs the same check every few minutes."""
    from ghostpost.services.audit import check_ledger_agreement
    from ghostpost.services.ledger_integrity import format_time

    report = check_ledger_agreement(container.services)
    container.notary_store.record_check(
        {
            "checked_at": format_time(container.clock.now()),
            "posts": report.posts,
            "entries": report.entries,
            "mismatches": len(report.mismatches),
            "first": [m.line() for m in report.mismatches[:20]],
        }
    )
    for mismatch in report.mismatches:
        click.echo(mismatch.line())
    verdict = "OK" if report.ok else f"FAIL: {len(report.mismatches)} mismatch(es)"
    click.echo(f"{verdict}: {report.posts} posts compared with {report.entries} ledger entries")
    sys.exit(0 if report.ok else 1)


@audit.command("notary-reset")
@click.option(
    "--accept-current-head",
    is_flag=True,
    help="Required: accept the ledger as it is now as the notary's new starting point.",
)
@click.option("--reason", required=True, help="Why (recorded in the ledger): the investigation.")
def audit_notary_reset(accept_current_head: bool, reason: str) -> None:
    """Let a stopped notary sign again, after investigating its alarm.

    The notary stops signing when the ledger no longer extends what it signed last (history
    rewritten, truncated or rolled back). This accepts the ledger as it is now: the chain must
    hold together; the decision (reason, alarm, old and accepted heads) is appended to the
    ledger, the notary's state file moves to the accepted head and the alert file is kept
    aside as notary-alert.<time>.resolved.json. Restore a backup instead if the rewrite must
    be undone.
    """
    if not accept_current_head:
        raise click.ClickException(
            "refusing without --accept-current-head: this accepts the ledger as it is now"
        )
    if not reason.strip():
        raise click.ClickException("--reason must say why")
    _reset_notary(reason.strip())


@with_container
def _reset_notary(container: Container, reason: str) -> None:
    from ghostpost.services.context import Actor

    alarm = container.notary_store.alarm()
    accepted = container.notary.reset(Actor.system("operator"), reason)
    result = container.notary.run_pass()
    if alarm is not None:
        click.echo(f"alarm put aside: {alarm.reason}")
    click.echo(f"accepted {accepted.size} entries ending in {accepted.head_hash}")
    click.echo(f"the reset is recorded in the ledger; notary pass: {result.outcome.value}")


@main.group()
def keys() -> None:
    """Ledger signing keys (Ed25519): the private key never enters the database."""


@keys.command("generate")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for ledger-ed25519.pem (private, mode 0600) and ledger-ed25519.pub.",
)
def keys_generate(out_dir: str) -> None:
    """Write a new Ed25519 keypair (never overwrites one)."""
    from ghostpost.audit.keys import LedgerKeyError, generate_keypair

    try:
        made = generate_keypair(out_dir)
    except LedgerKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"private key: {made.private_path} (mode 0600; keep it out of the database)")
    click.echo(f"public key:  {made.public_path}")
    click.echo(f"key_id:      {made.key.key_id}")
    click.echo(f"fingerprint: {made.key.fingerprint}")
    click.echo(
        "Point GHOSTPOST_LEDGER_SIGNING_KEY at the private key; give auditors the public key "
        "and its fingerprint out of band.",
        err=True,
    )


def _keyring() -> Any:
    from ghostpost.audit.keys import FileKeyring

    settings = _settings()
    return FileKeyring(
        settings.ledger_signing_key, settings.ledger_public_keys, generate_missing=False
    )


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key current; old public keys stay (old checkpoints keep verifying).

    The old private key is replaced. Restart `serve` and `worker` so they sign with the new key.
    """
    from ghostpost.audit.keys import LedgerKeyError

    keyring = _keyring()
    try:
        old, new = keyring.rotate()
    except LedgerKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"retired key: {old.key_id} (public key kept in {keyring.public_keys_dir})")
    click.echo(f"current key: {new.key_id}")
    click.echo(f"fingerprint: {new.fingerprint}")
    # Only now: the container loads the keyring, which must already hold the new key.
    _sign_head_with_new_key()
    click.echo(
        "Restart `ghostpost serve` and `ghostpost worker` to sign with the new key.", err=True
    )


@with_container
def _sign_head_with_new_key(container: Container) -> None:
    try:
        signed = container.notary.run_pass(force=True)
        if signed.checkpoint is None:
            raise RuntimeError(f"the notary did not sign ({signed.outcome.value}: {signed.reason})")
        click.echo(f"signed the head (size {signed.checkpoint.size}) with the new key")
    except Exception as exc:  # the rotation itself is done; say what is left
        click.echo(f"Warning: could not sign the head with the new key now: {exc}", err=True)


@keys.command("list")
def keys_list() -> None:
    """List the public keys (retired and current) and their fingerprints."""
    from ghostpost.audit.keys import LedgerKeyError

    keyring = _keyring()
    try:
        current = keyring.signer().key_id
        listed = keyring.public_keys()
    except LedgerKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    for key in listed:
        state = "current" if key.key_id == current else "retired"
        click.echo(f"{key.key_id}  {state:7}  created {key.created_at or '-'}")
        click.echo(f"    fingerprint {key.fingerprint}")
        click.echo(f"    public key  {key.public_key}")


def run() -> None:
    """Entry point that never shows a traceback for bad configuration."""
    try:
        main()
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


@main.group()
def tokens() -> None:
    """Keys sealing platform tokens at rest (AES-256-GCM): generate and rotate."""


@tokens.command("generate-key")
@click.argument("key_id", default="")
def tokens_generate_key(key_id: str) -> None:
    """Print a new `id:key` entry for GHOSTPOST_TOKEN_KEYS (put it first to make it active)."""
    from datetime import UTC, datetime

    from ghostpost.secretbox import SecretBoxError, generate_key

    try:
        click.echo(generate_key(key_id or datetime.now(UTC).strftime("k%Y%m%d%H%M")))
    except SecretBoxError as exc:
        raise click.ClickException(str(exc)) from exc


@tokens.command("rotate")
@with_container
def tokens_rotate(container: Container) -> None:
    """Re-seal every stored platform secret with the first key of token_keys.

    Rotation: prepend a new key to GHOSTPOST_TOKEN_KEYS (keep the old one listed), run this,
    restart serve and worker, then drop the old key.
    """
    from ghostpost.secretbox import SecretBoxError
    from ghostpost.services.connections import rotate_token_key
    from ghostpost.services.context import Actor

    try:
        counts = rotate_token_key(container.services, Actor.system("cli"))
    except SecretBoxError as exc:
        raise click.ClickException(
            f"{exc}. Keep every key still in use listed in token_keys, then run again."
        ) from exc
    click.echo(
        f"re-sealed {counts['accounts']} account credential(s) and "
        f"{counts['platform_apps']} app secret(s) with key {container.secretbox.active_key_id}"
    )
