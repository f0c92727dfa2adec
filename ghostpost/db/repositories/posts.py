"""Posts and the queues read from them."""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from ghostpost.db.engine import connection_of, read_one_prepared
from ghostpost.db.models import (
    AccountRow,
    AssignmentRow,
    LedgerEntryRow,
    OAuthClientRow,
    PostMediaRow,
    PostRow,
    UserRow,
    WindowRow,
)
from ghostpost.db.repositories.accounts import to_account
from ghostpost.db.repositories.changes import PostChanges
from ghostpost.db.repositories.people import to_user
from ghostpost.db.repositories.rows import RowsById
from ghostpost.db.repositories.windows import to_window
from ghostpost.db.submissions import read_columns
from ghostpost.domain.ledger import (
    LedgerTag,
)
from ghostpost.domain.model import (
    ClientStanding,
    DuePost,
    NewPost,
    Post,
    Source,
)
from ghostpost.domain.policy import (
    PostKind,
)
from ghostpost.domain.post_options import PostOptions
from ghostpost.domain.states import PostState
from ghostpost.services.ports import ClaimView


def _now() -> datetime:
    # Bookkeeping only (created_at of reference rows); decisions use the injected clock.
    return datetime.now(UTC)


def to_post(row: PostRow) -> Post:
    return Post(
        id=row.id,
        public_id=row.public_id,
        account_id=row.account_id,
        kind=PostKind(row.kind),
        state=PostState(row.state),
        author_id=row.author_id,
        submitter=row.submitter,
        source=Source(row.source),
        submitted_text=row.submitted_text,
        final_text=row.final_text,
        idempotency_key=row.idempotency_key,
        created_at=row.created_at,
        window_id=row.window_id,
        state_reason=row.state_reason,
        publish_at=row.publish_at,
        published_at=row.published_at,
        platform_post_id=row.platform_post_id,
        platform_url=row.platform_url,
        decisions=dict(row.decisions or {}),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        lease_until=row.lease_until,
        claimed_by=row.claimed_by,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        precedes_post_id=row.precedes_post_id,
        options=PostOptions(
            content_warning=row.content_warning,
            visibility=row.visibility,
            language=row.language,
            sensitive=row.sensitive,
        ),
        final_content_warning=row.final_content_warning,
        deletion_requested_at=row.deletion_requested_at,
        deletion_requested_by=row.deletion_requested_by,
        deleted_at=row.deleted_at,
        group_id=row.group_id,
        reply_to_post_id=row.reply_to_post_id,
        reply_to_platform_id=row.reply_to_platform_id,
        thread_id=row.thread_id,
        thread_position=row.thread_position,
    )


_ATTENTION_RANK = {
    PostState.FAILED.value: 0,
    PostState.HELD.value: 1,
    PostState.PENDING_APPROVAL.value: 2,
    PostState.PUBLISHING.value: 3,
    PostState.SCHEDULED.value: 4,
    PostState.PUBLISHED.value: 5,
    PostState.REFUSED.value: 6,
    PostState.CANCELLED.value: 6,
}
_DONE_RANK = 5
#: Posts by id, read and changed by prebuilt statements (the worker's every claim and publish).
_POST_ROWS = RowsById(PostRow)


