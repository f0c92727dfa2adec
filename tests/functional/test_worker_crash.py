"""Kill the worker process mid-publish (os._exit, no cleanup), restart it, count the posts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.domain.states import PostState
from ghostpost.settings import PROJECT_DIR, Settings
from tests.support.faults import CRASH_EXIT_CODE
from tests.support.timeline import assert_policy_kept
from tests.support.world import World

LEASE_SECONDS = 1
POSTS = 6


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def run_worker(settings: Settings, adapter: str | None, crash_on: int = 0) -> int:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")},
        "GHOSTPOST_DATABASE_URL": settings.database_url,
        "GHOSTPOST_PUBLIC_URL": settings.public_url,
        "GHOSTPOST_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "GP_TEST_CRASH_ON": str(crash_on),
        "PYTHONPATH": str(PROJECT_DIR),
    }
    if adapter:
        env["GHOSTPOST_ADAPTERS"] = json.dumps({"local": f"tests.support.faults:{adapter}"})
    done = subprocess.run(
        [sys.executable, "-m", "ghostpost", "worker", "--once"],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, CRASH_EXIT_CODE), done.stderr
    return done.returncode


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["crash_after_accept", "crash_before_send"])
@pytest.mark.parametrize("crash_on", [1, 2, 4])
def test_a_worker_killed_mid_publish_loses_nothing_and_publishes_nothing_twice(
    world: World, settings: Settings, adapter: str, crash_on: int, tmp_path: Path
) -> None:
    window = world.open_window(every=3)
    world.approve_notice(window)
    submitted = [
        world.submit(w, f"Post {i}")
        for i, w in enumerate([world.writer_a, world.writer_b, world.principal] * 2)
    ]
    assert len(submitted) == POSTS

    assert run_worker(settings, adapter, crash_on) == CRASH_EXIT_CODE
    with world.ctx.uow() as uow:
        in_flight = [
            p
            for p in uow.posts.list_for_account(world.account.id)
            if p.state is PostState.PUBLISHING
        ]
    assert len(in_flight) == 1, "the crash left exactly one post mid-publish"

    time.sleep(LEASE_SECONDS + 0.2)  # the dead worker's lease runs out
    assert run_worker(settings, None) == 0

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
