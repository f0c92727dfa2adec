"""Kill the worker process between two parts of a thread (os._exit, no cleanup), restart it:
every part goes out once, in order, each a reply to the part before.

Each worker is a process of its own, forked from the test; the restarted one reads the real
clock moved just past the dead worker's lease (tests/functional/test_worker_crash.py waits a
real lease), after a worker reading a time just before it left the claim alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerTag, first_broken_entry
from ghostpost.domain.states import PostState
from ghostpost.settings import Settings
from tests.functional.test_worker_crash import (
    assert_not_adopted_before_its_lease_ran_out,
    run_worker,
)
from tests.support.api import scheduler_for
from tests.support.faults import CRASH_EXIT_CODE
from tests.support.forked_worker import past_the_lease
from tests.support.world import World


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["crash_after_accept", "crash_before_send"])
@pytest.mark.parametrize("crash_on", [1, 2])
def test_a_worker_killed_between_parts_publishes_each_part_once_and_in_order(
    client: FlaskClient,
    world: World,
    settings: Settings,
    clock: FixedClock,
    adapter: str,
    crash_on: int,
    tmp_path: Path,
) -> None:
    world.approve_notice(world.open_window(every=10))
    world.run_worker()  # the notice
    scheduler = scheduler_for(client, world)
    created = scheduler.create(
        {
            "account": world.account.id,
            "text": "Part one",
            "thread": ["Part two", "Part three"],
            "author": world.writer_a.email,
        }
    )
    assert created.status_code == 201, created.get_json()
    thread_id = created.get_json()["id"]

    dying = tmp_path / "dying.log"
    assert run_worker(world, settings, adapter, dying, crash_on) == CRASH_EXIT_CODE
    with world.ctx.uow() as uow:
        [stuck] = [
            p
            for p in uow.posts.list_for_account(world.account.id)
            if p.state is PostState.PUBLISHING
        ]
    assert_not_adopted_before_its_lease_ran_out(world, clock, stuck.lease_until)
    restarted = tmp_path / "restarted.log"
    assert (
        run_worker(world, settings, None, restarted, ahead=past_the_lease(stuck.lease_until)) == 0
    )

    with world.ctx.uow() as uow:
        parts = sorted(
            (p for p in uow.posts.list_for_account(world.account.id) if p.thread_id == thread_id),
            key=lambda p: p.thread_position or 0,
        )
        entries = list(uow.ledger.entries())
    assert [p.state for p in parts] == [PostState.PUBLISHED] * 3
    statuses = world.container.local_store.timeline(world.account.handle, limit=100)
    by_id = {s.id: s for s in statuses}
    sent = [s for s in sorted(statuses, key=lambda s: s.id) if s.text.startswith("Part")]
    assert [s.text for s in sent] == ["Part one #team", "Part two", "Part three"]
    assert [int(p.platform_post_id or 0) for p in parts] == [s.id for s in sent]
    assert by_id[sent[1].id].in_reply_to_id == sent[0].id
    assert by_id[sent[2].id].in_reply_to_id == sent[1].id
    assert first_broken_entry(entries) is None
    for part in parts:
        tags = [e.tag for e in entries if e.subject == f"post:{part.public_id}"]
        assert tags.count(LedgerTag.POST_PUBLISHED) == 1
