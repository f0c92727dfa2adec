"""Reading one row by id and changing one row, as prebuilt Core statements.

The worker reads and changes posts and windows by id several times for every post it
publishes; through the ORM (Session.get, an ORM-enabled UPDATE … RETURNING) each costs
several times the statement. Here each is one statement rendered once (db.engine's
read_one_prepared), its row handed back as an object with the columns as attributes (what
the repositories' to_* converters read). The Session is kept consistent as the ORM path kept
it: what it holds pending is flushed first, and an object it holds for a changed row is
expired (it loads the row again when next used).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Integer, Select, Table, Update, bindparam, select, update
from sqlalchemy.orm import Session

from ghostpost.db.engine import connection_of, read_one_prepared


def table_of(mapped: object) -> Table:
    table = getattr(mapped, "__table__", None)
    assert isinstance(table, Table)
    return table


class RowsById:
    """One table's rows by id: `get` and `change`, each one prebuilt statement."""

    def __init__(self, mapped: type[Any], columns: Sequence[Any] | None = None) -> None:
        self._mapped = mapped
        table = table_of(mapped)
        self._table = table
        #: The columns read (and RETURNED by a change): all of them unless told.
        self._columns = tuple(columns if columns is not None else table.c)
        self._keys = tuple(column.key for column in self._columns)
        self._get: Select[Any] = select(*self._columns).where(
            table.c.id == bindparam("row_id", type_=Integer)
        )
        #: One UPDATE per set of changed columns (the named changes are a fixed few).
        self._changes: dict[tuple[str, ...], Update] = {}

    def _row(self, values: tuple[Any, ...] | None) -> SimpleNamespace | None:
        if values is None:
            return None
        return SimpleNamespace(**dict(zip(self._keys, values, strict=True)))

    def get(self, session: Session, row_id: int) -> SimpleNamespace | None:
        session.flush()  # as the ORM's query would: what it holds pending is read too
        return self._row(read_one_prepared(connection_of(session), self._get, {"row_id": row_id}))

    def change(self, session: Session, row_id: int, fields: dict[str, Any]) -> SimpleNamespace:
        names = tuple(sorted(fields))
        statement = self._changes.get(names)
        if statement is None:
            statement = self._changes[names] = (
                update(self._table)
                .where(self._table.c.id == bindparam("row_id", type_=Integer))
                .values(
                    {
                        name: bindparam(f"new_{name}", type_=self._table.c[name].type)
                        for name in names
                    }
                )
                .returning(*self._columns)
            )
        session.flush()  # anything pending goes first, as it would have before
        values = read_one_prepared(
            connection_of(session),
            statement,
            {"row_id": row_id, **{f"new_{name}": fields[name] for name in names}},
        )
        row = self._row(values)
        assert row is not None, f"no {self._table.name} row {row_id}"
        # An object the Session holds for this row is out of date now: it loads it again.
        if session.identity_map:
            held = session.identity_map.get(session.identity_key(self._mapped, row_id))
            if held is not None:
                session.expire(held)
        return row
