"""A real `ghostpost serve` process (with its worker thread) on a free loopback port.

The process is a fork of the test process running the CLI's `serve` (`ghostpost.cli.run` with
its argv and environment), not a fresh `python -m ghostpost serve`: a fresh interpreter spends
about 1.5 s of CPU (3-4 s on a busy machine) importing ghostpost before it answers, once per
browser module. What the tests see is unchanged: the server is a process of its own, with its
own settings read from its environment, its own container, engine, connections and worker
thread, sharing nothing with the test's but the database file; the test's pooled connections
are closed before the fork. The database is a copy of one migrated with Alembic once per test
process (as tests/conftest.py's migrated_template), not migrated again per server.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from argon2 import PasswordHasher

from ghostpost.bootstrap import Container, bootstrap
from ghostpost.cli import alembic_config
from ghostpost.demo import seed_demo
from ghostpost.settings import PROJECT_DIR, Settings
from tests.support.world import World, build_world

T = TypeVar("T")


_migrated: list[Path] = []


def _migrated_copy(path: Path) -> str:
    """A SQLite database at `path`, copied from one migrated to head once per process."""
    if not _migrated:
        folder = Path(tempfile.mkdtemp(prefix="gp-live-template-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "template.db"
        command.upgrade(alembic_config(f"sqlite:///{template}"), "head")
        _migrated.append(template)
    shutil.copy(_migrated[0], path)
    return f"sqlite:///{path}"


def _serve(argv: list[str], environ: dict[str, str], log_path: str) -> None:
    """The forked server: as `python -m ghostpost serve` would start (its argv, environment,
    working directory, default logging and signals, no tracer), then the CLI itself."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    # Coverage's tracer came with the fork; a `python -m ghostpost` child was never traced.
    sys.settrace(None)
    threading.settrace(None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # pytest's capturing handlers came with the fork: the CLI's basicConfig sets up its own.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(PROJECT_DIR)
    sys.argv = ["ghostpost", *argv]
    from ghostpost.cli import run

    run()


def wait_until_healthy(
    url: str, running: Callable[[], bool], why_not: Callable[[], str], timeout: float = 30
) -> None:
    """Wait until a server process started at `url` answers `/healthz`. A deadline, not a count
    of tries: on a busy machine the start alone takes seconds. Raises RuntimeError with
    `why_not()` (its log, say) if the process stops or the deadline passes first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return
        except OSError:  # refused, reset or timed out while it boots
            if time.monotonic() > deadline or not running():
                raise RuntimeError(why_not()) from None
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    world: World
    container: Container


@contextmanager
def live_server(
    tmp_path: Path, serve_args: Sequence[str] = (), **extra_env: str
) -> Iterator[LiveServer]:
    """Migrate and seed a SQLite database, then run `ghostpost serve` on it (with `serve_args`
    added) until the block ends."""
    with _serving(tmp_path, build_world, serve_args, extra_env) as (url, world, container):
        yield LiveServer(url, world, container)


@dataclass
class LiveDemo:
    url: str
    container: Container


@contextmanager
def live_demo_server(tmp_path: Path) -> Iterator[LiveDemo]:
    """`ghostpost serve` on the demo's data (ghostpost.demo.seed_demo), as a new user sees it."""
    with _serving(tmp_path, seed_demo, (), {}) as (url, _seeded, container):
        yield LiveDemo(url, container)


@contextmanager
def _serving(
    tmp_path: Path,
    seed: Callable[[Container], T],
    serve_args: Sequence[str],
    extra_env: dict[str, str],
) -> Iterator[tuple[str, T, Container]]:
    database_url = _migrated_copy(tmp_path / "live.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=database_url,
        secret_key="live-test-secret-key-0123456",
        environment="test",
        public_url=url,
        worker_poll_seconds=0.2,
        # The witness and the notary's state belong to this database only.
        ledger_witness_file=str(tmp_path / "witness" / "checkpoints.jsonl"),
    )
    container = bootstrap(settings, password_hasher=PasswordHasher(1, 8, 1))
    seeded = seed(container)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")}
    env.update(
        GHOSTPOST_DATABASE_URL=database_url,
        GHOSTPOST_PUBLIC_URL=url,
        GHOSTPOST_SECRET_KEY=settings.secret_key,
        GHOSTPOST_WORKER_POLL_SECONDS="0.2",
        GHOSTPOST_LEDGER_WITNESS_FILE=settings.ledger_witness_file,
        PYTHONPATH=str(PROJECT_DIR),
        **extra_env,
    )
    log_path = tmp_path / "server.log"
    log_path.touch()
    # No connection of the test's is shared with the server (they reconnect on next use).
    container.dispose()
    process = multiprocessing.get_context("fork").Process(
        target=_serve,
        args=(["serve", "--port", str(port), *serve_args], env, str(log_path)),
        name="ghostpost-serve",
    )
    process.start()
    try:
        wait_until_healthy(url, process.is_alive, log_path.read_text)
        yield url, seeded, container
    finally:
        process.terminate()
        process.join(timeout=10)
        container.dispose()
