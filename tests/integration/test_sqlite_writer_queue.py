"""SQLite's writer queue (ghostpost.db.writer_queue): write transactions take their turn on a
file lock next to the database and give it back however they end; readers never take it; a
writer that dies, or one that never queues, cannot make the others hang or lose a post; and
processes creating posts at once, the same idempotency keys among them, store each post once.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import OperationalError

from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.db.engine import make_engine, make_session_factory
from ghostpost.db.models import PostRow
from ghostpost.db.writer_queue import CHECKPOINT_EVERY, LOCK_SUFFIX, lock_path_for
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.domain.model import Source
from ghostpost.services import idempotency
from ghostpost.services.context import Actor
from ghostpost.services.posts import SubmitPost
from tests.conftest import START
from tests.support.world import TEST_HASHER, World, settings_for


def _sqlite_path(database_url: str) -> str:
    if not database_url.startswith("sqlite"):
        pytest.skip("the writer queue is SQLite's (PostgreSQL writers wait on row locks)")
    return database_url.removeprefix("sqlite:///")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    _sqlite_path(database_url)
    built = make_engine(database_url)

    @event.listens_for(built, "connect")
    def _short_busy(dbapi_connection: Any, _record: Any) -> None:
        # After make_engine's own listener: a held SQLite lock fails fast instead of in 30 s.
        dbapi_connection.execute("PRAGMA busy_timeout=300")

    yield built
    built.dispose()


def _queue_is_free(database_url: str) -> bool:
    """Tell whether a writer could take its turn now (a separate open file, like another
    process's)."""
    path = lock_path_for(_sqlite_path(database_url))
    assert path is not None
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # also releases the lock if it was taken
    return True


def test_a_write_transaction_holds_the_queue_until_commit_or_rollback(
    engine: Engine, database_url: str
) -> None:
    assert lock_path_for(_sqlite_path(database_url)) == _sqlite_path(database_url) + LOCK_SUFFIX
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.execute(text("SELECT 1"))
        assert not _queue_is_free(database_url)
        session.commit()
        assert _queue_is_free(database_url)
        session.execute(text("SELECT 1"))
        assert not _queue_is_free(database_url)
        session.rollback()
        assert _queue_is_free(database_url)
        session.execute(text("SELECT 1"))
    # Closing the session (no commit): the pool's rollback gives the turn back.
    assert _queue_is_free(database_url)


def test_a_read_only_transaction_never_takes_the_queue(engine: Engine, database_url: str) -> None:
    readers = make_session_factory(engine, read_only=True)
    with readers() as session:
        session.execute(text("SELECT 1"))
        assert _queue_is_free(database_url)


def test_a_reader_reads_while_another_thread_waits_for_its_turn(
    engine: Engine, database_url: str
) -> None:
    sessions, readers = make_session_factory(engine), make_session_factory(engine, read_only=True)
    waited: list[bool] = []
    with sessions() as holder:
        holder.execute(text("SELECT 1"))

        def write() -> None:
            with sessions() as session:
                session.execute(text("SELECT 1"))
                waited.append(True)
                session.commit()

        writer = threading.Thread(target=write)
        writer.start()
        with readers() as session:
            assert session.execute(text("SELECT count(*) FROM posts")).scalar_one() == 0
        assert not waited  # the second writer is still queued behind the first
        holder.commit()
        writer.join(timeout=10)
    assert waited == [True] and _queue_is_free(database_url)


def test_commits_copy_the_wal_into_the_database_out_of_the_turn(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Every CHECKPOINT_EVERY commits in a process, the committing connection checkpoints
    after giving its turn back (SQLite's autocheckpoint would copy inside COMMIT, in the
    turn, every writer waiting): the checkpoint runs with the queue free, and the committed
    pages are in the database file long before the WAL's 1,000 pages would trigger SQLite's."""
    database = _sqlite_path(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE blobs (data BLOB)"))
    outside = sqlite3.connect(database)
    outside.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    outside.close()
    checkpoints: list[bool] = []

    def traced(statement: str) -> None:
        if "wal_checkpoint" in statement:
            checkpoints.append(_queue_is_free(database_url))

    engine.dispose()  # connections from now on are traced
    event.listen(
        engine,
        "connect",
        lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(traced),
    )
    for _ in range(CHECKPOINT_EVERY):  # the process's count of commits meets the multiple once
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO blobs VALUES (randomblob(3000))"))
    assert checkpoints == [True]
    # The database file alone (a copy, without the WAL) holds the rows committed before it.
    copied = tmp_path / "without-wal.db"
    shutil.copyfile(database, copied)
    alone = sqlite3.connect(copied)
    try:
        in_file = alone.execute("SELECT count(*) FROM blobs").fetchone()[0]
    finally:
        alone.close()
    assert 1 <= in_file <= CHECKPOINT_EVERY
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blobs")).scalar_one() == CHECKPOINT_EVERY


def test_a_writer_that_cannot_begin_gives_its_turn_back(engine: Engine, database_url: str) -> None:
    """Another program holds SQLite's lock without queueing: our writer waits busy_timeout,
    fails, and leaves the queue free for the next one."""
    outsider = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
    try:
        outsider.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"), engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        assert _queue_is_free(database_url)
    finally:
        outsider.execute("ROLLBACK")
        outsider.close()
    with engine.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_writers_wait_for_an_outsider_without_holding_the_queue(
    engine: Engine, database_url: str
) -> None:
    """A backup or a shell holding SQLite's lock: each writer of ours waits for it with its own
    busy_timeout, none of them through the queue (else they would fail one after another)."""
    outsider = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    failures: list[str] = []
    started = threading.Barrier(3 + 1)

    def write() -> None:
        started.wait(timeout=10)
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as error:
            failures.append(str(error.orig))

    writers = [threading.Thread(target=write) for _ in range(3)]
    try:
        for writer in writers:
            writer.start()
        started.wait(timeout=10)
        writers[0].join(timeout=0.1)  # they are waiting for SQLite's lock now (300 ms)
        assert _queue_is_free(database_url)
        for writer in writers:
            writer.join(timeout=30)
    finally:
        outsider.execute("ROLLBACK")
        outsider.close()
    assert failures == ["database is locked"] * 3
    assert _queue_is_free(database_url)


def test_a_second_write_transaction_in_the_same_thread_fails_instead_of_hanging(
    engine: Engine, database_url: str
) -> None:
    sessions = make_session_factory(engine)
    with sessions() as outer:
        outer.execute(text("SELECT 1"))
        with pytest.raises(OperationalError, match="locked"), sessions() as inner:
            inner.execute(text("SELECT 1"))
        outer.commit()
    assert _queue_is_free(database_url)


def _die_holding_the_turn(database_url: str, ready: Any) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the turn and SQLite's lock
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_a_writer_killed_holding_its_turn_does_not_block_the_others(
    engine: Engine, database_url: str
) -> None:
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    child = spawn.Process(target=_die_holding_the_turn, args=(database_url, ready))
    child.start()
    assert ready.wait(timeout=60)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert _queue_is_free(database_url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM posts")).scalar_one() == 0


PROCESSES = 4
SHARED_KEYS = 15
OWN_KEYS = 10


def _create(database_url: str, root: str, index: int, ids: tuple[int, ...], start: Any) -> None:
    """One process: the same SHARED_KEYS keys as every other process, then OWN_KEYS of its own;
    every request with the same key carries the same body."""
    account_id, writer_a, writer_b = ids
    container = bootstrap(
        settings_for(database_url, Path(root)), clock=FixedClock(START), password_hasher=TEST_HASHER
    )
    try:
        start.wait(timeout=60)
        keys = [f"shared-{i}" for i in range(SHARED_KEYS)]
        keys += [f"own-{index}-{i}" for i in range(OWN_KEYS)]
        for n, key in enumerate(keys):
            author = writer_a if n % 2 else writer_b
            cmd = SubmitPost(account_id, author, f"Post {key}", Source.API)
            idempotency.submit_post_once(
                container.services,
                _actor(container, author),
                cmd,
                key=key,
                fingerprint=f"fp-{key}-{author}",
                render=lambda post: (201, {"id": post.id}),
            )
    finally:
        container.dispose()


def _actor(container: Any, user_id: int) -> Actor:
    with container.services.uow(read_only=True) as uow:
        user = uow.users.get(user_id)
    assert user is not None
    return Actor.for_user(user)


def _outsider(database_url: str, start: Any, stop: Any) -> None:
    """A program that writes without the queue: short write transactions, over and over."""
    connection = sqlite3.connect(_sqlite_path(database_url), timeout=30, isolation_level=None)
    start.wait(timeout=60)
    while not stop.is_set():
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TEMP TABLE IF NOT EXISTS outsider (n)")
        connection.execute("COMMIT")
    connection.close()


@pytest.mark.slow
def test_processes_creating_at_once_store_every_post_once(
    world: World, database_url: str, tmp_path: Path
) -> None:
    _sqlite_path(database_url)
    world.approve_notice(world.open_window())
    world.container.keyring.signer()  # one signing key, made before any process starts
    engine = world.container.engine
    with engine.connect() as conn:
        before = set(conn.execute(select(PostRow.submitted_text)).scalars())  # the notice
        entries_before = len(list(conn.execute(text("SELECT seq FROM ledger_entries"))))
    spawn = multiprocessing.get_context("spawn")
    start, stop = spawn.Barrier(PROCESSES + 1), spawn.Event()
    ids = (world.account.id, world.writer_a.id, world.writer_b.id)
    creators = [
        spawn.Process(target=_create, args=(database_url, str(tmp_path), i, ids, start))
        for i in range(PROCESSES)
    ]
    outsider = spawn.Process(target=_outsider, args=(database_url, start, stop))
    for process in [*creators, outsider]:
        process.start()
    for process in creators:
        process.join(timeout=180)
    stop.set()
    outsider.join(timeout=30)
    assert [p.exitcode for p in [*creators, outsider]] == [0] * (PROCESSES + 1)
    with world.ctx.uow(read_only=True) as uow:
        entries = list(uow.ledger.entries())
    assert first_broken_entry(entries) is None
    with engine.connect() as conn:
        texts = conn.execute(select(PostRow.submitted_text)).scalars().all()
    expected = {f"Post shared-{i}" for i in range(SHARED_KEYS)}
    expected |= {f"Post own-{p}-{i}" for p in range(PROCESSES) for i in range(OWN_KEYS)}
    created = [t for t in texts if t not in before]
    assert len(created) == len(expected) and set(created) == expected  # none lost, none twice
    assert len(entries) == entries_before + len(expected)
    assert {e.tag for e in entries[entries_before:]} == {"post:submitted"}
