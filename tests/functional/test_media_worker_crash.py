"""Kill the real worker process (`ghostpost worker --once`, os._exit: no cleanup) between the
upload of a post's images to Mastodon and the creation of the status, with the post and its
images stored as the API stores them; restart it: the post goes out once, with its images."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from ghostpost import create_app
from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerTag, first_broken_entry
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from ghostpost.settings import PROJECT_DIR, Settings
from ghostpost.worker import Worker
from tests.support import images
from tests.support.api import scheduler_for
from tests.support.faults import CRASH_EXIT_CODE
from tests.support.platforms import platform_case
from tests.support.processes import env_for
from tests.support.world import NOTICE

LEASE_SECONDS = 1


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def run_worker(settings: Settings, dying: bool) -> int:
    extra = {"GHOSTPOST_WORKER_LEASE_SECONDS": str(LEASE_SECONDS)}
    if dying:
        extra["GHOSTPOST_ADAPTERS"] = json.dumps(
            {"mastodon": "tests.support.faults:mastodon_dying_after_upload"}
        )
    done = subprocess.run(
        [sys.executable, "-m", "ghostpost", "worker", "--once"],
        env=env_for(settings, **extra),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, CRASH_EXIT_CODE), done.stderr
    return done.returncode


def no_pds() -> Any:
    raise AssertionError("Mastodon only")


@pytest.mark.slow
def test_a_worker_killed_between_upload_and_status_publishes_the_post_once_with_its_images(
    settings: Settings, clock: FixedClock
) -> None:
    with platform_case("mastodon", settings, clock, no_pds) as case:
        world = case.world
        world.approve_notice(world.open_window(account=case.account, every=50))
        assert Worker(case.container, worker_id="notice-worker").publish_one()
        assert case.texts() == [NOTICE]

        # The images and the post, through the API, as a scheduler sends them.
        http = create_app(container=case.container).test_client()
        scheduler = scheduler_for(http, world, account_ids=[case.account.id])
        media_ids = []
        for number, alt in enumerate(("The stage", "The crowd")):
            uploaded = scheduler.post(
                "/api/v1/media",
                data={
                    "file": (io.BytesIO(images.png(color=(number, 9, 9))), "a.png"),
                    "description": alt,
                },
                content_type="multipart/form-data",
            )
            assert uploaded.status_code == 201, uploaded.get_json()
            media_ids.append(uploaded.get_json()["id"])
        created = scheduler.create(
            {
                "account": case.account.id,
                "text": "Doors open",
                "media_ids": media_ids,
                "author": world.writer_a.email,
            }
        )
        assert created.status_code == 201, created.get_json()

        assert run_worker(settings, dying=True) == CRASH_EXIT_CODE
        uploads = [p for _, p in case.proxy.forwarded if "/api/v2/media" in p]
        assert len(uploads) == 2, "the images were uploaded"
        assert case.texts() == [NOTICE], "died before the status was created"

        time.sleep(LEASE_SECONDS + 0.2)  # the dead worker's lease runs out
        assert run_worker(settings, dying=False) == 0

        with world.ctx.uow() as uow:
            [post] = [
                p for p in uow.posts.list_for_account(case.account.id) if p.kind is PostKind.REGULAR
            ]
            entries = list(uow.ledger.entries())
        assert post.state is PostState.PUBLISHED, post.state_reason
        assert case.texts() == [NOTICE, post.final_text], "published once"
        assert case.images()[1:] == [[("The stage", 3, 3), ("The crowd", 3, 3)]]
        tags = [e.tag for e in entries if e.subject == f"post:{post.public_id}"]
        assert tags.count(LedgerTag.POST_PUBLISHED) == 1
        assert first_broken_entry(entries) is None
