"""Delegation ends when it is withdrawn: a post never goes out under a grant that was taken back.

A delegated post is written under two grants: its writer may write for the account (active and
assigned), and, when an API client submitted it, that client is active (and so is its owner).
When a grant is withdrawn, the posts written under it that are not out yet (scheduled, awaiting
approval or held; a post in flight is left to the worker) go back to `held` with the reason, a
`hold` marker in their decisions and a `post:withdrawn` ledger entry. Nothing releases them on
its own (not the notice going out, not the grant coming back): a manager or the principal
releases them once the grant is restored, or cancels them. The worker checks the grants again
before every publication, so a post flipped back to `scheduled` behind the app's back is held
again rather than published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, ApiClient, ClientStanding, Post, User
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState, transition
from ghostpost.services import notifications
from ghostpost.services.authz import may_author, may_author_if, may_manage, require_user
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Conflict, Forbidden, NotFound
from ghostpost.services.ports import UnitOfWork

#: The `kind` of the `hold` marker a withdrawal leaves in a post's decisions.
HOLD_KIND = "grant_withdrawn"
_RESTORE_OR_CANCEL = "a manager may {restore} and release it, or cancel it"


class Grant(StrEnum):
    """What was withdrawn: the writer's assignment, the writer themself, or the API client."""

    ASSIGNMENT = "assignment"
    USER = "user"
    CLIENT = "client"


@dataclass(frozen=True)
class Withdrawal:
    """Why posts written under a grant must not go out, as people read it and as recorded."""

    grant: Grant
    #: The post's `state_reason` while it is held.
    reason: str
    #: Said when someone asks to release the post while the grant is still withdrawn.
    refusal: str
    #: Which grant: user_id / account_id / client_id, kept in the marker and the ledger entry.
    details: dict[str, Any]


def withdrawn_hold(post: Post) -> dict[str, Any] | None:
    """Return the marker of a post held because its grant was withdrawn, else None."""
    marker = post.decisions.get("hold")
    if post.state is not PostState.HELD or not isinstance(marker, dict):
        return None
    return marker if marker.get("kind") == HOLD_KIND else None


def may_release(user: User | None, post: Post, account: Account) -> bool:
    """Tell whether `user` may release `post` now: it is held for a withdrawn grant and they
    manage the account (a manager, an admin or its principal; never the writer alone)."""
    return user is not None and withdrawn_hold(post) is not None and may_manage(user, account)


def _unassigned(user: User, account: Account, *, now_true: bool = False) -> Withdrawal:
    restore = _RESTORE_OR_CANCEL.format(restore="reassign them")
    what = "is not assigned to" if now_true else "was unassigned from"
    return Withdrawal(
        Grant.ASSIGNMENT,
        f"held: {user.name} {what} @{account.handle}; {restore}",
        f"{user.name} is still not assigned to @{account.handle}: assign them again first, "
        "or cancel the post.",
        {"user_id": user.id, "account_id": account.id},
    )


def _deactivated(name: str, user_id: int, *, now_true: bool = False) -> Withdrawal:
    restore = _RESTORE_OR_CANCEL.format(restore="have them reactivated")
    what = "is deactivated" if now_true else "was deactivated"
    return Withdrawal(
        Grant.USER,
        f"held: {name} {what}; {restore}",
        f"{name} is still deactivated: an admin must reactivate them first, or cancel the post.",
        {"user_id": user_id},
    )


def _revoked(name: str, client_id: str, why: str, *, owner: str | None = None) -> Withdrawal:
    # A revoked client stays revoked: cancel is the only way out. A client whose owner was
    # deactivated comes back with its owner.
    if owner is None:
        then = "nothing it submitted is published; a manager may cancel it"
        refusal = "what it submitted is never released; cancel the post."
    else:
        then = _RESTORE_OR_CANCEL.format(restore=f"have {owner} reactivated")
        refusal = f"{owner} must be reactivated first, or cancel the post."
    return Withdrawal(
        Grant.CLIENT,
        f"held: API client {name!r} {why}; {then}",
        f"API client {name!r} {why}: {refusal}",
        {"client_id": client_id},
    )


def _client_of(post: Post) -> str | None:
    kind, _, client_id = post.submitter.partition(":")
    return client_id if kind == "client" and client_id else None


