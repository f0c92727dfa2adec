"""Kill a real worker process mid-publish on each real platform protocol, restart, count posts.

The worker runs as a subprocess of `ghostpost worker --once` against the platform's server on
127.0.0.1 (Mastodon and X: protocol-faithful local servers; Bluesky: a real PDS). It dies with
os._exit (like kill -9: no cleanup) either before the request is sent or right after the
platform accepted the post. A fresh worker must reconcile by asking the platform, never by
re-sending blindly: every post ends up on the platform exactly once, in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from ghostpost.clock import FixedClock
from ghostpost.domain.states import PostState
from ghostpost.settings import PROJECT_DIR
from tests.support.faults import CRASH_EXIT_CODE
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


def run_worker(case: PlatformCase, crash: str | None, crash_on: int = 0) -> int:
    settings = case.container.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")}
    env.update(
        GHOSTPOST_DATABASE_URL=settings.database_url,
        GHOSTPOST_SECRET_KEY=settings.secret_key,  # the token key is derived from it in tests
        GHOSTPOST_ENVIRONMENT="test",
        GHOSTPOST_PUBLIC_URL=settings.public_url,
        GHOSTPOST_LEDGER_SIGNING_KEY=settings.ledger_signing_key,
        GHOSTPOST_LEDGER_PUBLIC_KEYS=settings.ledger_public_keys,
        GHOSTPOST_LEDGER_WITNESS_FILE="",
        GHOSTPOST_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        GHOSTPOST_PLATFORM_TIMEOUT_SECONDS="5",
        GHOSTPOST_X_API_URL=settings.x_api_url,
        GHOSTPOST_X_CLIENT_ID=settings.x_client_id,
        GHOSTPOST_X_CLIENT_SECRET=settings.x_client_secret,
        GP_TEST_CRASH_ON=str(crash_on),
        GP_TEST_CRASH_INNER=ADAPTER[case.name],
        PYTHONPATH=str(PROJECT_DIR),
    )
    if crash:
        env["GHOSTPOST_ADAPTERS"] = json.dumps({case.name: f"tests.support.faults:{crash}"})
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


@pytest.mark.parametrize("crash", ["crash_after_accept", "crash_before_send"])
def test_a_worker_killed_mid_publish_posts_everything_exactly_once_in_order(
    case: PlatformCase, crash: str
) -> None:
    world = case.world
    window = world.open_window(account=case.account, every=3)
    world.approve_notice(window)
    texts = [f"Session {i} starts now" for i in range(4)]
    for i, text in enumerate(texts):
        world.submit([world.writer_a, world.writer_b][i % 2], text, account=case.account)

    # The notice goes out first; the crash hits the second publish (the first post).
    assert run_worker(case, crash, crash_on=2) == CRASH_EXIT_CODE
    with world.ctx.uow() as uow:
        stuck = [
            p
            for p in uow.posts.list_for_account(case.account.id)
            if p.state is PostState.PUBLISHING
        ]
    assert len(stuck) == 1
    time.sleep(LEASE_SECONDS + 0.2)
    assert run_worker(case, None) == 0

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
