"""Read-only units of work: they never wait for (or block) a writer, and cannot write."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.exc import DBAPIError

from ghostpost.bootstrap import Container
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