def withdrawn_grant(uow: UnitOfWork, post: Post, account: Account) -> Withdrawal | None:
    """Check, from the database as it is now, every grant a regular post was written under;
    return the first one withdrawn, or None when the post may still go out.

    The writer's grant binds delegated posts (the principal needs none for their own); the
    client's binds every post it submitted, the principal's too.
    """
    if post.kind is not PostKind.REGULAR:
        return None
    author = uow.users.get(post.author_id)
    client_id = _client_of(post)
    return withdrawn_grant_of(
        post,
        account,
        author,
        assigned=lambda: author is not None and uow.assignments.exists(author.id, account.id),
        client=None if client_id is None else uow.api_clients.standing(client_id),
    )


def withdrawn_grant_of(
    post: Post,
    account: Account,
    author: User | None,
    *,
    assigned: Callable[[], bool],
    client: ClientStanding | None,
) -> Withdrawal | None:
    """withdrawn_grant, told what it reads: the post's author (None: gone), whether the
    author is assigned to the account (asked only when it matters), and the standing of the
    client the post's submitter names (None: none stored; not asked for other submitters)."""
    if post.kind is not PostKind.REGULAR:
        return None
    # The stored "delegated" flag alone is not trusted: only the principal writes without a grant.
    if post.is_delegated or author is None or not author.is_principal_of(account):
        if author is None or not author.is_active:
            name = author.name if author else f"user {post.author_id}"
            return _deactivated(name, post.author_id, now_true=True)
        if not may_author_if(author, account, assigned=assigned):
            return _unassigned(author, account, now_true=True)
    client_id = _client_of(post)
    if client_id is not None:
        if client is None or not client.is_active:
            return _revoked(client.name if client else client_id, client_id, "is revoked")
        if client.owner_name is None or not client.owner_active:
            who = client.owner_name or f"user {client.owner_id}"
            return _revoked(
                client.name, client_id, f"belongs to {who}, who is deactivated", owner=who
            )
    return None


def hold_withdrawn(
    uow: UnitOfWork, post: Post, withdrawal: Withdrawal, *, actor_ref: str, now: datetime
) -> Post:
    """Hold one post for a withdrawn grant, with its marker and ledger entry (caller's
    transaction, no commit). A post already held for a withdrawn grant is left as it is."""
    if withdrawn_hold(post) is not None:
        return post
    marker = {
        "kind": HOLD_KIND,
        "grant": withdrawal.grant.value,
        **withdrawal.details,
        "by": actor_ref,
        "at": now.isoformat(),
        "was": post.state.value,
    }
    held = uow.posts.set_state(
        post.id,
        # A post already held (waiting for the notice) stays held, now for this reason.
        post.state if post.state is PostState.HELD else transition(post.state, PostState.HELD),
        withdrawal.reason,
        decisions={**post.decisions, "hold": marker},
    )
    author = uow.users.get(post.author_id)
    uow.ledger.append(
        tag=LedgerTag.POST_WITHDRAWN,
        actor=actor_ref,
        subject=f"post:{post.public_id}",
        data={
            "grant": withdrawal.grant.value,
            **withdrawal.details,
            "reason": withdrawal.reason,
            "was": post.state.value,
            "writer": user_summary(author) if author else None,
            "submitter": post.submitter,
        },
        occurred_at=now,
    )
    return held


def lock_accounts_for_withdrawal(uow: UnitOfWork, account_ids: list[int] | None = None) -> None:
    """Lock the accounts a withdrawal may hold posts on (`account_ids`, or every account), in
    id order, before the caller's first ledger append: every ledger writer locks the rows it
    touches before the ledger head (a create locks its account, FOR KEY SHARE, then the head;
    a worker its account, then the head). Taking an account after the head would deadlock with
    a create in flight on it."""
    ids = account_ids if account_ids is not None else [a.id for a in uow.accounts.list()]
    for account_id in sorted(set(ids)):
        uow.accounts.lock(account_id)


def _hold_all(
    uow: UnitOfWork,
    find: Callable[[], list[Post]],
    withdrawal: Withdrawal,
    actor: Actor,
    now: datetime,
) -> int:
    # Lock each account first (in id order: no deadlock between two withdrawals), then read the
    # posts again: one a worker claimed meanwhile is `publishing` now, and left to the worker.
    found = find()
    for account_id in sorted({p.account_id for p in found}):
        uow.accounts.lock(account_id)
    held = 0
    for post in find() if found else []:
        if withdrawn_hold(post) is None:
            hold_withdrawn(uow, post, withdrawal, actor_ref=actor.ref, now=now)
            held += 1
    return held


