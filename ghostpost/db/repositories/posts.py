"""Posts and the queues read from them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from ghostpost.db.models import (
    AccountRow,
    LedgerEntryRow,
    PostRow,
    WindowRow,
)
from ghostpost.db.repositories.changes import PostChanges
from ghostpost.domain.ledger import (
    LedgerTag,
)
from ghostpost.domain.model import (
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
#: The part before a thread part. One alias for the module: a new one per call makes
#: SQLAlchemy adapt the whole statement again (several ms per claim).
_PREVIOUS_PART = aliased(PostRow)


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
        row = self.session.get(PostRow, post_id, populate_existing=True)
        return to_post(row) if row else None

    def by_platform_post_id(self, platform: str, platform_post_id: str) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .join(AccountRow, AccountRow.id == PostRow.account_id)
            .where(PostRow.platform_post_id == platform_post_id, AccountRow.platform == platform)
        )
        return [to_post(r) for r in rows]

    def thread_in_progress(self, account_id: int) -> Post | None:
        previous = _PREVIOUS_PART
        row = self.session.scalar(
            select(PostRow)
            .join(previous, previous.id == PostRow.reply_to_post_id)
            .where(
                PostRow.account_id == account_id,
                PostRow.thread_id.is_not(None),
                PostRow.state.in_(
                    (
                        PostState.SCHEDULED.value,
                        PostState.PENDING_APPROVAL.value,
                        PostState.PUBLISHING.value,
                    )
                ),
                previous.thread_id == PostRow.thread_id,
                previous.state == PostState.PUBLISHED.value,
            )
            .order_by(PostRow.id)
            .limit(1)
        )
        return to_post(row) if row is not None else None

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
        # One UPDATE … RETURNING (the row as stored now, into the Session too), not a SELECT
        # to load the row and then the UPDATE of the attributes the Session sees changed.
        self.session.flush()  # anything pending goes first, as it would have before
        row = self.session.scalar(
            update(PostRow)
            .where(PostRow.id == post_id)
            .values(**fields, updated_at=_now())
            .returning(PostRow),
            execution_options={"populate_existing": True, "synchronize_session": False},
        )
        assert row is not None
        return to_post(row)

    def due(self, now: datetime, limit: int, skip_accounts: set[int]) -> list[DuePost]:
        # Three columns, not the posts: the worker scans up to `limit` rows on every claim and
        # takes one, which it reads again under the account lock.
        rows = self.session.execute(
            select(PostRow.id, PostRow.account_id, PostRow.next_attempt_at)
            .where(
                PostRow.state == PostState.SCHEDULED.value,
                or_(PostRow.publish_at.is_(None), PostRow.publish_at <= now),
                PostRow.account_id.not_in(skip_accounts),
            )
            .order_by(PostRow.publish_at, PostRow.id)
            .limit(limit)
        )
        return [DuePost(*row) for row in rows]

    def publishing_account_ids(self) -> set[int]:
        rows = self.session.scalars(
            select(PostRow.account_id).where(PostRow.state == PostState.PUBLISHING.value).distinct()
        )
        return set(rows)

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

    def pending_reminder_for(self, post_id: int) -> Post | None:
        row = self.session.scalar(
            select(PostRow)
            .where(
                PostRow.precedes_post_id == post_id,
                PostRow.kind == PostKind.REMINDER.value,
                PostRow.state == PostState.SCHEDULED.value,
            )
            .order_by(PostRow.id)
        )
        return to_post(row) if row else None

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
