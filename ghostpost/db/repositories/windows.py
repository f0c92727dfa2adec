"""Delegation windows and proposed policy changes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    exists,
    select,
)
from sqlalchemy.orm import Session

from ghostpost.db.engine import connection_of, read_one_prepared
from ghostpost.db.models import (
    PostRow,
    WindowProposalRow,
    WindowRow,
)
from ghostpost.db.repositories.changes import WindowChanges, policy_columns
from ghostpost.db.repositories.rows import RowsById, table_of
from ghostpost.domain.model import (
    ProposalStatus,
    Window,
    WindowProposal,
)
from ghostpost.domain.policy import (
    ReminderMode,
    ReplyPolicy,
    TagMode,
    TagPosition,
    WindowKind,
    WindowPolicy,
)
from ghostpost.domain.states import PostState


def _now() -> datetime:
    # Bookkeeping only (created_at of reference rows); decisions use the injected clock.
    return datetime.now(UTC)


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
            alt_text_required=row.alt_text_required,
            tag_every_part=row.tag_every_part,
            reason=row.reason,
            kind=WindowKind(row.kind),
            reply_policy=ReplyPolicy(row.reply_policy),
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


#: Windows by id, read and changed by prebuilt statements (the worker's every publish).
_WINDOW_ROWS = RowsById(WindowRow)
_WINDOWS = table_of(WindowRow)
_WINDOW_KEYS = tuple(column.key for column in _WINDOWS.c)
#: The account's window covering :at (SqlWindows.covering).
_COVERING = select(*_WINDOWS.c).where(
    _WINDOWS.c.account_id == bindparam("account_id", type_=Integer),
    _WINDOWS.c.starts_at <= bindparam("at", type_=_WINDOWS.c.starts_at.type),
    _WINDOWS.c.ends_at > bindparam("at", type_=_WINDOWS.c.ends_at.type),
)


class SqlWindows(WindowChanges):
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
            **policy_columns(policy),
            created_by=created_by,
            posts_since_disclosure=0,
            created_at=_now(),
        )
        self.session.add(row)
        self.session.flush()
        return to_window(row)

    def get(self, window_id: int) -> Window | None:
        row = _WINDOW_ROWS.get(self.session, window_id)
        return to_window(row) if row is not None else None  # type: ignore[arg-type]

    def covering(self, account_id: int, at: datetime) -> Window | None:
        self.session.flush()  # as the ORM's query would
        values = read_one_prepared(
            connection_of(self.session), _COVERING, {"account_id": account_id, "at": at}
        )
        if values is None:
            return None
        return to_window(SimpleNamespace(**dict(zip(_WINDOW_KEYS, values, strict=True))))  # type: ignore[arg-type]

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

    def _change(self, window_id: int, **fields: object) -> Window:
        # One UPDATE … RETURNING (see SqlPosts._change).
        return to_window(_WINDOW_ROWS.change(self.session, window_id, fields))  # type: ignore[arg-type]

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