class SqlPosts(PostChanges):
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, post: NewPost) -> Post:
        row = PostRow(
            public_id=post.public_id,
            account_id=post.account_id,
            window_id=post.window_id,
            kind=post.kind.value,
            state=post.state.value,
            state_reason=post.state_reason,
            author_id=post.author_id,
            submitter=post.submitter,
            source=post.source.value,
            submitted_text=post.submitted_text,
            final_text=post.final_text,
            publish_at=post.publish_at,
            idempotency_key=post.idempotency_key,
            decisions=post.decisions,
            attempts=0,
            precedes_post_id=post.precedes_post_id,
            content_warning=post.options.content_warning,
            final_content_warning=post.final_content_warning,
            visibility=post.options.visibility,
            language=post.options.language,
            sensitive=post.options.sensitive,
            created_at=post.created_at,
            updated_at=post.created_at,
            reply_to_post_id=post.reply_to_post_id,
            reply_to_platform_id=post.reply_to_platform_id,
            thread_id=post.thread_id,
            thread_position=post.thread_position,
        )
        self.session.add(row)
        self.session.flush()
        return to_post(row)

    def get(self, post_id: int) -> Post | None:
        row = _POST_ROWS.get(self.session, post_id)
        return to_post(row) if row is not None else None  # type: ignore[arg-type]

    def by_platform_post_id(self, platform: str, platform_post_id: str) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .join(AccountRow, AccountRow.id == PostRow.account_id)
            .where(PostRow.platform_post_id == platform_post_id, AccountRow.platform == platform)
        )
        return [to_post(r) for r in rows]

    def next_part(self, post: Post) -> Post | None:
        if post.thread_id is None:
            return None
        row = self.session.scalar(
            select(PostRow).where(
                PostRow.thread_id == post.thread_id, PostRow.reply_to_post_id == post.id
            )
        )
        return to_post(row) if row is not None else None

    def in_thread(self, thread_id: str) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .where(PostRow.thread_id == thread_id)
            .order_by(PostRow.thread_position, PostRow.id)
        )
        return [to_post(row) for row in rows]

    def by_public_id(self, public_id: str) -> Post | None:
        row = self.session.scalar(select(PostRow).where(PostRow.public_id == public_id))
        return to_post(row) if row else None

    def by_public_ids(self, public_ids: Collection[str]) -> list[Post]:
        if not public_ids:
            return []
        rows = self.session.scalars(
            select(PostRow).where(PostRow.public_id.in_(list(public_ids))).order_by(PostRow.id)
        )
        return [to_post(row) for row in rows]

    def in_group(self, group_id: str) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow).where(PostRow.group_id == group_id).order_by(PostRow.id)
        )
        return [to_post(row) for row in rows]

    def _change(self, post_id: int, **fields: object) -> Post:
        # One UPDATE … RETURNING (the row as stored now), not a SELECT to load the row and
        # then the UPDATE of the attributes the Session sees changed.
        row = _POST_ROWS.change(self.session, post_id, {**fields, "updated_at": _now()})
        return to_post(row)  # type: ignore[arg-type]

    def due_on_idle_accounts(self, now: datetime, limit: int) -> list[DuePost]:
        return _due_on_idle_accounts(self.session, now, limit)

    def claim_view(self, post_id: int, at: datetime) -> ClaimView | None:
        return _claim_view(self.session, post_id, at)

    def any_waiting_in_ended_windows(self, now: datetime) -> bool:
        return _any_waiting_in_ended_windows(self.session, now)

    def any_claimable(self, now: datetime) -> bool:
        return _any_claimable(self.session, now)

    def any_stale(self, now: datetime) -> bool:
        self.session.flush()
        found = read_one_prepared(connection_of(self.session), _ANY_STALE, {"now": now})
        return bool(found and found[0])

    def stale_publishing(self, now: datetime) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .where(
                and_(
                    PostRow.state == PostState.PUBLISHING.value,
                    or_(PostRow.lease_until.is_(None), PostRow.lease_until < now),
                )
            )
            .order_by(PostRow.id)
        )
        return [to_post(r) for r in rows]

    def stale_deletions(self, now: datetime) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .where(
                PostRow.deletion_requested_at.is_not(None),
                PostRow.deleted_at.is_(None),
                or_(PostRow.lease_until.is_(None), PostRow.lease_until < now),
            )
            .order_by(PostRow.id)
        )
        return [to_post(r) for r in rows]

    def waiting_in_ended_windows(self, now: datetime) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .join(WindowRow, WindowRow.id == PostRow.window_id)
            .where(
                PostRow.state.in_([PostState.HELD.value, PostState.PENDING_APPROVAL.value]),
                WindowRow.ends_at <= now,
            )
            .order_by(PostRow.id)
        )
        return [to_post(r) for r in rows]

    def held_in_window(self, window_id: int) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .where(PostRow.window_id == window_id, PostRow.state == PostState.HELD.value)
            .order_by(PostRow.publish_at, PostRow.id)
        )
        return [to_post(r) for r in rows]

    def waiting_regular(
        self,
        *,
        author_id: int | None = None,
        account_id: int | None = None,
        submitters: Collection[str] | None = None,
    ) -> list[Post]:
        waiting = (PostState.SCHEDULED, PostState.PENDING_APPROVAL, PostState.HELD)
        query = select(PostRow).where(
            PostRow.kind == PostKind.REGULAR.value,
            PostRow.state.in_([s.value for s in waiting]),
        )
        if author_id is not None:
            query = query.where(PostRow.author_id == author_id)
        if account_id is not None:
            query = query.where(PostRow.account_id == account_id)
        if submitters is not None:
            query = query.where(PostRow.submitter.in_(list(submitters)))
        rows = self.session.scalars(query.order_by(PostRow.id))
        return [to_post(r) for r in rows]

    def list_for_account(self, account_id: int) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow).where(PostRow.account_id == account_id).order_by(PostRow.id)
        )
        return [to_post(r) for r in rows]

    def published_timeline(
        self, account_id: int, starts_at: datetime, ends_at: datetime, also_post_id: int | None
    ) -> list[Post]:
        # An account publishes one post at a time, so the seq of the `post:published` entries
        # is the exact publishing order (published_at can tie when posts go out in one second).
        published_seq = (
            select(func.min(LedgerEntryRow.seq))
            .where(
                LedgerEntryRow.subject == literal("post:") + PostRow.public_id,
                LedgerEntryRow.tag == LedgerTag.POST_PUBLISHED.value,
            )
            .scalar_subquery()
        )
        in_period = and_(PostRow.published_at >= starts_at, PostRow.published_at < ends_at)
        rows = self.session.scalars(
            select(PostRow)
            .where(
                PostRow.account_id == account_id,
                PostRow.state == PostState.PUBLISHED.value,
                or_(in_period, PostRow.id == also_post_id) if also_post_id else in_period,
            )
            .order_by(published_seq.asc().nulls_last(), PostRow.published_at, PostRow.id)
        )
        return [to_post(r) for r in rows]

    @staticmethod
    def _scope(
        account_ids: Collection[int] | None, window_id: int | None
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if account_ids is not None:
            conditions.append(PostRow.account_id.in_(list(account_ids)))
        if window_id is not None:
            conditions.append(PostRow.window_id == window_id)
        return conditions

    def search(
        self,
        *,
        account_ids: Collection[int] | None,
        window_id: int | None,
        states: Collection[PostState] | None,
        offset: int,
        limit: int,
    ) -> list[Post]:
        query = select(PostRow).where(*self._scope(account_ids, window_id))
        if states is not None:
            query = query.where(PostRow.state.in_([s.value for s in states]))
        rank = case(_ATTENTION_RANK, value=PostRow.state, else_=len(_ATTENTION_RANK))
        done = rank >= _DONE_RANK
        query = query.order_by(
            rank,
            # Waiting posts: the next one to go out first. Finished posts: the latest first.
            case((done, None), else_=PostRow.publish_at).asc().nulls_last(),
            case((done, func.coalesce(PostRow.published_at, PostRow.updated_at))).desc(),
            case((done, -PostRow.id), else_=PostRow.id),
        )
        rows = self.session.scalars(query.offset(offset).limit(limit))
        return [to_post(r) for r in rows]

    def count_by_state(
        self, *, account_ids: Collection[int] | None, window_id: int | None
    ) -> dict[PostState, int]:
        query = (
            select(PostRow.state, func.count(PostRow.id))
            .where(*self._scope(account_ids, window_id))
            .group_by(PostRow.state)
        )
        return {PostState(state): count for state, count in self.session.execute(query)}

    def awaiting_approval(self, account_ids: Collection[int]) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .where(
                PostRow.account_id.in_(list(account_ids)),
                PostRow.kind == PostKind.REGULAR.value,
                PostRow.state == PostState.PENDING_APPROVAL.value,
            )
            .order_by(PostRow.publish_at, PostRow.id)
        )
        return [to_post(r) for r in rows]

    def in_period(
        self,
        *,
        account_ids: Collection[int],
        states: Collection[PostState],
        starts_at: datetime,
        ends_at: datetime,
        limit: int,
    ) -> list[Post]:
        moment = func.coalesce(PostRow.published_at, PostRow.publish_at)
        rows = self.session.scalars(
            select(PostRow)
            .where(
                PostRow.account_id.in_(list(account_ids)),
                PostRow.state.in_([s.value for s in states]),
                moment >= starts_at,
                moment < ends_at,
            )
            .order_by(moment, PostRow.id)
            .limit(limit)
        )
        return [to_post(r) for r in rows]

    def page(
        self,
        *,
        account_ids: Collection[int],
        window_id: int | None,
        author_id: int | None,
        state: PostState | None,
        before_id: int | None,
        limit: int,
    ) -> list[Post]:
        query = select(PostRow).where(*self._scope(account_ids, window_id))
        if author_id is not None:
            query = query.where(PostRow.author_id == author_id)
        if state is not None:
            query = query.where(PostRow.state == state.value)
        if before_id is not None:
            query = query.where(PostRow.id < before_id)
        rows = self.session.scalars(query.order_by(PostRow.id.desc()).limit(limit))
        return [to_post(r) for r in rows]

    def feed(
        self,
        *,
        account_id: int,
        states: Collection[PostState],
        regular_only: bool,
        max_id: int | None,
        since_id: int | None,
        min_id: int | None,
        limit: int,
        live_only: bool = False,
    ) -> list[Post]:
        query = select(PostRow).where(
            PostRow.account_id == account_id, PostRow.state.in_([s.value for s in states])
        )
        if live_only:
            query = query.where(PostRow.deletion_requested_at.is_(None))
        if regular_only:
            query = query.where(PostRow.kind == PostKind.REGULAR.value)
        for lower in (since_id, min_id):
            if lower is not None:
                query = query.where(PostRow.id > lower)
        if max_id is not None:
            query = query.where(PostRow.id < max_id)
        if min_id is not None:
            # The posts just above min_id (oldest first), handed back newest first.
            rows = list(self.session.scalars(query.order_by(PostRow.id.asc()).limit(limit)))
            return [to_post(r) for r in reversed(rows)]
        rows = list(self.session.scalars(query.order_by(PostRow.id.desc()).limit(limit)))
        return [to_post(r) for r in rows]


