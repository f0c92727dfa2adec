"""A real `ghostpost serve` process (with its worker thread) on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
    database_url = f"sqlite:///{tmp_path / 'live.db'}"
    command.upgrade(alembic_config(database_url), "head")
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
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ghostpost", "serve", "--port", str(port), *serve_args],
            env=env,
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).close()
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(log_path.read_text()) from None
                    time.sleep(0.1)
            yield url, seeded, container
        finally:
            process.terminate()
            process.wait(timeout=10)
            container.dispose()
