"""SQLAlchemy implementations of the repository ports in ghostpost.services.ports."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ghostpost.db.engine import READ_ONLY
from ghostpost.db.models import (
    AccountRow,
    AssignmentRow,
    LedgerCheckpointRow,
    LedgerEntryRow,
    LedgerHeadRow,
    OAuthClientAccountRow,
    OAuthClientAuthorRow,
    OAuthClientRow,
    OAuthTokenRow,
    PostRow,
    PrincipalRow,
    UserRow,
    WindowProposalRow,
    WindowRow,
)
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import (
    GENESIS_HASH,
    LedgerEntry,
    LedgerTag,
    canonical_json,
    chain_entry,
)
from ghostpost.domain.model import (
    Account,
    ApiClient,
    ApiToken,
    NewPost,
    Post,
    Principal,
    ProposalStatus,
    Role,
    Source,
    User,
    Window,
    WindowProposal,
)
from ghostpost.domain.policy import (
    PostKind,
    ReminderMode,
    TagMode,
    TagPosition,
    WindowPolicy,
)
from ghostpost.domain.states import PostState


def _now() -> datetime:
    # Bookkeeping only (created_at of reference rows); decisions use the injected clock.
    return datetime.now(UTC)


def to_principal(row: PrincipalRow) -> Principal:
    return Principal(id=row.id, name=row.name)


def to_account(row: AccountRow) -> Account:
    return Account(
        id=row.id,
        principal_id=row.principal_id,
        platform=row.platform,
        handle=row.handle,
        max_chars=row.max_chars,
        url_length=row.url_length,
        remote_id=row.remote_id,
        base_url=row.base_url,
        connected=row.platform == "local" or row.credentials is not None,
    )


def to_user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        principal_id=row.principal_id,
        is_active=row.is_active,
        totp_enabled=row.totp_secret is not None,
    )


def to_window(row: WindowRow) -> Window:
    return Window(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        policy=WindowPolicy(
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            notice_text=row.notice_text,
            reminder_text=row.reminder_text,
            reminder_every=row.reminder_every,
            reminder_mode=ReminderMode(row.reminder_mode),
            tag=row.tag,
            tag_mode=TagMode(row.tag_mode),
            tag_position=TagPosition(row.tag_position),
            requires_approval=row.requires_approval,
        ),
        created_by=row.created_by,
        notice_post_id=row.notice_post_id,
        notice_approved_at=row.notice_approved_at,
        notice_approved_by=row.notice_approved_by,
        notice_published_at=row.notice_published_at,
        posts_since_disclosure=row.posts_since_disclosure,
        notice_publish_at=row.notice_publish_at,
        notice_rejected_at=row.notice_rejected_at,
        notice_rejected_by=row.notice_rejected_by,
        notice_rejection_comment=row.notice_rejection_comment,
    )


def to_proposal(row: WindowProposalRow) -> WindowProposal:
    return WindowProposal(
        id=row.id,
        window_id=row.window_id,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        changes=dict(row.changes or {}),
        status=ProposalStatus(row.status),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
    )


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
    )


class SqlPrincipals:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str) -> Principal:
        row = PrincipalRow(name=name, created_at=_now())
        self.session.add(row)
        self.session.flush()
        return to_principal(row)

    def get(self, principal_id: int) -> Principal | None:
        row = self.session.get(PrincipalRow, principal_id)
        return to_principal(row) if row else None

    def by_name(self, name: str) -> Principal | None:
        row = self.session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
        return to_principal(row) if row else None

    def list(self) -> list[Principal]:
        rows = self.session.scalars(select(PrincipalRow).order_by(PrincipalRow.name))
        return [to_principal(r) for r in rows]


class SqlAccounts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        principal_id: int,
        platform: str,
        handle: str,
        max_chars: int | None,
        url_length: int | None,
    ) -> Account:
        row = AccountRow(
            principal_id=principal_id,
            platform=platform,
            handle=handle,
            max_chars=max_chars,
            url_length=url_length,
            created_at=_now(),
        )
        self.session.add(row)
        self.session.flush()
        return to_account(row)

    def get(self, account_id: int) -> Account | None:
        row = self.session.get(AccountRow, account_id)
        return to_account(row) if row else None

    def store_connection(
        self,
        account_id: int,
        *,
        remote_id: str | None,
        base_url: str | None,
        sealed_credentials: str | None,
        max_chars: int | None,
        url_length: int | None,
        connected_at: datetime | None,
    ) -> Account:
        row = self.session.get(AccountRow, account_id)
        assert row is not None
        row.remote_id = remote_id
        row.base_url = base_url
        row.credentials = sealed_credentials
        row.max_chars = max_chars
        row.url_length = url_length
        row.connected_at = connected_at
        self.session.flush()
        return to_account(row)

    def by_handle(self, platform: str, handle: str) -> Account | None:
        row = self.session.scalar(
            select(AccountRow).where(AccountRow.platform == platform, AccountRow.handle == handle)
        )
        return to_account(row) if row else None

    def list(self) -> list[Account]:
        rows = self.session.scalars(select(AccountRow).order_by(AccountRow.id))
        return [to_account(r) for r in rows]

    def lock(self, account_id: int) -> None:
        # PostgreSQL: row lock held to commit. SQLite: BEGIN IMMEDIATE already serialises writers.
        self.session.execute(
            select(AccountRow.id).where(AccountRow.id == account_id).with_for_update()
        )

    def try_lock(self, account_id: int) -> bool:
        # PostgreSQL: FOR UPDATE SKIP LOCKED returns no row while another worker holds the
        # account, so this worker moves on instead of queueing behind it. SQLite ignores the
        # clause; its BEGIN IMMEDIATE already gave this transaction the only write lock.
        found = self.session.scalar(
            select(AccountRow.id)
            .where(AccountRow.id == account_id)
            .with_for_update(skip_locked=True)
        )
        return found is not None


class SqlUsers:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, email: str, name: str, role: Role, password_hash: str, principal_id: int | None
    ) -> User:
        row = UserRow(
            email=email,
            name=name,
            role=role.value,
            password_hash=password_hash,
            principal_id=principal_id,
            is_active=True,
            created_at=_now(),
        )
        self.session.add(row)
        self.session.flush()
        return to_user(row)

    def get(self, user_id: int) -> User | None:
        row = self.session.get(UserRow, user_id)
        return to_user(row) if row else None

    def by_email(self, email: str) -> User | None:
        row = self.session.scalar(select(UserRow).where(UserRow.email == email.lower()))
        return to_user(row) if row else None

    def password_hash(self, user_id: int) -> str | None:
        row = self.session.get(UserRow, user_id)
        return row.password_hash if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.password_hash = password_hash
        self.session.flush()

    def list(self) -> list[User]:
        return [to_user(r) for r in self.session.scalars(select(UserRow).order_by(UserRow.name))]

    def totp(self, user_id: int) -> tuple[str | None, int | None]:
        row = self.session.get(UserRow, user_id)
        return (row.totp_secret, row.totp_last_step) if row else (None, None)

    def set_totp(self, user_id: int, sealed_secret: str | None, last_step: int | None) -> None:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.totp_secret = sealed_secret
        row.totp_last_step = last_step
        self.session.flush()

    def advance_totp_step(self, user_id: int, step: int) -> bool:
        # One conditional UPDATE: two requests racing with the same code cannot both win.
        result = self.session.execute(
            update(UserRow)
            .where(
                UserRow.id == user_id,
                UserRow.totp_secret.is_not(None),
                or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        # The row may be in this session already: its cached step must not hide the new one.
        self.session.expire_all()
        return result.rowcount == 1

    def set_active(self, user_id: int, active: bool) -> User:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.is_active = active
        self.session.flush()
        return to_user(row)

    def linked_to_principal(self, principal_id: int) -> User | None:
        row = self.session.scalar(select(UserRow).where(UserRow.principal_id == principal_id))
        return to_user(row) if row else None

    def set_principal(self, user_id: int, principal_id: int | None) -> User:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.principal_id = principal_id
        # Flushed at once: a hand-over unlinks the old user before the new one is linked, and
        # the unique index must see them in that order.
        self.session.flush()
        return to_user(row)


class SqlAssignments:
    def __init__(self, session: Session) -> None:
        self.session = session

    def accounts_of(self, user_id: int) -> list[int]:
        rows = self.session.scalars(
            select(AssignmentRow.account_id).where(AssignmentRow.user_id == user_id)
        )
        return sorted(rows)

    def users_of(self, account_id: int) -> list[int]:
        rows = self.session.scalars(
            select(AssignmentRow.user_id).where(AssignmentRow.account_id == account_id)
        )
        return sorted(rows)

    def add(self, user_id: int, account_id: int) -> None:
        self.session.add(AssignmentRow(user_id=user_id, account_id=account_id, created_at=_now()))
        self.session.flush()

    def remove(self, user_id: int, account_id: int) -> None:
        row = self.session.get(AssignmentRow, (user_id, account_id))
        if row is not None:
            self.session.delete(row)
            self.session.flush()

    def exists(self, user_id: int, account_id: int) -> bool:
        return bool(
            self.session.scalar(
                select(
                    exists().where(
                        AssignmentRow.user_id == user_id, AssignmentRow.account_id == account_id
                    )
                )
            )
        )


_POLICY_FIELDS = {
    "starts_at",
    "ends_at",
    "notice_text",
    "reminder_text",
    "reminder_every",
    "reminder_mode",
    "tag",
    "tag_mode",
    "tag_position",
    "requires_approval",
}


class SqlWindows:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        account_id: int,
        name: str,
        policy: WindowPolicy,
        created_by: int,
        notice_publish_at: datetime | None = None,
    ) -> Window:
        row = WindowRow(
            notice_publish_at=notice_publish_at,
            account_id=account_id,
            name=name,
            starts_at=policy.starts_at,
            ends_at=policy.ends_at,
            notice_text=policy.notice_text,
            reminder_text=policy.reminder_text,
            reminder_every=policy.reminder_every,
            reminder_mode=policy.reminder_mode.value,
            tag=policy.tag,
            tag_mode=policy.tag_mode.value,
            tag_position=policy.tag_position.value,
            requires_approval=policy.requires_approval,
            created_by=created_by,
            posts_since_disclosure=0,
            created_at=_now(),
        )
        self.session.add(row)
        self.session.flush()
        return to_window(row)

    def get(self, window_id: int) -> Window | None:
        row = self.session.get(WindowRow, window_id, populate_existing=True)
        return to_window(row) if row else None

    def covering(self, account_id: int, at: datetime) -> Window | None:
        row = self.session.scalar(
            select(WindowRow).where(
                WindowRow.account_id == account_id,
                WindowRow.starts_at <= at,
                WindowRow.ends_at > at,
            )
        )
        return to_window(row) if row else None

    def overlaps(
        self,
        account_id: int,
        starts_at: datetime,
        ends_at: datetime,
        exclude_window_id: int | None = None,
    ) -> bool:
        conditions = [
            WindowRow.account_id == account_id,
            WindowRow.starts_at < ends_at,
            WindowRow.ends_at > starts_at,
        ]
        if exclude_window_id is not None:
            conditions.append(WindowRow.id != exclude_window_id)
        return bool(self.session.scalar(select(exists().where(*conditions))))

    def update(self, window_id: int, **changes: Any) -> Window:
        row = self.session.get(WindowRow, window_id)
        assert row is not None
        for key, value in changes.items():
            if key in _POLICY_FIELDS and hasattr(value, "value"):
                value = value.value
            setattr(row, key, value)
        self.session.flush()
        return to_window(row)

    def list_for_account(self, account_id: int) -> list[Window]:
        rows = self.session.scalars(
            select(WindowRow)
            .where(WindowRow.account_id == account_id)
            .order_by(WindowRow.starts_at)
        )
        return [to_window(r) for r in rows]

    def list_for_accounts(self, account_ids: Collection[int]) -> list[Window]:
        rows = self.session.scalars(
            select(WindowRow)
            .where(WindowRow.account_id.in_(list(account_ids)))
            .order_by(WindowRow.starts_at.desc(), WindowRow.id.desc())
        )
        return [to_window(r) for r in rows]

    def notices_awaiting_approval(
        self, account_ids: Collection[int], now: datetime
    ) -> list[Window]:
        rows = self.session.scalars(
            select(WindowRow)
            .join(PostRow, PostRow.id == WindowRow.notice_post_id)
            .where(
                WindowRow.account_id.in_(list(account_ids)),
                WindowRow.notice_approved_at.is_(None),
                WindowRow.notice_rejected_at.is_(None),
                WindowRow.ends_at > now,
                PostRow.state == PostState.PENDING_APPROVAL.value,
            )
            .order_by(WindowRow.starts_at, WindowRow.id)
        )
        return [to_window(r) for r in rows]

    def add_proposal(
        self,
        *,
        window_id: int,
        proposed_by: int,
        proposed_at: datetime,
        changes: Mapping[str, Mapping[str, Any]],
    ) -> WindowProposal:
        row = WindowProposalRow(
            window_id=window_id,
            proposed_by=proposed_by,
            proposed_at=proposed_at,
            changes={k: dict(v) for k, v in changes.items()},
            status=ProposalStatus.PENDING.value,
        )
        self.session.add(row)
        self.session.flush()
        return to_proposal(row)

    def get_proposal(self, proposal_id: int) -> WindowProposal | None:
        row = self.session.get(WindowProposalRow, proposal_id, populate_existing=True)
        return to_proposal(row) if row else None

    def proposals_of(self, window_id: int) -> list[WindowProposal]:
        rows = self.session.scalars(
            select(WindowProposalRow)
            .where(WindowProposalRow.window_id == window_id)
            .order_by(WindowProposalRow.id.desc())
        )
        return [to_proposal(r) for r in rows]

    def pending_proposals(self, account_ids: Collection[int]) -> list[WindowProposal]:
        rows = self.session.scalars(
            select(WindowProposalRow)
            .join(WindowRow, WindowRow.id == WindowProposalRow.window_id)
            .where(
                WindowRow.account_id.in_(list(account_ids)),
                WindowProposalRow.status == ProposalStatus.PENDING.value,
            )
            .order_by(WindowProposalRow.proposed_at, WindowProposalRow.id)
        )
        return [to_proposal(r) for r in rows]

    def decide_proposal(
        self,
        proposal_id: int,
        *,
        status: ProposalStatus,
        decided_by: int | None,
        decided_at: datetime,
        comment: str | None,
    ) -> WindowProposal:
        row = self.session.get(WindowProposalRow, proposal_id)
        assert row is not None
        row.status = status.value
        row.decided_by = decided_by
        row.decided_at = decided_at
        row.comment = comment
        self.session.flush()
        return to_proposal(row)


#: Queue order: what needs a person first, then what waits, then what is finished.
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


class SqlPosts:
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
            created_at=post.created_at,
            updated_at=post.created_at,
        )
        self.session.add(row)
        self.session.flush()
        return to_post(row)

    def get(self, post_id: int) -> Post | None:
        row = self.session.get(PostRow, post_id, populate_existing=True)
        return to_post(row) if row else None

    def by_public_id(self, public_id: str) -> Post | None:
        row = self.session.scalar(select(PostRow).where(PostRow.public_id == public_id))
        return to_post(row) if row else None

    def update(self, post_id: int, **changes: Any) -> Post:
        row = self.session.get(PostRow, post_id)
        assert row is not None
        for key, value in changes.items():
            if key in ("state", "kind", "source"):
                value = value.value
            setattr(row, key, value)
        row.updated_at = _now()
        self.session.flush()
        return to_post(row)

    def due(self, now: datetime, limit: int, skip_accounts: set[int]) -> list[Post]:
        rows = self.session.scalars(
            select(PostRow)
            .where(
                PostRow.state == PostState.SCHEDULED.value,
                or_(PostRow.publish_at.is_(None), PostRow.publish_at <= now),
                PostRow.account_id.not_in(skip_accounts),
            )
            .order_by(PostRow.publish_at, PostRow.id)
            .limit(limit)
        )
        return [to_post(r) for r in rows]

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


def format_timestamp(at: datetime) -> str:
    """Render a ledger time: RFC 3339, UTC, microseconds, 'Z'."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_entry(row: LedgerEntryRow) -> LedgerEntry:
    return LedgerEntry(
        seq=row.seq,
        occurred_at=row.occurred_at,
        tag=row.tag,
        actor=row.actor,
        subject=row.subject,
        data=json.loads(row.data),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


def to_checkpoint(row: LedgerCheckpointRow) -> Checkpoint:
    return Checkpoint(
        size=row.size,
        head_hash=row.head_hash,
        signed_at=row.signed_at,
        key_id=row.key_id,
        signature=row.signature,
        kind=row.kind,
    )


#: The key of the PostgreSQL advisory lock only the signing notary holds ("ghostpost notary").
NOTARY_LOCK_KEY = 0x67706E6F74617279


class SqlLedger:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _lock_head(self) -> LedgerHeadRow:
        head = self.session.scalar(
            select(LedgerHeadRow).where(LedgerHeadRow.id == 1).with_for_update()
        )
        if head is None:
            head = LedgerHeadRow(id=1, size=0, head_hash=GENESIS_HASH)
            self.session.add(head)
        return head

    def append(
        self, *, tag: str, actor: str, subject: str, data: Mapping[str, Any], occurred_at: datetime
    ) -> LedgerEntry:
        # Locking the head row serialises appends: seq is gapless and follows commit order.
        # Nothing is signed here: the notary signs heads outside the request's transaction.
        head = self._lock_head()
        # Round-trip through canonical JSON so what is hashed is exactly what is stored.
        text = canonical_json(dict(data))
        entry = chain_entry(
            seq=head.size + 1,
            occurred_at=format_timestamp(occurred_at),
            tag=str(tag),
            actor=actor,
            subject=subject,
            data=json.loads(text),
            prev_hash=head.head_hash,
        )
        self.session.add(
            LedgerEntryRow(
                seq=entry.seq,
                occurred_at=entry.occurred_at,
                tag=entry.tag,
                actor=entry.actor,
                subject=entry.subject,
                data=text,
                prev_hash=entry.prev_hash,
                entry_hash=entry.entry_hash,
            )
        )
        head.size = entry.seq
        head.head_hash = entry.entry_hash
        self.session.flush()
        return entry

    def head(self) -> tuple[int, str]:
        head = self.session.get(LedgerHeadRow, 1)
        return (head.size, head.head_hash) if head is not None else (0, GENESIS_HASH)

    def claim_notary(self) -> bool:
        if self.session.get_bind().dialect.name != "postgresql":
            return True  # SQLite: one host; the notary's file lock decides
        taken = self.session.scalar(
            select(func.pg_try_advisory_xact_lock(literal(NOTARY_LOCK_KEY, BigInteger)))
        )
        return bool(taken)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.session.add(
            LedgerCheckpointRow(
                size=checkpoint.size,
                head_hash=checkpoint.head_hash,
                signed_at=checkpoint.signed_at,
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
                kind=checkpoint.kind,
            )
        )
        self.session.flush()

    def latest_checkpoint(self) -> Checkpoint | None:
        row = self.session.scalar(
            select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.id.desc()).limit(1)
        )
        return to_checkpoint(row) if row is not None else None

    def checkpoints(
        self, *, max_size: int | None = None, batch: int = 1000
    ) -> Iterator[Checkpoint]:
        query = select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.id)
        if max_size is not None:
            query = query.where(LedgerCheckpointRow.size <= max_size)
        for row in self.session.scalars(query.execution_options(yield_per=batch)):
            yield to_checkpoint(row)

    def entries(
        self, *, after_seq: int = 0, up_to_seq: int | None = None, snapshot: bool = False
    ) -> Iterator[LedgerEntry]:
        if snapshot and not self.session.in_transaction():
            self.session.connection(execution_options={READ_ONLY: True})
        query = select(LedgerEntryRow).where(LedgerEntryRow.seq > after_seq)
        if up_to_seq is not None:
            query = query.where(LedgerEntryRow.seq <= up_to_seq)
        rows = self.session.scalars(
            query.order_by(LedgerEntryRow.seq).execution_options(yield_per=500)
        )
        for row in rows:
            yield to_entry(row)

    def entry(self, seq: int) -> LedgerEntry | None:
        row = self.session.scalar(select(LedgerEntryRow).where(LedgerEntryRow.seq == seq))
        return to_entry(row) if row is not None else None

    def search(
        self,
        *,
        account_ids: Collection[int] | None = None,
        window_id: int | None = None,
        author_id: int | None = None,
        tag: str | None = None,
        subject: str | None = None,
        occurred_from: str | None = None,
        occurred_before: str | None = None,
        before_seq: int | None = None,
        after_seq: int | None = None,
        oldest_first: bool = False,
        limit: int = 50,
    ) -> list[LedgerEntry]:
        # Entries name what they are about in `subject`; account, window and author filters
        # select the subjects that belong to them (indexed, and the same SQL on both backends).
        column = LedgerEntryRow.subject
        conditions: list[ColumnElement[bool]] = []
        if account_ids is not None:
            ids = list(account_ids)
            conditions.append(
                or_(
                    column.in_([f"account:{i}" for i in ids]),
                    column.in_(_post_subjects(PostRow.account_id.in_(ids))),
                    column.in_(
                        select(literal("window:") + cast(WindowRow.id, String)).where(
                            WindowRow.account_id.in_(ids)
                        )
                    ),
                )
            )
        if window_id is not None:
            conditions.append(
                or_(
                    column == f"window:{window_id}",
                    column.in_(_post_subjects(PostRow.window_id == window_id)),
                )
            )
        if author_id is not None:
            conditions.append(column.in_(_post_subjects(PostRow.author_id == author_id)))
        if tag is not None:
            conditions.append(LedgerEntryRow.tag == tag)
        if subject is not None:
            conditions.append(column == subject)
        # occurred_at is RFC 3339 UTC in one fixed format, so text order is time order.
        if occurred_from is not None:
            conditions.append(LedgerEntryRow.occurred_at >= occurred_from)
        if occurred_before is not None:
            conditions.append(LedgerEntryRow.occurred_at < occurred_before)
        if before_seq is not None:
            conditions.append(LedgerEntryRow.seq < before_seq)
        if after_seq is not None:
            conditions.append(LedgerEntryRow.seq > after_seq)
        order = LedgerEntryRow.seq.asc() if oldest_first else LedgerEntryRow.seq.desc()
        rows = self.session.scalars(
            select(LedgerEntryRow).where(*conditions).order_by(order).limit(limit)
        )
        return [to_entry(row) for row in rows]


