"""What each platform takes in images: how many per post, how big, which formats, how wide and
how long the alt text. Pure data and checks; decoding lives in ghostpost.images.

Every number names where it comes from. Where a platform documents nothing, the number is the
one its server or official client enforces, said so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

#: The formats ghostpost stores (after re-encoding): no platform here refuses any of them.
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
STORED_FORMATS = frozenset({JPEG, PNG, WEBP, GIF})

#: The largest image ghostpost decodes at all, in pixels, before any platform's limit:
#: anything larger is refused as a decompression bomb (Pillow warns at 89,478,485 by default).
MAX_DECODED_PIXELS = 40_000_000
#: The largest upload read, in bytes (larger than every platform's limit below).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: Alt text longer than any platform takes is refused at upload already.
MAX_ANY_ALT_TEXT = 2_000


@dataclass(frozen=True)
class ImageRules:
    """One platform's limits on the images of a post."""

    max_images: int
    max_bytes: int
    formats: frozenset[str]
    #: Largest width and height, in pixels (None: the platform states no such limit).
    max_side: int | None
    #: Largest width x height, in pixels (None: no such limit).
    max_pixels: int | None
    #: Longest alt text, in code points.
    max_alt_text: int


IMAGE_RULES: Mapping[str, ImageRules] = {
    "mastodon": ImageRules(
        # 4 attachments: Mastodon's `MAX_MEDIA_ATTACHMENTS` (app/services/post_status_service.rb),
        # `configuration.statuses.max_media_attachments` in /api/v2/instance.
        max_images=4,
        # 16 MB: docs.joinmastodon.org/user/posting/#media ("images ... up to 16 MB"),
        # `IMAGE_LIMIT = 16.megabytes` in app/models/media_attachment.rb.
        max_bytes=16 * 1024 * 1024,
        # The same page lists JPEG, PNG, GIF, WebP (and HEIC/HEIF/AVIF, which we do not store).
        formats=STORED_FORMATS,
        max_side=None,
        # app/models/media_attachment.rb `MAX_IMAGE_PIXELS = 33_177_600` (7680x4320); larger
        # images are refused by the server. Recalled from the source, not re-checked here.
        max_pixels=33_177_600,
        # app/models/media_attachment.rb `MAX_DESCRIPTION_LENGTH = 1_500`.
        max_alt_text=1_500,
    ),
    "bluesky": ImageRules(
        # lexicons/app/bsky/embed/images.json: `images` has `"maxLength": 4`.
        max_images=4,
        # Same lexicon: the image blob has `"maxSize": 1000000` (bytes) and accepts `image/*`.
        max_bytes=1_000_000,
        formats=STORED_FORMATS,
        # Older versions of the lexicon had maxWidth/maxHeight 2000; the AppView resizes larger
        # images, the blob itself is only size-limited. We keep 2000 (what the app uploads).
        max_side=2_000,
        max_pixels=None,
        # The lexicon sets no length on `alt`; the official app caps it at 2000 graphemes
        # (bluesky-social/social-app `MAX_ALT_TEXT`); counted here in code points (stricter).
        max_alt_text=2_000,
    ),
    "x": ImageRules(
        # docs.x.com/x-api/media/quickstart/best-practices: "up to 4 photos ... in a Post".
        max_images=4,
        # docs.x.com/x-api/media (Media types & size restrictions): "Image: 5 MB".
        max_bytes=5 * 1024 * 1024,
        # The media upload docs: JPG, PNG, GIF, WEBP.
        formats=STORED_FORMATS,
        # X's former upload docs: images at most 8192x8192 pixels.
        max_side=8_192,
        max_pixels=None,
        # POST /1.1/media/metadata/create: `alt_text.text` up to 1000 characters.
        max_alt_text=1_000,
    ),
    "local": ImageRules(
        # Our own Mastodon-compatible timeline: Mastodon's limits.
        max_images=4,
        max_bytes=16 * 1024 * 1024,
        formats=STORED_FORMATS,
        max_side=None,
        max_pixels=33_177_600,
        max_alt_text=1_500,
    ),
}


@dataclass(frozen=True)
class ImageFacts:
    """What the rules look at in one stored image."""

    mime_type: str
    size: int
    width: int
    height: int
    alt_text: str


def image_refusals(
    platform: str, images: Sequence[ImageFacts], *, alt_text_required: bool
) -> dict[str, str]:
    """The reasons a platform would refuse these images on one post, by field ({} = none)."""
    if not images:
        return {}
    rules = IMAGE_RULES.get(platform)
    if rules is None:
        return {"media_ids": f"{platform} takes no images"}
    refused: dict[str, str] = {}
    if len(images) > rules.max_images:
        refused["media_ids"] = (
            f"{len(images)} images; {platform} takes at most {rules.max_images} per post"
        )
    for position, image in enumerate(images):
        key = f"media_ids[{position}]"
        if image.mime_type not in rules.formats:
            refused[key] = f"{platform} does not take {image.mime_type}"
        elif image.size > rules.max_bytes:
            refused[key] = f"{image.size} bytes; {platform} takes at most {rules.max_bytes}"
        elif rules.max_side is not None and max(image.width, image.height) > rules.max_side:
            refused[key] = (
                f"{image.width}x{image.height} pixels; {platform} takes at most "
                f"{rules.max_side} on a side"
            )
        elif rules.max_pixels is not None and image.width * image.height > rules.max_pixels:
            refused[key] = (
                f"{image.width * image.height} pixels; {platform} takes at most {rules.max_pixels}"
            )
        elif len(image.alt_text) > rules.max_alt_text:
            refused[key] = (
                f"alt text of {len(image.alt_text)} characters; {platform} takes at most "
                f"{rules.max_alt_text}"
            )
        elif alt_text_required and not image.alt_text.strip():
            refused[key] = "alt text (description) is required"
    return refused


@dataclass(frozen=True)
class CleanImage:
    """An image as ghostpost stores and sends it: decoded, turned upright and re-encoded
    without any metadata, named by the SHA-256 of exactly these bytes."""

    data: bytes
    mime_type: str
    width: int
    height: int
    content_hash: str


class ImageRefused(ValueError):
    """An upload ghostpost does not take as an image; the message says why."""


@dataclass(frozen=True)
class MediaUpload:
    """An uploaded image: who uploaded it, what it is, and the post it went to (if any)."""

    id: int
    #: The id clients see (random, unguessable).
    public_id: str
    #: `client:<id>` or `user:<id>`: only this uploader may describe it or attach it.
    uploaded_by: str
    content_hash: str
    mime_type: str
    width: int
    height: int
    size: int
    alt_text: str
    created_at: datetime
    post_id: int | None = None

    def facts(self) -> ImageFacts:
        """What the platform rules look at."""
        return ImageFacts(self.mime_type, self.size, self.width, self.height, self.alt_text)


@dataclass(frozen=True)
class PostImage:
    """One image of a post, as approved and sent (the bytes are the store's `content_hash`)."""

    position: int
    content_hash: str
    alt_text: str
    mime_type: str
    width: int
    height: int
    size: int
    #: The upload it was attached from (its public id), for the APIs' media ids.
    media_id: str = ""

    def to_record(self) -> dict[str, object]:
        """The image as the ledger and the exports name it."""
        return {
            "hash": self.content_hash,
            "alt_text": self.alt_text,
            "mime_type": self.mime_type,
            "width": self.width,
            "height": self.height,
        }
