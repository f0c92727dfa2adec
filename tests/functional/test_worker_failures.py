"""The worker against a failing platform: retries, permanent failures, crashes (DESIGN.md §3, §6).

A fake platform replaces the publisher at the platform edge only; it wraps the real local
platform so that what it accepts shows up on the account's timeline and can be looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ghostpost.adapters.base import PermanentError, Receipt, RetryableError
from ghostpost.adapters.local import LocalPublisher
from ghostpost.bootstrap import Container
from ghostpost.domain.model import Account, Post, Window
from ghostpost.domain.policy import PostKind, ReminderMode
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState
from ghostpost.services import publishing
from ghostpost.services.publishing import MAX_ATTEMPTS
from ghostpost.worker import Worker
from tests.support.timeline import assert_policy_kept, published_in_order
from tests.support.world import NOTICE, REMINDER, World

Failure = Callable[[str], Exception | None]


class FakePlatform:
    """Fails as scripted, otherwise publishes on the real local platform; records every call."""

    platform = "local"

    def __init__(self, container: Container) -> None:
        self._inner = LocalPublisher(container.local_store, container.settings.public_url)
        #: Errors to raise on the next publish calls, in order (None: let that call through).
        self.script: list[Exception | None] = []
        #: Called with the text of every publish; an exception it returns is raised.
        self.fail_when: Failure = lambda text: None
        self.publishes: list[tuple[str, str]] = []
        self.lookups: list[str] = []

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        **sent: Any,
    ) -> Receipt:
        self.publishes.append((text, idempotency_key))
        error = self.script.pop(0) if self.script else self.fail_when(text)
        if error is not None:
            raise error
        return self._inner.publish(
            account, text, idempotency_key=idempotency_key, options=options, **sent
        )

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        self.lookups.append(idempotency_key)
        return self._inner.lookup(account, idempotency_key=idempotency_key)

    def keys_for(self, text: str) -> list[str]:
        return [key for sent, key in self.publishes if sent == text]


@pytest.fixture
def platform(container: Container) -> FakePlatform:
    fake = FakePlatform(container)
    container.publishers["local"] = fake
    return fake


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def live_window(world: World, **options: Any) -> Window:
    window = world.open_window(**options)
    world.approve_notice(window)
    world.run_worker()
    assert reminder_count(world, window) == 0
    return window


def reminder_count(world: World, window: Window) -> int:
    with world.ctx.uow() as uow:
        found = uow.windows.get(window.id)
    assert found is not None
    return found.posts_since_disclosure


def ledger_events(world: World, post: Post) -> list[dict[str, Any]]:
    with world.ctx.uow() as uow:
        return [
            {"tag": e.tag, **e.data}
            for e in uow.ledger.entries()
            if e.subject == f"post:{post.public_id}"
        ]


def tags_of(world: World, post: Post) -> list[str]:
    return [e["tag"] for e in ledger_events(world, post)]


def worker(world: World, name: str = "test-worker") -> Worker:
    return Worker(world.container, worker_id=name)


def texts(world: World) -> list[str]:
    return [p.final_text for p in published_in_order(world.container, world.account)]


def reminders(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        return [
            p for p in uow.posts.list_for_account(world.account.id) if p.kind is PostKind.REMINDER
        ]


# --------------------------------------------------------------------------------------------
# Retryable errors
# --------------------------------------------------------------------------------------------


def test_a_retryable_error_requeues_the_post_and_it_publishes_later_under_the_same_key(
    world: World, platform: FakePlatform
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Keynote starts now")
    platform.script = [RetryableError("503 Service Unavailable", retry_after=30)]
    clock = world.container.clock

    assert worker(world).publish_one() is True

    retried = world.post(post.id)
    assert retried.state is PostState.SCHEDULED
    assert retried.attempts == 1
    assert retried.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert retried.next_attempt_at > clock.now()
    assert retried.state_reason is not None and "503" in retried.state_reason
    retry = [e for e in ledger_events(world, post) if e["tag"] == "post:retry"]
    assert len(retry) == 1
    assert retry[0]["attempt"] == 1 and retry[0]["retry_in_s"] == 30
    assert "503" in retry[0]["error"]

    clock.advance(seconds=31)
    world.run_worker()

    done = world.post(post.id)
    assert done.state is PostState.PUBLISHED
    assert done.attempts == 2
    assert platform.keys_for("Keynote starts now #team") == [post.idempotency_key] * 2
    assert texts(world) == [NOTICE, "Keynote starts now #team"]
    assert tags_of(world, post).count("post:published") == 1


def test_a_post_waiting_to_retry_is_not_sent_again_before_its_next_attempt_time(
    world: World, platform: FakePlatform
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Back off, please")
    platform.script = [RetryableError("429 Too Many Requests", retry_after=120)]
    w = worker(world)
    assert w.publish_one() is True
    assert world.post(post.id).state is PostState.SCHEDULED

    sent_again = w.publish_one()

    assert sent_again is False, "the worker retried before next_attempt_at (retry_after ignored)"
    assert len(platform.publishes) == 2  # the notice and the one failed attempt
    world.container.clock.advance(seconds=121)
    assert w.publish_one() is True
    assert world.post(post.id).state is PostState.PUBLISHED


def test_after_max_attempts_retryable_errors_the_post_fails(
    world: World, platform: FakePlatform
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "The platform is down all day")
    platform.fail_when = lambda text: RetryableError("502 Bad Gateway")
    w = worker(world)

    for _ in range(MAX_ATTEMPTS):
        assert w.publish_one() is True
        world.container.clock.advance(hours=1)

    failed = world.post(post.id)
    assert failed.state is PostState.FAILED
    assert failed.attempts == MAX_ATTEMPTS
    assert failed.state_reason is not None and "502" in failed.state_reason
    assert len(platform.keys_for("The platform is down all day #team")) == MAX_ATTEMPTS
    assert set(platform.keys_for("The platform is down all day #team")) == {post.idempotency_key}
    tags = tags_of(world, post)
    assert tags.count("post:retry") == MAX_ATTEMPTS - 1
    assert tags.count("post:failed") == 1
    assert w.publish_one() is False, "a failed post is not tried again by itself"


def test_a_permanent_error_fails_the_post_with_the_platforms_message(
    world: World, platform: FakePlatform
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Something the platform will not take")
    platform.script = [PermanentError("422 Validation failed: Text contains a banned word")]

    world.run_worker()

    failed = world.post(post.id)
    assert failed.state is PostState.FAILED
    assert failed.state_reason == "422 Validation failed: Text contains a banned word"
    assert failed.attempts == 1
    assert failed.platform_post_id is None
    assert len(platform.keys_for(failed.final_text)) == 1, "never retried"
    entry = next(e for e in ledger_events(world, post) if e["tag"] == "post:failed")
    assert entry["error"] == "422 Validation failed: Text contains a banned word"
    assert texts(world) == [NOTICE]


def test_an_unexpected_exception_in_the_adapter_is_treated_as_retryable(
    world: World, platform: FakePlatform
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Connection trouble")
    platform.script = [ConnectionResetError("connection reset by peer")]

    assert worker(world).publish_one() is True

    retried = world.post(post.id)
    assert retried.state is PostState.SCHEDULED
    assert retried.state_reason is not None
    assert "unexpected error: connection reset by peer" in retried.state_reason
    assert "post:retry" in tags_of(world, post)

    world.container.clock.advance(minutes=5)
    world.run_worker()
    assert world.post(post.id).state is PostState.PUBLISHED
    assert set(platform.keys_for("Connection trouble #team")) == {post.idempotency_key}


# --------------------------------------------------------------------------------------------
# The reminder count moves only on confirmed publishes
# --------------------------------------------------------------------------------------------


def test_retries_and_failures_never_move_the_reminder_count(
    world: World, platform: FakePlatform
) -> None:
    window = live_window(world, every=10)
    clock = world.container.clock
    w = worker(world)

    world.submit(world.writer_a, "One")
    assert w.publish_one() is True
    assert reminder_count(world, window) == 1

    flaky = world.submit(world.writer_b, "Two, flaky")
    platform.script = [RetryableError("503"), RuntimeError("boom")]
    assert w.publish_one() is True
    assert reminder_count(world, window) == 1
    clock.advance(minutes=1)
    assert w.publish_one() is True
    assert reminder_count(world, window) == 1

    doomed = world.submit(world.writer_a, "Three, doomed")
    platform.fail_when = lambda text: PermanentError("403") if text.startswith("Three") else None
    clock.advance(minutes=1)
    world.run_worker()

    assert world.post(doomed.id).state is PostState.FAILED
    assert world.post(flaky.id).state is PostState.PUBLISHED
    assert reminder_count(world, window) == 2, "only the two confirmed publishes counted"


def test_a_failing_standalone_reminder_fails_the_post_that_waited_for_it(
    world: World, platform: FakePlatform
) -> None:
    window = live_window(world, every=2, reminder_mode=ReminderMode.STANDALONE)
    world.submit(world.writer_a, "One")
    waiting = world.submit(world.writer_b, "Two")
    platform.fail_when = lambda text: (
        PermanentError("401 token revoked") if text == REMINDER else None
    )

    world.run_worker()

    [reminder] = reminders(world)
    assert reminder.state is PostState.FAILED
    assert reminder.precedes_post_id == waiting.id
    failed = world.post(waiting.id)
    assert failed.state is PostState.FAILED
    assert failed.state_reason is not None
    assert "reminder" in failed.state_reason and "401 token revoked" in failed.state_reason
    assert "post:failed" in tags_of(world, failed)
    assert texts(world) == [NOTICE, "One #team"], "never published without its reminder"
    assert reminder_count(world, window) == 1


def test_a_retried_standalone_reminder_is_not_duplicated(
    world: World, platform: FakePlatform
) -> None:
    window = live_window(world, every=2, reminder_mode=ReminderMode.STANDALONE)
    world.submit(world.writer_a, "One")
    waiting = world.submit(world.writer_b, "Two")
    calls = {"reminder": 0}

    def flaky_reminder(text: str) -> Exception | None:
        if text == REMINDER:
            calls["reminder"] += 1
            if calls["reminder"] == 1:
                return RetryableError("503")
        return None

    platform.fail_when = flaky_reminder
    world.run_worker()
    world.container.clock.advance(minutes=5)
    world.run_worker()

    assert world.post(waiting.id).state is PostState.PUBLISHED
    made = reminders(world)
    assert len(made) == 1, (
        f"{len(made)} reminder posts were created for one due reminder: "
        f"{[(p.id, p.state.value) for p in made]}"
    )
    assert texts(world) == [NOTICE, "One #team", REMINDER, "Two #team"]
    assert_policy_kept(world.container, world.account, window)


# --------------------------------------------------------------------------------------------
# Reconciliation after a crash
# --------------------------------------------------------------------------------------------


def crashed_claim(world: World, *, sent: bool, platform: FakePlatform) -> publishing.Claim:
    """A worker claims the next post, maybe sends it, and dies before recording anything."""
    lease = timedelta(seconds=world.container.settings.worker_lease_seconds)
    claim = publishing.claim_next(world.ctx, "dead-worker", lease)
    assert claim is not None
    if sent:
        platform.publish(claim.account, claim.text, idempotency_key=claim.idempotency_key)
    assert world.post(claim.post.id).state is PostState.PUBLISHING
    return claim


def test_a_post_the_platform_already_has_is_recorded_published_without_sending_it_again(
    world: World, platform: FakePlatform
) -> None:
    window = live_window(world)
    post = world.submit(world.writer_a, "Sent just before the crash")
    claim = crashed_claim(world, sent=True, platform=platform)
    sends = len(platform.publishes)
    rescuer = worker(world, "rescuer")

    assert rescuer.reconcile() == 0, "the lease has not run out yet"
    world.container.clock.advance(seconds=world.container.settings.worker_lease_seconds + 1)
    assert rescuer.reconcile() == 1
    world.run_worker()

    done = world.post(post.id)
    assert done.state is PostState.PUBLISHED
    assert len(platform.publishes) == sends, "no second publish call"
    assert platform.lookups == [claim.idempotency_key]
    status = world.container.local_store.find(claim.idempotency_key)
    assert status is not None and done.platform_post_id == str(status.id)
    published = [e for e in ledger_events(world, post) if e["tag"] == "post:published"]
    assert len(published) == 1 and published[0]["reconciled"] is True
    assert texts(world) == [NOTICE, "Sent just before the crash #team"]
    assert reminder_count(world, window) == 1


def test_a_post_the_platform_does_not_have_is_requeued_and_published_once(
    world: World, platform: FakePlatform
) -> None:
    window = live_window(world)
    post = world.submit(world.writer_a, "Lost in the crash")
    claim = crashed_claim(world, sent=False, platform=platform)
    sends = len(platform.publishes)
    world.container.clock.advance(seconds=world.container.settings.worker_lease_seconds + 1)

    assert worker(world, "rescuer").reconcile() == 1
    requeued = world.post(post.id)
    assert requeued.state is PostState.SCHEDULED
    assert "post:requeued" in tags_of(world, post)
    world.run_worker()

    done = world.post(post.id)
    assert done.state is PostState.PUBLISHED
    assert platform.publishes[sends:] == [("Lost in the crash #team", claim.idempotency_key)]
    assert texts(world) == [NOTICE, "Lost in the crash #team"]
    published = [e for e in ledger_events(world, post) if e["tag"] == "post:published"]
    assert len(published) == 1 and published[0]["reconciled"] is False
    assert reminder_count(world, window) == 1


def test_a_failed_lookup_leaves_the_post_for_a_later_reconciliation(
    world: World, platform: FakePlatform
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Unknown fate")
    crashed_claim(world, sent=True, platform=platform)
    world.container.clock.advance(seconds=world.container.settings.worker_lease_seconds + 1)
    real_lookup = platform.lookup

    def broken_lookup(account: Account, *, idempotency_key: str) -> Receipt | None:
        raise RetryableError("platform unreachable")

    platform.lookup = broken_lookup  # type: ignore[method-assign]
    assert worker(world, "rescuer").reconcile() == 0
    assert world.post(post.id).state is PostState.PUBLISHING

    platform.lookup = real_lookup  # type: ignore[method-assign]
    world.container.clock.advance(seconds=world.container.settings.worker_lease_seconds + 1)
    world.run_worker()
    assert world.post(post.id).state is PostState.PUBLISHED
    assert texts(world) == [NOTICE, "Unknown fate #team"]