def _post_subjects(condition: ColumnElement[bool]) -> Select[str]:
    """The ledger subjects ("post:<public id>") of the posts matching `condition`."""
    return select(literal("post:") + PostRow.public_id).where(condition)


def _scope_text(scopes: Collection[str]) -> str:
    return " ".join(sorted(set(scopes)))


def _scope_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


class SqlApiClients:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _record(self, row: OAuthClientRow) -> ApiClient:
        accounts = self.session.scalars(
            select(OAuthClientAccountRow.account_id).where(
                OAuthClientAccountRow.client_row_id == row.id
            )
        )
        authors = self.session.scalars(
            select(OAuthClientAuthorRow.user_id).where(OAuthClientAuthorRow.client_row_id == row.id)
        )
        return ApiClient(
            id=row.id,
            client_id=row.client_id,
            name=row.name,
            owner_id=row.owner_id,
            scopes=_scope_set(row.scopes),
            account_ids=frozenset(accounts),
            default_author_id=row.default_author_id,
            is_active=row.is_active,
            author_ids=frozenset(authors),
        )

    def add(
        self,
        *,
        client_id: str,
        secret_hash: str,
        name: str,
        owner_id: int,
        scopes: Collection[str],
        account_ids: Collection[int],
        default_author_id: int | None,
        author_ids: Collection[int],
        created_at: datetime,
    ) -> ApiClient:
        row = OAuthClientRow(
            client_id=client_id,
            secret_hash=secret_hash,
            name=name,
            owner_id=owner_id,
            scopes=_scope_text(scopes),
            default_author_id=default_author_id,
            is_active=True,
            created_at=created_at,
        )
        self.session.add(row)
        self.session.flush()
        for account_id in sorted(set(account_ids)):
            self.session.add(OAuthClientAccountRow(client_row_id=row.id, account_id=account_id))
        for user_id in sorted(set(author_ids)):
            self.session.add(OAuthClientAuthorRow(client_row_id=row.id, user_id=user_id))
        self.session.flush()
        return self._record(row)

    def set_authors(
        self, row_id: int, author_ids: Collection[int], default_author_id: int | None
    ) -> ApiClient:
        row = self.session.get(OAuthClientRow, row_id)
        assert row is not None
        self.session.execute(
            delete(OAuthClientAuthorRow).where(OAuthClientAuthorRow.client_row_id == row_id)
        )
        for user_id in sorted(set(author_ids)):
            self.session.add(OAuthClientAuthorRow(client_row_id=row_id, user_id=user_id))
        row.default_author_id = default_author_id
        self.session.flush()
        return self._record(row)

    def get(self, row_id: int) -> ApiClient | None:
        row = self.session.get(OAuthClientRow, row_id)
        return self._record(row) if row else None

    def by_client_id(self, client_id: str) -> ApiClient | None:
        row = self.session.scalar(
            select(OAuthClientRow).where(OAuthClientRow.client_id == client_id)
        )
        return self._record(row) if row else None

    def secret_hash(self, client_id: str) -> str | None:
        found: str | None = self.session.scalar(
            select(OAuthClientRow.secret_hash).where(OAuthClientRow.client_id == client_id)
        )
        return found

    def list(self) -> list[ApiClient]:
        rows = self.session.scalars(
            select(OAuthClientRow).order_by(OAuthClientRow.name, OAuthClientRow.id)
        )
        return [self._record(r) for r in rows]

    def set_active(self, row_id: int, active: bool) -> ApiClient:
        row = self.session.get(OAuthClientRow, row_id)
        assert row is not None
        row.is_active = active
        self.session.flush()
        return self._record(row)


