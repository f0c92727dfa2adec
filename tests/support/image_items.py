"""Tiny real images as the adapters receive them (MediaItem), built with Pillow."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from ghostpost.domain.model import MediaItem

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


def image_item(
    alt_text: str = "A red square",
    *,
    mime_type: str = "image/png",
    width: int = 3,
    height: int = 2,
    color: tuple[int, int, int] = (200, 30, 30),
) -> MediaItem:
    """A decodable image of `width` x `height` pixels in `mime_type`, named by its hash."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=_FORMATS[mime_type])
    data = buffer.getvalue()
    return MediaItem(
        content_hash=hashlib.sha256(data).hexdigest(),
        mime_type=mime_type,
        data=data,
        alt_text=alt_text,
        width=width,
        height=height,
    )


def distinct_images(count: int) -> list[MediaItem]:
    """`count` different images (sizes and colours differ), alt texts "Image 1".. in order."""
    return [
        image_item(
            f"Image {n}: a slide of the keynote",
            mime_type="image/jpeg" if n % 2 else "image/png",
            width=2 + n,
            height=1 + n,
            color=(40 * n, 100, 255 - 40 * n),
        )
        for n in range(1, count + 1)
    ]
