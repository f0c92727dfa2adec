"""Read use cases behind the scheduler API: an API client reads only its own accounts.

Objects of other accounts do not exist for a client (NotFound), whether or not they exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ghostpost.domain.media_rules import PostImage
from ghostpost.domain.model import Account, Post, User, Window, WindowProposal
from ghostpost.domain.states import QUEUED_STATES, PostState
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Forbidden, NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork
from ghostpost.services.publishing import Outlook, publication_outlook, stored_outlook

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class PostDetails:
    """A post with the account it belongs to and the person who wrote it."""

    post: Post
    account: Account
    author: User
    #: What it would go out as now and what waits for publication (None: as stored).
    outlook: Outlook | None = None
    #: The account's principal's name, where the read had it (a client's create).
    principal_name: str | None = None
    #: The post's images, where the read had them (a create with images, one post's read).
    images: tuple[PostImage, ...] = ()

    @property
    def current_outlook(self) -> Outlook:
        """Return the outlook read with the post, else the one it got at submission."""
        return self.outlook if self.outlook is not None else stored_outlook(self.post)


@dataclass(frozen=True)
class PostQuery:
    """Filters of the post list; `before_id` continues a previous page."""

    account_id: int | None = None
    window_id: int | None = None
    author_email: str | None = None
    state: PostState | None = None
    before_id: int | None = None
    limit: int = 20


@dataclass(frozen=True)
class PostPage:
    """One page of posts, newest first; `next_before_id` is None on the last page."""

    items: list[PostDetails]
    next_before_id: int | None


def client_account_ids(actor: Actor) -> frozenset[int]:
    """Return the accounts an API client is limited to; other actors are refused."""
    if actor.account_ids is None:
        raise Forbidden("This needs an API client's credentials.")
    return actor.account_ids


def _account(uow: UnitOfWork, actor: Actor, account_id: int) -> Account:
    account = uow.accounts.get(account_id) if account_id in client_account_ids(actor) else None
    if account is None:
        raise NotFound(f"No account {account_id}.")
    return account


def client_accounts(ctx: ServiceContext, actor: Actor) -> list[Account]:
    """Return the client's accounts, oldest first."""
    allowed = client_account_ids(actor)
    with ctx.uow(read_only=True) as uow:
        return [a for a in uow.accounts.list() if a.id in allowed]


@dataclass(frozen=True)
class ClientWindow:
    """A window as a scheduler sees it: the policy in force, and the change awaiting the
    principal (which does not apply until the principal approves it)."""

    window: Window
    pending_change: WindowProposal | None


def client_windows(
    ctx: ServiceContext, actor: Actor, account_id: int | None = None
) -> list[ClientWindow]:
    """Return the delegation windows of the client's accounts (or of one), latest start first."""
    with ctx.uow(read_only=True) as uow:
        ids = (
            [_account(uow, actor, account_id).id]
            if account_id is not None
            else sorted(client_account_ids(actor))
        )
        pending = {p.window_id: p for p in uow.windows.pending_proposals(ids)} if ids else {}
        return [ClientWindow(w, pending.get(w.id)) for w in uow.windows.list_for_accounts(ids)]


def _details(
    uow: UnitOfWork,
    ctx: ServiceContext,
    posts: list[Post],
    accounts: dict[int, Account],
    now: datetime,
) -> list[PostDetails]:
    people: dict[int, User] = {}
    found = []
    for post in posts:
        if post.author_id not in people:
            author = uow.users.get(post.author_id)
            assert author is not None
            people[author.id] = author
        account = accounts[post.account_id]
        outlook = publication_outlook(uow, ctx, post, account, now)
        found.append(PostDetails(post, account, people[post.author_id], outlook))
    return found


def _visible(uow: UnitOfWork, ctx: ServiceContext, actor: Actor, post: Post | None) -> PostDetails:
    if post is None or post.account_id not in client_account_ids(actor):
        raise NotFound("No such post.")
    account = uow.accounts.get(post.account_id)
    assert account is not None
    details = _details(uow, ctx, [post], {account.id: account}, ctx.clock.now())[0]
    return replace(details, images=uow.media.images_of(post.id))


def get_post(ctx: ServiceContext, actor: Actor, public_id: str) -> PostDetails:
    """Return one post of the client's accounts by its public id."""
    with ctx.uow(read_only=True) as uow:
        return _visible(uow, ctx, actor, uow.posts.by_public_id(public_id))


def get_post_details_by_id(ctx: ServiceContext, actor: Actor, post_id: int) -> PostDetails:
    """Return one post of the client's accounts by its internal id, with its images."""
    with ctx.uow(read_only=True) as uow:
        return _visible(uow, ctx, actor, uow.posts.get(post_id))


