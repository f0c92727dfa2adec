"""The worker and the coverage dashboard count the reminder cadence the same way, in memory.

The schedules, the play and the checks of tests/functional/test_cadence_replay.py (which runs
them through the real worker on the real database), on the in-memory unit of work: the same
services decide, so many more random schedules fit in the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from hypothesis import given, settings

from ghostpost.clock import FixedClock
from tests.functional.test_cadence_replay import Schedule, measured, play, schedules
from tests.support.world import World
from tests.unit.services.memory_world import build_memory_world, memory_context

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@settings(max_examples=50, deadline=None)
@given(schedule=schedules)
def test_coverage_replays_the_workers_timeline_to_the_same_figures(schedule: Schedule) -> None:
    clock = FixedClock(START)
    # Duck-typed: MemoryWorld has the World methods play and measured call.
    world = cast(World, build_memory_world(memory_context(clock), clock))
    first, second = play(world, clock, schedule)
    for window in (first, second):
        cov, stored = measured(world, window)
        assert stored.notice_published_at is not None
        assert cov.reminders_missed == 0, "the worker never lets a due reminder pass"
        assert cov.reminders_sent == cov.reminders_due, "every reminder sent was due"
        assert cov.longest_run < schedule.every
        final_run = cov.marks[-1].run if cov.marks else 0
        assert stored.posts_since_disclosure == final_run, "one rule, one run"
    first_cov, _ = measured(world, first)
    assert first_cov.notices == 2
