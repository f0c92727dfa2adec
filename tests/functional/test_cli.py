"""The command line, as a user runs it: real database files, a real HTTP server.

Every test runs the CLI on a SQLite database file of its own (`env`), whatever backend the run
is on: on PostgreSQL they would repeat the SQLite run exactly, so that pass leaves them out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpost.cli import main
from ghostpost.settings import PROJECT_DIR
from tests.support.live import free_port, wait_until_healthy

pytestmark = pytest.mark.backend_independent(
    "every test runs the CLI on its own SQLite database file, whatever GP_TEST_DB says"
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    values = {
        "GHOSTPOST_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        # The witness file and the notary's state beside it belong to this database only.
        "GHOSTPOST_LEDGER_WITNESS_FILE": str(tmp_path / "witness" / "checkpoints.jsonl"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_db_upgrade_then_check_reports_agreement(env: dict[str, str]) -> None:
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "database at revision head" in result.output
    assert invoke("db", "check").output.strip() == "models and migrations agree"


def test_demo_seeds_once_and_prints_the_logins(env: dict[str, str]) -> None:
    invoke("db", "upgrade")
    first = invoke("demo")
    assert first.exit_code == 0, first.output
    assert "Seeded the demo" in first.output
    for who in ("avery", "jordan", "sam", "rita", "morgan", "ada"):
        assert f"{who}@demo.ghostpost.test" in first.output
    assert "ada-demo-pass" in first.output and " admin" in first.output  # an admin to try
    again = invoke("demo")
    assert "Demo data already present" in again.output
    assert invoke("worker", "--once").output.strip() == "published 0 post(s)"


def test_users_create_makes_a_user_and_refuses_a_duplicate(env: dict[str, str]) -> None:
    invoke("db", "upgrade")
    args = ("users", "create", "--email", "Lee@Example.test", "--name", "Lee", "--role", "writer")
    created = invoke(*args, input="long-password\nlong-password\n")
    assert created.exit_code == 0, created.output
    assert "created writer lee@example.test" in created.output
    duplicate = CliRunner().invoke(main, [*args, "--password", "long-password"])
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output


def test_a_bad_setting_stops_with_a_message_naming_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GHOSTPOST_WORKER_LEASE_SECONDS", "soon")
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 1
    assert "GHOSTPOST_WORKER_LEASE_SECONDS" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def served(env: dict[str, str], migrated_template: str, tmp_path: Path) -> Iterator[str]:
    # A copy of the suite's once-migrated database (Alembic to head, as `db upgrade` does and
    # test_db_upgrade_then_check_reports_agreement checks), not a second migration per test.
    shutil.copy(migrated_template, tmp_path / "cli.db")
    invoke("demo")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ghostpost", "serve", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(
            base,
            lambda: process.poll() is None,
            lambda: "ghostpost serve exited before answering or did not answer in 60 s",
            timeout=60,
        )
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_serve_answers_health_and_shows_the_demo_timeline_over_http(served: str) -> None:
    with urllib.request.urlopen(served + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert b'"status":"ok"' in response.read().replace(b" ", b"")
    with urllib.request.urlopen(served + "/@avery", timeout=5) as response:
        page = response.read().decode()
    assert "During the show, some of my posts will be written by my extended team." in page
    assert "#team" in page
    # Newest first: the last demo post appears above the notice.
    assert page.index("Day one in numbers") < page.index("During the show")


def test_tokens_generate_key_and_rotate(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    generated = invoke("tokens", "generate-key", "k1")
    assert generated.exit_code == 0
    key = generated.output.strip()
    assert key.startswith("k1:") and len(key) > 40
    monkeypatch.setenv("GHOSTPOST_TOKEN_KEYS", key)
    rotated = invoke("tokens", "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert "re-sealed 0 account credential(s) and 0 app secret(s) with key k1" in rotated.output
    bad = CliRunner().invoke(main, ["tokens", "generate-key", "no spaces"])
    assert bad.exit_code != 0 and "key id" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("clients", "revoke", "no-such-client"), "no-such-client"),
        (("audit", "coverage", "--window", "999"), "No window 999."),
        (("users", "reset-two-factor", "nobody@example.test"), "nobody@example.test"),
        (("audit", "export", "--window", "999", "--out", "-"), "No window 999."),
    ],
)
def test_a_refused_command_says_why_without_a_traceback(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    invoke("db", "upgrade")
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
