"""The seeded world template (tests/conftest.py): a test's copy holds exactly the world that
build_world would have built in it, and the world fixture refuses a copy or clock that moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from ghostpost.bootstrap import Container, bootstrap
from ghostpost.cli import alembic_config
from ghostpost.clock import FixedClock
from ghostpost.domain.model import Role
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.conftest import START
from tests.support.world import (
    TEST_HASHER,
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
