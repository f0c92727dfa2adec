"""A post with images through the worker, on each real platform protocol: never published
without its images, and exactly once even when the worker dies between upload and post.

The claim's images are given to the worker as the media store will give them (Claim.media);
everything after that is the real worker, the real adapter and the platform's server over HTTP.
The kill test forks a worker process that dies (os._exit, like kill -9: no cleanup) right after
its images were uploaded and before the post was created, through the adapter's
`after_media_upload` hook; a fresh worker then reconciles and publishes.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.domain.model import MediaItem, Post
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from ghostpost.services import publishing
from ghostpost.services.publishing import Claim
from ghostpost.worker import Worker
from tests.support.fault_proxy import Fault
from tests.support.image_items import distinct_images
from tests.support.platforms import PlatformCase
from tests.support.world import NOTICE

pytestmark = pytest.mark.slow
UPLOAD_PATH = {
    "mastodon": "/api/v2/media",
    "bluesky": "com.atproto.repo.uploadBlob",
    "x": "/2/media/upload",
}
DIED = 137
TEXT = "Our booth opens at noon #team"


@pytest.fixture
def clock() -> FixedClock:
    # The forked worker reads the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def expected(media: list[MediaItem]) -> list[tuple[str, int, int]]:
    return [(m.alt_text, m.width, m.height) for m in media]


def claim_with_images(case: PlatformCase, worker: Worker, media: list[MediaItem]) -> Claim:
    """The worker's next claim (the post, after the notice went out), carrying `media`."""
    claim = publishing.claim_next(case.world.ctx, worker.worker_id, worker.lease)
    assert claim is not None and claim.post.kind is PostKind.REGULAR, claim
    return replace(claim, media=tuple(media))


def ready_post(case: PlatformCase) -> Worker:
    """A window with its notice published, and one post due; return the worker."""
    world = case.world
    world.approve_notice(world.open_window(account=case.account, every=50))
    world.submit(world.writer_a, TEXT, account=case.account)
    worker = Worker(case.container, worker_id="media-worker")
    assert worker.publish_one()  # the pre-event notice
    assert case.texts() == [NOTICE]
    return worker


def the_post(case: PlatformCase) -> Post:
    with case.world.ctx.uow() as uow:
        posts = [
            p for p in uow.posts.list_for_account(case.account.id) if p.kind is PostKind.REGULAR
        ]
    assert len(posts) == 1
    found: Post = posts[0]
    return found


def state_of(case: PlatformCase) -> PostState:
    return the_post(case).state


def test_a_post_whose_upload_fails_never_goes_out_without_its_images(
    case: PlatformCase, clock: FixedClock
) -> None:
    worker = ready_post(case)
    media = distinct_images(2)
    # The platform is down for uploads: the worker retries later, and posts nothing now.
    case.proxy.inject(Fault("POST", UPLOAD_PATH[case.name], status=503, body='{"error":"x"}'))
    worker._send(claim_with_images(case, worker, media))
    assert case.texts() == [NOTICE], "never published text-only when it carried images"
    assert state_of(case) is PostState.SCHEDULED

    clock.advance(minutes=5)
    worker._send(claim_with_images(case, worker, media))
    assert state_of(case) is PostState.PUBLISHED
    assert case.texts()[1:] == [the_post(case).final_text]
    assert case.images()[1:] == [expected(media)]


def test_a_refused_upload_fails_the_post_without_publishing_its_text(
    case: PlatformCase,
) -> None:
    worker = ready_post(case)
    case.proxy.inject(Fault("POST", UPLOAD_PATH[case.name], status=422, body='{"error":"no"}'))
    worker._send(claim_with_images(case, worker, distinct_images(1)))
    assert state_of(case) is PostState.FAILED
    assert case.texts() == [NOTICE]


def test_more_images_than_the_platform_takes_fail_the_post_and_send_nothing(
    case: PlatformCase,
) -> None:
    worker = ready_post(case)
    worker._send(claim_with_images(case, worker, distinct_images(5)))
    post = the_post(case)
    assert post.state is PostState.FAILED
    assert "at most 4 images" in (post.state_reason or "")
    assert case.texts() == [NOTICE]
    assert not any(UPLOAD_PATH[case.name] in path for _, path in case.proxy.forwarded)


def _die_between_upload_and_post(case: PlatformCase, media: list[MediaItem], report: Path) -> None:
    """Body of the forked worker: its own container, the hook armed, one publish. If the hook
    never runs, what happened instead goes to `report` for the parent's assertion message."""
    try:
        container = bootstrap(case.container.settings, clock=FixedClock(datetime.now(UTC)))
        worker = Worker(container, worker_id="doomed-worker")
        claim = publishing.claim_next(container.services, worker.worker_id, worker.lease)
        assert claim is not None
        publisher = container.publisher_for(claim.account)
        # container.publishers holds this instance: the worker sends through it.
        publisher.after_media_upload = lambda: os._exit(DIED)  # type: ignore[attr-defined]
        worker._send(replace(claim, media=tuple(media)))
        report.write_text("the send returned without reaching the hook")
    except BaseException:
        report.write_text(traceback.format_exc())
    finally:
        os._exit(3)  # reached only if the hook never ran


def test_a_worker_killed_between_upload_and_post_creates_the_post_once_with_its_images(
    case: PlatformCase, clock: FixedClock, tmp_path: Path
) -> None:
    ready_post(case)
    media = distinct_images(3)
    report = tmp_path / "child-report.txt"
    child = multiprocessing.get_context("fork").Process(
        target=_die_between_upload_and_post, args=(case, media, report)
    )
    child.start()
    child.join(60)
    assert child.exitcode == DIED, report.read_text() if report.exists() else "no report"
    assert sum(UPLOAD_PATH[case.name] in p for _, p in case.proxy.forwarded) == 3, "uploaded"
    assert case.texts() == [NOTICE], "died before the post was created"
    assert state_of(case) is PostState.PUBLISHING

    # A fresh worker, once the dead one's lease ran out: reconciliation asks the platform
    # (nothing there), requeues, and the post goes out once, with all of its images.
    lease = case.container.settings.worker_lease_seconds
    clock.set(datetime.now(UTC))
    clock.advance(seconds=lease + 1)
    time.sleep(0.01)
    worker = Worker(case.container, worker_id="fresh-worker")
    assert worker.reconcile() == 1
    assert state_of(case) is PostState.SCHEDULED
    worker._send(claim_with_images(case, worker, media))
    assert state_of(case) is PostState.PUBLISHED
    post = the_post(case)
    assert case.texts() == [NOTICE, post.final_text]
    assert case.images()[1:] == [expected(media)]
    # And a lookup (the next reconciliation) finds that post, images and all.
    found = case.publisher().lookup(case.account, idempotency_key=post.idempotency_key)
    assert found is not None and found.platform_post_id == post.platform_post_id
