"""Taking a published post back: request (short txn) -> platform (no txn) -> record (short txn).

The surfaces (the Mastodon face, the staff post page) and the worker call these; the rules and
the ledger live in ghostpost.services.deletion. The platform call happens between two
transactions, never inside one: a crash can leave a post only "being deleted" with a lease,
which the worker finishes (`finish_stale_deletions`) by deleting again, which is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ghostpost.adapters.base import PermanentError, PublishError, RetryableError
from ghostpost.bootstrap import Container
from ghostpost.domain.model import Post
from ghostpost.services import deletion, posts
from ghostpost.services.context import Actor
from ghostpost.services.deletion import DeletionClaim, NotPublished, PlatformAnswer

log = logging.getLogger("ghostpost.deletion")


@dataclass(frozen=True)
class Outcome:
    """Where a deletion (or a cancellation) ended."""

    post: Post
    #: The post was still queued: it was cancelled, nothing was on a platform.
    cancelled: bool = False
    #: The platform did not answer; the worker finishes the deletion.
    pending: bool = False
    #: The platform refused for good (the post is still out): its reason.
    refused: str | None = None


def carry_out(container: Container, claim: DeletionClaim) -> Outcome:
    """Call the platform for a claimed deletion and record its answer."""
    ctx = container.services
    try:
        publisher = container.publisher_for(claim.account)
        platform_post_id = claim.post.platform_post_id
        if not platform_post_id:
            raise PermanentError("ghostpost has no platform id for this post")
        removed = publisher.delete(claim.account, platform_post_id)
    except LookupError as exc:
        post = deletion.record_deletion_failed(ctx, claim, str(exc), retryable=False)
        return Outcome(post, refused=str(exc))
    except PermanentError as exc:
        post = deletion.record_deletion_failed(ctx, claim, str(exc), retryable=False)
        return Outcome(post, refused=str(exc))
    except (RetryableError, PublishError) as exc:
        post = deletion.record_deletion_failed(ctx, claim, str(exc), retryable=True)
        return Outcome(post, pending=True)
    except Exception as exc:
        # Unknown outcome: deleting again is harmless, so the worker simply tries again.
        log.exception("deleting post %s failed unexpectedly", claim.post.public_id)
        post = deletion.record_deletion_failed(
            ctx, claim, f"unexpected error: {exc}", retryable=True
        )
        return Outcome(post, pending=True)
    return Outcome(deletion.record_deleted(ctx, claim, PlatformAnswer(removed=removed)))


def delete_published_post(container: Container, actor: Actor, post_id: int) -> Outcome:
    """The principal deletes a published post (refused to anyone else); a replay of a finished
    deletion answers the post and changes nothing."""
    started = deletion.request_deletion(container.services, actor, post_id)
    if isinstance(started, Post):
        return Outcome(started)
    return carry_out(container, started)


def delete_or_cancel(container: Container, actor: Actor, post_id: int) -> Outcome:
    """Mastodon's DELETE of a status: a post not yet out is cancelled (by whoever may cancel
    it), a published one deleted (by its principal only)."""
    try:
        return delete_published_post(container, actor, post_id)
    except NotPublished:
        return Outcome(posts.cancel_post(container.services, actor, post_id), cancelled=True)


def finish_stale_deletions(container: Container) -> int:
    """Finish deletions a request did not (a crash, a platform that did not answer)."""
    finished = 0
    for claim in deletion.adopt_stale_deletions(container.services):
        outcome = carry_out(container, claim)
        if not outcome.pending:
            finished += 1
    return finished
