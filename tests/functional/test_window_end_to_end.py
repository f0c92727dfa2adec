"""A whole delegation window through the services and the worker, checked against DESIGN.md §3."""

from __future__ import annotations

import random

from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from tests.support.timeline import assert_ledger_names_writers, assert_policy_kept
from tests.support.world import World


def test_a_full_window_keeps_every_disclosure_rule_and_names_every_writer(world: World) -> None:
    clock = world.container.clock
    window = world.open_window(every=10)
    rng = random.Random(20261121)
    authors = [world.writer_a] * 13 + [world.writer_b] * 12 + [world.principal] * 5
    rng.shuffle(authors)

    # Two delegated posts arrive before the notice is approved: they must wait for it.
    early = [
        world.submit(world.writer_a, "Early bird post one"),
        world.submit(world.writer_b, "Early bird post two"),
    ]
    world.run_worker()
    assert [world.post(p.id).state for p in early] == [PostState.HELD, PostState.HELD]

    world.approve_notice(window)
    for i, author in enumerate(authors[2:]):
        clock.advance(minutes=3)
        length = rng.choice([20, 120, 300, 495])  # some posts leave no room for the tag
        body = f"Post {i} by {author.name}: " + "x" * length
        world.submit(author, body[: min(len(body), 500)])
        if rng.random() < 0.5:
            world.run_worker()
    clock.advance(minutes=1)
    world.run_worker()

    timeline = assert_policy_kept(world.container, world.account, window)
    regular = [p for p in timeline if p.kind is PostKind.REGULAR]
    assert len(regular) == 30
    assert sum(1 for p in regular if p.is_delegated) == 25
    assert sum(1 for p in regular if not p.is_delegated) == 5
    assert timeline[0].kind is PostKind.NOTICE
    # Held posts were released in the order they were submitted, right after the notice.
    assert [p.id for p in timeline[1:3]] == [p.id for p in early]
    skipped = [p for p in regular if p.decisions["publication"]["tag"]["outcome"] == "skipped"]
    assert skipped, "the scenario includes posts too long for the tag"
    reminders = [
        p
        for p in timeline
        if p.kind is PostKind.REMINDER
        or p.decisions.get("publication", {}).get("reminder", {}).get("outcome") == "inline"
    ]
    assert len(reminders) >= 3
    assert_ledger_names_writers(world.container, timeline)
