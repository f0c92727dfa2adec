"""The seeded world template (tests/conftest.py): a test's copy holds exactly the world that
build_world would have built in it, and the world fixture refuses a copy or clock that moved."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from alembic import command

from ghostpost.bootstrap import Container, bootstrap
from ghostpost.cli import alembic_config
from ghostpost.clock import FixedClock
from ghostpost.domain.model import Role, Window
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.conftest import START
from tests.support.world import (
    SEEDED_FROM,
    TEST_HASHER,
    OpenedTemplate,
    World,
    WorldTemplate,
    build_world,
    row_counts,
    settings_for,
)


def ledger_of(container: Container) -> list[tuple[object, ...]]:
    with container.services.uow() as uow:
        return [
            (e.seq, e.occurred_at, e.tag, e.actor, e.subject, e.data, e.entry_hash)
            for e in uow.ledger.entries()
        ]


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def without_random_ids(ledger: list[tuple[object, ...]]) -> list[object]:
    """The ledger without its entry hashes, its public ids as <uuid>."""
    return [UUID.sub("<uuid>", json.dumps(entry[:-1], sort_keys=True)) for entry in ledger]


def test_the_copied_world_is_the_world_build_world_makes(
    world: World, fresh_database_url: str, tmp_path: Path
) -> None:
    command.upgrade(alembic_config(fresh_database_url), "head")
    built = bootstrap(
        settings_for(fresh_database_url, tmp_path / "built"),
        clock=FixedClock(START),
        password_hasher=TEST_HASHER,
    )
    try:
        fresh = build_world(built)
        for name in ("account", "principal", "manager", "writer_a", "writer_b", "auditor"):
            assert getattr(world, name) == getattr(fresh, name), name
        assert world.outsider == fresh.outsider
        assert ledger_of(world.container) == ledger_of(built)
        assert row_counts(world.container.settings.database_url) == row_counts(fresh_database_url)
    finally:
        built.dispose()


def test_the_world_fixture_refuses_a_copy_changed_before_it(
    request: pytest.FixtureRequest, world: World
) -> None:
    template: WorldTemplate = request.getfixturevalue("world_template")
    assert template.world_for(world.container) == world
    directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="late@example.test",
        name="Late Arrival",
        role=Role.WRITER,
        password="password-123",
    )
    with pytest.raises(RuntimeError, match="database changed"):
        template.world_for(world.container)


def test_the_world_fixture_refuses_a_clock_that_moved(
    request: pytest.FixtureRequest, world: World, clock: FixedClock
) -> None:
    template: WorldTemplate = request.getfixturevalue("world_template")
    clock.advance(seconds=1)
    with pytest.raises(RuntimeError, match="clock moved"):
        template.world_for(world.container)


def test_the_opened_window_copy_is_what_opening_it_makes(
    request: pytest.FixtureRequest, world: World, opened_window: Window, tmp_path: Path
) -> None:
    """`opened_window` starts on the opened template's copy: the same window, rows and ledger
    as `world.approve_notice(world.open_window())` on the world's own copy."""
    template: OpenedTemplate = request.getfixturevalue("opened_template")
    assert request.node.stash[SEEDED_FROM] is template.seeded
    copy = tmp_path / "world-copy"
    copy.mkdir()
    world_template: WorldTemplate = request.getfixturevalue("world_template")
    postgres = request.getfixturevalue("postgres")
    if postgres is None:
        url = f"sqlite:///{copy / 'world.db'}"
        shutil.copy(world_template.database, copy / "world.db")
    else:
        url = postgres.create_database("opened_check", template=world_template.database)
    built = bootstrap(settings_for(url, copy), clock=FixedClock(START), password_hasher=TEST_HASHER)
    try:
        fresh = world_template.world_for(built)
        assert fresh.approve_notice(fresh.open_window()) == opened_window
        # The same entries, but for the notice post's random public id (and so the hashes).
        assert without_random_ids(ledger_of(world.container)) == without_random_ids(
            ledger_of(built)
        )
        assert row_counts(world.container.settings.database_url) == row_counts(url)
    finally:
        built.dispose()
        if postgres is not None:
            postgres.drop_database("opened_check")


def test_the_opened_window_fixture_refuses_a_copy_changed_before_it(
    request: pytest.FixtureRequest, world: World, opened_window: Window
) -> None:
    template: OpenedTemplate = request.getfixturevalue("opened_template")
    assert template.window_for(world) == opened_window
    world.submit(world.writer_a, "Doors open at 9")
    with pytest.raises(RuntimeError, match="database changed"):
        template.window_for(world)
