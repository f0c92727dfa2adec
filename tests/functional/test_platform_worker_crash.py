"""Kill a real worker process mid-publish on each real platform protocol, restart, count posts.

The worker runs as a process of its own (`ghostpost worker --once`, forked from the test:
tests/support/forked_worker.py) against the platform's server on 127.0.0.1 (Mastodon and X:
protocol-faithful local servers; Bluesky: a real PDS). It dies with os._exit (like kill -9: no
cleanup) either before the request is sent or right after the platform accepted the post. A
fresh worker must reconcile by asking the platform, never by re-sending blindly: every post ends
up on the platform exactly once, in order. The fresh worker reads the real clock moved just past
the dead worker's lease (test_worker_crash.py waits a real lease), after a worker reading a time
just before it left the claim alone.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghostpost.clock import FixedClock
from ghostpost.domain.states import PostState
from tests.functional.test_worker_crash import assert_not_adopted_before_its_lease_ran_out
from tests.support.faults import CRASH_EXIT_CODE
from tests.support.forked_worker import past_the_lease, read_log, run_forked_worker
from tests.support.platforms import (
    PlatformCase,
)
from tests.support.world import NOTICE

pytestmark = pytest.mark.slow
LEASE_SECONDS = 1
ADAPTER = {
    "mastodon": "ghostpost.adapters.mastodon:from_container",
    "bluesky": "ghostpost.adapters.bluesky:from_container",
    "x": "ghostpost.adapters.x:from_container",
}


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def run_worker(
    case: PlatformCase,
    crash: str | None,
    log: Path,
    crash_on: int = 0,
    ahead: timedelta = timedelta(0),
) -> int:
    """One `worker --once` in a process of its own; with `crash`, the platform's real adapter
    is wrapped by tests.support.faults' `crash` (dying on its `crash_on`th publish)."""
    settings = case.container.settings.replace(
        worker_lease_seconds=LEASE_SECONDS, ledger_witness_file=""
    )
    if crash:
        settings = settings.replace(adapters={case.name: f"tests.support.faults:{crash}"})
    code = run_forked_worker(
        settings,
        log,
        parents=[case.container, case.world.container],
        ahead=ahead,
        environ={"GP_TEST_CRASH_ON": str(crash_on), "GP_TEST_CRASH_INNER": ADAPTER[case.name]},
    )
    assert code in (0, CRASH_EXIT_CODE), read_log(log)
    return code


@pytest.mark.parametrize("crash", ["crash_after_accept", "crash_before_send"])
def test_a_worker_killed_mid_publish_posts_everything_exactly_once_in_order(
    case: PlatformCase, clock: FixedClock, crash: str, tmp_path: Path
) -> None:
    world = case.world
    window = world.open_window(account=case.account, every=3)
    world.approve_notice(window)
    texts = [f"Session {i} starts now" for i in range(4)]
    for i, text in enumerate(texts):
        world.submit([world.writer_a, world.writer_b][i % 2], text, account=case.account)

    # The notice goes out first; the crash hits the second publish (the first post).
    assert run_worker(case, crash, tmp_path / "dying.log", crash_on=2) == CRASH_EXIT_CODE
    with world.ctx.uow() as uow:
        stuck = [
            p
            for p in uow.posts.list_for_account(case.account.id)
            if p.state is PostState.PUBLISHING
        ]
    assert len(stuck) == 1
    assert_not_adopted_before_its_lease_ran_out(world, clock, stuck[0].lease_until)
    restarted = tmp_path / "restarted.log"
    assert run_worker(case, None, restarted, ahead=past_the_lease(stuck[0].lease_until)) == 0

    with world.ctx.uow() as uow:
        posts = uow.posts.list_for_account(case.account.id)
        entries = [e for e in uow.ledger.entries() if e.subject == f"post:{stuck[0].public_id}"]
    assert Counter(p.state for p in posts) == {PostState.PUBLISHED: len(posts)}
    on_platform = case.texts()
    assert len(on_platform) == len(posts) == len(set(on_platform)), "none lost, none twice"
    assert on_platform[0] == NOTICE
    published = sorted(posts, key=lambda p: p.published_at or datetime.min.replace(tzinfo=UTC))
    assert on_platform == [p.final_text for p in published], "the platform shows the order sent"
    tags = [e.tag for e in entries]
    assert tags.count("post:published") == 1
    if crash == "crash_after_accept":
        assert entries[-1].data["reconciled"] is True
    else:
        assert "post:requeued" in tags
