"""Browser tests: Playwright drives Debian's chromium against a real `ghostpost serve`.

The server runs in its own process on a free loopback port with its publishing worker thread;
the tests seed its SQLite database through the services beforehand. Screenshots go to the folder
printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from argon2 import PasswordHasher

from ghostpost.bootstrap import bootstrap
from ghostpost.cli import alembic_config
from ghostpost.settings import PROJECT_DIR, Settings
from tests.support.world import World, build_world

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = PROJECT_DIR / "build" / "screenshots"
# Flags from the machine notes: headless, and no background traffic to hosts we cannot reach.
CHROMIUM_ARGS = [
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    world: World


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A seeded database and `ghostpost serve` (with its worker thread) on a free port."""
    database_url = f"sqlite:///{tmp_path / 'browser.db'}"
    command.upgrade(alembic_config(database_url), "head")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=database_url,
        secret_key="browser-test-secret-key-0123",
        environment="test",
        public_url=url,
        worker_poll_seconds=0.2,
    )
    container = bootstrap(settings, password_hasher=PasswordHasher(1, 8, 1))
    world = build_world(container)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")}
    env.update(
        GHOSTPOST_DATABASE_URL=database_url,
        GHOSTPOST_PUBLIC_URL=url,
        GHOSTPOST_SECRET_KEY=settings.secret_key,
        GHOSTPOST_WORKER_POLL_SECONDS="0.2",
        PYTHONPATH=str(PROJECT_DIR),
    )
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ghostpost", "serve", "--port", str(port)],
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
                    raise RuntimeError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.1)
        yield LiveServer(url, world)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        container.dispose()


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the test command installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = list(CHROMIUM_ARGS)
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # chromium refuses to sandbox as root
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()
