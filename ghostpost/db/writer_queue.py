"""SQLite writers queue on an OS file lock, so the next one starts the moment the last commits.

SQLite's busy handler (``busy_timeout``) does not wake a waiting writer when the write lock
frees: it sleeps and retries in steps of 1, 2, 5, 10, 15, 20, 25... ms. Under load a second
process thus loses milliseconds on every collision, longer than a whole create holds the lock.
A blocking ``flock`` on a sidecar file (``<database>-writers``), taken just before
``BEGIN IMMEDIATE`` and released right after ``COMMIT`` or ``ROLLBACK``, hands the turn over
at once: the kernel wakes the waiter.

The file lock only orders writers that use it; SQLite's own lock still decides. So:

- a process that does not take it (the sqlite3 shell, an older ghostpost) is still excluded by
  SQLite's lock, and our writers wait for it with ``busy_timeout`` as before;
- a process that dies holding it frees it (the kernel releases the locks of closed files);
- read-only transactions (a deferred ``BEGIN``) never take it, so readers never wait on it and
  a writer never waits for a reader;
- a thread that opens a second write transaction while its first one is open (which could only
  fail, after ``busy_timeout``) does not take it again, so it cannot wait on itself;
- a writer whose turn comes while an outsider holds SQLite's lock gives the turn back at once
  and waits for SQLite with what is left of ``busy_timeout``, as before the queue: nobody
  waits on an outsider through the queue, so when a backup or a shell holds the lock for
  longer than ``busy_timeout`` every request still fails after about ``busy_timeout``;
- waiting for the turn itself lasts as long as the writers ahead keep their transactions
  open (each only as long as its work: none waits for SQLite's lock while holding a turn);
  unlike ``busy_timeout`` it has no limit of its own;
- under a steady stream of queued writers SQLite's lock is free only for an instant between
  two of them, so an outsider polling with its busy handler may wait longer than before.

An in-memory or URI-named database, or a directory where the file cannot be created, gets no
queue: writers then wait with ``busy_timeout`` alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

#: The suffix of the lock file, next to the database (like SQLite's own -wal and -shm).
LOCK_SUFFIX = "-writers"

#: Every this many commits of this process's queued connections, the committing one
#: checkpoints after giving its turn back (QueuedWritersConnection._checkpoint). A create
#: writes about 21 WAL pages: 32 commits stay under the 1,000 pages at which SQLite's own
#: autocheckpoint (still on, for larger transactions) would run inside a COMMIT, in the turn.
CHECKPOINT_EVERY = 32

_commits = itertools.count(1)


def _is_busy(error: BaseException) -> bool:
    """Tell whether `error` (sqlite3's, or SQLAlchemy's wrapping it) is SQLITE_BUSY."""
    original = getattr(error, "orig", error)
    code = getattr(original, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


class _ThreadTurn:
    """Per thread: whether one of its connections holds the queue's lock."""

    holding = False


_threads = threading.local()


def _thread_turn() -> _ThreadTurn:
    turn: _ThreadTurn | None = getattr(_threads, "turn", None)
    if turn is None:
        turn = _threads.turn = _ThreadTurn()
    return turn


def lock_path_for(database: str | None) -> str | None:
    """Return the queue's lock file for a SQLite database path, or None for an in-memory or
    URI-named database (they get no queue)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(os.path.expanduser(database)) + LOCK_SUFFIX


class QueuedWritersConnection(sqlite3.Connection):
    """A pysqlite connection (``sqlite3.connect(factory=...)``) whose write transactions take
    their turn on the queue's lock file; commit, rollback and close give the turn back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Set by the engine after connecting; None: this connection does not queue.
        self.writer_lock_path: str | None = None
        self._lock_fd: int | None = None
        #: The turn of the thread that took it (a pool may give it back from another thread).
        self._holding: _ThreadTurn | None = None
        self._busy_ms: int | None = None

    def begin_write(self, begin: Callable[[], object]) -> None:
        """Run `begin` (which executes ``BEGIN IMMEDIATE``) in this connection's turn.

        Once the turn is ours the writers ahead have committed, so SQLite's lock is free and
        `begin` runs without waiting. If it is not free, a writer outside the queue holds it:
        the turn is given back at once (the writers queued behind must not wait on that
        outsider through us) and `begin` waits for SQLite's lock with what is left of
        ``busy_timeout``, as every writer did before the queue."""
        turn = _thread_turn()
        if self._holding is not None or turn.holding or not self._open_lock_file():
            begin()
            return
        started = time.monotonic()
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding = turn
        turn.holding = True
        busy_ms = self._configured_busy_ms()
        self.execute("PRAGMA busy_timeout=0")
        try:
            try:
                begin()
                return
            except BaseException as error:
                self.give_writer_turn()
                if not _is_busy(error):
                    raise
            waited_ms = int((time.monotonic() - started) * 1000)
            self.execute(f"PRAGMA busy_timeout={max(0, busy_ms - waited_ms)}")
            begin()
        finally:
            self.execute(f"PRAGMA busy_timeout={busy_ms}")

    def _open_lock_file(self) -> bool:
        if self.writer_lock_path is None:
            return False
        if self._lock_fd is None:
            try:
                # Read-only is enough for flock; a file other users' processes created is fine.
                self._lock_fd = os.open(self.writer_lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
            except OSError:
                self.writer_lock_path = None  # no queue here: busy_timeout alone
                return False
        return True

    def _configured_busy_ms(self) -> int:
        # Read on first use, after every "connect" listener has set it.
        if self._busy_ms is None:
            self._busy_ms = int(self.execute("PRAGMA busy_timeout").fetchone()[0])
        return self._busy_ms

    def give_writer_turn(self) -> None:
        """Release the lock file (after ``COMMIT`` or ``ROLLBACK``); idempotent."""
        turn, self._holding = self._holding, None
        if turn is None:
            return
        turn.holding = False
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_writer_turn()
        if next(_commits) % CHECKPOINT_EVERY == 0:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the WAL's committed pages into the database (a PASSIVE checkpoint: it waits
        for nobody and nobody waits for it), out of the turn: SQLite's own autocheckpoint runs
        inside COMMIT, so every queued writer would wait for its copying and its two fsyncs."""
        # As SQLite does with a failed autocheckpoint: the commit stands, a later one copies.
        with contextlib.suppress(sqlite3.Error):
            self.execute("PRAGMA wal_checkpoint(PASSIVE)").close()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_writer_turn()

    def close(self) -> None:
        try:
            super().close()  # ends any transaction: then the turn is free to pass on
        finally:
            turn, self._holding = self._holding, None
            if turn is not None:
                turn.holding = False
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
