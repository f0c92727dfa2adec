"""Read-only units of work: they never wait for (or block) a writer, and cannot write."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.exc import DBAPIError

from ghostpost.bootstrap import Container
from ghostpost.db.unit_of_work import _REPOSITORIES as _LEAN_REPOSITORIES
from ghostpost.db.unit_of_work import SqlAlchemyUnitOfWork
from ghostpost.services import directory
from ghostpost.services.context import Actor


def test_a_read_only_unit_of_work_reads_while_a_writer_holds_the_write_lock(
    container: Container,
) -> None:
    ctx = container.services
    directory.create_principal(ctx, Actor.system("test"), "Before")
    with ctx.uow() as writer:
        # The writer's transaction holds the lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row).
        directory_entry = writer.principals.add("Uncommitted")
        assert directory_entry.id
        read: list[list[str]] = []

        def read_names() -> None:
            with ctx.uow(read_only=True) as reader:
                read.append([p.name for p in reader.principals.list()])

        thread = threading.Thread(target=read_names)
        started = time.monotonic()
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the read-only unit of work waited for the writer"
        assert time.monotonic() - started < 5
    assert len(read) == 1 and "Before" in read[0] and "Uncommitted" not in read[0]


def test_a_read_only_unit_of_work_cannot_commit(container: Container) -> None:
    with container.services.uow(read_only=True) as uow:
        assert isinstance(uow, SqlAlchemyUnitOfWork)
        with pytest.raises(RuntimeError):
            uow.commit()


def test_postgresql_refuses_writes_in_a_read_only_unit_of_work(container: Container) -> None:
    ctx = container.services
    with ctx.uow(read_only=True) as uow:
        assert isinstance(uow, SqlAlchemyUnitOfWork)
        if uow.session.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite has no read-only transactions; the deferred BEGIN is tested above")
        with pytest.raises(DBAPIError, match="read-only transaction"):
            uow.principals.add("Written by a reader")


def test_postgresql_refuses_writes_in_a_single_read_unit_of_work(container: Container) -> None:
    """The single read runs outside any explicit transaction (autocommit, no BEGIN): the
    connection's own default (read-only transactions) still refuses its write."""
    with container.services.uow(single_read=True) as uow:
        assert isinstance(uow, SqlAlchemyUnitOfWork)
        if uow.session.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite has no read-only transactions; the deferred BEGIN is tested above")
        with pytest.raises(DBAPIError, match="read-only transaction"):
            uow.principals.add("Written by a single reader")
    with container.services.uow(read_only=True) as uow:
        assert "Written by a single reader" not in [p.name for p in uow.principals.list()]


def test_a_single_read_unit_of_work_refuses_a_second_statement(container: Container) -> None:
    """Two statements outside a transaction would read two snapshots: refused on both
    backends, so that a service reading twice fails in every test run."""
    directory.create_principal(container.services, Actor.system("test"), "Read once")
    with container.services.uow(single_read=True) as uow:
        assert "Read once" in [p.name for p in uow.principals.list()]
        with pytest.raises(RuntimeError, match="one statement"):
            uow.principals.list()
    # The next single read, on the same pooled connection, gets its own statement.
    with container.services.uow(single_read=True) as uow:
        assert "Read once" in [p.name for p in uow.principals.list()]


def test_postgresql_write_units_of_work_say_read_write_on_read_only_by_default_connections(
    container: Container,
) -> None:
    """Pooled PostgreSQL connections are read-only by default (for the single reads); every
    write unit of work and every plain connection of the engine still writes."""
    if container.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with container.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar_one() == "on"
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar_one() == "off"
    principal = directory.create_principal(container.services, Actor.system("test"), "Writer")
    assert principal.id > 0


def _principal_names(container: Container) -> list[str]:
    with container.services.uow(read_only=True) as uow:
        return [p.name for p in uow.principals.list()]


def test_a_lean_unit_of_work_is_one_transaction_with_its_orm_repositories(
    container: Container,
) -> None:
    """uow(lean=True) runs the create's statements on its connection and builds an ORM
    Session only for a repository that needs one: both write in the one transaction, which
    commits together, or not at all."""
    ctx = container.services
    with ctx.uow(lean=True) as uow:
        before = uow.ledger.head()  # on the connection
        uow.principals.add("Lean, committed")  # the ORM Session, same transaction
        entry = uow.ledger.append(
            tag="test:lean",
            actor="system:test",
            subject="test",
            data={},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    assert "Lean, committed" in _principal_names(container)
    assert (entry.seq, entry.prev_hash) == (before[0] + 1, before[1])
    with ctx.uow(read_only=True) as uow:
        assert uow.ledger.head() == (entry.seq, entry.entry_hash)
    with ctx.uow(lean=True) as uow:
        uow.principals.add("Lean, rolled back")
        uow.ledger.append(
            tag="test:lean",
            actor="system:test",
            subject="test",
            data={},
            occurred_at=ctx.clock.now(),
        )
        # Left without commit: both are rolled back.
    assert "Lean, rolled back" not in _principal_names(container)
    with ctx.uow(read_only=True) as uow:
        assert uow.ledger.head() == (entry.seq, entry.entry_hash)
    with ctx.uow(lean=True) as uow:
        uow.commit()  # nothing begun: nothing to commit, no write lock taken


def test_a_lean_unit_of_work_has_every_repository_of_the_full_one(container: Container) -> None:
    """The lean unit of work keeps its own list of repository builders: a repository added to
    SqlAlchemyUnitOfWork and forgotten there would fail only on the create path."""
    ctx = container.services
    with ctx.uow() as full:
        assert isinstance(full, SqlAlchemyUnitOfWork)
        repositories = {
            name: type(value)
            for name, value in vars(full).items()
            if name not in ("session", "read_only") and not name.startswith("_")
        }
    with ctx.uow(lean=True) as lean:
        assert {name: type(getattr(lean, name)) for name in repositories} == repositories
    assert set(repositories) == set(_LEAN_REPOSITORIES)
