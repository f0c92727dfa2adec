"""Read use cases behind the staff pages: the queue, one post's detail, the principal's approvals.

Who sees what: admins, managers and auditors read every account; everybody else reads the
accounts they write for (assigned, or their own as principal). Posts of other accounts do not
exist for them (NotFound), and filters naming such accounts are refused (Forbidden).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, Post, Role, User, Window
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import QUEUED_STATES, PostState
from ghostpost.services.authz import require_user
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork
from ghostpost.services.posts import may_change_post

#: Roles that read every account.
READ_ALL_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})
QUEUE_PAGE_SIZE = 50

S = PostState
#: The queue's state groups, in the order people deal with them.
QUEUE_GROUPS: dict[str, tuple[PostState, ...]] = {
    "failed": (S.FAILED,),
    "held": (S.HELD,),
    "pending_approval": (S.PENDING_APPROVAL,),
    "publishing": (S.PUBLISHING,),
    "scheduled": (S.SCHEDULED,),
    "published": (S.PUBLISHED,),
    "closed": (S.REFUSED, S.CANCELLED),
}


@dataclass(frozen=True)
class Verdict:
    """The principal's decision on a post, as its writer reads it (from the ledger)."""

    approved: bool
    by: str
    #: As the ledger records it (ISO 8601, UTC).
    at: str
    comment: str


@dataclass(frozen=True)
class PostView:
    """A post with the account, people and window it refers to, and what the reader may do."""

    post: Post
    account: Account
    author: User | None
    window: Window | None
    approver: User | None
    #: The person behind the submitter reference, when it is a staff user.
    submitter: User | None
    may_change: bool
    #: The other posts the same compose made for other accounts (those the reader may see),
    #: with their accounts; empty for a post made alone.
    group: tuple[tuple[Post, Account], ...] = ()
    #: The parts of the post's thread, first part first (the post among them); empty for a
    #: post that is no thread's part.
    thread: tuple[Post, ...] = ()
    #: On the approvals page, every part of the thread awaiting approval, in thread order (the
    #: principal decides on them as one item); empty for a lone post and elsewhere.
    thread_parts: tuple[Post, ...] = ()
    #: The principal's approvals and rejections of the post, oldest first (post page only).
    verdicts: tuple[Verdict, ...] = ()

    @property
    def may_resubmit(self) -> bool:
        """Tell whether the reader may edit this rejected post into a new submission."""
        rejected = bool(self.verdicts) and not self.verdicts[-1].approved
        return rejected and self.may_change and self.post.state is PostState.REFUSED

    @property
    def may_cancel(self) -> bool:
        """Tell whether the reader may cancel the post now."""
        state = self.post.state
        return self.may_change and (state in QUEUED_STATES or state is PostState.FAILED)

    @property
    def may_retry(self) -> bool:
        """Tell whether the reader may send the failed post back to the queue."""
        return (
            self.may_change
            and self.post.state is PostState.FAILED
            and self.post.kind is not PostKind.REMINDER
        )


@dataclass(frozen=True)
class QueueQuery:
    """What the queue page asks for: optional filters and a 1-based page number."""

    account_id: int | None = None
    window_id: int | None = None
    group: str | None = None
    page: int = 1


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, the counts per state group, and what the filters may offer."""

    items: list[PostView]
    total: int
    page: int
    pages: int
    counts: dict[str, int]
    accounts: list[Account]
    windows: list[Window]


@dataclass(frozen=True)
class NoticeApproval:
    """A window whose notice awaits the principal's approval."""

    window: Window
    account: Account
    notice: Post
    drafted_by: User | None


@dataclass(frozen=True)
class Approvals:
    """Everything waiting for one principal: notices, then delegated posts."""

    notices: list[NoticeApproval]
    posts: list[PostView]


def reads_everything(user: User) -> bool:
    """Tell whether the user reads every account (admins, managers, auditors)."""
    return user.role in READ_ALL_ROLES


