"""The Publisher protocol every platform adapter implements, and its two error kinds."""

from __future__ import annotations

from typing import Protocol

from ghostpost.domain.model import Account
from ghostpost.services.publishing import Receipt

__all__ = ["PermanentError", "PublishError", "Publisher", "Receipt", "RetryableError"]


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

    def publish(self, account: Account, text: str, *, idempotency_key: str) -> Receipt:
        """Send the post; return the platform's receipt or raise a PublishError."""
        ...

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        """Find a post sent earlier under this key (crash reconciliation), or None."""
        ...
