"""Shared fixtures: a migrated SQLite database per test, a fixed clock, the app and its services."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from argon2 import PasswordHasher

from ghostpost import create_app
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.cli import alembic_config
from ghostpost.clock import FixedClock
from ghostpost.settings import Settings
from tests.support.pds_fixture import bluesky_pds  # noqa: F401  (session-wide real PDS)
from tests.support.platforms import case  # noqa: F401  (each real platform, connected)
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.world import World, build_world

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
#: GP_TEST_DB=postgresql runs the whole suite against a real PostgreSQL server it starts itself.
BACKEND = os.environ.get("GP_TEST_DB", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"GP_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")
_database_numbers = itertools.count(1)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def pytest_report_header() -> str:
    return f"ghostpost database backend: {BACKEND}"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    if BACKEND != "postgresql":
        yield None
        return
    with running_postgres() as server:
        yield server


@pytest.fixture
def fresh_database_url(tmp_path: Path, postgres: PostgresServer | None) -> str:
    """An empty database on the backend under test."""
    if postgres is None:
        return sqlite_url(tmp_path / f"fresh-{next(_database_numbers)}.db")
    return postgres.create_database(f"fresh_{next(_database_numbers)}")


@pytest.fixture(scope="session")
def migrated_template(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> str:
    """One database migrated with Alembic; every test gets a copy (fast, and real migrations)."""
    if postgres is None:
        path = tmp_path_factory.mktemp("template") / "template.db"
        command.upgrade(alembic_config(sqlite_url(path)), "head")
        return str(path)
    url = postgres.create_database("gp_template")
    command.upgrade(alembic_config(url), "head")
    return "gp_template"


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: str, postgres: PostgresServer | None) -> str:
    if postgres is None:
        path = tmp_path / "ghostpost.db"
        shutil.copy(migrated_template, path)
        return sqlite_url(path)
    return postgres.create_database(f"test_{next(_database_numbers)}", template=migrated_template)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        environment="test",
        public_url="http://ghostpost.test",
        worker_lease_seconds=60,
        # Per test: a signing key generated on first use, and a witness file of its own.
        ledger_signing_key=str(tmp_path / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(tmp_path / "keys" / "public"),
        ledger_witness_file=str(tmp_path / "witness" / "checkpoints.jsonl"),
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    # Cheap argon2 parameters: tests hash many passwords and do not test the hash's strength.
    built = bootstrap(settings, clock=clock, password_hasher=PasswordHasher(1, 8, 1))
    yield built
    built.dispose()


@pytest.fixture
def world(container: Container) -> World:
    """A principal with a local account, two writers, a manager, an auditor, an outsider."""
    return build_world(container)


@pytest.fixture
def app(container: Container):  # type: ignore[no-untyped-def]
    return create_app(container=container)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
