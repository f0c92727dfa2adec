"""Counting what one request sends to the database: transactions begun and statements."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event


@contextlib.contextmanager
def counted(engine: Engine) -> Iterator[tuple[list[bool], list[str]]]:
    """Count the transactions begun and the statements sent (their first word; BEGIN in full:
    SQLite's read-only transactions are a deferred BEGIN, its write transactions BEGIN
    IMMEDIATE; PostgreSQL's BEGIN is the driver's, unseen here) inside the block."""
    begins: list[bool] = []
    statements: list[str] = []

    def _begin(conn: Any) -> None:
        begins.append(True)

    def _statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        word = sql.split(None, 1)[0].upper()
        statements.append(sql.strip().upper() if word == "BEGIN" else word)

    event.listen(engine, "begin", _begin)
    event.listen(engine, "before_cursor_execute", _statement)
    try:
        yield begins, statements
    finally:
        event.remove(engine, "begin", _begin)
        event.remove(engine, "before_cursor_execute", _statement)


def create_write_statements(engine: Engine, begins: list[bool], statements: list[str]) -> list[str]:
    """An API client's create is one write transaction, and on SQLite the plan ahead before
    it (services.posts.plan_client_post_ahead): one read-only transaction of one SELECT, then
    the write transaction, which reads the same row again. Check that shape and return the
    write transaction's statements, BEGIN left out."""
    if engine.dialect.name == "sqlite":
        assert len(begins) == 2, statements
        assert statements[:3] == ["BEGIN", "SELECT", "BEGIN IMMEDIATE"], statements
        statements = statements[3:]
    else:
        assert len(begins) == 1, statements
    return [s for s in statements if not s.startswith("BEGIN")]