def visible_accounts(uow: UnitOfWork, user: User) -> list[Account]:
    """Return the accounts whose posts the user may read."""
    accounts = uow.accounts.list()
    if reads_everything(user):
        return accounts
    assigned = set(uow.assignments.accounts_of(user.id))
    return [a for a in accounts if a.id in assigned or user.is_principal_of(a)]


def _submitter_id(ref: str) -> int | None:
    kind, _, number = ref.partition(":")
    return int(number) if kind == "user" and number.isdigit() else None


def _views(
    uow: UnitOfWork,
    user: User,
    posts: Iterable[Post],
    accounts: dict[int, Account],
    windows: dict[int, Window] | None = None,
) -> list[PostView]:
    people = {u.id: u for u in uow.users.list()}
    windows = dict(windows or {})
    views = []
    for post in posts:
        account = accounts[post.account_id]
        window = None
        if post.window_id is not None:
            window = windows.get(post.window_id) or uow.windows.get(post.window_id)
            if window is not None:
                windows[window.id] = window
        submitter_id = _submitter_id(post.submitter)
        views.append(
            PostView(
                post=post,
                account=account,
                author=people.get(post.author_id),
                window=window,
                approver=people.get(post.approved_by) if post.approved_by else None,
                submitter=people.get(submitter_id) if submitter_id is not None else None,
                may_change=may_change_post(user, post, account),
            )
        )
    return views


def list_queue(ctx: ServiceContext, actor: Actor, query: QueueQuery) -> QueuePage:
    """Return one page of the posts the actor may read, filtered, attention-needing first."""
    user = require_user(actor)
    if query.group is not None and query.group not in QUEUE_GROUPS:
        raise ValidationFailed(f"Unknown state filter {query.group!r}.", {"state": "unknown"})
    if query.page < 1:
        raise ValidationFailed("Pages are numbered from 1.", {"page": "must be at least 1"})
    with ctx.uow(read_only=True) as uow:
        accounts = visible_accounts(uow, user)
        by_id = {a.id: a for a in accounts}
        if query.account_id is not None and query.account_id not in by_id:
            raise Forbidden("You may not read the posts of this account.")
        windows = uow.windows.list_for_accounts(list(by_id))
        windows_by_id = {w.id: w for w in windows}
        if query.window_id is not None and query.window_id not in windows_by_id:
            raise Forbidden("You may not read the posts of this window.")
        scope: list[int] | None
        if query.account_id is not None:
            scope = [query.account_id]
        else:
            scope = None if reads_everything(user) else list(by_id)
        per_state = uow.posts.count_by_state(account_ids=scope, window_id=query.window_id)
        counts = {
            group: sum(per_state.get(state, 0) for state in states)
            for group, states in QUEUE_GROUPS.items()
        }
        total = counts[query.group] if query.group else sum(per_state.values())
        posts = uow.posts.search(
            account_ids=scope,
            window_id=query.window_id,
            states=QUEUE_GROUPS[query.group] if query.group else None,
            offset=(query.page - 1) * QUEUE_PAGE_SIZE,
            limit=QUEUE_PAGE_SIZE,
        )
        items = _views(uow, user, posts, by_id, windows_by_id)
    return QueuePage(
        items=items,
        total=total,
        page=query.page,
        pages=max(1, math.ceil(total / QUEUE_PAGE_SIZE)),
        counts=counts,
        accounts=accounts,
        windows=windows,
    )


def post_detail(ctx: ServiceContext, actor: Actor, public_id: str) -> PostView:
    """Return one post the actor may read; others' posts are NotFound, not Forbidden."""
    user = require_user(actor)
    with ctx.uow(read_only=True) as uow:
        post = uow.posts.by_public_id(public_id)
        by_id = {a.id: a for a in visible_accounts(uow, user)}
        if post is None or post.account_id not in by_id:
            raise NotFound("No such post.")
        view = _views(uow, user, [post], by_id)[0]
        view = replace(view, verdicts=_verdicts(uow, post))
        if post.thread_id is not None:
            view = replace(view, thread=tuple(uow.posts.in_thread(post.thread_id)))
        if post.group_id is None:
            return view
        # The other accounts' posts (a thread's first part stands for its thread).
        others = tuple(
            (other, by_id[other.account_id])
            for other in uow.posts.in_group(post.group_id)
            if other.account_id != post.account_id
            and other.account_id in by_id
            and (other.thread_position or 1) == 1
        )
        return replace(view, group=others)


