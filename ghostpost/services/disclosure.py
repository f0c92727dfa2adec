"""The public disclosure page: what a principal's followers may know about delegation.

It lists the windows of every account of the principal with their reason, their policy in
plain words, the notice and the counts of what went out. It never names a writer: the page
reads only windows, notices and the published timeline, and reports the team as "the team".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ghostpost.domain.coverage import compute_coverage, timeline_post
from ghostpost.domain.disclosure import disclosure_path, expand, policy_in_words
from ghostpost.domain.model import Account, Window
from ghostpost.domain.policy import WindowKind
from ghostpost.domain.states import PostState
from ghostpost.services.context import ServiceContext
from ghostpost.services.errors import NotFound

#: The platform whose handle names the page first (the timeline ghostpost serves itself).
_HANDLE_PLATFORMS = ("local",)


def disclosure_url(ctx: ServiceContext, account: Account) -> str:
    """Return the absolute URL of the disclosure page of the account's principal (what
    `{disclosure_url}` becomes in the account's notices and reminders)."""
    return ctx.public_url.rstrip("/") + disclosure_path(account.handle)


@dataclass(frozen=True)
class WindowCounts:
    """What went out on a window's published timeline (the coverage numbers)."""

    by_principal: int
    by_team: int
    tagged: int
    reminders: int


@dataclass(frozen=True)
class PublicWindow:
    """One window as the public sees it."""

    name: str
    platform: str
    handle: str
    kind: WindowKind
    #: current | upcoming | past
    when: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    policy: str
    #: The notice as published (or as it will go out, placeholder filled in).
    notice_text: str
    notice_published_at: datetime | None
    notice_url: str | None
    counts: WindowCounts


@dataclass(frozen=True)
class DisclosurePage:
    """A principal's disclosure page: current, upcoming and past windows."""

    handle: str
    principal: str
    url: str
    current: list[PublicWindow]
    upcoming: list[PublicWindow]
    past: list[PublicWindow]


def _account_for(accounts: list[Account], handle: str) -> Account | None:
    named = [a for a in accounts if a.handle == handle]
    named.sort(key=lambda a: (a.platform not in _HANDLE_PLATFORMS, a.id))
    return named[0] if named else None


def disclosure_page(ctx: ServiceContext, handle: str) -> DisclosurePage:
    """Return the public disclosure page of the principal behind `handle` (read-only).

    A window appears once its notice is published: a draft the principal has not approved is
    no promise to the public, and an approved notice waits for the time the principal chose
    (the page must not announce an event before the notice does). No delegated post goes out
    in a window before its notice, so no window with team posts is ever left out.
    """
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        all_accounts = uow.accounts.list()
        named = _account_for(all_accounts, handle)
        if named is None:
            raise NotFound(f"No account @{handle}.")
        principal = uow.principals.get(named.principal_id)
        accounts = {a.id: a for a in all_accounts if a.principal_id == named.principal_id}
        found: list[tuple[Window, PublicWindow]] = []
        for window in uow.windows.list_for_accounts(list(accounts)):
            if window.notice_published_at is None:
                continue
            account = accounts[window.account_id]
            notice = uow.posts.get(window.notice_post_id) if window.notice_post_id else None
            # A notice the principal deleted afterwards keeps its window listed, unlinked.
            published = (
                notice is not None
                and notice.state is PostState.PUBLISHED
                and notice.deleted_at is None
            )
            timeline = uow.posts.published_timeline(
                account.id, window.policy.starts_at, window.policy.ends_at, window.notice_post_id
            )
            coverage = compute_coverage(
                window.policy,
                window.notice_published_at,
                [timeline_post(p) for p in timeline],
                window_id=window.id,
            )
            policy = window.policy
            when = (
                "past"
                if policy.ends_at <= now
                else "current"
                if policy.starts_at <= now
                else "upcoming"
            )
            found.append(
                (
                    window,
                    PublicWindow(
                        name=window.name,
                        platform=account.platform,
                        handle=account.handle,
                        kind=policy.kind,
                        when=when,
                        starts_at=policy.starts_at,
                        ends_at=policy.ends_at,
                        reason=policy.reason,
                        policy=policy_in_words(policy),
                        notice_text=notice.final_text
                        if notice is not None
                        else expand(policy.notice_text, disclosure_url(ctx, account)),
                        notice_published_at=window.notice_published_at,
                        notice_url=notice.platform_url if published and notice else None,
                        counts=WindowCounts(
                            by_principal=coverage.principal_posts,
                            by_team=coverage.delegated_posts,
                            tagged=coverage.tagged,
                            reminders=coverage.reminders_sent,
                        ),
                    ),
                )
            )
    windows = [w for _, w in sorted(found, key=lambda f: f[1].starts_at)]
    return DisclosurePage(
        handle=handle,
        principal=principal.name if principal is not None else handle,
        url=disclosure_url(ctx, named),
        current=[w for w in windows if w.when == "current"],
        upcoming=[w for w in windows if w.when == "upcoming"],
        past=list(reversed([w for w in windows if w.when == "past"])),
    )
