"""The calendar's read: the posts and delegation windows of a period, for the accounts the reader
may see (the queue's rule: services.queue.visible_accounts).

The caller chooses the period (its day boundaries are the viewer's, so the web surface computes
them); this module returns plain data: where each post sits in time, whether the reader may move
it, and each window's span and notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ghostpost.domain.model import Account, Post, Window
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from ghostpost.services.authz import require_user
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Forbidden, ValidationFailed
from ghostpost.services.posts import may_change_post
from ghostpost.services.queue import visible_accounts

#: The states a calendar shows: what will go out, what waits, what went out or failed.
#: Refused and cancelled posts never go out, so they have no place in time.
CALENDAR_STATES = (
    PostState.SCHEDULED,
    PostState.PENDING_APPROVAL,
    PostState.HELD,
    PostState.PUBLISHING,
    PostState.PUBLISHED,
    PostState.FAILED,
)
#: The states services.posts.reschedule_post accepts.
MOVABLE_STATES = frozenset({PostState.SCHEDULED, PostState.PENDING_APPROVAL, PostState.HELD})
#: A month grid is at most six weeks (plus a day of slack for a daylight-saving change).
LONGEST_PERIOD = timedelta(days=43)
#: More posts than any page can show; the page says when the period holds more.
MOST_POSTS = 2000


@dataclass(frozen=True)
class CalendarQuery:
    """A period [starts_at, ends_at) and an optional account filter."""

    starts_at: datetime
    ends_at: datetime
    account_id: int | None = None


@dataclass(frozen=True)
class CalendarPost:
    """A post placed in time: when it went out, or when it is due."""

    post: Post
    account: Account
    at: datetime
    #: Whether the reader may move it (services.posts.reschedule_post checks again).
    movable: bool

    @property
    def is_notice(self) -> bool:
        """Tell whether this is a window's pre-event notice."""
        return self.post.kind is PostKind.NOTICE


@dataclass(frozen=True)
class CalendarWindow:
    """A delegation window that overlaps the period, and when its notice goes (or went) out."""

    window: Window
    account: Account
    notice_at: datetime | None
    notice_published: bool

    @property
    def starts_at(self) -> datetime:
        """When the window opens."""
        return self.window.policy.starts_at

    @property
    def ends_at(self) -> datetime:
        """When the window closes."""
        return self.window.policy.ends_at


@dataclass(frozen=True)
class Calendar:
    """The period's posts (earliest first) and windows, and the accounts the reader may pick."""

    posts: list[CalendarPost]
    windows: list[CalendarWindow]
    accounts: list[Account]
    #: True when the period holds more posts than MOST_POSTS (the rest are not shown).
    truncated: bool


def may_move(user_may_change: bool, post: Post) -> bool:
    """Tell whether a reader who may change `post` may move it by hand (reschedule_post's rules)."""
    return (
        user_may_change
        and post.state in MOVABLE_STATES
        and post.kind is PostKind.REGULAR
        and post.thread_id is None
    )


def read_calendar(ctx: ServiceContext, actor: Actor, query: CalendarQuery) -> Calendar:
    """Return the posts and windows of the period for the accounts the actor may read."""
    user = require_user(actor)
    if not query.starts_at < query.ends_at <= query.starts_at + LONGEST_PERIOD:
        raise ValidationFailed(
            "A calendar shows a week or a month.", {"period": "empty or longer than six weeks"}
        )
    with ctx.uow(read_only=True) as uow:
        accounts = visible_accounts(uow, user)
        by_id = {a.id: a for a in accounts}
        if query.account_id is not None and query.account_id not in by_id:
            raise Forbidden("You may not read the posts of this account.")
        scope = [query.account_id] if query.account_id is not None else list(by_id)
        found = uow.posts.in_period(
            account_ids=scope,
            states=CALENDAR_STATES,
            starts_at=query.starts_at,
            ends_at=query.ends_at,
            limit=MOST_POSTS + 1,
        )
        truncated = len(found) > MOST_POSTS
        posts = found[:MOST_POSTS]
        shown = {p.id for p in posts}
        windows = []
        for window in uow.windows.list_for_accounts(scope):
            policy = window.policy
            if policy.ends_at <= query.starts_at or policy.starts_at >= query.ends_at:
                continue
            notice = uow.posts.get(window.notice_post_id) if window.notice_post_id else None
            notice_at = window.notice_published_at or window.notice_publish_at
            if notice is not None:
                notice_at = notice.published_at or notice.publish_at or notice_at
                # A notice still waiting for approval has no time of its own yet: it is shown
                # where it is planned, or at the window's start.
                planned = notice_at or policy.starts_at
                if notice.id not in shown and query.starts_at <= planned < query.ends_at:
                    posts.append(notice)
                    shown.add(notice.id)
            windows.append(
                CalendarWindow(
                    window=window,
                    account=by_id[window.account_id],
                    notice_at=notice_at,
                    notice_published=window.notice_published_at is not None,
                )
            )
    notice_times = {w.window.notice_post_id: w.notice_at or w.starts_at for w in windows}
    placed = []
    for post in posts:
        account = by_id[post.account_id]
        at = post.published_at or post.publish_at or notice_times.get(post.id)
        if at is None:
            continue
        movable = may_move(may_change_post(user, post, account), post)
        placed.append(CalendarPost(post=post, account=account, at=at, movable=movable))
    placed.sort(key=lambda item: (item.at, item.post.id))
    windows.sort(key=lambda item: (item.starts_at, item.window.id))
    return Calendar(posts=placed, windows=windows, accounts=accounts, truncated=truncated)
