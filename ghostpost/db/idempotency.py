"""SQLAlchemy implementation of the idempotency-key port (ghostpost.services.ports)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Executable,
    Insert,
    Integer,
    Select,
    Table,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from ghostpost.db.engine import (
    connection_of,
    execute_prepared,
    read_one_prepared,
    take_deferred,
)
from ghostpost.db.models import IdempotencyKeyRow
from ghostpost.db.submissions import (
    client_read_parameters,
    expected_client_read,
    hold_client_read,
)
from ghostpost.domain.model import IdempotencyRecord
from ghostpost.services.ports import KeyStillLocked

#: PostgreSQL's SQLSTATE for lock_timeout running out (lock_not_available).
_LOCK_NOT_AVAILABLE = "55P03"
#: How long a claim waits for another transaction holding the same key (PostgreSQL). A create
#: takes milliseconds; a transaction holding a key this long is stuck, and the client is told
#: to retry (409) instead of queueing behind it.
CLAIM_WAIT_MS = 5000


def to_record(row: IdempotencyKeyRow) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id=row.client_id,
        key=row.key,
        fingerprint=row.fingerprint,
        status=row.status,
        created_at=row.created_at,
        response_status=row.response_status,
        response_body=row.response_body,
    )


def _table(table: object) -> Table:
    assert isinstance(table, Table)
    return table


_KEYS = _table(IdempotencyKeyRow.__table__)
# A create's statements on the key, built once (building costs more than running them).
#: Claims a key on SQLite (bound: client_id, key, fingerprint, status, created_at); RETURNING says
#: whether a row went in (rowcount is not reliable with it on PostgreSQL, where the dialect
#: adds RETURNING for the new id anyway).
_CLAIM_SQLITE = (
    sqlite_insert(_KEYS)
    .on_conflict_do_nothing(index_elements=["client_id", "key"])
    .returning(_KEYS.c.id)
)
_COMPLETE = (
    update(_KEYS)
    .where(
        _KEYS.c.client_id == bindparam("for_client", type_=_KEYS.c.client_id.type),
        _KEYS.c.key == bindparam("for_key", type_=_KEYS.c.key.type),
        _KEYS.c.status == "in_flight",
    )
    .values(
        status="completed",
        response_status=bindparam("new_status", type_=_KEYS.c.response_status.type),
        response_body=bindparam("new_body", type_=_KEYS.c.response_body.type),
    )
)
_FIND = select(
    _KEYS.c.client_id,
    _KEYS.c.key,
    _KEYS.c.fingerprint,
    _KEYS.c.status,
    _KEYS.c.created_at,
    _KEYS.c.response_status,
    _KEYS.c.response_body,
).where(
    _KEYS.c.client_id == bindparam("for_client", type_=_KEYS.c.client_id.type),
    _KEYS.c.key == bindparam("for_key", type_=_KEYS.c.key.type),
)
_DEFAULT_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = DEFAULT")

#: The class half of the transaction-scoped advisory lock a PostgreSQL claim takes on its key
#: ("gpKY"); the other half is hashtext(client_id, key). The two-int form never meets the
#: one-bigint keys (the notary's), and a collision of two keys' hashes only makes one wait.
_KEY_LOCK_CLASS = 0x67704B59


def _postgres_claim(*, wait: bool, prefix: str = "") -> Any:
    """PostgreSQL's claim in one statement: take the key's advisory lock (waiting for it, or
    only if free: `wait`), then
    insert the key unless it exists; RETURNING the id when a row went in. The lock's second
    half is hashtext(client_id || newline || key): a collision of two keys' hashes only makes
    one claim wait for the other, the unique index still decides."""
    lock = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
    client_id = bindparam(f"{prefix}client_id", type_=_KEYS.c.client_id.type)
    key = bindparam(f"{prefix}key", type_=_KEYS.c.key.type)
    locked = select(
        lock(literal(_KEY_LOCK_CLASS, Integer), func.hashtext(client_id + "\n" + key)).label(
            "taken"
        )
    ).cte("key_lock")
    columns = ("client_id", "key", "fingerprint", "status", "created_at")
    rows = select(
        *(bindparam(f"{prefix}{name}", type_=_KEYS.c[name].type) for name in columns)
    ).select_from(locked)
    if not wait:
        rows = rows.where(locked.c.taken)
    return (
        postgres_insert(_KEYS)
        .from_select(list(columns), rows)
        .on_conflict_do_nothing(index_elements=["client_id", "key"])
        .returning(_KEYS.c.id)
    )


#: The fast claim: no wait at all. Inserts only when no other transaction holds the key's lock,
#: so its INSERT cannot wait on the unique index for one either.
_CLAIM_UNLESS_HELD = _postgres_claim(wait=False)
#: The slow claim, when the key's lock is held: waits for it (bounded by lock_timeout).
_CLAIM_AFTER_WAIT = _postgres_claim(wait=True)


@functools.cache
def _complete_carrying(write: Executable) -> Any:
    """The key's completion with a deferred write (an INSERT or UPDATE statement) as a
    data-modifying CTE: PostgreSQL runs it exactly once, before the statement's end."""
    assert isinstance(write, Insert | Update)
    return _COMPLETE.add_cte(write.cte("deferred_write"))


_CLAIM_PREFIX = "claim_"


