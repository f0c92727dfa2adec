"""Streaming reads behind the exports (ghostpost.services.exports): constant memory at any size.

Rows come through a server-side cursor (`yield_per`: a named cursor on PostgreSQL, SQLite's
stepping cursor) in batches, inside one read-only snapshot: SQLite begins a deferred
transaction (WAL: a reader never blocks the writers), PostgreSQL a REPEATABLE READ READ ONLY
one, so the count taken for a progress bar and the rows streamed after it agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from ghostpost.db.engine import READ_ONLY
from ghostpost.db.models import LedgerCheckpointRow, LedgerEntryRow, PostRow, WindowRow
from ghostpost.db.repositories import format_timestamp, to_checkpoint, to_entry, to_post
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.model import Post
from ghostpost.services.ports import ExportScope


def _post_subjects(condition: ColumnElement[bool]) -> Select[Any]:
    """The ledger subjects ("post:<public id>") of the posts matching `condition`."""
    return select(literal("post:") + PostRow.public_id).where(condition)


class SqlExports:
    """Implements ghostpost.services.ports.ExportReader."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def use_snapshot(self) -> None:
        # Must come first: once the transaction has a connection SQLAlchemy ignores the
        # options (and warns).
        connection = self.session.connection(execution_options={READ_ONLY: True})
        if connection.dialect.name == "postgresql":
            # The first statement of the transaction, so it still may set its mode.
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    # --- posts --------------------------------------------------------------------------------

    @staticmethod
    def _post_conditions(scope: ExportScope) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if scope.account_ids is not None:
            conditions.append(PostRow.account_id.in_(sorted(scope.account_ids)))
        if scope.window_id is not None:
            conditions.append(PostRow.window_id == scope.window_id)
        if scope.author_id is not None:
            conditions.append(PostRow.author_id == scope.author_id)
        if scope.since is not None or scope.until is not None:
            # A published post counts when it went out; any other when it was submitted.
            moment = func.coalesce(PostRow.published_at, PostRow.created_at)
            if scope.since is not None:
                conditions.append(moment >= scope.since)
            if scope.until is not None:
                conditions.append(moment < scope.until)
        return conditions

    def count_posts(self, scope: ExportScope) -> int:
        query = select(func.count()).select_from(PostRow).where(*self._post_conditions(scope))
        return int(self.session.scalar(query) or 0)

    def posts(self, scope: ExportScope, batch: int) -> Iterator[Post]:
        # Plain rows, not ORM objects: nothing lands in the session's identity map, and a row
        # has the attributes to_post reads (column names are the attribute names).
        query = (
            select(*PostRow.__table__.columns)
            .where(*self._post_conditions(scope))
            .order_by(PostRow.id)
            .execution_options(yield_per=batch)
        )
        result = self.session.execute(query)
        try:
            for row in result:
                yield to_post(row)  # type: ignore[arg-type]
        finally:
            # Also when the consumer stops early: the server-side cursor closes now, inside
            # its transaction, not whenever the garbage collector gets to it.
            result.close()

    # --- ledger -------------------------------------------------------------------------------

    @staticmethod
    def _entry_conditions(scope: ExportScope, up_to_seq: int) -> list[ColumnElement[bool]]:
        # The same subject rules as the ledger viewer (db.repositories.SqlLedger.search).
        column = LedgerEntryRow.subject
        conditions: list[ColumnElement[bool]] = [LedgerEntryRow.seq <= up_to_seq]
        if scope.account_ids is not None:
            ids = sorted(scope.account_ids)
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
        if scope.window_id is not None:
            conditions.append(
                or_(
                    column == f"window:{scope.window_id}",
                    column.in_(_post_subjects(PostRow.window_id == scope.window_id)),
                )
            )
        if scope.author_id is not None:
            conditions.append(column.in_(_post_subjects(PostRow.author_id == scope.author_id)))
        # occurred_at is RFC 3339 UTC in one fixed format, so text order is time order.
        if scope.since is not None:
            conditions.append(LedgerEntryRow.occurred_at >= format_timestamp(scope.since))
        if scope.until is not None:
            conditions.append(LedgerEntryRow.occurred_at < format_timestamp(scope.until))
        return conditions

    def count_entries(self, scope: ExportScope, up_to_seq: int) -> int:
        query = (
            select(func.count())
            .select_from(LedgerEntryRow)
            .where(*self._entry_conditions(scope, up_to_seq))
        )
        return int(self.session.scalar(query) or 0)

    def entries(self, scope: ExportScope, up_to_seq: int, batch: int) -> Iterator[LedgerEntry]:
        query = (
            select(*LedgerEntryRow.__table__.columns)
            .where(*self._entry_conditions(scope, up_to_seq))
            .order_by(LedgerEntryRow.seq)
            .execution_options(yield_per=batch)
        )
        result = self.session.execute(query)
        try:
            for row in result:
                yield to_entry(row)  # type: ignore[arg-type]
        finally:
            result.close()

    def checkpoints(self, up_to_size: int, batch: int) -> Iterator[Checkpoint]:
        query = (
            select(*LedgerCheckpointRow.__table__.columns)
            .where(LedgerCheckpointRow.size <= up_to_size)
            .order_by(LedgerCheckpointRow.id)
            .execution_options(yield_per=batch)
        )
        result = self.session.execute(query)
        try:
            for row in result:
                yield to_checkpoint(row)  # type: ignore[arg-type]
        finally:
            result.close()
