"""Streaming reads behind the exports (ghostpost.services.exports): constant memory at any size.

Rows come through a server-side cursor (`yield_per`: a named cursor on PostgreSQL, SQLite's
stepping cursor) in batches, inside one read-only snapshot: SQLite begins a deferred
transaction (WAL: a reader never blocks the writers), PostgreSQL a REPEATABLE READ READ ONLY
one, so the count taken for a progress bar and the rows streamed after it agree.

The export's own reads (`post_rows`, `entry_rows`, `checkpoint_rows`) hand out batches of plain
column tuples: no domain object per row (the service formats lines straight from the columns);
the ledger's, and the posts' on SQLite, come straight from the driver's cursor. A post's
`decisions` is handed over as its `decision_summary` (computed in SQL on SQLite).

Filtering entries by account reads their derived `account_id` through
ix_ledger_entries_account_id_seq; by window or author, the post each names joined by `post_id`
(an integer key) — never `subject IN (SELECT 'post:' || public_id ...)`, which under an OR
PostgreSQL ran as a SubPlan per entry, unhashed once the posts outgrew work_mem (quadratic:
200k entries did not finish in 5 minutes). The derived columns are not hashed:
`misfiled_entries` finds the entries whose columns disagree with their subject, for an account
scope from the indexes alone (migration 0012).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from ghostpost.db.base import UTCDateTime
from ghostpost.db.engine import READ_ONLY
from ghostpost.db.models import (
    AccountRow,
    LedgerCheckpointRow,
    LedgerEntryRow,
    PostRow,
    WindowRow,
)
from ghostpost.db.repositories.ledger import ENTRY_COLUMNS, format_timestamp, to_checkpoint
from ghostpost.db.repositories.posts import to_post
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.model import Post
from ghostpost.domain.policy import DECISION_SUMMARY_FIELDS, decision_summary
from ghostpost.services.ports import ExportScope, MisfiledEntry

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
    "approved_by",
    "approved_at",
    "created_at",
    "final_content_warning",
    "visibility",
    "deleted_at",
    "deletion_requested_by",
    "group_id",
    # What the report reads from `decisions`, not the document itself (decision_summary).
    *DECISION_SUMMARY_FIELDS,
)
#: The stored columns `post_rows` reads, `decisions` last (replaced by its summary).
_POST_READ_COLUMNS = (*POST_COLUMNS[: -len(DECISION_SUMMARY_FIELDS)], "decisions")

_POST_PREFIX = "post:"


def _sqlite_decision_summary(decisions: Any) -> list[ColumnElement[Any]]:
    """`decision_summary` of the `decisions` column in SQL, on SQLite (json_type and
    json_extract): each post's document is parsed once by SQLite (its JSON parse cache), in C,
    where json.loads per row cost a third of the authorship export."""

    def kind(path: str) -> ColumnElement[Any]:
        return func.json_type(decisions, path)

    def value(path: str) -> ColumnElement[Any]:
        return func.json_extract(decisions, path)

    def field(stage: str, path: str, wanted: str) -> ColumnElement[Any]:
        full = f"$.{stage}.{path}"
        return case((kind(full) == wanted, value(full)), else_=None)

    is_publication = kind("$.publication") == "object"
    is_submission = kind("$.submission") == "object"

    def staged(path: str, wanted: str) -> ColumnElement[Any]:
        return case(
            (is_publication, field("publication", path, wanted)),
            (is_submission, field("submission", path, wanted)),
            else_=None,
        )

    delegated = value("$.delegated")
    # bool(decisions.get("delegated", True)) for every JSON type (missing: NULL, so true);
    # a simple CASE, so json_type runs once.
    truth = case(
        {
            "true": literal(1),
            "false": literal(0),
            "null": literal(0),
            "integer": delegated != 0,
            "real": delegated != 0,
            "text": delegated != "",
            "object": delegated != "{}",
            "array": delegated != "[]",
        },
        value=kind("$.delegated"),
        else_=literal(1),
    )
    return [
        truth,
        case((is_publication, "publication"), (is_submission, "submission"), else_=None),
        staged("tag.tag", "text"),
        staged("tag.outcome", "text"),
        staged("tag.needs", "integer"),
        staged("tag.has", "integer"),
        staged("tag.unit", "text"),
        staged("reminder.outcome", "text"),
    ]


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
        columns: list[Any] = [getattr(PostRow, name) for name in _POST_READ_COLUMNS]
        if self.session.get_bind().dialect.name != "sqlite":
            query = (
                select(*columns)
                .where(*self._post_conditions(scope))
                .order_by(PostRow.id)
                .execution_options(yield_per=batch)
            )
            return self._summarised(self._batches(query))
        # The times as stored (naive UTC text): parsing each into a datetime only for the
        # export to format it again cost a sixth of its CPU (the port allows either). The
        # decisions summarised in SQL. No column needs SQLAlchemy's result processing, so the
        # rows come straight from the driver's cursor.
        columns = [
            type_coerce(c, String) if isinstance(c.type, UTCDateTime) else c for c in columns[:-1]
        ]
        query = (
            select(*columns, *_sqlite_decision_summary(PostRow.decisions))
            .where(*self._post_conditions(scope))
            .order_by(PostRow.id)
        )
        return self._cursor_batches(query, batch)

    @staticmethod
    def _summarised(
        batches: Iterator[Sequence[tuple[Any, ...]]],
    ) -> Iterator[list[tuple[Any, ...]]]:
        try:
            for rows in batches:
                yield [(*row[:-1], *decision_summary(row[-1])) for row in rows]
        finally:
            _close(batches)

    def _cursor_batches(
        self, query: Select[Any], batch: int
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Execute `query` (parameters bound by SQLAlchemy) and fetch its rows from the
        driver's cursor, `batch` at a time: for columns that need no result processing."""
        result = self.session.connection().execute(query)
        cursor = result.cursor
        try:
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            # Also when the consumer stops early, inside the snapshot's transaction.
            result.close()

    # --- ledger -------------------------------------------------------------------------------

    def _entries_query(self, scope: ExportScope, up_to_seq: int, *columns: Any) -> Select[Any]:
        # The same subject rules as the ledger viewer (db.repositories.ledger.SqlLedger.search),
        # through the entries' derived account_id / post_id columns (subject_refs).
        entry = LedgerEntryRow
        conditions: list[ColumnElement[bool]] = []
        joined = False
        if scope.account_ids is not None:
            conditions.append(entry.account_id.in_(sorted(scope.account_ids)))
        if scope.window_id is not None:
            # The window's entries and its posts' all belong to the window's account: the
            # index narrows to that account, the posts joined by id pick the window's.
            owner = self.session.scalar(
                select(WindowRow.account_id).where(WindowRow.id == scope.window_id)
            )
            # (No such window: nothing, not the entries without an account.)
            conditions.append(entry.account_id == owner if owner is not None else false())
            conditions.append(
                or_(
                    entry.subject == f"window:{scope.window_id}",
                    PostRow.window_id == scope.window_id,
                )
            )
            joined = True
        if scope.author_id is not None:
            conditions.append(PostRow.author_id == scope.author_id)
            joined = True
        if scope.misfiled_seqs and conditions:
            # Entries the scope's subjects name but stored under another account (tampering
            # or a bug; misfiled_entries found them): listed anyway, never silently left out.
            conditions = [or_(and_(*conditions), entry.seq.in_(sorted(scope.misfiled_seqs)))]
        conditions.append(entry.seq <= up_to_seq)
        # occurred_at is RFC 3339 UTC in one fixed format, so text order is time order.
        if scope.since is not None:
            conditions.append(entry.occurred_at >= format_timestamp(scope.since))
        if scope.until is not None:
            conditions.append(entry.occurred_at < format_timestamp(scope.until))
        query = select(*columns).select_from(entry)
        if joined:
            query = query.outerjoin(PostRow, PostRow.id == entry.post_id)
        return query.where(*conditions)

    def misfiled_entries(self, scope: ExportScope, up_to_seq: int) -> list[MisfiledEntry]:
        entry = LedgerEntryRow
        wrong_post = or_(
            entry.post_id.is_distinct_from(PostRow.id),
            entry.account_id.is_distinct_from(PostRow.account_id),
        )
        columns = (entry.seq, entry.tag, entry.subject, entry.account_id, entry.post_id)
        about_posts = select(*columns, PostRow.account_id, PostRow.id)
        others = select(*columns)
        scoped = scope.account_ids is not None or scope.window_id is not None
        if not scoped and scope.author_id is None:
            # The whole ledger: every entry, whether or not its subject names a known post.
            about_posts = (
                about_posts.select_from(entry)
                .outerjoin(PostRow, _entry_post_join())
                .where(entry.subject.startswith(_POST_PREFIX), wrong_post)
            )
            others = others.where(
                ~entry.subject.startswith(_POST_PREFIX),
                or_(
                    entry.account_id.is_not(None),
                    entry.post_id.is_not(None),
                    entry.subject.startswith("window:"),
                    entry.subject.startswith("account:"),
                ),
            )
        else:
            # From the scope's posts to their entries (the subject index): a pass over the
            # scope's posts, not over the ledger.
            post_scope = ExportScope(
                account_ids=scope.account_ids, window_id=scope.window_id, author_id=scope.author_id
            )
            about_posts = (
                about_posts.select_from(PostRow)
                .join(entry, entry.subject == literal(_POST_PREFIX) + PostRow.public_id)
                .where(*self._post_conditions(post_scope), wrong_post)
            )
            subjects: list[str] = []
            if scope.author_id is None:
                windows = select(WindowRow.id)
                if scope.account_ids is not None:
                    ids = sorted(scope.account_ids)
                    subjects += [f"account:{i}" for i in ids]
                    windows = windows.where(WindowRow.account_id.in_(ids))
                if scope.window_id is not None:
                    windows = windows.where(WindowRow.id == scope.window_id)
                subjects += [f"window:{i}" for i in self.session.scalars(windows)]
            others = others.where(entry.subject.in_(subjects))
        found = [
            MisfiledEntry(seq, tag, subject, stored_account, stored_post, account, post)
            for seq, tag, subject, stored_account, stored_post, account, post in (
                self.session.execute(about_posts.where(entry.seq <= up_to_seq))
            )
        ]
        owners = {
            **{f"account:{i}": i for i in self.session.scalars(select(AccountRow.id))},
            **{
                f"window:{i}": a
                for i, a in self.session.execute(select(WindowRow.id, WindowRow.account_id))
            },
        }
        for seq, tag, subject, stored_account, stored_post in self.session.execute(
            others.where(entry.seq <= up_to_seq)
        ):
            account = owners.get(subject)
            if (stored_account, stored_post) != (account, None):
                found.append(
                    MisfiledEntry(seq, tag, subject, stored_account, stored_post, account, None)
                )
        return sorted(found, key=lambda m: m.seq)

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
            for seq, occurred_at, tag, actor, subject, data, prev_hash, entry_hash in rows:
                yield LedgerEntry(
                    seq=seq,
                    occurred_at=occurred_at,
                    tag=tag,
                    actor=actor,
                    subject=subject,
                    data=json.loads(data),
                    prev_hash=prev_hash,
                    entry_hash=entry_hash,
                )

    def entry_rows(
        self, scope: ExportScope, up_to_seq: int, batch: int
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        query = self._entries_query(scope, up_to_seq, *self._entry_columns()).order_by(
            LedgerEntryRow.seq
        )
        return self._driver_batches(query, batch)

    def _batches(self, query: Select[Any]) -> Iterator[Sequence[tuple[Any, ...]]]:
        # Core, not Session.execute: the ORM's row loading costs more than the fetch itself.
        result = self.session.connection().execute(query)
        try:
            yield from result.partitions()
        finally:
            # Also when the consumer stops early: the server-side cursor closes now, inside
            # its transaction, not whenever the garbage collector gets to it.
            result.close()

    def _driver_batches(self, query: Select[Any], batch: int) -> Iterator[list[tuple[Any, ...]]]:
        """Like `_batches`, straight from the driver's cursor: for queries whose columns are
        plain integers and strings (no result processing), the ledger's, which stream a row
        per entry and per checkpoint (SQLAlchemy's rows cost a sixth of such an export).

        The values are inlined (integers and strings SQLAlchemy renders as literals), so no
        parameter style differs between the drivers. Same connection, same snapshot."""
        connection = self.session.connection()
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        driver = connection.connection.driver_connection
        assert driver is not None
        if connection.dialect.name == "postgresql":
            # A named cursor is a server-side one: rows come `batch` at a time.
            cursor = driver.cursor(name="ghostpost_export")
        else:
            cursor = driver.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            # Also when the consumer stops early, inside the snapshot's transaction.
            cursor.close()

    def checkpoint_rows(self, up_to_size: int, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        query = (
            select(*(getattr(LedgerCheckpointRow, name) for name in CHECKPOINT_COLUMNS))
            .where(LedgerCheckpointRow.size <= up_to_size)
            .order_by(LedgerCheckpointRow.id)
        )
        return self._driver_batches(query, batch)

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


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
