"""Service tests on the in-memory unit of work: the real use cases, no database, a fixed clock."""

from __future__ import annotations

import pytest

from ghostpost.clock import FixedClock
from ghostpost.services.context import ServiceContext
from tests.unit.services.memory_world import MemoryWorld, build_memory_world, memory_context


@pytest.fixture
def ctx(clock: FixedClock) -> ServiceContext:
    return memory_context(clock)


@pytest.fixture
def world(ctx: ServiceContext, clock: FixedClock) -> MemoryWorld:
    return build_memory_world(ctx, clock)
