"""One compose, several accounts: a group of posts, one per account, made all or nothing.

Each account is decided by the policy on its own, exactly as a post made alone would be (its
window, its budget, its tag, its cadence); the group only adds what binds them: one principal,
no account twice, one write transaction. If any account refuses, nothing is stored and the
refusal names that account. Each post carries the group's unguessable id, and so does its
`post:submitted` ledger entry.

A thread and images go to every account: each account gets the same thread (its own posts,
its own decisions per part, its own ledger entries) with the same images on its first part,
checked against its own platform's rules. The uploads are claimed once (attached to the first
account's first post); the other accounts' first posts show the same images.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ghostpost.domain.media_rules import MediaUpload
from ghostpost.domain.model import Post
from ghostpost.services.api_queries import PostDetails
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import PolicyRefused, ServiceError, ValidationFailed
from ghostpost.services.idempotency import _check_stored_key, _claim, _replay
from ghostpost.services.ports import UnitOfWork
from ghostpost.services.posts import (
    ClientPost,
    GroupShare,
    Plan,
    SubmitPost,
    _for_part,
    _plan,
    _plan_client_post,
    _store_all,
    _uploads,
    thread_plans,
)

#: More accounts than any principal has on distinct platforms: a list this long is a mistake.
MAX_GROUP_ACCOUNTS = 10

#: Turns the group's id and its posts (with account and author) into (HTTP status, JSON body)
#: from plain data; runs inside the transaction.
RenderGroup = Callable[[str, list[PostDetails]], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Group:
    """The posts one compose made, in the order their accounts were given."""

    id: str
    posts: tuple[Post, ...]


def new_group_id() -> str:
    """Return an unguessable group id: 128 random bits in hex (no character a spreadsheet
    reads as a formula start, unlike base64's '-')."""
    return secrets.token_hex(16)


def check_accounts(account_ids: Sequence[int]) -> None:
    """Refuse an empty list, a list too long and an account given twice (before any read)."""
    if not account_ids:
        raise ValidationFailed("Choose at least one account.", {"accounts": "empty"})
    if len(account_ids) > MAX_GROUP_ACCOUNTS:
        raise ValidationFailed(
            f"One compose posts to at most {MAX_GROUP_ACCOUNTS} accounts.",
            {"accounts": "too many"},
        )
    seen: set[int] = set()
    for account_id in account_ids:
        if account_id in seen:
            raise ValidationFailed(
                f"Account {account_id} is given twice; each account gets one post.",
                {"accounts": f"account {account_id} twice"},
            )
        seen.add(account_id)


def _naming(account_id: int, exc: ServiceError) -> ServiceError:
    """The same refusal, saying which account of the group it is about."""
    exc.message = f"Account {account_id}: {exc.message}"
    exc.args = (exc.message,)
    if isinstance(exc, ValidationFailed):
        exc.fields = {**exc.fields, "accounts": f"account {account_id}"}
    return exc


def _one_principal(plans: Sequence[Plan]) -> None:
    principals = {plan.account.principal_id for plan in plans}
    if len(principals) > 1:
        handles = ", ".join(f"@{plan.account.handle}" for plan in plans)
        raise ValidationFailed(
            f"The accounts {handles} belong to different principals; one compose posts for "
            "one principal.",
            {"accounts": "different principals"},
        )


@dataclass(frozen=True)
class AccountPlan:
    """One account's share of a group: its request, the plan of each part (first part
    first; one for a lone post) and the group's images, checked against its platform."""

    cmd: SubmitPost
    parts: list[Plan]
    uploads: tuple[MediaUpload, ...]

    @property
    def plan(self) -> Plan:
        """The first part's plan (the account, the author, the window)."""
        return self.parts[0]


def _plan_each(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor,
    account_ids: Sequence[int],
    plan_one: Callable[[int], tuple[SubmitPost, Plan]],
    now: datetime,
    *,
    refuse: bool,
) -> list[AccountPlan]:
    """Plan every account on its own: its parts under its own policy and the images under
    its own platform's rules; the first refusal (with `refuse`, the policy's too) is raised
    naming its account."""
    check_accounts(account_ids)
    planned: list[AccountPlan] = []
    for account_id in account_ids:
        try:
            cmd, plan = plan_one(account_id)
            uploads = tuple(_uploads(uow, actor, cmd, plan))
            parts = thread_plans(ctx, cmd, plan, now)
            if refuse:
                for position, part in enumerate(parts, start=1):
                    if part.decision.refused:
                        decision = part.decision
                        if len(parts) > 1:
                            decision = _for_part(decision, position)
                        raise PolicyRefused(decision)
        except ServiceError as exc:
            raise _naming(account_id, exc) from None
        planned.append(AccountPlan(cmd, parts, uploads))
    _one_principal([each.plan for each in planned])
    return planned


def _store_each(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor,
    planned: Sequence[AccountPlan],
    now: datetime,
) -> Group:
    """Store every account's post (or thread) in the caller's transaction: the first account's
    first part claims the images, every other account's first part shows the same ones."""
    group_id = new_group_id()
    posts = tuple(
        _store_all(
            uow,
            ctx,
            actor,
            each.cmd,
            each.plan,
            now,
            group=GroupShare(group_id, each.uploads, claims=index == 0),
        )
        for index, each in enumerate(planned)
    )
    return Group(group_id, posts)


# ---------------------------------------------------------------------------------------------
# A person (the web app)


def plan_group(
    ctx: ServiceContext, actor: Actor, cmd: SubmitPost, account_ids: Sequence[int]
) -> list[list[Plan]]:
    """Dry run for each account (one read-only transaction): each account's part plans, in
    order; a plan the policy would refuse is returned (its decision says why), any other
    refusal (the images on its platform included) is raised naming its account."""
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        planned = _plan_each(
            uow,
            ctx,
            actor,
            account_ids,
            lambda account_id: _web_plan(uow, ctx, actor, cmd, account_id),
            now,
            refuse=False,
        )
        return [each.parts for each in planned]


def _web_plan(
    uow: UnitOfWork, ctx: ServiceContext, actor: Actor, cmd: SubmitPost, account_id: int
) -> tuple[SubmitPost, Plan]:
    mine = replace(cmd, account_id=account_id)
    return mine, _plan(uow, ctx, actor, mine)


def submit_group(
    ctx: ServiceContext, actor: Actor, cmd: SubmitPost, account_ids: Sequence[int]
) -> Group:
    """Queue `cmd` (its thread and images too) on every account, all or nothing, in one write
    transaction."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        planned = _plan_each(
            uow,
            ctx,
            actor,
            account_ids,
            lambda account_id: _web_plan(uow, ctx, actor, cmd, account_id),
            now,
            refuse=True,
        )
        group = _store_each(uow, ctx, actor, planned, now)
        uow.commit()
    return group


# ---------------------------------------------------------------------------------------------
# An API client


def _client_plan(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor,
    request: ClientPost,
    account_id: int,
    now: datetime,
) -> tuple[SubmitPost, Plan]:
    return _plan_client_post(uow, ctx, actor, replace(request, account_id=account_id), now)


def plan_client_group(
    ctx: ServiceContext, actor: Actor, request: ClientPost, account_ids: Sequence[int]
) -> list[list[Plan]]:
    """An API client's dry run for each account (one read-only transaction): each account's
    part plans."""
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        planned = _plan_each(
            uow,
            ctx,
            actor,
            account_ids,
            lambda account_id: _client_plan(uow, ctx, actor, request, account_id, now),
            now,
            refuse=False,
        )
        return [each.parts for each in planned]


def submit_client_group_once(
    ctx: ServiceContext,
    actor: Actor,
    request: ClientPost,
    account_ids: Sequence[int],
    *,
    key: str,
    fingerprint: str,
    render: RenderGroup,
) -> tuple[int, dict[str, Any], bool]:
    """An API client's create of a group, one write transaction: claim the key (or replay
    what it got: the same group), plan every account, store every post (or thread), its
    images and ledger entries and the rendered response. Return (status, body, replayed)."""
    _check_stored_key(key)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        record = _claim(uow, actor, key, fingerprint, now)
        if record is None:
            planned = _plan_each(
                uow,
                ctx,
                actor,
                account_ids,
                lambda account_id: _client_plan(uow, ctx, actor, request, account_id, now),
                now,
                refuse=True,
            )
            group = _store_each(uow, ctx, actor, planned, now)
            details = [
                PostDetails(
                    post,
                    each.plan.account,
                    each.plan.author,
                    principal_name=each.plan.principal_name,
                    images=uow.media.images_of(post.id) if each.uploads else (),
                )
                for post, each in zip(group.posts, planned, strict=True)
            ]
            status, body = render(group.id, details)
            uow.idempotency_keys.complete(actor.ref, key, status, body)
            uow.commit()
            return status, body, False
    status, body = _replay(record, fingerprint)
    return status, body, True
