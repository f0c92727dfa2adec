"""Kill the real worker process (`ghostpost worker --once`, os._exit: no cleanup) between the
upload of a post's images to Mastodon and the creation of the status, with the post and its
images stored as the API stores them; restart it: the post goes out once, with its images.

Each worker is a process of its own, forked from the test (tests/support/forked_worker.py); the
restarted one reads the real clock moved just past the dead worker's lease (test_worker_crash.py
waits a real lease), after a worker reading a time just before it left the claim alone."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghostpost import create_app
from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerTag, first_broken_entry
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from ghostpost.settings import Settings
from ghostpost.worker import Worker
from tests.functional.test_worker_crash import assert_not_adopted_before_its_lease_ran_out
from tests.support import images
from tests.support.api import scheduler_for
from tests.support.faults import CRASH_EXIT_CODE
from tests.support.forked_worker import past_the_lease, read_log, run_forked_worker
from tests.support.platforms import platform_case
from tests.support.world import NOTICE

LEASE_SECONDS = 1


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def run_worker(
    settings: Settings,
    parents: list[Container],
    dying: bool,
    log: Path,
    ahead: timedelta = timedelta(0),
) -> int:
    """One `worker --once` in a process of its own; `dying`: its Mastodon adapter dies
    between the upload of the images and the creation of the status."""
    settings = settings.replace(worker_lease_seconds=LEASE_SECONDS, serve_runs_worker=False)
    if dying:
        settings = settings.replace(
            adapters={"mastodon": "tests.support.faults:mastodon_dying_after_upload"}
        )
    code = run_forked_worker(settings, log, parents=parents, ahead=ahead)
    assert code in (0, CRASH_EXIT_CODE), read_log(log)
    return code


def no_pds() -> Any:
    raise AssertionError("Mastodon only")


@pytest.mark.slow
def test_a_worker_killed_between_upload_and_status_publishes_the_post_once_with_its_images(
    settings: Settings, clock: FixedClock, tmp_path: Path
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

        parents = [case.container]
        dying = tmp_path / "dying.log"
        assert run_worker(settings, parents, dying=True, log=dying) == CRASH_EXIT_CODE
        uploads = [p for _, p in case.proxy.forwarded if "/api/v2/media" in p]
        assert len(uploads) == 2, "the images were uploaded"
        assert case.texts() == [NOTICE], "died before the status was created"

        with world.ctx.uow() as uow:
            [stuck] = [
                p
                for p in uow.posts.list_for_account(case.account.id)
                if p.state is PostState.PUBLISHING
            ]
        assert_not_adopted_before_its_lease_ran_out(world, clock, stuck.lease_until)
        ahead = past_the_lease(stuck.lease_until)
        restarted = tmp_path / "restarted.log"
        assert run_worker(settings, parents, dying=False, log=restarted, ahead=ahead) == 0

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
