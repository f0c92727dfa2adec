"""One compose, several accounts: a group of posts, one per account, made all or nothing.

Each account is decided by the policy on its own, exactly as a post made alone would be (its
window, its budget, its tag, its cadence); the group only adds what binds them: one principal,
no account twice, one write transaction. If any account refuses, nothing is stored and the
refusal names that account. Each post carries the group's unguessable id, and so does its
`post:submitted` ledger entry.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ghostpost.domain.model import Post
from ghostpost.services.api_queries import PostDetails
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import PolicyRefused, ServiceError, ValidationFailed
from ghostpost.services.idempotency import _check_stored_key, _claim, _replay
from ghostpost.services.ports import UnitOfWork
from ghostpost.services.posts import (
    ClientPost,
    Plan,
    SubmitPost,
    _plan,
    _plan_client_post,
    _store,
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


def _refuse_unsupported(
    media_ids: Sequence[str], thread: Sequence[str], account_ids: Sequence[int]
) -> None:
    # An upload attaches to one post, and a group stores one lone post per account: sending
    # the same images or thread with every post of a group is not built yet, and dropping
    # them from any post would lose what was asked.
    if len(account_ids) <= 1:
        return
    if media_ids:
        raise ValidationFailed(
            "Images cannot go to several accounts at once yet: post them to one account.",
            {"media_ids": "not with several accounts"},
        )
    if thread:
        raise ValidationFailed(
            "A thread cannot go to several accounts at once yet: post it to one account.",
            {"thread": "not with several accounts"},
        )


def _plan_each(
    account_ids: Sequence[int],
    asked: SubmitPost | ClientPost,
    plan_one: Callable[[int], Plan],
    *,
    refuse: bool,
) -> list[Plan]:
    """Plan every account on its own; the first refusal (with `refuse`, the policy's too)
    is raised naming its account."""
    check_accounts(account_ids)
    _refuse_unsupported(asked.media_ids, asked.thread, account_ids)
    plans: list[Plan] = []
    for account_id in account_ids:
        try:
            plan = plan_one(account_id)
            if refuse and plan.decision.refused:
                raise PolicyRefused(plan.decision)
        except ServiceError as exc:
            raise _naming(account_id, exc) from None
        plans.append(plan)
    _one_principal(plans)
    return plans


# ---------------------------------------------------------------------------------------------
# A person (the web app)


def plan_group(
    ctx: ServiceContext, actor: Actor, cmd: SubmitPost, account_ids: Sequence[int]
) -> list[Plan]:
    """Dry run for each account (one read-only transaction): a plan per account, in order; a
    plan the policy would refuse is returned (its decision says why), any other refusal is
    raised naming its account."""
    with ctx.uow(read_only=True) as uow:
        return _plan_each(
            account_ids,
            cmd,
            lambda account_id: _plan(uow, ctx, actor, replace(cmd, account_id=account_id)),
            refuse=False,
        )


def submit_group(
    ctx: ServiceContext, actor: Actor, cmd: SubmitPost, account_ids: Sequence[int]
) -> Group:
    """Queue `cmd`'s text on every account, all or nothing, in one write transaction."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        plans = _plan_each(
            account_ids,
            cmd,
            lambda account_id: _plan(uow, ctx, actor, replace(cmd, account_id=account_id)),
            refuse=True,
        )
        group = _store_all(uow, actor, cmd, plans, now)
        uow.commit()
    return group


def _store_all(
    uow: UnitOfWork, actor: Actor, cmd: SubmitPost, plans: Sequence[Plan], now: datetime
) -> Group:
    group_id = new_group_id()
    posts = tuple(
        _store(
            uow,
            actor,
            replace(cmd, account_id=plan.account.id, author_id=plan.author.id),
            plan,
            now,
            group_id,
        )
        for plan in plans
    )
    return Group(group_id, posts)


# ---------------------------------------------------------------------------------------------
# An API client


def plan_client_group(
    ctx: ServiceContext, actor: Actor, request: ClientPost, account_ids: Sequence[int]
) -> list[Plan]:
    """An API client's dry run for each account (one read-only transaction)."""
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        return _plan_each(
            account_ids,
            request,
            lambda account_id: _plan_client_post(
                uow, ctx, actor, replace(request, account_id=account_id), now
            )[1],
            refuse=False,
        )


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
    what it got: the same group), plan every account, store every post and its ledger entry
    and the rendered response. Return (status, body, replayed)."""
    _check_stored_key(key)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        record = _claim(uow, actor, key, fingerprint, now)
        if record is None:
            drafts: dict[int, SubmitPost] = {}

            def plan_one(account_id: int) -> Plan:
                draft, plan = _plan_client_post(
                    uow, ctx, actor, replace(request, account_id=account_id), now
                )
                drafts[account_id] = draft
                return plan

            plans = _plan_each(account_ids, request, plan_one, refuse=True)
            group_id = new_group_id()
            details = [
                PostDetails(
                    _store(uow, actor, drafts[plan.account.id], plan, now, group_id),
                    plan.account,
                    plan.author,
                    principal_name=plan.principal_name,
                )
                for plan in plans
            ]
            status, body = render(group_id, details)
            uow.idempotency_keys.complete(actor.ref, key, status, body)
            uow.commit()
            return status, body, False
    status, body = _replay(record, fingerprint)
    return status, body, True
