"""Decoding, cleaning and storing images (ghostpost.images, ghostpost.media_store)."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from ghostpost.domain.media_rules import ImageFacts, ImageRefused, image_refusals
from ghostpost.images import normalise
from ghostpost.media_store import FileMediaStore
from ghostpost.services.errors import MediaUnavailable
from tests.support import images


def test_gps_exif_and_comments_are_gone_after_cleaning() -> None:
    raw = images.jpeg_with_gps()
    assert b"PhoneMaker" in raw and b"secret comment" in raw
    clean = normalise(raw)
    assert clean.mime_type == "image/jpeg"
    assert b"PhoneMaker" not in clean.data and b"secret comment" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as reopened:
        assert not reopened.getexif()
        assert "exif" not in reopened.info and "comment" not in reopened.info
    assert clean.content_hash == hashlib.sha256(clean.data).hexdigest()


def test_the_exif_orientation_is_applied_before_it_is_stripped() -> None:
    clean = normalise(images.jpeg_with_gps(width=4, height=2, orientation=6))
    assert (clean.width, clean.height) == (2, 4)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (images.SVG_AS_PNG, "not a JPEG, PNG, WebP or GIF"),
        (images.HTML_AS_PNG, "not a JPEG, PNG, WebP or GIF"),
        (images.animated_gif(), "animated images are not supported"),
        (images.bomb_png(), "decompression bomb"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "cannot be decoded"),
        (b"", "empty"),
    ],
    ids=["svg", "html", "animated-gif", "bomb", "truncated-png", "empty"],
)
def test_what_is_not_a_plain_image_is_refused_by_name(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRefused, match=reason):
        normalise(data)


def test_a_static_gif_is_stored_as_png() -> None:
    out = io.BytesIO()
    Image.new("P", (2, 2), 3).save(out, format="GIF", comment=b"hidden")
    clean = normalise(out.getvalue())
    assert clean.mime_type == "image/png" and b"hidden" not in clean.data


def test_the_store_reads_back_only_what_it_wrote(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = FileMediaStore(tmp_path / "media")
    data = normalise(images.png()).data
    content_hash = store.put(data)
    assert store.put(data) == content_hash
    assert store.read(content_hash) == data
    store.path(content_hash).write_bytes(data + b"tampered")
    with pytest.raises(MediaUnavailable, match="altered"):
        store.read(content_hash)
    store.path(content_hash).unlink()
    with pytest.raises(MediaUnavailable, match="missing"):
        store.read(content_hash)
    with pytest.raises(MediaUnavailable, match="not a SHA-256"):
        store.read("../../etc/passwd")
    assert not list((tmp_path / "media").rglob(".incoming-*"))


def test_platform_rules_count_size_and_alt_text() -> None:
    one = ImageFacts("image/png", 10, 10, 10, "a chart")
    assert image_refusals("bluesky", [one] * 4, alt_text_required=True) == {}
    assert "at most 4" in image_refusals("x", [one] * 5, alt_text_required=True)["media_ids"]
    big = ImageFacts("image/png", 1_000_001, 10, 10, "a chart")
    assert "1000000" in image_refusals("bluesky", [big], alt_text_required=True)["media_ids[0]"]
    bare = ImageFacts("image/png", 10, 10, 10, " ")
    assert "required" in image_refusals("mastodon", [bare], alt_text_required=True)["media_ids[0]"]
    assert image_refusals("mastodon", [bare], alt_text_required=False) == {}
    long_alt = ImageFacts("image/png", 10, 10, 10, "a" * 1001)
    assert "1000" in image_refusals("x", [long_alt], alt_text_required=True)["media_ids[0]"]
