"""Streaming reads behind the exports (ghostpost.services.exports): constant memory at any size.

Rows come through a server-side cursor (`yield_per`: a named cursor on PostgreSQL, SQLite's
stepping cursor) in batches, inside one read-only snapshot: SQLite begins a deferred
transaction (WAL: a reader never blocks the writers), PostgreSQL a REPEATABLE READ READ ONLY
one, so the count taken for a progress bar and the rows streamed after it agree.

The export's own reads (`post_rows`, `entry_rows`) hand out batches of plain column tuples:
no domain object per row (the service formats lines straight from the columns). Filtering
entries by account, window or author joins each entry to the post it is about (at most one:
public ids are unique) instead of asking `subject IN (SELECT 'post:' || public_id ...)`: under
an OR PostgreSQL runs such a subquery as a SubPlan per entry, unhashed once the posts outgrow
work_mem (quadratic: 200k entries did not finish in 5 minutes). The join is a hash join on
PostgreSQL and a unique-index look-up per entry on SQLite; the window subjects come from the
small windows table as a literal list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from ghostpost.db.engine import READ_ONLY
from ghostpost.db.models import LedgerCheckpointRow, LedgerEntryRow, PostRow, WindowRow
from ghostpost.db.repositories.ledger import format_timestamp, to_checkpoint, to_entry
from ghostpost.db.repositories.posts import to_post
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.model import Post
from ghostpost.services.ports import ExportScope

#: The columns `entry_rows` yields, in order.
ENTRY_COLUMNS = (
    "seq",
    "occurred_at",
    "tag",
    "actor",
    "subject",
    "data",
    "prev_hash",
    "entry_hash",
)
#: The columns `checkpoint_rows` yields, in order.
CHECKPOINT_COLUMNS = ("size", "head_hash", "signed_at", "key_id", "signature", "kind")
#: The columns `post_rows` yields, in order.
POST_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "window_id",
    "kind",
    "state",
    "state_reason",
    "author_id",
    "submitter",
    "source",
    "final_text",
    "published_at",
    "platform_url",
    "decisions",
    "approved_by",
    "approved_at",
    "created_at",
)

_POST_PREFIX = "post:"


def _entry_post_join() -> ColumnElement[bool]:
    """Join condition: the post an entry's subject ("post:<public id>") names."""
    subject = LedgerEntryRow.subject
    return and_(
        func.substr(subject, 1, len(_POST_PREFIX)) == _POST_PREFIX,
        PostRow.public_id == func.substr(subject, len(_POST_PREFIX) + 1),
    )


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

    def post_rows(self, scope: ExportScope, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        query = (
            select(*(getattr(PostRow, name) for name in POST_COLUMNS))
            .where(*self._post_conditions(scope))
            .order_by(PostRow.id)
            .execution_options(yield_per=batch)
        )
        return self._batches(query)

    # --- ledger -------------------------------------------------------------------------------

    def _window_subjects(self, condition: ColumnElement[bool]) -> list[str]:
        """The ledger subjects ("window:<id>") of the windows matching `condition` (few)."""
        ids = self.session.scalars(select(WindowRow.id).where(condition).order_by(WindowRow.id))
        return [f"window:{i}" for i in ids]

    def _entries_query(self, scope: ExportScope, up_to_seq: int, *columns: Any) -> Select[Any]:
        # The same subject rules as the ledger viewer (db.repositories.ledger.SqlLedger.search).
        subject = LedgerEntryRow.subject
        conditions: list[ColumnElement[bool]] = [LedgerEntryRow.seq <= up_to_seq]
        joined = False
        if scope.account_ids is not None:
            ids = sorted(scope.account_ids)
            named = [f"account:{i}" for i in ids]
            named += self._window_subjects(WindowRow.account_id.in_(ids))
            conditions.append(or_(subject.in_(named), PostRow.account_id.in_(ids)))
            joined = True
        if scope.window_id is not None:
            conditions.append(
                or_(subject == f"window:{scope.window_id}", PostRow.window_id == scope.window_id)
            )
            joined = True
        if scope.author_id is not None:
            conditions.append(PostRow.author_id == scope.author_id)
            joined = True
        # occurred_at is RFC 3339 UTC in one fixed format, so text order is time order.
        if scope.since is not None:
            conditions.append(LedgerEntryRow.occurred_at >= format_timestamp(scope.since))
        if scope.until is not None:
            conditions.append(LedgerEntryRow.occurred_at < format_timestamp(scope.until))
        query = select(*columns).select_from(LedgerEntryRow)
        if joined:
            query = query.outerjoin(PostRow, _entry_post_join())
        return query.where(*conditions)

    def count_entries(self, scope: ExportScope, up_to_seq: int) -> int:
        query = self._entries_query(scope, up_to_seq, func.count())
        return int(self.session.scalar(query) or 0)

    def entries_sql(self, scope: ExportScope, up_to_seq: int) -> str:
        """Return the SQL `entry_rows` runs, values inlined (for EXPLAIN in tests)."""
        query = self._entries_query(scope, up_to_seq, *self._entry_columns()).order_by(
            LedgerEntryRow.seq
        )
        dialect = self.session.get_bind().dialect
        return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    @staticmethod
    def _entry_columns() -> list[Any]:
        return [getattr(LedgerEntryRow, name) for name in ENTRY_COLUMNS]

    def entries(self, scope: ExportScope, up_to_seq: int, batch: int) -> Iterator[LedgerEntry]:
        for rows in self.entry_rows(scope, up_to_seq, batch):
            for row in rows:
                yield to_entry(row)  # type: ignore[arg-type]

    def entry_rows(
        self, scope: ExportScope, up_to_seq: int, batch: int
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        query = (
            self._entries_query(scope, up_to_seq, *self._entry_columns())
            .order_by(LedgerEntryRow.seq)
            .execution_options(yield_per=batch)
        )
        return self._batches(query)

    def _batches(self, query: Select[Any]) -> Iterator[Sequence[tuple[Any, ...]]]:
        # Core, not Session.execute: the ORM's row loading costs more than the fetch itself.
        result = self.session.connection().execute(query)
        try:
            yield from result.partitions()
        finally:
            # Also when the consumer stops early: the server-side cursor closes now, inside
            # its transaction, not whenever the garbage collector gets to it.
            result.close()

    def checkpoint_rows(self, up_to_size: int, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        query = (
            select(*(getattr(LedgerCheckpointRow, name) for name in CHECKPOINT_COLUMNS))
            .where(LedgerCheckpointRow.size <= up_to_size)
            .order_by(LedgerCheckpointRow.id)
            .execution_options(yield_per=batch)
        )
        return self._batches(query)

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
