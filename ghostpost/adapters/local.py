"""The `local` platform adapter: posts land on ghostpost's own public timeline at /@<handle>."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ghostpost.adapters.base import PermanentError, Receipt
from ghostpost.domain.model import Account, MediaItem, ReplyTarget
from ghostpost.domain.post_options import PLAIN, PostOptions, refusals


@dataclass(frozen=True)
class LocalImage:
    """One image of a local status: its bytes are ghostpost's media store's `content_hash`
    (the local platform is ghostpost itself, so it shares the store)."""

    content_hash: str
    alt_text: str
    mime_type: str
    width: int
    height: int

    @classmethod
    def of(cls, item: MediaItem) -> LocalImage:
        return cls(item.content_hash, item.alt_text, item.mime_type, item.width, item.height)


@dataclass(frozen=True)
class LocalStatus:
    """One status on the local platform."""

    id: int
    handle: str
    text: str
    created_at: datetime
    #: Shown in front of the text, which waits behind a click; "" for none.
    content_warning: str = ""
    #: "public" or "unlisted" (on the account's page, marked; on no shared timeline).
    visibility: str = "public"
    language: str | None = None
    sensitive: bool = False
    #: The images, in order.
    media: tuple[LocalImage, ...] = ()
    #: The local status this one answers, or None.
    in_reply_to_id: int | None = None


class LocalStatuses(Protocol):
    """Where the local platform keeps its statuses (ghostpost.db.local_platform)."""

    def create(
        self,
        handle: str,
        text: str,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        media: Sequence[LocalImage] = (),
        in_reply_to_id: int | None = None,
    ) -> LocalStatus:
        """Store a status (a reply to `in_reply_to_id`, which must exist: else ValueError), or
        return the one already stored under this key (as it was stored)."""
        ...

    def find(self, idempotency_key: str) -> LocalStatus | None:
        """Return the status stored under this key, if any."""
        ...

    def delete(self, handle: str, status_id: int) -> bool:
        """Remove one status of a handle; False when it is not there (already removed)."""
        ...


class LocalPublisher:
    """Publishes to the local timeline; idempotent on the key, like Mastodon's Idempotency-Key."""

    platform = "local"

    def __init__(self, store: LocalStatuses, public_url: str) -> None:
        self._store = store
        self._public_url = public_url.rstrip("/")

    def _receipt(self, status: LocalStatus) -> Receipt:
        return Receipt(
            platform_post_id=str(status.id),
            url=f"{self._public_url}/@{status.handle}/{status.id}",
        )

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        media: Sequence[MediaItem] = (),
        reply_to: ReplyTarget | None = None,
    ) -> Receipt:
        """Create the status with `options` (the content warning as decided, tag included), its
        images and the status it answers, or return the one already made under this key."""
        refused = refusals(self.platform, options)
        if refused:
            # The service refuses these (a followers-only post) before storing; a post that got
            # here anyway must not go out without what it asked for, nor to readers it did not.
            raise PermanentError(f"{self.platform} cannot honour {', '.join(sorted(refused))}")
        if account.platform != self.platform:
            raise PermanentError(f"account {account.handle} is not on the local platform")
        if not text.strip() and not media:
            raise PermanentError("empty status")  # images alone are a status, as on Mastodon
        images = [LocalImage.of(item) for item in media]
        parent = _local_parent(reply_to)
        try:
            status = self._store.create(
                account.handle, text, idempotency_key, options, images, in_reply_to_id=parent
            )
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc
        return self._receipt(status)

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        """Return the status created under this key, if the platform has it."""
        status = self._store.find(idempotency_key)
        return self._receipt(status) if status is not None else None

    def delete(self, account: Account, platform_post_id: str) -> bool:
        """Remove the status from the account's public timeline (gone from /@<handle>)."""
        if account.platform != self.platform:
            raise PermanentError(f"account {account.handle} is not on the local platform")
        if not (platform_post_id.isascii() and platform_post_id.isdigit()):
            raise PermanentError(f"{platform_post_id!r} is not a local status id")
        return self._store.delete(account.handle, int(platform_post_id))


def _local_parent(reply_to: ReplyTarget | None) -> int | None:
    """The local status id a reply answers (local replies need only the parent, as Mastodon's)."""
    if reply_to is None:
        return None
    if not (reply_to.parent_id.isascii() and reply_to.parent_id.isdigit()):
        raise PermanentError(f"{reply_to.parent_id!r} is not a local status id")
    return int(reply_to.parent_id)
