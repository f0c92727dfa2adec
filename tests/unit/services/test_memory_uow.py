"""What the in-memory unit of work does where SQL would block or refuse (the rest of its
behaviour is held to the SQL one by tests/integration/test_memory_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ghostpost.domain.model import NewPost, Source
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from tests.support.memory_uow import ConcurrentCommit, MemoryUnitsOfWork, ReadOnlyViolation

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_two_overlapping_writers_cannot_both_commit() -> None:
    # SQLite's write lock would have made the second wait for the first; here its commit would
    # silently drop the first one's writes, so it fails instead.
    units = MemoryUnitsOfWork()
    with units() as first, units() as second:
        first.principals.add("First")
        second.principals.add("Second")
        first.commit()
        with pytest.raises(ConcurrentCommit):
            second.commit()
    with units(read_only=True) as uow:
        assert [p.name for p in uow.principals.list()] == ["First"]


def test_a_reader_beside_a_writer_is_fine() -> None:
    units = MemoryUnitsOfWork()
    with units() as writer, units(read_only=True) as reader:
        writer.principals.add("Written")
        assert reader.principals.list() == []
        writer.commit()


def test_a_read_only_unit_refuses_writes() -> None:
    # PostgreSQL's READ ONLY refuses them too; SQLite's deferred BEGIN would let them through.
    with MemoryUnitsOfWork()(read_only=True) as uow, pytest.raises(ReadOnlyViolation):
        uow.principals.add("Written by a reader")


def test_records_handed_out_are_copies() -> None:
    units = MemoryUnitsOfWork()
    with units() as uow:
        post = uow.posts.add(
            NewPost(
                public_id="p",
                account_id=1,
                kind=PostKind.REGULAR,
                state=PostState.SCHEDULED,
                author_id=1,
                submitter="user:1",
                source=Source.WEB,
                submitted_text="t",
                final_text="t",
                idempotency_key="k",
                created_at=T0,
                decisions={"a": [1]},
            )
        )
        post.decisions["a"].append(2)
        uow.commit()
    with units(read_only=True) as uow:
        stored = uow.posts.get(post.id)
        assert stored is not None and stored.decisions == {"a": [1]}
