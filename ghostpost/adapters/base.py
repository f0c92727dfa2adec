"""The Publisher protocol every platform adapter implements, and its two error kinds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ghostpost.domain.model import Account, MediaItem, ReplyTarget
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.services.publishing import Receipt

__all__ = [
    "Attempt",
    "AttemptStore",
    "Connection",
    "CredentialStore",
    "NotConnected",
    "PermanentError",
    "PlatformApp",
    "PlatformApps",
    "PublishError",
    "Publisher",
    "Receipt",
    "RetryableError",
]


class PublishError(Exception):
    """A platform refused or could not take a post."""


class RetryableError(PublishError):
    """Try again later with the same idempotency key (429, 5xx, timeouts)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PublishError):
    """The platform will never take this post as it is (validation, auth, forbidden)."""


class Publisher(Protocol):
    """Publishes exactly the text it is given, deduplicating on the idempotency key."""

    platform: str

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
        """Send the post (with its images in order, as a reply to `reply_to` when given);
        return the platform's receipt or raise a PublishError."""
        ...

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        """Find a post sent earlier under this key (crash reconciliation), or None."""
        ...

    def delete(self, account: Account, platform_post_id: str) -> bool:
        """Take the post back from the platform: True when it was removed now, False when it
        was already gone (idempotent); raise a PublishError when the platform refuses."""
        ...


class NotConnected(PermanentError):
    """The account has no stored platform credentials (connect it from the Accounts page)."""


class CredentialStore(Protocol):
    """The sealed platform tokens of each account; adapters never see the ciphertext."""

    def load(self, account: Account) -> dict[str, Any]:
        """Return the account's decrypted credentials; raise NotConnected if there are none."""
        ...

    def save(self, account: Account, credentials: dict[str, Any]) -> None:
        """Replace the account's credentials (e.g. after a token refresh), sealed."""
        ...


@dataclass(frozen=True)
class Attempt:
    """A send recorded before a non-idempotent platform was called."""

    idempotency_key: str
    account_id: int
    ref: str
    created_at: datetime


class AttemptStore(Protocol):
    """Durable record of sends, written (and committed) before the platform is called."""

    def find(self, idempotency_key: str) -> Attempt | None:
        """Return the attempt recorded under this key, if any."""
        ...

    def record(self, account: Account, idempotency_key: str, ref: str) -> Attempt:
        """Record an attempt, or return the one already recorded under this key (first wins)."""
        ...


@dataclass(frozen=True)
class Connection:
    """What connecting an account established: who it is on the platform, and its tokens."""

    platform: str
    #: ghostpost's handle for it: `user@instance` (Mastodon), `name.bsky.social`, `username` (X).
    handle: str
    #: The platform's own id (Mastodon account id, Bluesky DID, X user id).
    remote_id: str
    #: Mastodon instance or Bluesky PDS (None for X).
    base_url: str | None
    #: Secrets to seal (tokens, refresh tokens, app password); never logged or shown.
    credentials: dict[str, Any]
    #: The platform's limit for this account, when it reports one (Mastodon's instance).
    max_chars: int | None = None
    url_length: int | None = None

    def __repr__(self) -> str:
        # Keeps tokens out of logs and tracebacks that print the object.
        return f"Connection({self.platform!r}, {self.handle!r}, remote_id={self.remote_id!r})"


@dataclass(frozen=True)
class PlatformApp:
    """ghostpost's OAuth client on one instance."""

    platform: str
    base_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    #: The scopes it was registered with, space-separated ("" when stored before they were
    #: kept): an instance refuses to authorize any scope its app lacks.
    scopes: str = ""


class PlatformApps(Protocol):
    """OAuth apps registered per instance (ghostpost.db.platform_store keeps them, sealed)."""

    def find(self, platform: str, base_url: str) -> PlatformApp | None:
        """Return the app registered on this instance, if any."""
        ...

    def add(self, app: PlatformApp) -> PlatformApp:
        """Store a newly registered app; if another request stored one first, return that."""
        ...

    def replace(self, app: PlatformApp) -> PlatformApp:
        """Store `app` in place of the instance's app (registered anew with other scopes)."""
        ...