def get_post_by_id(ctx: ServiceContext, actor: Actor, post_id: int) -> Post:
    """Return one post of the client's accounts by its internal id."""
    with ctx.uow(read_only=True) as uow:
        return _visible(uow, ctx, actor, uow.posts.get(post_id)).post


def list_posts(ctx: ServiceContext, actor: Actor, query: PostQuery) -> PostPage:
    """Return one page of the client's posts matching the filters, newest first."""
    if not 1 <= query.limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_PAGE_SIZE}.", {"limit": "out of range"}
        )
    with ctx.uow(read_only=True) as uow:
        if query.account_id is not None:
            accounts = [_account(uow, actor, query.account_id)]
        else:
            allowed = client_account_ids(actor)
            accounts = [a for a in uow.accounts.list() if a.id in allowed]
        by_id = {a.id: a for a in accounts}
        if query.window_id is not None:
            # Among the client's windows, not by id: an id beyond the database's integers
            # (PostgreSQL refuses it) is simply not one of them.
            windows = uow.windows.list_for_accounts(sorted(client_account_ids(actor)))
            if all(w.id != query.window_id for w in windows):
                raise NotFound(f"No window {query.window_id}.")
        author_id = None
        if query.author_email is not None:
            author = uow.users.by_email(query.author_email.strip())
            if author is None:
                return PostPage([], None)
            author_id = author.id
        posts = uow.posts.page(
            account_ids=list(by_id),
            window_id=query.window_id,
            author_id=author_id,
            state=query.state,
            before_id=query.before_id,
            # One more than asked tells whether another page follows.
            limit=query.limit + 1,
        )
        items = _details(uow, ctx, posts[: query.limit], by_id, ctx.clock.now())
    more = len(posts) > query.limit
    return PostPage(items, items[-1].post.id if more else None)


#: Mastodon's longest page of statuses.
MAX_FEED_PAGE = 40


@dataclass(frozen=True)
class FeedQuery:
    """One page of one account's posts, paged as Mastodon pages (ids below `max_id`, above
    `since_id`; with `min_id`, the posts just above it)."""

    account_id: int
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = 20


def published_feed(ctx: ServiceContext, actor: Actor, query: FeedQuery) -> list[Post]:
    """Return the account's posts as published through ghostpost (notices and reminders
    included: they went out too), newest first; none the principal deleted (or is deleting)."""
    return _feed(
        ctx, actor, query, frozenset({PostState.PUBLISHED}), regular_only=False, live_only=True
    )


def queued_feed(ctx: ServiceContext, actor: Actor, query: FeedQuery) -> list[Post]:
    """Return the account's regular posts that have not gone out yet, newest first."""
    return _feed(ctx, actor, query, QUEUED_STATES, regular_only=True)


def _feed(
    ctx: ServiceContext,
    actor: Actor,
    query: FeedQuery,
    states: frozenset[PostState],
    *,
    regular_only: bool,
    live_only: bool = False,
) -> list[Post]:
    if not 1 <= query.limit <= MAX_FEED_PAGE:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_FEED_PAGE}.", {"limit": "out of range"}
        )
    with ctx.uow(read_only=True) as uow:
        account = _account(uow, actor, query.account_id)
        return uow.posts.feed(
            account_id=account.id,
            states=states,
            regular_only=regular_only,
            max_id=query.max_id,
            since_id=query.since_id,
            min_id=query.min_id,
            limit=query.limit,
            live_only=live_only,
        )


#: What a Mastodon client is told when ghostpost knows no account to measure: Mastodon's own.
DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_LENGTH = 23


@dataclass(frozen=True)
class PostingLimits:
    """How long a post may be, as a Mastodon client's composer needs to know."""

    max_characters: int
    characters_reserved_per_url: int


def posting_limits(ctx: ServiceContext, actor: Actor | None) -> PostingLimits:
    """Return the posting limits of the actor's accounts, or (anonymous) of every account:
    the strictest of them, so that a composer that believes them never writes too much."""
    with ctx.uow(read_only=True) as uow:
        accounts = uow.accounts.list()
    if actor is not None and actor.account_ids is not None:
        accounts = [a for a in accounts if a.id in actor.account_ids]
    if not accounts:
        return PostingLimits(DEFAULT_MAX_CHARACTERS, DEFAULT_URL_LENGTH)
    return PostingLimits(
        min(ctx.budget_for(a).measure("").primary.limit for a in accounts),
        max(a.url_length or DEFAULT_URL_LENGTH for a in accounts),
    )
