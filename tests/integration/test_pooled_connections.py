"""PostgreSQL connections: pooled ones the server dropped are replaced before use (a socket
check on checkout, no round trip), and a deferred write (ghostpost.db.engine.defer) is never
reordered or dropped."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from ghostpost.bootstrap import Container
from ghostpost.db.engine import defer
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has no server to hang up")


def _backend_pids(container: Container, count: int) -> list[int]:
    """Check out `count` pooled connections at once; their server process ids."""
    connections = [container.engine.connect() for _ in range(count)]
    try:
        return [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in connections]
    finally:
        for connection in connections:
            connection.close()


def test_a_request_after_the_server_killed_every_pooled_connection_succeeds(
    container: Container,
) -> None:
    killed = _backend_pids(container, 3)
    # Another client (not the pool) terminates every backend the pool holds.
    url = container.engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as other:
        for pid in killed:
            other.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    # Every pooled connection is dead; a write through the services must not notice.
    principal = directory.create_principal(container.services, Actor.system("test"), "Survivor")
    assert principal.id > 0
    assert not set(_backend_pids(container, 3)) & set(killed)


def test_a_healthy_pooled_connection_is_reused(container: Container) -> None:
    [first] = _backend_pids(container, 1)
    [second] = _backend_pids(container, 1)
    assert first == second


def test_a_deferred_write_runs_before_the_next_statement_and_is_never_dropped(
    container: Container,
) -> None:
    """db.engine.defer holds a write for the next statement to carry: any other statement
    runs it first, and a commit with one still held is refused rather than losing it."""
    with container.engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE held (n integer)"))
        defer(conn, text("INSERT INTO held VALUES (:n)"), {"n": 1})
        assert conn.execute(text("SELECT count(*) FROM held")).scalar_one() == 1
        defer(conn, text("INSERT INTO held VALUES (:n)"), {"n": 2})
        with pytest.raises(RuntimeError, match="deferred write"):
            conn.commit()
