"""SQLAlchemy implementation of the idempotency-key port (ghostpost.services.ports)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ghostpost.db.models import IdempotencyKeyRow
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
# A create's two statements on the key, built once (building costs more than running them).
#: Claims a key (bound: client_id, key, fingerprint, status, created_at); RETURNING says
#: whether a row went in (rowcount is not reliable with it on PostgreSQL, where the dialect
#: adds RETURNING for the new id anyway).
_CLAIM = {
    dialect: insert(_KEYS)
    .on_conflict_do_nothing(index_elements=["client_id", "key"])
    .returning(_KEYS.c.id)
    for dialect, insert in (("postgresql", postgres_insert), ("sqlite", sqlite_insert))
}
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


class SqlIdempotencyKeys:
    """The unique (client_id, key) index does the work on both engines.

    SQLite serialises writers (BEGIN IMMEDIATE), so a second request for a key only starts
    once the first has committed and then finds its record. On PostgreSQL a second INSERT of
    the same key waits on the index for the first transaction: once that commits the INSERT
    fails (IntegrityError, caught here), once it rolls back the INSERT goes through. The wait
    is bounded by `lock_timeout`, after which the key counts as still in flight.
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
        postgres = self.session.get_bind().dialect.name == "postgresql"
        try:
            with self.session.begin_nested():
                if postgres:
                    # Bound the wait for a concurrent transaction holding the same key.
                    self.session.execute(text(f"SET LOCAL lock_timeout = {int(self.wait_ms)}"))
                self.session.add(
                    IdempotencyKeyRow(
                        client_id=client_id,
                        key=key,
                        fingerprint=fingerprint,
                        status="in_flight",
                        created_at=now,
                    )
                )
                self.session.flush()
        except IntegrityError:
            claimed = False
        except OperationalError as exc:
            # Not reset in a `finally`: after a lost connection, another statement would raise
            # PendingRollbackError instead, and the database outage would read as a 500.
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise KeyStillLocked(key) from exc
            raise
        else:
            claimed = True
        if postgres:
            # Later locks of this transaction (the ledger head) wait as long as they must.
            self.session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
        return claimed

    def claim_or_get(
        self, client_id: str, key: str, fingerprint: str, now: datetime
    ) -> IdempotencyRecord | None:
        """Claim the key with one `INSERT ... ON CONFLICT DO NOTHING`; return None when claimed,
        else the record of the request that holds it (committed, or in flight on PostgreSQL once
        the wait for its transaction ran out: KeyStillLocked).

        SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so a record found is
        committed. PostgreSQL: the INSERT waits on the unique index for a transaction holding
        the same key, at most `wait_ms`; it then inserts (that one rolled back) or does nothing.
        """
        connection = self.session.connection()
        dialect = connection.dialect.name
        postgres = dialect == "postgresql"
        values = {
            "client_id": client_id,
            "key": key,
            "fingerprint": fingerprint,
            "status": "in_flight",
            "created_at": now,
        }
        try:
            if postgres:
                connection.execute(text(f"SET LOCAL lock_timeout = {int(self.wait_ms)}"))
            inserted = connection.execute(_CLAIM[dialect], values).first() is not None
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise KeyStillLocked(key) from exc
            raise
        if postgres:
            # Later locks of this transaction (the ledger head) wait as long as they must.
            connection.execute(_DEFAULT_LOCK_TIMEOUT)
        if inserted:
            return None
        found = connection.execute(_FIND, {"for_client": client_id, "for_key": key}).one_or_none()
        if found is None:
            # Purged between the two statements: not worth more than a retry.
            raise KeyStillLocked(key)
        return IdempotencyRecord(**found._asdict())

    def complete(
        self, client_id: str, key: str, response_status: int, response_body: Mapping[str, Any]
    ) -> None:
        done = self.session.connection().execute(
            _COMPLETE,
            {
                "for_client": client_id,
                "for_key": key,
                "new_status": response_status,
                "new_body": dict(response_body),
            },
        )
        assert done.rowcount == 1

    def purge(self, created_before: datetime) -> int:
        result = self.session.execute(
            delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < created_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
