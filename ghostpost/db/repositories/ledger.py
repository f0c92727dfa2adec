"""The authorship ledger: entries, chain head and signed checkpoints."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Insert,
    Label,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from ghostpost.db.engine import READ_ONLY, connection_of, defer, execute_prepared
from ghostpost.db.models import (
    AccountRow,
    LedgerCheckpointRow,
    LedgerEntryRow,
    LedgerHeadRow,
    PostRow,
    WindowRow,
)
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import (
    GENESIS_HASH,
    CanonicalData,
    LedgerEntry,
    canonical_json,
    chain_entry_with_text,
)


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


def _table(table: object) -> Table:
    assert isinstance(table, Table)
    return table


_ENTRIES = _table(LedgerEntryRow.__table__)
_HEAD = _table(LedgerHeadRow.__table__)
# The append's statements, built once: building a statement costs more than running it.
#: Locks the head row (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises).
_LOCK_HEAD = select(_HEAD.c.size, _HEAD.c.head_hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_ENTRY = insert(_ENTRIES)
# The derived columns (account_id, post_id) are scalar subqueries of the INSERT itself: read in
# the appending transaction, they see the post or window inserted just before, and cost no
# extra round trip. One prebuilt statement per kind of subject.
_POST_BY_REF = select(PostRow.account_id, PostRow.id).where(
    PostRow.public_id == bindparam("ref_text", type_=String)
)
_INSERT_POST_ENTRY = _INSERT_ENTRY.values(
    account_id=_POST_BY_REF.with_only_columns(PostRow.account_id).scalar_subquery(),
    post_id=_POST_BY_REF.with_only_columns(PostRow.id).scalar_subquery(),
)
_INSERT_ACCOUNT_ENTRY = _INSERT_ENTRY.values(
    account_id=select(AccountRow.id).where(AccountRow.id == bindparam("ref_id")).scalar_subquery()
)
_INSERT_WINDOW_ENTRY = _INSERT_ENTRY.values(
    account_id=select(WindowRow.account_id)
    .where(WindowRow.id == bindparam("ref_id"))
    .scalar_subquery()
)


def subject_refs(subject: str) -> tuple[Any, dict[str, Any]]:
    """The INSERT that fills an entry's derived columns (account_id, post_id) for `subject`,
    and the values it binds besides the entry's own.

    `account:<id>` belongs to that account, `window:<id>` to the window's account, `post:<public
    id>` to the post's account (and names the post); anything else to none. The one definition
    of the mapping: `SqlExports.misfiled_entries` checks stored rows against the same rules.
    """
    kind, _, ident = subject.partition(":")
    if kind == "post":
        return _INSERT_POST_ENTRY, {"ref_text": ident}
    if kind in ("account", "window") and ident.isascii() and ident.isdigit() and len(ident) < 10:
        statement = _INSERT_ACCOUNT_ENTRY if kind == "account" else _INSERT_WINDOW_ENTRY
        return statement, {"ref_id": int(ident)}
    return _INSERT_ENTRY, {}


#: Connection.info key: (transaction, (size, head_hash) or None) of the head a statement of
#: this transaction locked and read for the next append (insert_locking_head).
_LOCKED_HEAD = "ghostpost.ledger.locked_head"


def insert_locking_head(
    statement: Insert,
    references: Sequence[tuple[str, Table]],
    guards: Sequence[Label[Any]] = (),
) -> Insert:
    """PostgreSQL: `statement` (an INSERT of one row) that also locks and reads the ledger
    head, RETURNING the new row's id, then the head's size and hash (NULL: no head yet); hand
    them to the transaction's next append with hold_locked_head. One round trip less.

    The lock order every ledger writer keeps is: the rows a write references, then the head.
    An INSERT's foreign-key checks lock the rows it references (FOR KEY SHARE) only at the
    end of the statement, which would be after the head's lock here, and deadlock with a
    worker that holds an account (FOR UPDATE) and then waits for the head. So the statement
    first locks each referenced row itself (`references`: bound parameter name, table; a NULL
    id locks nothing) in a materialized CTE the head's lock joins, so that the head is locked
    after them; the checks then find the rows already locked by this transaction.
    FOR UPDATE reads the head as last committed (READ COMMITTED re-reads a row it locks), not
    as of the statement's snapshot.

    `guards` (labelled scalar subqueries, each locking a row the decision relied on) are
    locked first, before the references, and RETURNED after the head: a guard's row that a
    transaction committed away before the lock was granted reads as NULL (a locking read
    sees the latest committed row, not the snapshot's)."""
    row_locks = (
        select(
            *guards,
            *(
                select(table.c.id)
                .where(table.c.id == bindparam(name, type_=table.c.id.type))
                .with_for_update(read=True, key_share=True)
                .scalar_subquery()
                .label(f"locked_{n}")
                for n, (name, table) in enumerate(references)
            ),
        )
        .cte("row_locks")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    head = (
        select(_HEAD.c.size, _HEAD.c.head_hash)
        .select_from(_HEAD.join(row_locks, true()))
        .where(_HEAD.c.id == 1)
        .with_for_update(of=_HEAD)
        .cte("locked_head")
    )
    return statement.returning(
        *statement.table.primary_key.columns,  # type: ignore[attr-defined]
        select(head.c.size).scalar_subquery().label("head_size"),
        select(head.c.head_hash).scalar_subquery().label("head_hash"),
        *(select(row_locks.c[guard.name]).scalar_subquery().label(guard.name) for guard in guards),
    )


def hold_locked_head(connection: Connection, size: int | None, head_hash: str | None) -> None:
    """Keep the head an insert_locking_head statement locked and read, for this transaction's
    next append (SqlLedger.append takes it instead of locking the head again)."""
    head = None if size is None or head_hash is None else (size, head_hash)
    connection.info[_LOCKED_HEAD] = (connection.get_transaction(), head)


def _take_locked_head(connection: Connection) -> tuple[bool, tuple[int, str] | None]:
    """(True, head or None: no head row) when this transaction holds a locked head's read."""
    held = connection.info.pop(_LOCKED_HEAD, None)
    if held is None or held[0] is not connection.get_transaction():
        return False, None
    return True, held[1]


_INSERT_HEAD = insert(_HEAD)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(size=bindparam("new_size"), head_hash=bindparam("new_hash"))
)


#: PostgreSQL: each INSERT of an entry with the head's move as a data-modifying CTE, so the
#: append is two round trips (lock and read the head; entry and head) instead of three. The head
#: row is already locked by this transaction, so the UPDATE cannot wait. SQLite has no DML in
#: CTEs and keeps the two statements (a local call costs no round trip).
_INSERT_AND_MOVE_HEAD = {
    statement: statement.add_cte(_MOVE_HEAD.cte("moved_head"))
    for statement in (
        _INSERT_ENTRY,
        _INSERT_POST_ENTRY,
        _INSERT_ACCOUNT_ENTRY,
        _INSERT_WINDOW_ENTRY,
    )
}


#: An entry's stored columns (the chained ones, not the derived account_id / post_id), in
#: the order the ledger export writes them.
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
#: The same appends with every column bound by name in the statement itself, as a
#: data-modifying CTE needs (a CTE's INSERT cannot take its columns from the parameters):
#: what a deferred append (db.engine.defer) is, carried by the key's completion.
_DEFERRABLE_APPEND = {
    statement: statement.values(
        {name: bindparam(name, type_=_ENTRIES.c[name].type) for name in ENTRY_COLUMNS}
    ).add_cte(_MOVE_HEAD.cte("moved_head"))
    for statement in (
        _INSERT_ENTRY,
        _INSERT_POST_ENTRY,
        _INSERT_ACCOUNT_ENTRY,
        _INSERT_WINDOW_ENTRY,
    )
}


def entry_row(entry: LedgerEntry, data_text: str) -> dict[str, Any]:
    """The stored row of a chained entry: its columns, with `data` as the canonical JSON text
    that was hashed. Every column filled at append time is filled here."""
    return {
        "seq": entry.seq,
        "occurred_at": entry.occurred_at,
        "tag": entry.tag,
        "actor": entry.actor,
        "subject": entry.subject,
        "data": data_text,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


_READ_HEAD = select(_HEAD.c.size, _HEAD.c.head_hash).where(_HEAD.c.id == 1)
_ENTRY_COLUMNS = select(
    LedgerEntryRow.seq,
    LedgerEntryRow.occurred_at,
    LedgerEntryRow.tag,
    LedgerEntryRow.actor,
    LedgerEntryRow.subject,
    LedgerEntryRow.data,
    LedgerEntryRow.prev_hash,
    LedgerEntryRow.entry_hash,
)
_ENTRIES_AFTER = (
    _ENTRY_COLUMNS.where(LedgerEntryRow.seq > bindparam("after"))
    .order_by(LedgerEntryRow.seq)
    .execution_options(yield_per=500)
)
_ENTRIES_BETWEEN = (
    _ENTRY_COLUMNS.where(
        LedgerEntryRow.seq > bindparam("after"), LedgerEntryRow.seq <= bindparam("up_to")
    )
    .order_by(LedgerEntryRow.seq)
    .execution_options(yield_per=500)
)
_ENTRY = _ENTRY_COLUMNS.where(LedgerEntryRow.seq == bindparam("seq"))
_INSERT_CHECKPOINT = insert(LedgerCheckpointRow).values(
    {
        name: bindparam(name)
        for name in ("size", "head_hash", "signed_at", "key_id", "signature", "kind")
    }
)
_LATEST_CHECKPOINT = (
    select(
        LedgerCheckpointRow.size,
        LedgerCheckpointRow.head_hash,
        LedgerCheckpointRow.signed_at,
        LedgerCheckpointRow.key_id,
        LedgerCheckpointRow.signature,
        LedgerCheckpointRow.kind,
    )
    .order_by(LedgerCheckpointRow.id.desc())
    .limit(1)
)


class SqlLedger:
    def __init__(self, session: Session) -> None:
        self.session = session

    def append(
        self,
        *,
        tag: str,
        actor: str,
        subject: str,
        data: Mapping[str, Any] | CanonicalData,
        occurred_at: datetime,
    ) -> LedgerEntry:
        # Rows the caller added through the ORM go in first, as they always did.
        self.session.flush()
        connection = connection_of(self.session)
        # Locking the head row serialises appends: seq is gapless and follows commit order.
        # The head is read by the locking statement itself, so on PostgreSQL it is the row as
        # committed by the previous holder of the lock (READ COMMITTED re-reads a row it locks).
        # Nothing is signed here: the notary signs heads outside the request's transaction.
        held, head = _take_locked_head(connection)
        if not held:
            found = execute_prepared(connection, _LOCK_HEAD, {}).first()
            head = (found[0], found[1]) if found is not None else None  # (size, head_hash)
        size, head_hash = head if head is not None else (0, GENESIS_HASH)
        # The data's canonical JSON is what is stored and, inside the body, what is hashed:
        # serialised once (chain_entry_with_text), or already (CanonicalData).
        text = data.text if isinstance(data, CanonicalData) else canonical_json(dict(data))
        entry = chain_entry_with_text(
            seq=size + 1,
            occurred_at=format_timestamp(occurred_at),
            tag=str(tag),
            actor=actor,
            subject=subject,
            data_text=text,
            prev_hash=head_hash,
        )
        statement, refs = subject_refs(entry.subject)
        row = {**entry_row(entry, text), **refs}
        if head is not None and connection.dialect.name == "postgresql":
            moved = {"new_size": entry.seq, "new_hash": entry.entry_hash}
            if tag == "post:submitted":
                # A create's append: nothing waits for this write, so it goes with the
                # transaction's next statement (the key's completion) or runs before it, or
                # at commit (db.engine.defer).
                defer(connection, _DEFERRABLE_APPEND[statement], {**row, **moved})
                return entry
            execute_prepared(connection, _INSERT_AND_MOVE_HEAD[statement], {**row, **moved})
            return entry
        execute_prepared(connection, statement, row)
        if head is None:
            first = {"id": 1, "size": entry.seq, "head_hash": entry.entry_hash}
            execute_prepared(connection, _INSERT_HEAD, first)
        else:
            moved = {"new_size": entry.seq, "new_hash": entry.entry_hash}
            execute_prepared(connection, _MOVE_HEAD, moved)
        return entry

    def head(self) -> tuple[int, str]:
        found = connection_of(self.session).execute(_READ_HEAD).first()
        return (found.size, found.head_hash) if found is not None else (0, GENESIS_HASH)

    def claim_notary(self) -> bool:
        if self.session.get_bind().dialect.name != "postgresql":
            return True  # SQLite: one host; the notary's file lock decides
        taken = self.session.scalar(
            select(func.pg_try_advisory_xact_lock(literal(NOTARY_LOCK_KEY, BigInteger)))
        )
        return bool(taken)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.session.flush()
        execute_prepared(
            connection_of(self.session),
            _INSERT_CHECKPOINT,
            {
                "size": checkpoint.size,
                "head_hash": checkpoint.head_hash,
                "signed_at": checkpoint.signed_at,
                "key_id": checkpoint.key_id,
                "signature": checkpoint.signature,
                "kind": checkpoint.kind,
            },
        )

    def latest_checkpoint(self) -> Checkpoint | None:
        row = connection_of(self.session).execute(_LATEST_CHECKPOINT).first()
        return to_checkpoint(row) if row is not None else None  # type: ignore[arg-type]

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
        # Columns, not ORM objects: the notary reads the new entries at every pass.
        if up_to_seq is None:
            rows = self.session.execute(_ENTRIES_AFTER, {"after": after_seq})
        else:
            rows = self.session.execute(_ENTRIES_BETWEEN, {"after": after_seq, "up_to": up_to_seq})
        for row in rows:
            yield to_entry(row)  # type: ignore[arg-type]

    def entry(self, seq: int) -> LedgerEntry | None:
        row = self.session.execute(_ENTRY, {"seq": seq}).first()
        return to_entry(row) if row is not None else None  # type: ignore[arg-type]

    def search(self, **filters: Any) -> list[LedgerEntry]:
        """Return the entries matching `filters` (see `search_query`), at most `limit`."""
        return [to_entry(row) for row in self.session.scalars(self.search_query(**filters))]

    def search_query(
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
    ) -> Select[LedgerEntryRow]:
        """The ledger viewer's query: the entries matching every filter given, by seq."""
        # Entries name what they are about in `subject`; the derived account_id / post_id
        # columns (subject_refs) index that: the account's entries through
        # (account_id, seq), a window's and an author's through the posts joined by id.
        entry = LedgerEntryRow
        conditions: list[ColumnElement[bool]] = []
        joined = False
        if account_ids is not None:
            conditions.append(entry.account_id.in_(list(account_ids)))
        if window_id is not None:
            owner = select(WindowRow.account_id).where(WindowRow.id == window_id)
            conditions.append(entry.account_id == owner.scalar_subquery())
            conditions.append(
                or_(entry.subject == f"window:{window_id}", PostRow.window_id == window_id)
            )
            joined = True
        if author_id is not None:
            conditions.append(PostRow.author_id == author_id)
            joined = True
        if tag is not None:
            conditions.append(LedgerEntryRow.tag == tag)
        if subject is not None:
            conditions.append(entry.subject == subject)
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
        query = select(LedgerEntryRow)
        if joined:
            query = query.outerjoin(PostRow, PostRow.id == entry.post_id)
        return query.where(*conditions).order_by(order).limit(limit)
