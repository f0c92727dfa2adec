"""The same contract for every platform adapter, over real HTTP to servers on 127.0.0.1.

Mastodon and X are protocol-faithful local servers; Bluesky is a real PDS. A fault proxy in
front of each injects the failures: 429 with Retry-After, 5xx, a stall past the client timeout
after the platform accepted, and a crash (the receipt is lost and a fresh adapter reconciles).
"""

from __future__ import annotations

import pytest

from ghostpost.adapters.base import PermanentError, RetryableError
from ghostpost.domain.model import ReplyTarget
from tests.support.fault_proxy import Fault
from tests.support.platforms import (
    STALL_TIMEOUT_SECONDS,
    PlatformCase,
)

pytestmark = pytest.mark.slow

TEXT = "Keynote in 10 minutes — slides: https://example.com/devsummit-2026 🎤 #team"
OVER_LIMIT = {"mastodon": "a" * 501, "bluesky": "a" * 301, "x": "a" * 281}


def test_success_publishes_exactly_the_text_given(case: PlatformCase) -> None:
    receipt = case.publisher().publish(case.account, TEXT, idempotency_key="ok-1")
    assert receipt.platform_post_id and receipt.url.startswith("http")
    assert case.texts() == [TEXT]


def test_429_is_retryable_with_the_platforms_retry_after_and_posts_nothing(
    case: PlatformCase,
) -> None:
    case.proxy.inject(
        Fault("POST", case.create_path, status=429, headers={"Retry-After": "7"}, body="{}")
    )
    with pytest.raises(RetryableError) as caught:
        case.publisher().publish(case.account, TEXT, idempotency_key="rl-1")
    assert caught.value.retry_after == pytest.approx(7)
    assert case.texts() == []
    case.publisher().publish(case.account, TEXT, idempotency_key="rl-1")
    assert case.texts() == [TEXT]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable_and_the_retry_posts_once(case: PlatformCase, status: int) -> None:
    case.proxy.inject(Fault("POST", case.create_path, status=status, body='{"error":"down"}'))
    with pytest.raises(RetryableError, match=str(status)):
        case.publisher().publish(case.account, TEXT, idempotency_key="5xx-1")
    assert case.texts() == []
    # The request never reached the platform: reconciliation finds nothing, a retry posts once.
    assert case.publisher().lookup(case.account, idempotency_key="5xx-1") is None
    case.publisher().publish(case.account, TEXT, idempotency_key="5xx-1")
    case.publisher().publish(case.account, TEXT, idempotency_key="5xx-1")
    assert case.texts() == [TEXT]


def test_a_4xx_validation_error_is_permanent_and_posts_nothing(case: PlatformCase) -> None:
    with pytest.raises(PermanentError):
        case.publisher().publish(case.account, OVER_LIMIT[case.name], idempotency_key="bad-1")
    assert case.texts() == []


@pytest.mark.platform_timeout(STALL_TIMEOUT_SECONDS)
def test_a_timeout_after_the_platform_accepted_is_retryable_and_never_posts_twice(
    case: PlatformCase,
) -> None:
    case.proxy.inject(Fault("POST", case.create_path, stall_seconds=STALL_TIMEOUT_SECONDS + 1.0))
    with pytest.raises(RetryableError, match="timed out"):
        case.publisher().publish(case.account, TEXT, idempotency_key="slow-1")
    assert case.texts() == [TEXT], "the platform took it before the client gave up"
    retried = case.publisher().publish(case.account, TEXT, idempotency_key="slow-1")
    assert case.publisher().lookup(case.account, idempotency_key="slow-1") == retried
    assert case.texts() == [TEXT]


def test_a_crash_after_accept_is_reconciled_by_lookup_not_by_resending(
    case: PlatformCase,
) -> None:
    receipt = case.publisher().publish(case.account, TEXT, idempotency_key="crash-1")
    # The worker died before recording the receipt; a new process asks the platform.
    found = case.publisher().lookup(case.account, idempotency_key="crash-1")
    assert found == receipt
    again = case.publisher().publish(case.account, TEXT, idempotency_key="crash-1")
    assert again.platform_post_id == receipt.platform_post_id
    assert case.texts() == [TEXT]


