"""What the adapters check before uploading images, and how a post with images is recognised
again after a crash (the fingerprints lookup compares)."""

from __future__ import annotations

import hashlib

import pytest

from ghostpost.adapters import mastodon, x
from ghostpost.adapters.base import PermanentError
from ghostpost.adapters.media import check_media
from ghostpost.domain.media_rules import ImageRules
from ghostpost.domain.model import MediaItem

LIMITS = ImageRules(
    max_images=2,
    max_bytes=10,
    formats=frozenset({"image/png"}),
    max_side=None,
    max_pixels=None,
    max_alt_text=100,
)


def item(mime_type: str = "image/png", data: bytes = b"\x89PNG1234") -> MediaItem:
    return MediaItem(hashlib.sha256(data).hexdigest(), mime_type, data, "alt", 1, 1)


def test_check_media_names_each_reason_for_refusing() -> None:
    check_media("p", [item(), item()], LIMITS)
    with pytest.raises(PermanentError, match="at most 2 images per post, not 3"):
        check_media("p", [item()] * 3, LIMITS)
    with pytest.raises(PermanentError, match="does not take 'image/gif' images \\(image 2\\)"):
        check_media("p", [item(), item("image/gif")], LIMITS)
    with pytest.raises(PermanentError, match="image 1 is 11 bytes; p takes at most 10"):
        check_media("p", [item(data=b"x" * 11)], LIMITS)
    with pytest.raises(PermanentError, match="image 1 is empty"):
        check_media("p", [item(data=b"")], LIMITS)


def test_a_text_only_fingerprint_is_unchanged_so_stored_attempts_still_match() -> None:
    # Attempts recorded before images existed hold exactly these digests.
    assert (
        mastodon.text_fingerprint("  Hello @Alice@home.example ")
        == hashlib.sha256(b"Hello @alice").hexdigest()
    )
    assert mastodon.text_fingerprint("Hi", []) == mastodon.text_fingerprint("Hi")
    assert x.text_fingerprint("Hi", alt_texts=[]) == x.text_fingerprint("Hi")


def test_images_and_their_alt_texts_in_order_are_part_of_the_fingerprint() -> None:
    plain = mastodon.text_fingerprint("Hi")
    one = mastodon.text_fingerprint("Hi", ["a"])
    assert len({plain, one, mastodon.text_fingerprint("Hi", [""])}) == 3
    assert mastodon.text_fingerprint("Hi", ["a", "b"]) != mastodon.text_fingerprint(
        "Hi", ["b", "a"]
    )
    # Mastodon strips a description as it stores it; no description reads back as None.
    assert mastodon.text_fingerprint("Hi", [" a\n"]) == one
    assert mastodon.text_fingerprint("Hi", [None]) == mastodon.text_fingerprint("Hi", [""])


def test_x_drops_its_own_link_to_the_images_when_matching_a_tweet_with_images() -> None:
    sent = x.text_fingerprint("See https://example.com & more", alt_texts=["A chart"])
    returned = "See https://t.co/abc &amp; more https://t.co/pic"
    assert x.text_fingerprint(returned, from_x=True, alt_texts=["A chart"]) == sent
    # Without images X adds no link: the trailing URL is the author's and stays.
    assert x.text_fingerprint("Go https://t.co/a", from_x=True) == x.text_fingerprint(
        "Go https://example.com"
    )
    assert x.text_fingerprint(returned, from_x=True, alt_texts=["Another"]) != sent
