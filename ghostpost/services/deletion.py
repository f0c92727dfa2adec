"""Use cases of taking a published post back: request (short txn) -> platform call (no txn) ->
record (short txn), as publishing does (services.publishing).

Only the principal of the post's account deletes a published post, and only in person: signed
in to the staff app, or through a Mastodon app they signed in to themselves. Writers, managers,
admins and API clients are refused: what went out under the principal's name is theirs to take
back, and an agency must not be able to erase what it published for them.

The post keeps its history. Its state stays `published` (it went out, was seen, and counted
toward its window's reminder cadence, which deleting does not change); the row gains who asked
and when the platform confirmed it gone, and the ledger gains `post:deletion_requested` (who
asked, and the writer it was written by) and `post:deleted` (the platform's answer).

The request is committed before the platform is called. A crash after it leaves the post
"being deleted" with a lease; when the lease runs out the worker adopts it and calls the
platform again (`adopt_stale_deletions`). That is safe because deleting is idempotent: a post
already gone counts as deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, Post, User
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from ghostpost.services.authz import require_user
from ghostpost.services.context import SYSTEM_WORKER, Actor, ServiceContext, user_summary
from ghostpost.services.errors import Conflict, Forbidden, NotFound
from ghostpost.services.ports import UnitOfWork

#: How long a request owns its platform call before the worker may make it instead.
DELETION_LEASE = timedelta(minutes=2)
#: How long after a retryable failure the worker tries again.
RETRY_AFTER = timedelta(minutes=1)

PRINCIPAL_ONLY = (
    "Only the principal of this account may delete a published post, signed in as themselves "
    "(the staff app, or a Mastodon app they signed in to). Writers, managers and API clients "
    "may not take back what went out under the principal's name."
)


class NotPublished(Conflict):
    """The post has not gone out: there is nothing on a platform to delete (cancel it)."""


@dataclass(frozen=True)
class DeletionClaim:
    """A deletion the caller now makes on the platform, until `lease_until`."""

    post: Post
    account: Account
    #: Who the outcome entry names as acting: the principal, or the worker that finished it.
    actor_ref: str
    lease_until: datetime


@dataclass(frozen=True)
class PlatformAnswer:
    """What the platform said to a deletion."""

    #: False: the post was already gone (deleted on the platform itself, or by an earlier try).
    removed: bool


def _require_principal_in_person(actor: Actor, account: Account) -> User:
    if actor.user is None:
        # An API client (a scheduler's token) acts for nobody in particular.
        raise Forbidden(PRINCIPAL_ONLY)
    user = require_user(actor)
    if not user.is_principal_of(account) or actor.ref != f"user:{user.id}":
        raise Forbidden(PRINCIPAL_ONLY)
    return user


def _get(uow: UnitOfWork, actor: Actor, post_id: int) -> tuple[Post, Account]:
    post = uow.posts.get(post_id)
    # An actor limited to some accounts may not learn that another account's post exists.
    if post is None or not actor.may_use_account(post.account_id):
        raise NotFound(f"No post {post_id}.")
    account = uow.accounts.get(post.account_id)
    assert account is not None
    return post, account


def request_deletion(ctx: ServiceContext, actor: Actor, post_id: int) -> DeletionClaim | Post:
    """The principal asks to delete a published post: recorded (with the ledger entry naming
    them and the post's writer) before the platform is called. Returns the claim to carry
    out, or the post itself when the platform already confirmed it gone (a replay: nothing
    is recorded again). Raises NotPublished for a post that has not gone out."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post, account = _get(uow, actor, post_id)
        if post.state is not PostState.PUBLISHED:
            raise NotPublished(
                f"A {post.state} post is not on the platform; cancel it instead of deleting it."
            )
        user = _require_principal_in_person(actor, account)
        if post.kind is not PostKind.REGULAR:
            raise Conflict(
                "A window's notice and reminders are its disclosure: they are not deleted."
            )
        if post.is_deleted:
            return post
        lease_until = now + DELETION_LEASE
        if post.deletion_requested_at is None:
            post = uow.posts.request_deletion(
                post.id, requested_by=user.id, at=now, lease_until=lease_until
            )
            author = uow.users.get(post.author_id)
            uow.ledger.append(
                tag=LedgerTag.POST_DELETION_REQUESTED,
                actor=actor.ref,
                subject=f"post:{post.public_id}",
                data={
                    "requested_by": user_summary(user),
                    "via": actor.via,
                    # The writer stays the writer: deleting does not make the post the
                    # principal's (a delegated post stays delegated in the record).
                    "writer": user_summary(author) if author is not None else None,
                    "delegated": post.is_delegated,
                    "platform_post_id": post.platform_post_id,
                    "platform_url": post.platform_url,
                },
                occurred_at=now,
            )
        else:
            # Asked before and not confirmed (a replay, or a try that did not finish): try the
            # platform again; the first request's entry already says who asked.
            post = uow.posts.lease_deletion(post.id, lease_until=lease_until)
        uow.commit()
    return DeletionClaim(post, account, actor.ref, lease_until)


def record_deleted(ctx: ServiceContext, claim: DeletionClaim, answer: PlatformAnswer) -> Post:
    """Record the platform's confirmation; a second confirmation records nothing."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post = uow.posts.get(claim.post.id)
        assert post is not None
        if post.is_deleted:
            return post
        if post.deletion_requested_at is None:
            # A concurrent try was refused for good and dropped the request, yet this one
            # removed the post: the platform's answer wins, with the request as first made.
            asked = claim.post
            assert asked.deletion_requested_at is not None
            assert asked.deletion_requested_by is not None
            uow.posts.request_deletion(
                post.id,
                requested_by=asked.deletion_requested_by,
                at=asked.deletion_requested_at,
                lease_until=now,
            )
        post = uow.posts.mark_deleted(post.id, at=now)
        requester = (
            uow.users.get(post.deletion_requested_by) if post.deletion_requested_by else None
        )
        author = uow.users.get(post.author_id)
        uow.ledger.append(
            tag=LedgerTag.POST_DELETED,
            actor=claim.actor_ref,
            subject=f"post:{post.public_id}",
            data={
                "requested_by": user_summary(requester) if requester is not None else None,
                "writer": user_summary(author) if author is not None else None,
                "platform_post_id": post.platform_post_id,
                "answer": "deleted" if answer.removed else "already gone",
                "reconciled": claim.actor_ref == SYSTEM_WORKER,
            },
            occurred_at=now,
        )
        uow.commit()
    return post


def record_deletion_failed(
    ctx: ServiceContext, claim: DeletionClaim, error: str, *, retryable: bool
) -> Post:
    """Record a platform that did not delete: retried later by the worker (the request stays),
    or, refused for good, the post stays out as it was and the request is dropped."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post = uow.posts.get(claim.post.id)
        assert post is not None
        if not post.is_being_deleted:
            return post  # another try confirmed it meanwhile
        if retryable:
            # No entry: an outage would write one a minute. The post shows it is being
            # deleted, and the entry of the confirmation (or refusal) ends it.
            post = uow.posts.lease_deletion(post.id, lease_until=now + RETRY_AFTER)
            uow.commit()
            return post
        post = uow.posts.drop_deletion(post.id)
        uow.ledger.append(
            tag=LedgerTag.POST_DELETION_FAILED,
            actor=claim.actor_ref,
            subject=f"post:{post.public_id}",
            data={"error": error},
            occurred_at=now,
        )
        uow.commit()
    return post


def adopt_stale_deletions(ctx: ServiceContext) -> list[DeletionClaim]:
    """Take over deletions asked for and not confirmed whose lease ran out (a crash, or a
    platform that did not answer), for the worker to call the platform again."""
    now = ctx.clock.now()
    lease_until = now + DELETION_LEASE
    claims = []
    with ctx.uow() as uow:
        for post in uow.posts.stale_deletions(now):
            account = uow.accounts.get(post.account_id)
            assert account is not None
            post = uow.posts.lease_deletion(post.id, lease_until=lease_until)
            claims.append(DeletionClaim(post, account, SYSTEM_WORKER, lease_until))
        uow.commit()
    return claims


def may_delete(user: User | None, post: Post, account: Account) -> bool:
    """Tell whether `user`, signed in in person, may delete `post` from its platform now (the
    staff post page shows the button only then; request_deletion decides)."""
    return (
        user is not None
        and user.is_active
        and user.is_principal_of(account)
        and post.kind is PostKind.REGULAR
        and post.state is PostState.PUBLISHED
        and not post.is_deleted
    )