def to_api_token(row: OAuthTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        client_row_id=row.client_row_id,
        scopes=_scope_set(row.scope),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlApiTokens:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        token_hash: str,
        client_row_id: int,
        scopes: Collection[str],
        issued_at: datetime,
        expires_at: datetime,
    ) -> ApiToken:
        row = OAuthTokenRow(
            token_hash=token_hash,
            client_row_id=client_row_id,
            scope=_scope_text(scopes),
            issued_at=issued_at,
            expires_at=expires_at,
        )
        self.session.add(row)
        self.session.flush()
        return to_api_token(row)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        row = self.session.scalar(
            select(OAuthTokenRow).where(OAuthTokenRow.token_hash == token_hash)
        )
        return to_api_token(row) if row else None

    def revoke(self, token_id: int, at: datetime) -> None:
        row = self.session.get(OAuthTokenRow, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = at
            self.session.flush()

    def revoke_all(self, client_row_id: int, at: datetime) -> int:
        result = self.session.execute(
            update(OAuthTokenRow)
            .where(OAuthTokenRow.client_row_id == client_row_id, OAuthTokenRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def purge_expired(self, client_row_id: int, expired_before: datetime) -> int:
        result = self.session.execute(
            delete(OAuthTokenRow).where(
                OAuthTokenRow.client_row_id == client_row_id,
                OAuthTokenRow.expires_at < expired_before,
            )
        )
        assert isinstance(result, CursorResult)
        return result.rowcount
