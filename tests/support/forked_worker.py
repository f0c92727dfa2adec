"""`ghostpost worker --once` as a fork of the test process, for the crash tests.

A fresh `python -m ghostpost worker` spends about 1.2 s of CPU importing ghostpost before it
does anything; a fork starts with everything imported. What the crash tests prove is unchanged:
the worker runs in a process of its own (its own container, engine and connections, nothing
shared with the test's but the database and the platforms), a planned crash is still os._exit
at the hook (no exception handler, rollback or `finally`), and the worker that adopts the dead
one's claim is another fresh process. The CLI's own `worker` command (settings from the
environment, then `Worker(container).run(once=True)`) is tested in tests/functional/test_cli.py.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghostpost.bootstrap import Container, bootstrap
from ghostpost.settings import Settings
from ghostpost.worker import Worker

#: The child's exit code when it failed (an exception, or the worker raised).
CHILD_ERROR = 3


class AheadClock:
    """The real clock plus a fixed offset: the time a worker process reads."""

    def __init__(self, ahead: timedelta) -> None:
        self._ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self._ahead


def _worker_body(
    settings: Settings, ahead: timedelta, environ: Mapping[str, str], log_path: str
) -> None:
    """The forked process: its own container, one `worker --once`, then os._exit."""
    code = CHILD_ERROR
    try:
        # Everything it prints (logs, tracebacks) goes to its log, for the parent's message.
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # Coverage's tracer came with the fork; what it records here would be lost at
        # os._exit (as a `python -m ghostpost` child was never traced), so it only costs CPU.
        sys.settrace(None)
        threading.settrace(None)
        os.environ.update(environ)  # the fault adapters read their knobs from it
        logging.basicConfig(level=logging.WARNING, force=True)
        container = bootstrap(settings, clock=AheadClock(ahead))
        Worker(container).run(once=True)
        container.dispose()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_forked_worker(
    settings: Settings,
    log: Path,
    *,
    parents: Iterable[Container],
    ahead: timedelta = timedelta(0),
    environ: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> int:
    """Run one `worker --once` in a forked process on `settings`; return its exit code.

    `parents` are the test's containers: their pooled connections are closed before the fork,
    so that no database connection is shared with the child (they reconnect on next use).
    The worker reads the real clock, `ahead` in the future."""
    for container in parents:
        container.dispose()
    process = multiprocessing.get_context("fork").Process(
        target=_worker_body, args=(settings, ahead, dict(environ or {}), str(log))
    )
    process.start()
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        pytest.fail(f"the worker hung\n{read_log(log)}")
    code: int = process.exitcode
    return code


def read_log(log: Path) -> str:
    return log.read_text() if log.exists() else "(no output)"


def past_the_lease(lease_until: datetime | None) -> timedelta:
    """How far ahead of the real clock a worker must read the time to be past `lease_until`
    (10 ms past it; nothing if it already ran out)."""
    assert lease_until is not None
    return max(timedelta(0), lease_until - datetime.now(UTC)) + timedelta(milliseconds=10)