@functools.cache
def _claim_and_read(read: Select[Any]) -> Select[Any]:
    """The fast claim and the create's joined read (db.submissions) in one statement: one row,
    the claimed key's id (NULL: not claimed) then the read's columns (all NULL: no client).
    The read sees the snapshot of the claim, which waits for nothing (try-lock)."""
    claimed = _postgres_claim(wait=False, prefix=_CLAIM_PREFIX).cte("claimed")
    facts = read.subquery("facts")
    one = select(literal(1).label("one")).subquery("one")
    return select(select(claimed.c.id).scalar_subquery().label("claimed_id"), *facts.c).select_from(
        one.outerjoin(facts, true())
    )


class SqlIdempotencyKeys:
    """The unique (client_id, key) index does the work on both engines.

    SQLite serialises writers (BEGIN IMMEDIATE), so a second request for a key only starts
    once the first has committed and then finds its record. On PostgreSQL a second claim of
    the same key finds the key's advisory lock held by the first transaction and waits for it:
    once that commits the claim inserts nothing and finds its record, once it rolls back the
    claim inserts. The wait is bounded by `lock_timeout` (`wait_ms`), after which the key
    counts as still in flight.
    """

    def __init__(self, session: Session, wait_ms: int | None = None) -> None:
        self.session = session
        self.wait_ms = CLAIM_WAIT_MS if wait_ms is None else wait_ms

    def _where(self, client_id: str, key: str) -> Any:
        return select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.client_id == client_id, IdempotencyKeyRow.key == key
        )

    def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        row = self.session.scalar(
            self._where(client_id, key).execution_options(populate_existing=True)
        )
        return to_record(row) if row else None

    def claim(self, client_id: str, key: str, fingerprint: str, now: datetime) -> bool:
        """Claim the key: True when claimed, False when it exists (see claim_or_get)."""
        return self.claim_or_get(client_id, key, fingerprint, now) is None

    def claim_or_get(
        self, client_id: str, key: str, fingerprint: str, now: datetime
    ) -> IdempotencyRecord | None:
        """Claim the key with one `INSERT ... ON CONFLICT DO NOTHING`; return None when claimed,
        else the record of the request that holds it (committed, or in flight on PostgreSQL once
        the wait for its transaction ran out: KeyStillLocked).

        SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so a record found is
        committed. PostgreSQL: every claim of a key holds the key's advisory lock until its
        transaction ends. The usual claim takes it only if free, in the INSERT itself, so it
        never waits and needs no lock_timeout (no SET statements on the hot path). When the lock
        is held and no committed record is found, a request with the key is in flight: the
        claim then waits for that lock, at most `wait_ms`, and inserts (that one rolled back)
        or finds the winner's record.
        """
        connection = connection_of(self.session)
        values = {
            "client_id": client_id,
            "key": key,
            "fingerprint": fingerprint,
            "status": "in_flight",
            "created_at": now,
        }
        if connection.dialect.name != "postgresql":
            if execute_prepared(connection, _CLAIM_SQLITE, values).first() is not None:
                return None
            return self._find(connection, client_id, key)
        expected = expected_client_read(self.session)
        if expected is not None:
            arguments, read = expected
            prefixed = {f"{_CLAIM_PREFIX}{name}": value for name, value in values.items()}
            parameters = {**prefixed, **client_read_parameters(arguments)}
            row = read_one_prepared(connection, _claim_and_read(read), parameters)
            assert row is not None  # one row, always (claimed or not)
            if row[0] is not None:
                hold_client_read(self.session, arguments, row[1:])
                return None
            # Not claimed: the read is dropped (a replay needs none; a create after waiting
            # for the key reads again, after the wait).
        elif execute_prepared(connection, _CLAIM_UNLESS_HELD, values).first() is not None:
            return None
        found = connection.execute(_FIND, {"for_client": client_id, "for_key": key}).one_or_none()
        if found is not None:
            return IdempotencyRecord(**found._asdict())
        try:
            connection.execute(text(f"SET LOCAL lock_timeout = {int(self.wait_ms)}"))
            inserted = connection.execute(_CLAIM_AFTER_WAIT, values).first() is not None
        except OperationalError as exc:
            # Not reset in a `finally`: after a lost connection, another statement would raise
            # PendingRollbackError instead, and the database outage would read as a 500.
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise KeyStillLocked(key) from exc
            raise
        # Later locks of this transaction (the ledger head) wait as long as they must.
        connection.execute(_DEFAULT_LOCK_TIMEOUT)
        return None if inserted else self._find(connection, client_id, key)

    def _find(self, connection: Any, client_id: str, key: str) -> IdempotencyRecord:
        found = connection.execute(_FIND, {"for_client": client_id, "for_key": key}).one_or_none()
        if found is None:
            # Purged between the two statements: not worth more than a retry.
            raise KeyStillLocked(key)
        return IdempotencyRecord(**found._asdict())

    def complete(
        self, client_id: str, key: str, response_status: int, response_body: Mapping[str, Any]
    ) -> None:
        connection = connection_of(self.session)
        parameters = {
            "for_client": client_id,
            "for_key": key,
            "new_status": response_status,
            "new_body": dict(response_body),
        }
        deferred = take_deferred(connection)
        if deferred is not None:
            # PostgreSQL: the create's ledger append was held for this statement; one trip.
            write, written = deferred
            carrying = _complete_carrying(write)
            done = execute_prepared(connection, carrying, {**written, **parameters})
        else:
            done = execute_prepared(connection, _COMPLETE, parameters)
        assert done.rowcount == 1

    def purge(self, created_before: datetime) -> int:
        result = self.session.execute(
            delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < created_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