def withdraw_assignment(
    uow: UnitOfWork, actor: Actor, user: User, account: Account, now: datetime
) -> int:
    """After `user` was unassigned from `account`: hold their delegated posts there that are not
    out yet (caller's transaction); return how many were held."""
    if may_author(uow, user, account):
        return 0  # still allowed (the account's principal): nothing was withdrawn

    def refind() -> list[Post]:
        posts = uow.posts.waiting_regular(author_id=user.id, account_id=account.id)
        return [p for p in posts if p.is_delegated]

    return _hold_all(uow, refind, _unassigned(user, account), actor, now)


def withdraw_user(uow: UnitOfWork, actor: Actor, user: User, now: datetime) -> int:
    """After `user` was deactivated: hold their delegated posts not out yet, and what the API
    clients they own submitted (caller's transaction); return how many were held."""

    def written() -> list[Post]:
        return [p for p in uow.posts.waiting_regular(author_id=user.id) if p.is_delegated]

    count = _hold_all(uow, written, _deactivated(user.name, user.id), actor, now)
    for client in uow.api_clients.list():
        if client.owner_id == user.id:
            why = f"belongs to {user.name}, who was deactivated"
            withdrawal = _revoked(client.name, client.client_id, why, owner=user.name)
            count += _withdraw_submitted(uow, actor, client, withdrawal, now)
    return count


def withdraw_client(uow: UnitOfWork, actor: Actor, client: ApiClient, now: datetime) -> int:
    """After `client` was revoked: hold every regular post it submitted that is not out yet
    (caller's transaction); return how many were held."""
    return _withdraw_submitted(
        uow, actor, client, _revoked(client.name, client.client_id, "was revoked"), now
    )


def _withdraw_submitted(
    uow: UnitOfWork, actor: Actor, client: ApiClient, withdrawal: Withdrawal, now: datetime
) -> int:
    def submitted() -> list[Post]:
        return uow.posts.waiting_regular(submitters=[f"client:{client.client_id}"])

    return _hold_all(uow, submitted, withdrawal, actor, now)


def release_withdrawn_post(ctx: ServiceContext, actor: Actor, post_id: int) -> Post:
    """Release a post held for a withdrawn grant, once every grant it was written under is back.

    A manager, an admin or the account's principal releases it; it goes back to `scheduled`, or
    to the principal's approval when its window asks for one it does not have yet. While a grant
    is still withdrawn the release is refused with what is missing (and nothing is stored).
    """
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post = uow.posts.get(post_id)
        if post is None:
            raise NotFound(f"No post {post_id}.")
        account = uow.accounts.get(post.account_id)
        assert account is not None
        user = require_user(actor)
        if not may_manage(user, account):
            raise Forbidden(
                "Only a manager, an admin or the principal releases a post held because its "
                "grant was withdrawn."
            )
        marker = withdrawn_hold(post)
        if marker is None:
            why = f" ({post.state_reason})" if post.state_reason else ""
            raise Conflict(
                "Only posts held because their grant was withdrawn are released by hand; "
                f"this one is {post.state}{why}."
            )
        still = withdrawn_grant(uow, post, account)
        if still is not None:
            raise Conflict(still.refusal)
        window = uow.windows.get(post.window_id) if post.window_id is not None else None
        needs_approval = (
            post.is_delegated
            and window is not None
            and window.policy.requires_approval
            and post.approved_by is None
        )
        target = PostState.PENDING_APPROVAL if needs_approval else PostState.SCHEDULED
        post = uow.posts.set_state(
            post.id,
            transition(post.state, target),
            "awaiting the principal's approval" if needs_approval else None,
            decisions={k: v for k, v in post.decisions.items() if k != "hold"},
        )
        entry = uow.ledger.append(
            tag=LedgerTag.POST_RELEASED,
            actor=actor.ref,
            subject=f"post:{post.public_id}",
            data={
                "grant": marker.get("grant"),
                "released_by": user_summary(user),
                "state": target.value,
                "hold": marker,
            },
            occurred_at=now,
        )
        if needs_approval:
            notifications.record_post_awaits_approval(ctx, uow, entry, post)
        uow.commit()
    return post
