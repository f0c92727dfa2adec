"""Real server and worker processes on a test database: gunicorn and `ghostpost worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ghostpost.settings import PROJECT_DIR, Settings
from tests.support.live import free_port, wait_until_healthy

GUNICORN = Path(sys.executable).parent / "gunicorn"


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a ghostpost process needs to share the test's database and keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")}
    env.update(
        GHOSTPOST_DATABASE_URL=settings.database_url,
        GHOSTPOST_SECRET_KEY=settings.secret_key,
        GHOSTPOST_ENVIRONMENT=settings.environment,
        GHOSTPOST_PUBLIC_URL=settings.public_url,
        GHOSTPOST_LEDGER_SIGNING_KEY=settings.ledger_signing_key,
        GHOSTPOST_LEDGER_PUBLIC_KEYS=settings.ledger_public_keys,
        GHOSTPOST_LEDGER_WITNESS_FILE="",
        GHOSTPOST_MEDIA_DIR=settings.media_dir,
        GHOSTPOST_SERVE_RUNS_WORKER="false",
        PYTHONPATH=str(PROJECT_DIR),
    )
    env.update(extra)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def gunicorn(
    settings: Settings, log: Path, *, workers: int = 2, threads: int = 4, **extra: str
) -> Iterator[str]:
    """Run `gunicorn 'ghostpost:create_app()'` as production does; yield its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                # gunicorn 27's control socket defaults to one shared path under $HOME.
                "--no-control-socket",
                "ghostpost:create_app()",
            ],
            env=env_for(settings, **extra),
            cwd=PROJECT_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(url, lambda: process.poll() is None, log.read_text)
            yield url
        finally:
            _stop(process)


@contextmanager
def workers(settings: Settings, log_dir: Path, count: int, **extra: str) -> Iterator[None]:
    """Run `count` long-lived `ghostpost worker` processes until the block ends."""
    with ExitStack() as stack:
        for number in range(count):
            out = stack.enter_context((log_dir / f"worker-{number}.log").open("wb"))
            process = subprocess.Popen(
                [sys.executable, "-m", "ghostpost", "worker"],
                env=env_for(settings, GHOSTPOST_WORKER_POLL_SECONDS="0.05", **extra),
                cwd=PROJECT_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_stop, process)
        yield
