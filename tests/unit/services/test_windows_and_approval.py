"""Windows and approval, in memory: overlap refusal, the notice and post approval flows, and
reminder cadence as the worker's services apply it (DESIGN.md §3)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ghostpost.domain.policy import PostKind, ReminderMode
from ghostpost.domain.states import PostState
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict, Forbidden
from ghostpost.services.posts import approve_post, reject_post
from ghostpost.services.windows import approve_notice
from tests.unit.services.memory_world import NOTICE, REMINDER, MemoryWorld


def test_overlapping_windows_on_one_account_are_a_conflict_and_store_nothing(
    world: MemoryWorld,
) -> None:
    first = world.open_window(hours=8)
    before = world.stored()

    with pytest.raises(Conflict, match="overlaps"):
        world.open_window(starts_at=first.policy.starts_at + timedelta(hours=7))
    with pytest.raises(Conflict, match="overlaps"):
        world.open_window(starts_at=first.policy.starts_at - timedelta(hours=1), hours=20)

    assert world.stored() == before
    after = world.open_window(starts_at=first.policy.ends_at, hours=2)  # the end is exclusive
    assert after.policy.starts_at == first.policy.ends_at


def test_only_the_principal_approves_a_notice_and_only_once(world: MemoryWorld) -> None:
    window = world.open_window()
    before = world.stored()

    with pytest.raises(Forbidden):
        approve_notice(world.ctx, Actor.for_user(world.manager), window.id)
    assert world.stored() == before

    approved = world.approve_notice(window)
    assert approved.notice_approved_by == world.principal.id
    with pytest.raises(Conflict, match="already approved"):
        world.approve_notice(window)


def test_an_approval_window_holds_delegated_posts_until_the_principal_approves(
    world: MemoryWorld,
) -> None:
    world.live_window(requires_approval=True)
    post = world.submit(world.writer_a, "Great keynote this morning")
    assert post.state is PostState.PENDING_APPROVAL
    world.run_worker()
    assert world.post(post.id).state is PostState.PENDING_APPROVAL, "never sent unapproved"

    with pytest.raises(Forbidden):
        approve_post(world.ctx, Actor.for_user(world.manager), post.id)
    approved = approve_post(world.ctx, Actor.for_user(world.principal), post.id, comment="Lovely")
    assert approved.state is PostState.SCHEDULED and approved.approved_by == world.principal.id
    with pytest.raises(Conflict):
        approve_post(world.ctx, Actor.for_user(world.principal), post.id)
    world.run_worker()

    assert world.timeline() == [NOTICE, "Great keynote this morning #team"]
    approval = next(e for e in world.events(post) if e["tag"] == "post:approved")
    assert approval["actor"] == f"user:{world.principal.id}"
    assert approval["approver"]["email"] == world.principal.email
    assert approval["comment"] == "Lovely"


def test_a_rejected_post_is_refused_with_the_comment_as_its_reason(world: MemoryWorld) -> None:
    world.live_window(requires_approval=True)
    post = world.submit(world.writer_a, "Our product is the best, period.")

    rejected = reject_post(world.ctx, Actor.for_user(world.principal), post.id, "Too salesy")
    world.run_worker()

    assert rejected.state is PostState.REFUSED
    assert rejected.state_reason == f"rejected by {world.principal.name}: Too salesy"
    assert world.post(post.id).state is PostState.REFUSED
    assert world.timeline() == [NOTICE]


def test_the_principals_own_posts_need_no_approval(world: MemoryWorld) -> None:
    world.live_window(requires_approval=True)
    own = world.submit(world.principal, "My own words")
    assert own.state is PostState.SCHEDULED
    with pytest.raises(Forbidden, match="own post"):
        approve_post(world.ctx, Actor.for_user(world.principal), own.id)


def test_inline_mode_appends_the_reminder_to_the_post_that_would_break_the_cadence(
    world: MemoryWorld,
) -> None:
    window = world.live_window(every=2, reminder_mode=ReminderMode.INLINE)
    for text in ("One", "Two", "Three", "Four"):
        world.submit(world.writer_a, text)

    world.run_worker()

    assert world.timeline() == [
        NOTICE,
        "One #team",
        f"Two #team\n\n{REMINDER}",
        "Three #team",
        f"Four #team\n\n{REMINDER}",
    ]
    assert world.window(window.id).posts_since_disclosure == 0


def test_standalone_mode_publishes_a_reminder_right_before_the_post_needing_it(
    world: MemoryWorld,
) -> None:
    window = world.live_window(every=3, reminder_mode=ReminderMode.STANDALONE)
    world.submit(world.writer_a, "One")
    world.submit(world.writer_b, "Two")
    third = world.submit(world.writer_a, "Three")

    world.run_worker()

    assert world.timeline() == [NOTICE, "One #team", "Two #team", REMINDER, "Three #team"]
    reminder = world.post(world.published[3])
    assert reminder.kind is PostKind.REMINDER and reminder.precedes_post_id == third.id
    assert world.window(window.id).posts_since_disclosure == 1
    [created] = [e for e in world.entries() if e.tag == "reminder:created"]
    assert created.data["before_post"] == third.public_id


def test_a_post_still_queued_when_its_window_ends_is_refused(world: MemoryWorld) -> None:
    window = world.live_window(hours=1)
    late = world.submit(
        world.writer_a, "Last word", publish_at=world.clock.now() + timedelta(minutes=59)
    )
    world.clock.advance(hours=2)

    world.run_worker()

    refused = world.post(late.id)
    assert refused.state is PostState.REFUSED
    assert refused.state_reason is not None and "ended" in refused.state_reason
    assert world.timeline() == [NOTICE]
    assert world.events(late)[-1]["tag"] == "post:refused"
    assert world.window(window.id).posts_since_disclosure == 0