# The worker's reads for a claim, each one prebuilt Core statement: the worker asks them for
# every post it publishes, and building a statement, or the ORM's loading, costs more than
# running it.


def _table(row: object) -> Table:
    table = getattr(row, "__table__", None)
    assert isinstance(table, Table)
    return table


_POSTS = _table(PostRow)
_ACCOUNTS = _table(AccountRow)
_USERS = _table(UserRow)
_WINDOWS = _table(WindowRow)
_CLIENTS = _table(OAuthClientRow)
_ASSIGNMENTS = _table(AssignmentRow)
_MEDIA = _table(PostMediaRow)

#: The claim read's parts, in column order: (name, column keys; None for one value).
_Parts = tuple[tuple[str, tuple[str, ...] | None], ...]

#: "client:<client id>": the submitter of a post an API client submitted.
_CLIENT_PREFIX = "client:"


@functools.cache
def _claim_statement() -> tuple[Select[Any], _Parts]:
    """Built once: bound :post_id and :at."""
    posts = _POSTS
    other = posts.alias("other_post")
    part = posts.alias("thread_part")
    previous = posts.alias("previous_part")
    reminder = posts.alias("reminder")
    author = _USERS.alias("author")
    owner = _USERS.alias("client_owner")
    own = _WINDOWS.alias("own_window")
    covering = _WINDOWS.alias("covering_window")
    at = bindparam("at", type_=_WINDOWS.c.starts_at.type)
    # Each correlated to the post read (posts.*), as the repository's own queries ask them.
    busy = exists().where(
        other.c.account_id == posts.c.account_id,
        other.c.state == PostState.PUBLISHING.value,
    )
    in_progress = (  # ClaimView.thread_in_progress_id
        select(part.c.id)
        .join(previous, previous.c.id == part.c.reply_to_post_id)
        .where(
            part.c.account_id == posts.c.account_id,
            part.c.thread_id.is_not(None),
            # Equalities, not IN: a prepared statement binds no list of its own.
            or_(
                part.c.state == PostState.SCHEDULED.value,
                part.c.state == PostState.PENDING_APPROVAL.value,
                part.c.state == PostState.PUBLISHING.value,
            ),
            previous.c.thread_id == part.c.thread_id,
            previous.c.state == PostState.PUBLISHED.value,
        )
        .order_by(part.c.id)
        .limit(1)
        .scalar_subquery()
    )
    pending_reminder = (  # ClaimView.pending_reminder_id
        select(reminder.c.id)
        .where(
            reminder.c.precedes_post_id == posts.c.id,
            reminder.c.kind == PostKind.REMINDER.value,
            reminder.c.state == PostState.SCHEDULED.value,
        )
        .order_by(reminder.c.id)
        .limit(1)
        .scalar_subquery()
    )
    assigned = exists().where(
        _ASSIGNMENTS.c.user_id == posts.c.author_id,
        _ASSIGNMENTS.c.account_id == posts.c.account_id,
    )
    has_images = exists().where(_MEDIA.c.post_id == posts.c.id)
    post_columns, account_columns = read_columns(posts), read_columns(_ACCOUNTS)
    author_columns = read_columns(author)
    own_columns, covering_columns = read_columns(own), read_columns(covering)
    client_columns = [_CLIENTS.c.name, _CLIENTS.c.is_active, _CLIENTS.c.owner_id]
    owner_columns = [owner.c.name, owner.c.is_active]
    parts: _Parts = (
        ("post", tuple(c.key for c in post_columns)),
        ("account", tuple(c.key for c in account_columns)),
        ("busy", None),
        ("in_progress", None),
        ("pending_reminder", None),
        ("author", tuple(c.key for c in author_columns)),
        ("assigned", None),
        ("own_window", tuple(c.key for c in own_columns)),
        ("covering_window", tuple(c.key for c in covering_columns)),
        ("client", ("name", "is_active", "owner_id")),
        ("owner", ("name", "is_active")),
        ("has_images", None),
    )
    statement = (
        select(
            *post_columns,
            *account_columns,
            busy,
            in_progress,
            pending_reminder,
            *author_columns,
            assigned,
            *own_columns,
            *covering_columns,
            *client_columns,
            *owner_columns,
            has_images,
        )
        .select_from(posts)
        .join(_ACCOUNTS, _ACCOUNTS.c.id == posts.c.account_id)
        .outerjoin(author, author.c.id == posts.c.author_id)
        .outerjoin(own, own.c.id == posts.c.window_id)
        .outerjoin(
            covering,
            and_(
                covering.c.account_id == posts.c.account_id,
                covering.c.starts_at <= at,
                covering.c.ends_at > at,
            ),
        )
        .outerjoin(
            _CLIENTS,
            and_(
                func.substr(posts.c.submitter, 1, len(_CLIENT_PREFIX)) == _CLIENT_PREFIX,
                _CLIENTS.c.client_id == func.substr(posts.c.submitter, len(_CLIENT_PREFIX) + 1),
            ),
        )
        .outerjoin(owner, owner.c.id == _CLIENTS.c.owner_id)
        .where(posts.c.id == bindparam("post_id", type_=Integer))
        .limit(1)
    )
    return statement, parts


