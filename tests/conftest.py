"""Shared fixtures: a migrated SQLite database per test, a fixed clock, the app and its services."""

from __future__ import annotations

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
from tests.support.world import World, build_world

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated with Alembic; every test gets a copy (fast, and real migrations)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    command.upgrade(alembic_config(sqlite_url(path)), "head")
    return path


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: Path) -> str:
    path = tmp_path / "ghostpost.db"
    shutil.copy(migrated_template, path)
    return sqlite_url(path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        environment="test",
        public_url="http://ghostpost.test",
        worker_lease_seconds=60,
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