_VERDICT_TAGS = {LedgerTag.POST_APPROVED.value: True, LedgerTag.POST_REJECTED.value: False}


def _verdicts(uow: UnitOfWork, post: Post) -> tuple[Verdict, ...]:
    entries = uow.ledger.search(subject=f"post:{post.public_id}", oldest_first=True, limit=100)
    return tuple(
        Verdict(
            approved=_VERDICT_TAGS[entry.tag],
            by=str(entry.data.get("approver", {}).get("name", "the principal")),
            at=entry.occurred_at,
            comment=str(entry.data.get("comment") or ""),
        )
        for entry in entries
        if entry.tag in _VERDICT_TAGS
    )


def rejected_post(ctx: ServiceContext, actor: Actor, public_id: str) -> PostView:
    """A rejected post the actor may edit and submit again (NotFound when they cannot see it,
    Conflict when it was not rejected or is not theirs to change)."""
    view = post_detail(ctx, actor, public_id)
    if not view.may_resubmit:
        raise Conflict("Only a post the principal rejected can be edited and submitted again.")
    return view


def approvals_for(ctx: ServiceContext, actor: Actor) -> Approvals:
    """Return the notices and delegated posts waiting for the actor, who must be a principal."""
    user = require_user(actor)
    if user.principal_id is None:
        raise Forbidden("Only a principal approves notices and posts.")
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        own = {a.id: a for a in uow.accounts.list() if user.is_principal_of(a)}
        notices = []
        for window in uow.windows.notices_awaiting_approval(list(own), now):
            assert window.notice_post_id is not None
            notice = uow.posts.get(window.notice_post_id)
            assert notice is not None
            notices.append(
                NoticeApproval(
                    window=window,
                    account=own[window.account_id],
                    notice=notice,
                    drafted_by=uow.users.get(notice.author_id),
                )
            )
        posts = _one_item_per_thread(_views(uow, user, uow.posts.awaiting_approval(list(own)), own))
    return Approvals(notices=notices, posts=posts)


def _one_item_per_thread(views: list[PostView]) -> list[PostView]:
    """Fold the parts of each thread into one view, its first waiting part's, with the parts."""
    parts: dict[str, list[Post]] = {}
    for view in views:
        if view.post.thread_id is not None:
            parts.setdefault(view.post.thread_id, []).append(view.post)
    items = []
    shown: set[str] = set()
    for view in views:
        thread_id = view.post.thread_id
        if thread_id is None:
            items.append(view)
            continue
        if thread_id in shown:
            continue
        shown.add(thread_id)
        ordered = sorted(parts[thread_id], key=lambda p: p.thread_position or 0)
        first = next(v for v in views if v.post.id == ordered[0].id)
        items.append(replace(first, thread_parts=tuple(ordered)))
    return items


#: The most posts one status request may ask about (a queue page shows QUEUE_PAGE_SIZE).
MAX_STATUS_IDS = 100


def post_statuses(ctx: ServiceContext, actor: Actor, public_ids: Iterable[str]) -> list[Post]:
    """Return the posts with these public ids that the actor may read, oldest first.

    Posts of accounts the actor may not read are left out exactly like unknown ids, so the
    answer never tells whether such a post exists. Refuses more than MAX_STATUS_IDS ids.
    """
    user = require_user(actor)
    wanted = list(dict.fromkeys(public_ids))
    if len(wanted) > MAX_STATUS_IDS:
        raise ValidationFailed(
            f"Ask about at most {MAX_STATUS_IDS} posts at once.", {"id": "too many"}
        )
    if not wanted:
        return []
    with ctx.uow(read_only=True) as uow:
        posts = uow.posts.by_public_ids(wanted)
        if reads_everything(user):
            return posts
        readable = {a.id for a in visible_accounts(uow, user)}
    return [post for post in posts if post.account_id in readable]