def _split(values: tuple[Any, ...], parts: _Parts) -> dict[str, Any]:
    """One joined row as {part: value}; a table's run becomes an object with its columns as
    attributes (what the to_* converters read), or None when the outer join found no row."""
    found: dict[str, Any] = {}
    at = 0
    for name, keys in parts:
        if keys is None:
            found[name] = values[at]
            at += 1
            continue
        run = values[at : at + len(keys)]
        at += len(keys)
        # Every part's first column is NOT NULL when its row exists (an id, a client's name).
        row = None if run[0] is None else SimpleNamespace(**dict(zip(keys, run, strict=True)))
        found[name] = row
    return found


def _claim_view(session: Session, post_id: int, at: datetime) -> ClaimView | None:
    """Implements PostRepository.claim_view: one statement."""
    session.flush()  # as an ORM query would: rows added before are read too
    statement, parts = _claim_statement()
    row = read_one_prepared(connection_of(session), statement, {"post_id": post_id, "at": at})
    if row is None:
        return None
    found = _split(row, parts)
    client, owner = found["client"], found["owner"]
    return ClaimView(
        post=to_post(found["post"]),
        account=to_account(found["account"]),
        account_busy=bool(found["busy"]),
        thread_in_progress_id=found["in_progress"],
        pending_reminder_id=found["pending_reminder"],
        own_window=None if found["own_window"] is None else to_window(found["own_window"]),
        covering_window=(
            None if found["covering_window"] is None else to_window(found["covering_window"])
        ),
        author=None if found["author"] is None else to_user(found["author"]),
        author_assigned=bool(found["assigned"]),
        client=(
            None
            if client is None
            else ClientStanding(
                client.name,
                client.is_active,
                client.owner_id,
                None if owner is None else owner.name,
                bool(owner is not None and owner.is_active),
            )
        ),
        has_images=bool(found["has_images"]),
    )


