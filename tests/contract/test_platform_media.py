"""Images with alt text on every platform, over real HTTP (Mastodon and X: protocol-faithful
servers that check what the real APIs check; Bluesky: a real PDS), exactly once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from ghostpost.adapters.base import PermanentError, RetryableError
from ghostpost.adapters.mastodon import MastodonPublisher
from ghostpost.domain.model import MediaItem
from tests.support.fault_proxy import Fault
from tests.support.image_items import distinct_images, image_item
from tests.support.platforms import STALL_TIMEOUT_SECONDS, PlatformCase

pytestmark = pytest.mark.slow

TEXT = "Slides from the keynote #team"
#: The call that uploads one image, per platform (where faults are injected).
UPLOAD_PATH = {
    "mastodon": "/api/v2/media",
    "bluesky": "com.atproto.repo.uploadBlob",
    "x": "/2/media/upload",
}


def expected(media: list[MediaItem]) -> list[tuple[str, int, int]]:
    return [(m.alt_text, m.width, m.height) for m in media]


def uploads(case: PlatformCase) -> int:
    return sum(1 for _, path in case.proxy.forwarded if UPLOAD_PATH[case.name] in path)


@pytest.mark.parametrize("count", [1, 4])
def test_a_post_carries_its_images_in_order_with_alt_text_and_size(
    case: PlatformCase, count: int
) -> None:
    media = distinct_images(count)
    receipt = case.publisher().publish(case.account, TEXT, idempotency_key="img-1", media=media)
    assert receipt.platform_post_id
    assert case.texts() == [TEXT]
    # Width and height come from the server decoding the bytes (Mastodon, X) or from the
    # record's aspectRatio (Bluesky): both must be the image's own.
    assert case.images() == [expected(media)]


def test_the_adapter_refuses_a_fifth_image_before_uploading_anything(case: PlatformCase) -> None:
    with pytest.raises(PermanentError, match="at most 4 images"):
        case.publisher().publish(
            case.account, TEXT, idempotency_key="five", media=distinct_images(5)
        )
    assert uploads(case) == 0
    assert case.texts() == []


@pytest.mark.parametrize("mime_type", ["image/tiff", "image/svg+xml", "application/pdf"])
def test_the_adapter_refuses_a_type_it_does_not_send(case: PlatformCase, mime_type: str) -> None:
    item = image_item()
    odd = MediaItem(item.content_hash, mime_type, item.data, item.alt_text, 3, 2)
    with pytest.raises(PermanentError, match=re.escape(f"does not take '{mime_type}'")):
        case.publisher().publish(case.account, TEXT, idempotency_key="odd", media=[odd])
    assert uploads(case) == 0
    assert case.texts() == []


#: What each server takes as alt text (Bluesky's lexicon sets no limit on `alt`).
ALT_LIMIT = {"mastodon": 1500, "x": 1000}


def test_alt_text_at_the_limit_passes_and_one_more_is_refused_by_the_server(
    case: PlatformCase,
) -> None:
    limit = ALT_LIMIT.get(case.name)
    if limit is None:
        long_alt = image_item("é" * 3000)
        case.publisher().publish(case.account, TEXT, idempotency_key="alt", media=[long_alt])
        assert case.images() == [expected([long_alt])]
        return
    at_limit = image_item("a" * limit)
    case.publisher().publish(case.account, "At the limit", idempotency_key="ok", media=[at_limit])
    over = image_item("b" * (limit + 1))
    with pytest.raises(PermanentError, match="HTTP 4"):
        case.publisher().publish(case.account, TEXT, idempotency_key="over", media=[over])
    assert case.texts() == ["At the limit"], "refused post: nothing, not even its text"


def _server_refuses_five(case: PlatformCase) -> requests.Response:
    """Upload five images and create a post with all of them, straight to the server."""
    credentials = case.container.credentials.load(case.account)
    media = distinct_images(5)
    if case.name == "mastodon":
        auth = {"Authorization": f"Bearer {credentials['access_token']}"}
        base = case.account.base_url
        ids = [
            requests.post(
                f"{base}/api/v2/media",
                headers=auth,
                files={"file": ("i.png", m.data, m.mime_type)},
                data={"description": m.alt_text},
                timeout=10,
            ).json()["id"]
            for m in media
        ]
        return requests.post(
            f"{base}/api/v1/statuses",
            headers=auth,
            json={"status": TEXT, "media_ids": ids},
            timeout=10,
        )
    if case.name == "x":
        auth = {"Authorization": f"Bearer {credentials['access_token']}"}
        api = case.container.settings.x_api_url
        ids = [
            requests.post(
                f"{api}/2/media/upload",
                headers=auth,
                files={"media": ("i.png", m.data, m.mime_type)},
                data={"media_category": "tweet_image"},
                timeout=10,
            ).json()["data"]["id"]
            for m in media
        ]
        return requests.post(
            f"{api}/2/tweets",
            headers=auth,
            json={"text": TEXT, "media": {"media_ids": ids}},
            timeout=10,
        )
    pds = case.account.base_url
    auth = {"Authorization": f"Bearer {credentials['access_jwt']}"}
    images: list[dict[str, Any]] = []
    for m in media:
        blob = requests.post(
            f"{pds}/xrpc/com.atproto.repo.uploadBlob",
            headers={**auth, "Content-Type": m.mime_type},
            data=m.data,
            timeout=10,
        ).json()["blob"]
        images.append({"image": blob, "alt": m.alt_text})
    return requests.post(
        f"{pds}/xrpc/com.atproto.repo.createRecord",
        headers=auth,
        json={
            "repo": case.account.remote_id,
            "collection": "app.bsky.feed.post",
            "validate": True,
            "record": {
                "$type": "app.bsky.feed.post",
                "text": TEXT,
                "createdAt": "2026-12-06T10:00:00.000Z",
                "embed": {"$type": "app.bsky.embed.images", "images": images},
            },
        },
        timeout=10,
    )


def test_the_server_itself_refuses_a_fifth_image(case: PlatformCase) -> None:
    refused = _server_refuses_five(case)
    assert refused.status_code in (400, 422), refused.text
    assert case.texts() == []


def test_a_failed_upload_sends_no_post_and_the_retry_posts_once_with_its_images(
    case: PlatformCase,
) -> None:
    media = distinct_images(2)
    case.proxy.inject(Fault("POST", UPLOAD_PATH[case.name], status=503, body='{"error":"down"}'))
    with pytest.raises(RetryableError, match="503"):
        case.publisher().publish(case.account, TEXT, idempotency_key="up-1", media=media)
    assert case.texts() == [], "never text-only when the post carries images"
    case.publisher().publish(case.account, TEXT, idempotency_key="up-1", media=media)
    case.publisher().publish(case.account, TEXT, idempotency_key="up-1", media=media)
    assert case.texts() == [TEXT]
    assert case.images() == [expected(media)]


def test_a_refused_upload_is_permanent_and_sends_no_post(case: PlatformCase) -> None:
    case.proxy.inject(
        Fault("POST", UPLOAD_PATH[case.name], status=400, body='{"error":"bad image"}')
    )
    with pytest.raises(PermanentError):
        case.publisher().publish(case.account, TEXT, idempotency_key="up-2", media=[image_item()])
    assert case.texts() == []


@pytest.mark.platform_timeout(STALL_TIMEOUT_SECONDS)
def test_a_timeout_after_the_platform_took_the_post_finds_it_with_its_images(
    case: PlatformCase,
) -> None:
    create = {"mastodon": "/api/v1/statuses", "bluesky": "createRecord", "x": "/2/tweets"}
    case.proxy.inject(Fault("POST", create[case.name], stall_seconds=STALL_TIMEOUT_SECONDS + 1.0))
    media = distinct_images(3)
    with pytest.raises(RetryableError, match="timed out"):
        case.publisher().publish(case.account, TEXT, idempotency_key="slow", media=media)
    assert case.texts() == [TEXT]
    # Reconciliation (a restarted worker) finds the post, media included in what it matches.
    found = case.publisher().lookup(case.account, idempotency_key="slow")
    assert found is not None
    retried = case.publisher().publish(case.account, TEXT, idempotency_key="slow", media=media)
    assert retried == found
    assert case.texts() == [TEXT]
    assert case.images() == [expected(media)]


def test_lookup_does_not_take_the_same_text_without_the_images_for_the_post(
    case: PlatformCase,
) -> None:
    if case.name == "bluesky":
        pytest.skip("Bluesky's lookup reads the record at its own rkey; no text matching")
    # The post with images was attempted (its upload failed), and the same words went out
    # without images some other way: that tweet/status is not this post.
    case.proxy.inject(Fault("POST", UPLOAD_PATH[case.name], status=503, body="{}"))
    with pytest.raises(RetryableError):
        case.publisher().publish(
            case.account, TEXT, idempotency_key="with-images", media=[image_item()]
        )
    if case.name == "x":
        case.server.add_tweet(case.account.remote_id, TEXT)  # typed on x.com: nobody's claim
    else:
        case.publisher().publish(case.account, TEXT, idempotency_key="plain")
    assert case.texts() == [TEXT]
    assert case.publisher().lookup(case.account, idempotency_key="with-images") is None


def test_mastodon_waits_for_an_image_still_processing(case: PlatformCase) -> None:
    if case.name != "mastodon":
        pytest.skip("only Mastodon processes uploads in the background (202)")
    case.server.media_processing_polls = 3
    publisher = case.publisher()
    assert isinstance(publisher, MastodonPublisher)
    waits: list[float] = []
    publisher.sleep = waits.append
    publisher.publish(case.account, TEXT, idempotency_key="slow-img", media=[image_item()])
    assert len(waits) == 3
    assert case.images() == [expected([image_item()])]


def test_mastodon_gives_up_on_an_image_that_never_finishes_and_posts_nothing(
    case: PlatformCase,
) -> None:
    if case.name != "mastodon":
        pytest.skip("only Mastodon processes uploads in the background (202)")
    case.server.media_processing_polls = 10_000
    publisher = case.publisher()
    assert isinstance(publisher, MastodonPublisher)
    publisher.sleep = lambda _seconds: None
    with pytest.raises(RetryableError, match="still processing"):
        publisher.publish(case.account, TEXT, idempotency_key="stuck", media=[image_item()])
    assert case.texts() == []


def test_mastodon_takes_images_without_text(case: PlatformCase) -> None:
    if case.name != "mastodon":
        pytest.skip("Mastodon's rule: a status with media may have no text")
    media = [image_item("Only a picture")]
    case.publisher().publish(case.account, "", idempotency_key="no-text", media=media)
    assert case.texts() == [""]
    assert case.images() == [expected(media)]
