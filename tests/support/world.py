"""Builders for a small, realistic cast: the principal, agency staff and one local account."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from argon2 import PasswordHasher
from sqlalchemy import make_url

from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.db.base import Base
from ghostpost.domain.guards import PrincipalGuards
from ghostpost.domain.model import Account, Post, Role, Source, User, Window
from ghostpost.domain.policy import ReminderMode, ReplyPolicy, TagMode, TagPosition, WindowKind
from ghostpost.services import directory, posts, windows
from ghostpost.services.context import Actor
from ghostpost.services.ledger_integrity import NotaryPass
from ghostpost.settings import Settings
from ghostpost.worker import Worker
from tests.support.postgres import PostgresServer

NOTICE = "During the show, some of my posts will be written by my extended team."
REMINDER = "Reminder: my team helps run this account."
#: Cheap argon2 parameters: tests hash many passwords and do not test the hash's strength.
TEST_HASHER = PasswordHasher(1, 8, 1)
#: What a template's `build` returns (derive_template).
T = TypeVar("T")


def settings_for(database_url: str, root: Path) -> Settings:
    """The settings of a test: its database, and a signing key and witness under `root`."""
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        environment="test",
        public_url="http://ghostpost.test",
        worker_lease_seconds=60,
        # Per test: a signing key generated on first use, and a witness file of its own.
        ledger_signing_key=str(root / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(root / "keys" / "public"),
        ledger_witness_file=str(root / "witness" / "checkpoints.jsonl"),
        media_dir=str(root / "media"),
    )


@dataclass
class World:
    container: Container
    account: Account
    principal: User
    manager: User
    writer_a: User
    writer_b: User
    auditor: User
    outsider: User

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.container.services

    def open_window(
        self,
        *,
        starts_at: datetime | None = None,
        hours: float = 8,
        every: int = 10,
        reminder_mode: ReminderMode = ReminderMode.INLINE,
        tag_mode: TagMode = TagMode.WHEN_FITS,
        tag_position: TagPosition = TagPosition.END,
        requires_approval: bool = False,
        account: Account | None = None,
        tag_every_part: bool = False,
        kind: WindowKind = WindowKind.DELEGATION,
        notice_text: str = NOTICE,
        reminder_text: str = REMINDER,
        reply_policy: ReplyPolicy = ReplyPolicy.APPROVE,
    ) -> Window:
        start = starts_at or self.container.clock.now()
        return windows.create_window(
            self.ctx,
            Actor.for_user(self.manager),
            windows.WindowSpec(
                reason="The principal is at a conference; the team posts.",
                account_id=(account or self.account).id,
                name="Conference",
                starts_at=start,
                ends_at=start + timedelta(hours=hours),
                notice_text=notice_text,
                reminder_text=reminder_text,
                reminder_every=every,
                reminder_mode=reminder_mode,
                tag_mode=tag_mode,
                tag_position=tag_position,
                requires_approval=requires_approval,
                tag_every_part=tag_every_part,
                kind=kind,
                reply_policy=reply_policy,
            ),
        )

    def approve_notice(self, window: Window) -> Window:
        return windows.approve_notice(self.ctx, Actor.for_user(self.principal), window.id)

    def submit(
        self,
        author: User,
        text: str,
        publish_at: datetime | None = None,
        account: Account | None = None,
    ) -> Post:
        return posts.submit_post(
            self.ctx,
            Actor.for_user(author),
            posts.SubmitPost(
                account_id=(account or self.account).id,
                author_id=author.id,
                text=text,
                source=Source.WEB,
                publish_at=publish_at,
            ),
        )

    def run_worker(self) -> int:
        """Publish what is due, then run a notary pass (as the worker's loop would)."""
        return Worker(self.container, worker_id="test-worker").run(once=True)

    def run_notary(self) -> NotaryPass:
        """Run one notary pass now: verify the new entries and sign the ledger's head."""
        return self.container.notary.run_pass()

    def post(self, post_id: int) -> Post:
        with self.ctx.uow() as uow:
            found = uow.posts.get(post_id)
        assert found is not None
        return found


def build_world(container: Container) -> World:
    ctx = container.services
    system = Actor.system("test")
    principal = directory.create_principal(ctx, system, "Avery Chen")
    account = directory.create_account(
        ctx, system, principal_id=principal.id, platform="local", handle="avery"
    )

    def user(email: str, name: str, role: Role, principal_id: int | None = None) -> User:
        return directory.create_user(
            ctx,
            system,
            email=email,
            name=name,
            role=role,
            password="password-123",
            principal_id=principal_id,
        )

    avery = user("avery@example.test", "Avery Chen", Role.MANAGER, principal.id)
    manager = user("morgan@example.test", "Morgan Lee", Role.MANAGER)
    writer_a = user("jordan@example.test", "Jordan Park", Role.WRITER)
    writer_b = user("sam@example.test", "Sam Rivera", Role.WRITER)
    auditor = user("rita@example.test", "Rita Okafor", Role.AUDITOR)
    outsider = user("casey@example.test", "Casey Doe", Role.WRITER)
    for member in (writer_a, writer_b):
        directory.assign_writer(ctx, system, user_id=member.id, account_id=account.id)
    # The suite's posts carry made-up hashtags on a fresh account: the cast's principal has
    # turned first-use hashtag approval off (stored as that choice is, without its ledger
    # entry). tests/functional/test_guards.py turns it back on and checks new principals.
    with ctx.uow() as uow:
        uow.guards.set(
            principal.id, PrincipalGuards(first_use_hashtags=False), container.clock.now()
        )
        uow.commit()
    return World(container, account, avery, manager, writer_a, writer_b, auditor, outsider)


#: One statement counting the rows of every table (table names are ours, all lower case).
ROW_COUNTS = "SELECT " + ", ".join(
    f'(SELECT count(*) FROM "{table.name}")' for table in Base.metadata.sorted_tables
)


def row_counts(database_url: str) -> tuple[int, ...]:
    """The number of rows of every table: a cheap "nothing changed" check, through the driver
    (no engine to build, no statement to compile, nothing left in the test's pool)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with closing(sqlite3.connect(url.database or "")) as connection:
            return tuple(connection.execute(ROW_COUNTS).fetchone())
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        row = connection.execute(ROW_COUNTS).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return tuple(row)


@dataclass(frozen=True)
class WorldTemplate:
    """A database holding the world built at `start`: copied per test instead of rebuilt.

    The world's users and account are frozen dataclasses, so every copy shares them.
    """

    database: str  # the SQLite file, or the PostgreSQL database name
    url: str
    start: datetime
    cast: tuple[Account, User, User, User, User, User, User]
    counts: tuple[int, ...]
    #: A settings root (see settings_for) whose files every copy gets too: the signing key and
    #: witness state of a template built further than the world (None: no files).
    files: Path | None = None

    def copy_files_to(self, root: Path) -> None:
        """Give a copy's settings root the files of this template's (keys, witness, notary)."""
        if self.files is not None:
            shutil.copytree(self.files, root, dirs_exist_ok=True)

    def world_for(self, container: Container) -> World:
        """The world of a container on a fresh copy of this template.

        Refuses when the copy or the clock moved before the world was asked for: the world
        would then not be the one the test would have built itself (other ids or times).
        """
        now = container.clock.now()
        if now != self.start:
            raise RuntimeError(f"the clock moved to {now} before the world fixture ({self.start})")
        if row_counts(container.settings.database_url) != self.counts:
            raise RuntimeError(
                "the database changed before the world fixture: request `world` first, or build "
                "the world with build_world(container) on a database without it"
            )
        return World(container, *self.cast)


def build_world_template(
    url: str, database: str, settings: Settings, start: datetime, hasher: PasswordHasher
) -> WorldTemplate:
    """Build the world into the migrated database at `url`, then close every connection to it
    (SQLite's WAL folded into the file; PostgreSQL copies only an unused template)."""
    container = bootstrap(settings, clock=FixedClock(start), password_hasher=hasher)
    try:
        world = build_world(container)
    finally:
        container.dispose()
    counts = row_counts(url)
    wal = Path(f"{database}-wal")
    if url.startswith("sqlite") and wal.exists() and wal.stat().st_size:
        raise RuntimeError(f"{wal} still holds commits after every connection closed")
    cast = (
        world.account,
        world.principal,
        world.manager,
        world.writer_a,
        world.writer_b,
        world.auditor,
        world.outsider,
    )
    return WorldTemplate(database, url, start, cast, counts)


@dataclass(frozen=True)
class OpenedTemplate:
    """The world's template with the local account's window opened at its start with the
    defaults and its notice approved (`World.approve_notice(World.open_window())`)."""

    seeded: WorldTemplate
    window: Window

    def window_for(self, world: World) -> Window:
        """The window of a world on a fresh copy of this template; refuses as `world_for` does
        when anything changed the copy (or moved the clock) since the world was handed out."""
        if world.container.clock.now() != self.seeded.start:
            raise RuntimeError("the clock moved between the world and opened_window fixtures")
        if row_counts(world.container.settings.database_url) != self.seeded.counts:
            raise RuntimeError("the database changed between the world and opened_window fixtures")
        return self.window


def derive_template(
    tmp_path_factory: pytest.TempPathFactory,
    world_template: WorldTemplate,
    postgres: PostgresServer | None,
    name: str,
    build: Callable[[World], T],
) -> tuple[WorldTemplate, T, datetime]:
    """Run `build` once on a copy of the world's template and make that copy a template of its
    own: its database, the files its settings root then holds (signing key, witness, notary
    state) and its row counts. Returns it, what `build` returned, and the clock's time after
    `build` (a test starting on a copy sets its clock there)."""
    files = tmp_path_factory.mktemp(f"{name}-files")
    if postgres is None:
        path = tmp_path_factory.mktemp(f"{name}-template") / f"{name}.db"
        shutil.copy(world_template.database, path)
        url, database = f"sqlite:///{path}", str(path)
    else:
        database = f"gp_{name}_template"
        url = postgres.create_database(database, template=world_template.database)
    clock = FixedClock(world_template.start)
    container = bootstrap(settings_for(url, files), clock=clock, password_hasher=TEST_HASHER)
    try:
        built = build(world_template.world_for(container))
    finally:
        container.dispose()  # PostgreSQL copies a template only while nobody is connected
    seeded = replace(
        world_template, database=database, url=url, counts=row_counts(url), files=files
    )
    return seeded, built, clock.now()


#: Set on a test item whose database is a copy of this WorldTemplate.
SEEDED_FROM = pytest.StashKey[WorldTemplate]()
