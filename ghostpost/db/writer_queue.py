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
- a writer that waited long for its turn (the lock held by an outsider, writers queueing
  behind one another) gets only what is left of ``busy_timeout`` from SQLite, so a request
  never waits much longer in all than ``busy_timeout``, as before. Waiting for the turn itself
  lasts as long as the writers ahead keep their transactions open.

An in-memory or URI-named database, or a directory where the file cannot be created, gets no
queue: writers then wait with ``busy_timeout`` alone.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from typing import Any

#: The suffix of the lock file, next to the database (like SQLite's own -wal and -shm).
LOCK_SUFFIX = "-writers"
#: A turn that took at least this long is taken out of what SQLite may still wait.
_LONG_WAIT_SECONDS = 0.1


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
        self._busy_shortened = False

    def take_writer_turn(self) -> None:
        """Wait for the lock file (before ``BEGIN IMMEDIATE``)."""
        turn = _thread_turn()
        if self._holding is not None or self.writer_lock_path is None or turn.holding:
            return
        if self._lock_fd is None:
            try:
                # Read-only is enough for flock; a file other users' processes created is fine.
                self._lock_fd = os.open(self.writer_lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
            except OSError:
                self.writer_lock_path = None  # no queue here: busy_timeout alone
                return
        started = time.monotonic()
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding = turn
        turn.holding = True
        waited = time.monotonic() - started
        if waited >= _LONG_WAIT_SECONDS:
            self._shorten_busy_timeout(waited)

    def _shorten_busy_timeout(self, waited: float) -> None:
        if self._busy_ms is None:
            self._busy_ms = int(self.execute("PRAGMA busy_timeout").fetchone()[0])
        left = max(0, self._busy_ms - int(waited * 1000))
        self.execute(f"PRAGMA busy_timeout={left}")
        self._busy_shortened = True

    def give_writer_turn(self) -> None:
        """Release the lock file (after ``COMMIT`` or ``ROLLBACK``); idempotent."""
        turn, self._holding = self._holding, None
        if turn is None:
            return
        turn.holding = False
        try:
            if self._busy_shortened:
                self._busy_shortened = False
                self.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        finally:
            assert self._lock_fd is not None
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_writer_turn()

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
