"""Reading a window's disclosure coverage: which windows a reader may see, and the numbers."""

from __future__ import annotations

from dataclasses import dataclass

from ghostpost.domain.coverage import Coverage, compute_coverage, timeline_post
from ghostpost.domain.model import Account, Post, User, Window
from ghostpost.services.authz import is_system, may_oversee, require_user
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import NotFound


@dataclass(frozen=True)
class WindowChoice:
    """A window the reader may pick, with its account."""

    window: Window
    account: Account


@dataclass(frozen=True)
class WindowCoverage:
    """One window's coverage with what the page shows around it."""

    window: Window
    account: Account
    coverage: Coverage
    #: The published posts behind the numbers, in publishing order (for the table of marks).
    posts: list[Post]
    notice_approver: User | None


@dataclass(frozen=True)
class CoveragePage:
    """The windows the reader may choose from and the chosen one's coverage (None: no windows)."""

    choices: list[WindowChoice]
    selected: WindowCoverage | None


def window_coverage(ctx: ServiceContext, actor: Actor, window_id: int | None) -> CoveragePage:
    """Measure one window (default: the latest one that has begun) against its policy.

    Staff read the windows of the accounts they oversee; ghostpost itself (the CLI) reads every
    window. The dashboard, the JSON report and the CLI all measure through here.
    """
    user = None if is_system(actor) else require_user(actor)
    with ctx.uow(read_only=True) as uow:
        accounts = {a.id: a for a in uow.accounts.list() if user is None or may_oversee(user, a)}
        windows = uow.windows.list_for_accounts(list(accounts)) if accounts else []
        choices = [WindowChoice(w, accounts[w.account_id]) for w in windows]
        if window_id is None:
            if not choices:
                return CoveragePage(choices, None)
            # The latest window that has begun; a window still to come has nothing to show yet.
            now = ctx.clock.now()
            started = [c for c in choices if c.window.policy.starts_at <= now]
            chosen = (started or choices)[0]
        else:
            found = next((c for c in choices if c.window.id == window_id), None)
            if found is None:
                raise NotFound(f"No window {window_id}.")
            chosen = found
        window = chosen.window
        candidates = uow.posts.published_timeline(
            window.account_id,
            window.policy.starts_at,
            window.policy.ends_at,
            window.notice_post_id,
        )
        approver = uow.users.get(window.notice_approved_by) if window.notice_approved_by else None
    # The repository selects the timeline in SQL; the domain rule (the one the worker counts
    # with) has the last word, and the table lists exactly the posts the marks stand for.
    coverage = compute_coverage(
        window.policy,
        window.notice_published_at,
        [timeline_post(post) for post in candidates],
        window_id=window.id,
    )
    by_public_id = {post.public_id: post for post in candidates}
    posts = [by_public_id[mark.public_id] for mark in coverage.marks]
    return CoveragePage(choices, WindowCoverage(window, chosen.account, coverage, posts, approver))