#: The due posts of the accounts with nothing in flight (PostRepository.due_on_idle_accounts).
_NOW = bindparam("now", type_=_POSTS.c.publish_at.type)
#: A scheduled post whose time has come, of an account with nothing in flight.
_DUE_ON_IDLE_ACCOUNT = (
    _POSTS.c.state == PostState.SCHEDULED.value,
    (_POSTS.c.publish_at.is_(None)) | (_POSTS.c.publish_at <= _NOW),
    _POSTS.c.account_id.not_in(
        select(_POSTS.c.account_id).where(_POSTS.c.state == PostState.PUBLISHING.value)
    ),
)
_DUE_ON_IDLE_ACCOUNTS = (
    select(_POSTS.c.id, _POSTS.c.account_id, _POSTS.c.next_attempt_at)
    .where(*_DUE_ON_IDLE_ACCOUNT)
    .order_by(_POSTS.c.publish_at, _POSTS.c.id)
    .limit(bindparam("limit", type_=Integer))
)


def _due_on_idle_accounts(session: Session, now: datetime, limit: int) -> list[DuePost]:
    """Implements PostRepository.due_on_idle_accounts: one statement."""
    session.flush()
    # Core on the transaction's connection: the ORM's execute costs more than this statement.
    rows = connection_of(session).execute(_DUE_ON_IDLE_ACCOUNTS, {"now": now, "limit": limit})
    return [DuePost(*row) for row in rows]


