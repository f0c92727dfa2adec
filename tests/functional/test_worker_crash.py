"""Kill the worker process mid-publish (os._exit, no cleanup), restart it, count the posts.

Each worker is a process of its own, forked from the test (tests/support/forked_worker.py).
This test waits a real lease on the real clock before the restart; the other crash tests
start the restarted worker's clock past the dead one's lease instead.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.domain.states import PostState
from ghostpost.settings import Settings
from ghostpost.worker import Worker
from tests.support.faults import CRASH_EXIT_CODE
from tests.support.forked_worker import read_log, run_forked_worker
from tests.support.timeline import assert_policy_kept
from tests.support.world import World

LEASE_SECONDS = 1
POSTS = 6


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def run_worker(
    world: World,
    settings: Settings,
    adapter: str | None,
    log: Path,
    crash_on: int = 0,
    ahead: timedelta = timedelta(0),
) -> int:
    """One `worker --once` in a process of its own, with the local platform's publisher
    replaced by tests.support.faults' `adapter` (dying on its `crash_on`th publish)."""
    if adapter:
        settings = settings.replace(adapters={"local": f"tests.support.faults:{adapter}"})
    code = run_forked_worker(
        settings.replace(worker_lease_seconds=LEASE_SECONDS),
        log,
        parents=[world.container],
        ahead=ahead,
        environ={"GP_TEST_CRASH_ON": str(crash_on)},
    )
    assert code in (0, CRASH_EXIT_CODE), read_log(log)
    return code


def assert_not_adopted_before_its_lease_ran_out(
    world: World, clock: FixedClock, lease_until: datetime | None
) -> None:
    """A worker reading a time just before the dead worker's lease ends leaves its claim."""
    assert lease_until is not None
    clock.set(lease_until - timedelta(milliseconds=1))
    assert Worker(world.container, worker_id="too-early").reconcile() == 0


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["crash_after_accept", "crash_before_send"])
@pytest.mark.parametrize("crash_on", [1, 2, 4])
def test_a_worker_killed_mid_publish_loses_nothing_and_publishes_nothing_twice(
    world: World,
    settings: Settings,
    clock: FixedClock,
    adapter: str,
    crash_on: int,
    tmp_path: Path,
) -> None:
    window = world.open_window(every=3)
    world.approve_notice(window)
    submitted = [
        world.submit(w, f"Post {i}")
        for i, w in enumerate([world.writer_a, world.writer_b, world.principal] * 2)
    ]
    assert len(submitted) == POSTS

    assert run_worker(world, settings, adapter, tmp_path / "dying.log", crash_on) == CRASH_EXIT_CODE
    with world.ctx.uow() as uow:
        in_flight = [
            p
            for p in uow.posts.list_for_account(world.account.id)
            if p.state is PostState.PUBLISHING
        ]
    assert len(in_flight) == 1, "the crash left exactly one post mid-publish"
    assert_not_adopted_before_its_lease_ran_out(world, clock, in_flight[0].lease_until)

    time.sleep(LEASE_SECONDS + 0.2)  # the dead worker's lease runs out
    assert run_worker(world, settings, None, tmp_path / "restarted.log") == 0

    statuses = world.container.local_store.timeline(world.account.handle, limit=1000)
    with world.ctx.uow() as uow:
        posts = uow.posts.list_for_account(world.account.id)
        entries = list(uow.ledger.entries())
    assert Counter(p.state for p in posts) == {PostState.PUBLISHED: len(posts)}
    assert len(statuses) == len(posts), "one platform status per post: no duplicate, none lost"
    assert {s.id for s in statuses} == {int(p.platform_post_id or 0) for p in posts}
    assert first_broken_entry(entries) is None
    outcome = [e for e in entries if e.subject == f"post:{in_flight[0].public_id}"]
    tags = [e.tag for e in outcome]
    if adapter == "crash_after_accept":
        assert outcome[-1].data["reconciled"] is True
    else:
        assert "post:requeued" in tags
    assert tags.count("post:published") == 1
    assert_policy_kept(world.container, world.account, window)
