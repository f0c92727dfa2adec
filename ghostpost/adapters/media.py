"""What the platform adapters share about images: what each platform takes, checked before
anything is uploaded, and the hook a crash test arms between upload and post creation.

The media store has already checked and stripped each image for the account's platform; an
adapter still refuses what its platform cannot take (more images, another format, too many
bytes), because a post must never go out without the images it was approved with, and an
upload the platform refuses halfway would leave the post half-sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ghostpost.adapters.base import PermanentError
from ghostpost.domain.media_rules import ImageRules
from ghostpost.domain.model import MediaItem

__all__ = ["UploadHook", "check_media", "file_name"]

#: Called by an adapter after every image of a post is uploaded and before the post is created
#: (None in production). Crash tests set it to die exactly there.
UploadHook = Callable[[], None]

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


def check_media(platform: str, media: Sequence[MediaItem], rules: ImageRules) -> None:
    """Refuse (PermanentError naming the reason) images the platform would not take, by the
    same rules (domain.media_rules) the submission was checked against."""
    if len(media) > rules.max_images:
        raise PermanentError(
            f"{platform} takes at most {rules.max_images} images per post, not {len(media)}"
        )
    for position, item in enumerate(media, start=1):
        if item.mime_type not in rules.formats:
            raise PermanentError(
                f"{platform} does not take {item.mime_type!r} images (image {position}); "
                f"it takes {', '.join(sorted(rules.formats))}"
            )
        if len(item.data) > rules.max_bytes:
            raise PermanentError(
                f"image {position} is {len(item.data)} bytes; {platform} takes at most "
                f"{rules.max_bytes}"
            )
        if not item.data:
            raise PermanentError(f"image {position} is empty")


def file_name(item: MediaItem, position: int) -> str:
    """A neutral upload file name (never the user's own: it could say more than the image)."""
    return f"image{position}.{_EXTENSIONS.get(item.mime_type, 'bin')}"