#: Whether any post waits (held, or awaiting approval) in a window that has ended.
_WAITING_IN_ENDED_WINDOW = exists().where(
    or_(
        _POSTS.c.state == PostState.HELD.value,
        _POSTS.c.state == PostState.PENDING_APPROVAL.value,
    ),
    _WINDOWS.c.id == _POSTS.c.window_id,
    _WINDOWS.c.ends_at <= _NOW,
)
_ANY_WAITING_IN_ENDED_WINDOWS = select(_WAITING_IN_ENDED_WINDOW)
#: Whether the worker's claim has anything to look at (PostRepository.any_claimable).
_ANY_CLAIMABLE = select(or_(exists().where(*_DUE_ON_IDLE_ACCOUNT), _WAITING_IN_ENDED_WINDOW))


def _any_claimable(session: Session, now: datetime) -> bool:
    """Implements PostRepository.any_claimable: one statement."""
    session.flush()
    found = read_one_prepared(connection_of(session), _ANY_CLAIMABLE, {"now": now})
    return bool(found and found[0])


def _any_waiting_in_ended_windows(session: Session, now: datetime) -> bool:
    """Implements PostRepository.any_waiting_in_ended_windows: one statement."""
    session.flush()
    found = read_one_prepared(connection_of(session), _ANY_WAITING_IN_ENDED_WINDOWS, {"now": now})
    return bool(found and found[0])


_LEASE_RUN_OUT = or_(
    _POSTS.c.lease_until.is_(None),
    _POSTS.c.lease_until < _NOW,
)
#: Whether a post in flight, or a deletion asked for, has a lease that ran out (what the
#: worker's reconciliation adopts): the worker asks at every idle poll.
_ANY_STALE = select(
    or_(
        exists().where(_POSTS.c.state == PostState.PUBLISHING.value, _LEASE_RUN_OUT),
        exists().where(
            _POSTS.c.deletion_requested_at.is_not(None),
            _POSTS.c.deleted_at.is_(None),
            _LEASE_RUN_OUT,
        ),
    )
)