def test_a_key_that_was_never_sent_is_not_found(case: PlatformCase) -> None:
    case.publisher().publish(case.account, TEXT, idempotency_key="sent")
    assert case.publisher().lookup(case.account, idempotency_key="never-sent") is None


def test_two_posts_with_different_keys_are_two_posts(case: PlatformCase) -> None:
    case.publisher().publish(case.account, "First #team", idempotency_key="a")
    case.publisher().publish(case.account, "Second #team", idempotency_key="b")
    assert case.texts() == ["First #team", "Second #team"]


#: The call that deletes a post, per platform (where delete faults are injected).
DELETE_CALL = {
    "mastodon": ("DELETE", "/api/v1/statuses/"),
    "bluesky": ("POST", "com.atproto.repo.deleteRecord"),
    "x": ("DELETE", "/2/tweets/"),
}


def test_delete_takes_the_post_back_and_deleting_again_finds_it_gone(
    case: PlatformCase,
) -> None:
    kept = case.publisher().publish(case.account, "Stays", idempotency_key="keep-1")
    gone = case.publisher().publish(case.account, TEXT, idempotency_key="del-1")
    assert case.publisher().delete(case.account, gone.platform_post_id) is True
    assert case.texts() == ["Stays"]
    # Idempotent: already gone is deleted, never an error; the other post is untouched.
    assert case.publisher().delete(case.account, gone.platform_post_id) is False
    assert case.texts() == ["Stays"]
    assert kept.platform_post_id != gone.platform_post_id


def test_a_5xx_on_delete_is_retryable_and_the_retry_deletes(case: PlatformCase) -> None:
    receipt = case.publisher().publish(case.account, TEXT, idempotency_key="del-5xx")
    method, path = DELETE_CALL[case.name]
    case.proxy.inject(Fault(method, path, status=503, body='{"error":"down"}'))
    with pytest.raises(RetryableError, match="503"):
        case.publisher().delete(case.account, receipt.platform_post_id)
    assert case.texts() == [TEXT]
    assert case.publisher().delete(case.account, receipt.platform_post_id) is True
    assert case.texts() == []


def test_a_reply_chain_goes_out_as_replies_to_the_parents_the_receipts_named(
    case: PlatformCase,
) -> None:
    first = case.publisher().publish(case.account, "Thread 1/3", idempotency_key="t-1")
    root = first.platform_post_id
    second = case.publisher().publish(
        case.account, "Thread 2/3", idempotency_key="t-2", reply_to=ReplyTarget(root, root)
    )
    third = case.publisher().publish(
        case.account,
        "Thread 3/3",
        idempotency_key="t-3",
        reply_to=ReplyTarget(second.platform_post_id, root),
    )
    parents = case.parents()
    assert parents[root] is None
    assert parents[second.platform_post_id] == root
    assert parents[third.platform_post_id] == second.platform_post_id
    # A crash after the reply went out: reconciliation finds it, a retry sends nothing.
    again = case.publisher().publish(
        case.account,
        "Thread 3/3",
        idempotency_key="t-3",
        reply_to=ReplyTarget(second.platform_post_id, root),
    )
    assert again.platform_post_id == third.platform_post_id
    assert case.texts() == ["Thread 1/3", "Thread 2/3", "Thread 3/3"]


#: A post id on each platform that names no post (the platform checks reply targets).
MISSING_POST = {
    "mastodon": "109876543210987654",
    "x": "1999999999999999999",
}


def test_a_reply_to_a_post_that_does_not_exist_is_permanent_and_posts_nothing(
    case: PlatformCase,
) -> None:
    missing = MISSING_POST.get(case.name) or (
        f"at://{case.account.remote_id}/app.bsky.feed.post/3kzzzzzzzzzzz"
    )
    with pytest.raises(PermanentError):
        case.publisher().publish(
            case.account,
            "Answering nothing",
            idempotency_key="r-missing",
            reply_to=ReplyTarget(missing, missing),
        )
    assert case.texts() == []
