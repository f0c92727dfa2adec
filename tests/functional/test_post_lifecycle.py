"""A post's life through the services and the worker: who may write, what the policy decides,
approval, cancelling, rescheduling, reminders and order (DESIGN.md §3)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from ghostpost.domain.model import Post, Source, User, Window
from ghostpost.domain.policy import PostKind, ReminderMode, TagMode
from ghostpost.domain.states import PostState
from ghostpost.services import directory, publishing
from ghostpost.services.context import Actor
from ghostpost.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PolicyRefused,
    ValidationFailed,
)
from ghostpost.services.posts import (
    SubmitPost,
    approve_post,
    cancel_post,
    reject_post,
    reschedule_post,
    submit_post,
)
from ghostpost.services.windows import WindowSpec, approve_notice, create_window
from tests.support.timeline import assert_policy_kept, published_in_order
from tests.support.world import NOTICE, REMINDER, World

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def ledger_size(world: World) -> int:
    with world.ctx.uow() as uow:
        return sum(1 for _ in uow.ledger.entries())


def ledger_events(world: World, post: Post) -> list[dict[str, Any]]:
    """The ledger entries about one post, oldest first, as {"tag": ..., **data}."""
    with world.ctx.uow() as uow:
        return [
            {"tag": e.tag, **e.data}
            for e in uow.ledger.entries()
            if e.subject == f"post:{post.public_id}"
        ]


def all_posts(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        return uow.posts.list_for_account(world.account.id)


def window_now(world: World, window: Window) -> Window:
    with world.ctx.uow() as uow:
        found = uow.windows.get(window.id)
    assert found is not None
    return found


def live_window(world: World, **options: Any) -> Window:
    """A window open from now whose notice is approved and published."""
    window = world.open_window(**options)
    world.approve_notice(window)
    world.run_worker()
    assert window_now(world, window).notice_published_at is not None
    return window


def submit_as(world: World, actor: Actor, author: User | int, text: str, **kw: Any) -> Post:
    author_id = author if isinstance(author, int) else author.id
    return submit_post(
        world.ctx,
        actor,
        SubmitPost(
            account_id=kw.pop("account_id", world.account.id),
            author_id=author_id,
            text=text,
            source=kw.pop("source", Source.API),
            **kw,
        ),
    )


def as_user(user: User) -> Actor:
    return Actor.for_user(user)


def now(world: World) -> datetime:
    return world.container.clock.now()


def timeline_texts(world: World) -> list[str]:
    return [p.final_text for p in published_in_order(world.container, world.account)]


# --------------------------------------------------------------------------------------------
# Who may author
# --------------------------------------------------------------------------------------------


def test_a_writer_not_assigned_to_the_account_is_forbidden_and_nothing_is_stored(
    world: World,
) -> None:
    live_window(world)
    before_ledger, before_posts = ledger_size(world), len(all_posts(world))

    with pytest.raises(Forbidden, match="not assigned"):
        world.submit(world.outsider, "I was never assigned here")

    assert ledger_size(world) == before_ledger
    assert len(all_posts(world)) == before_posts


def test_an_auditor_can_never_author_not_even_when_a_scheduler_names_them(world: World) -> None:
    live_window(world)
    before = ledger_size(world)

    with pytest.raises(Forbidden):
        world.submit(world.auditor, "Auditors only read")
    with pytest.raises(Forbidden):
        submit_as(world, Actor.system("api"), world.auditor, "Named by a scheduler")
    with pytest.raises(Conflict, match="Auditors"):
        directory.assign_writer(
            world.ctx, Actor.system("test"), user_id=world.auditor.id, account_id=world.account.id
        )

    assert ledger_size(world) == before
    assert all(p.kind is not PostKind.REGULAR for p in all_posts(world))


def test_a_staff_user_cannot_submit_a_post_as_someone_else(world: World) -> None:
    live_window(world)
    before = ledger_size(world)

    with pytest.raises(Forbidden, match="as themselves"):
        submit_as(world, as_user(world.writer_a), world.writer_b, "Words put in Sam's mouth")

    assert ledger_size(world) == before


def test_a_scheduler_may_name_an_assigned_writer_as_the_author(world: World) -> None:
    live_window(world)

    post = submit_as(world, Actor.system("api"), world.writer_b, "Scheduled by a tool for Sam")

    assert post.author_id == world.writer_b.id
    assert post.submitter == "system:api"
    submitted = ledger_events(world, post)[0]
    assert submitted["tag"] == "post:submitted"
    assert submitted["writer"]["email"] == world.writer_b.email


def test_an_unknown_account_or_author_is_not_found(world: World) -> None:
    live_window(world)
    before = ledger_size(world)

    with pytest.raises(NotFound):
        submit_as(world, as_user(world.writer_a), world.writer_a, "Where?", account_id=99_999)
    with pytest.raises(NotFound):
        submit_as(world, Actor.system("api"), 99_999, "Who?")

    assert ledger_size(world) == before


# --------------------------------------------------------------------------------------------
# Input and policy at submission
# --------------------------------------------------------------------------------------------


def test_a_naive_or_past_publish_at_is_a_validation_failure(world: World) -> None:
    live_window(world)
    naive = now(world).replace(tzinfo=None) + timedelta(minutes=10)
    past = now(world) - timedelta(hours=1)

    with pytest.raises(ValidationFailed) as naive_error:
        world.submit(world.writer_a, "No time zone", publish_at=naive)
    with pytest.raises(ValidationFailed) as past_error:
        world.submit(world.writer_a, "Too late", publish_at=past)

    assert "publish_at" in naive_error.value.fields
    assert "publish_at" in past_error.value.fields
    assert all(p.kind is not PostKind.REGULAR for p in all_posts(world))


def test_a_required_tag_that_does_not_fit_is_refused_saying_how_much_to_cut(
    world: World,
) -> None:
    live_window(world, tag_mode=TagMode.REQUIRED)
    before = ledger_size(world)
    text = "x" * 498  # fits alone; with " #team" it is 504 of 500

    with pytest.raises(PolicyRefused) as refused:
        world.submit(world.writer_a, text)

    assert refused.value.refusal_code == "tag_does_not_fit"
    assert "Cut 4 characters" in refused.value.message
    assert ledger_size(world) == before
    assert all(p.kind is not PostKind.REGULAR for p in all_posts(world))


def test_a_tag_that_does_not_fit_is_skipped_with_its_numbers_on_record(world: World) -> None:
    live_window(world, tag_mode=TagMode.WHEN_FITS)
    text = "y" * 498

    post = world.submit(world.writer_a, text)
    world.run_worker()

    done = world.post(post.id)
    assert done.state is PostState.PUBLISHED
    assert done.final_text == text, "published untagged, exactly as written"
    expected = {"outcome": "skipped", "tag": "#team", "needs": 6, "has": 2, "unit": "characters"}
    assert done.decisions["submission"]["tag"] == expected
    assert done.decisions["publication"]["tag"] == expected
    publishing_entry = next(e for e in ledger_events(world, post) if e["tag"] == "post:publishing")
    assert publishing_entry["decision"]["tag"] == expected


def test_the_publication_ledger_entry_records_the_skipped_tag_numbers(world: World) -> None:
    # DESIGN §3/§4: the ledger records `tag_skipped` with its numbers for each published post;
    # the post:published entry is the record of what went out, so it carries the decision too.
    live_window(world, tag_mode=TagMode.WHEN_FITS)
    post = world.submit(world.writer_a, "z" * 498)
    world.run_worker()

    published = next(e for e in ledger_events(world, post) if e["tag"] == "post:published")
    assert "decision" in published, f"post:published has no decision: {sorted(published)}"
    assert published["decision"]["tag"]["outcome"] == "skipped"
    assert (published["decision"]["tag"]["needs"], published["decision"]["tag"]["has"]) == (6, 2)


def test_a_delegated_post_scheduled_outside_every_window_is_refused(world: World) -> None:
    window = live_window(world, hours=8)
    after_it = window.policy.ends_at + timedelta(hours=1)
    before = ledger_size(world)

    with pytest.raises(PolicyRefused) as refused:
        world.submit(world.writer_a, "After the show", publish_at=after_it)

    assert refused.value.refusal_code == "outside_window"
    assert ledger_size(world) == before
    # The principal's own posts need no window.
    own = world.submit(world.principal, "My own words, after the show", publish_at=after_it)
    assert own.state is PostState.SCHEDULED


def test_a_post_still_queued_when_its_window_ends_is_refused_with_a_reason(world: World) -> None:
    window = live_window(world, hours=1)
    late = world.submit(
        world.writer_a, "Last word of the show", publish_at=now(world) + timedelta(minutes=59)
    )
    world.container.clock.advance(hours=2)  # the worker only gets to it after the end

    world.run_worker()

    refused = world.post(late.id)
    assert refused.state is PostState.REFUSED
    assert refused.state_reason is not None and "ended" in refused.state_reason
    assert refused.platform_post_id is None
    assert timeline_texts(world) == [NOTICE]
    assert [e["tag"] for e in ledger_events(world, late)][-1] == "post:refused"
    assert window_now(world, window).posts_since_disclosure == 0


def test_a_post_held_for_a_notice_that_never_came_is_refused_once_its_window_ends(
    world: World,
) -> None:
    # §3: "a post still queued when its window ends is not published (it moves to `refused`)";
    # a held post is queued, and delegation never lingers after the event.
    world.open_window(hours=1)  # the notice is never approved
    waiting = world.submit(world.writer_a, "Waiting for the notice")
    world.run_worker()
    assert world.post(waiting.id).state is PostState.HELD

    world.container.clock.advance(hours=2)
    world.run_worker()

    after = world.post(waiting.id)
    assert after.state is PostState.REFUSED, (
        f"still {after.state} ({after.state_reason}) after its window ended"
    )


# --------------------------------------------------------------------------------------------
# Approval
# --------------------------------------------------------------------------------------------


def test_a_window_requiring_approval_holds_delegated_posts_until_the_principal_approves(
    world: World,
) -> None:
    live_window(world, requires_approval=True)
    post = world.submit(world.writer_a, "Great keynote this morning")
    assert post.state is PostState.PENDING_APPROVAL
    assert post.state_reason == "awaiting the principal's approval"
    world.run_worker()
    assert world.post(post.id).state is PostState.PENDING_APPROVAL, "never sent unapproved"

    approved = approve_post(world.ctx, as_user(world.principal), post.id, comment="Lovely")
    assert approved.state is PostState.SCHEDULED
    assert approved.approved_by == world.principal.id
    world.run_worker()

    done = world.post(post.id)
    assert done.state is PostState.PUBLISHED
    assert timeline_texts(world) == [NOTICE, "Great keynote this morning #team"]
    events = ledger_events(world, post)
    approval = next(e for e in events if e["tag"] == "post:approved")
    assert approval["approver"]["email"] == world.principal.email
    assert approval["comment"] == "Lovely"
    assert next(e for e in events if e["tag"] == "post:published")["approved_by"] == (
        world.principal.id
    )


def test_the_principal_may_reject_a_post_with_a_comment_that_becomes_its_reason(
    world: World,
) -> None:
    live_window(world, requires_approval=True)
    post = world.submit(world.writer_a, "Our product is the best, period.")

    rejected = reject_post(world.ctx, as_user(world.principal), post.id, "Too salesy")
    world.run_worker()

    assert rejected.state is PostState.REFUSED
    assert rejected.state_reason is not None and "Too salesy" in rejected.state_reason
    assert world.post(post.id).state is PostState.REFUSED
    assert timeline_texts(world) == [NOTICE]
    rejection = next(e for e in ledger_events(world, post) if e["tag"] == "post:rejected")
    assert rejection["comment"] == "Too salesy"
    assert rejection["approver"]["email"] == world.principal.email


def test_the_principals_own_posts_need_no_approval_even_in_an_approval_window(
    world: World,
) -> None:
    live_window(world, requires_approval=True)
    own = world.submit(world.principal, "My own words")
    assert own.state is PostState.SCHEDULED
    world.run_worker()
    assert world.post(own.id).state is PostState.PUBLISHED


def test_nobody_but_the_principal_may_approve_or_reject(world: World) -> None:
    window = world.open_window(requires_approval=True)
    world.approve_notice(window)
    world.run_worker()
    post = world.submit(world.writer_a, "Needs a yes")

    for someone in (world.manager, world.writer_b, world.auditor, world.writer_a):
        with pytest.raises(Forbidden):
            approve_post(world.ctx, as_user(someone), post.id)
        with pytest.raises(Forbidden):
            reject_post(world.ctx, as_user(someone), post.id, "no")
    with pytest.raises(Forbidden):
        approve_post(world.ctx, Actor.system("api"), post.id)

    assert world.post(post.id).state is PostState.PENDING_APPROVAL
    assert world.post(post.id).approved_by is None


def test_only_the_principal_approves_a_notice(world: World) -> None:
    window = world.open_window()
    for someone in (world.manager, world.auditor):
        with pytest.raises(Forbidden):
            approve_notice(world.ctx, as_user(someone), window.id)
    # A writer may not see windows at all: to them it does not exist (as on /windows/<id>).
    with pytest.raises(NotFound):
        approve_notice(world.ctx, as_user(world.writer_a), window.id)
    assert window_now(world, window).notice_approved_at is None


def test_nobody_approves_their_own_post(world: World) -> None:
    live_window(world, requires_approval=True)
    own = world.submit(world.principal, "Approving myself?")

    with pytest.raises(Forbidden, match="own post"):
        approve_post(world.ctx, as_user(world.principal), own.id)

    assert world.post(own.id).approved_by is None


def test_approving_a_notice_twice_is_a_conflict(world: World) -> None:
    window = world.open_window()
    world.approve_notice(window)
    size = ledger_size(world)

    with pytest.raises(Conflict):
        world.approve_notice(window)

    assert ledger_size(world) == size


def test_approving_a_post_twice_is_a_conflict(world: World) -> None:
    live_window(world, requires_approval=True)
    post = world.submit(world.writer_a, "Approve me once")
    approve_post(world.ctx, as_user(world.principal), post.id)
    size = ledger_size(world)

    with pytest.raises(Conflict):
        approve_post(world.ctx, as_user(world.principal), post.id)

    assert ledger_size(world) == size


def test_a_post_that_never_awaited_approval_cannot_be_approved(world: World) -> None:
    # A held post (waiting for the notice) is not awaiting the principal; "approving" it must not
    # move it or record an approval that never was asked for.
    world.open_window()  # requires_approval=False, notice not approved yet
    held = world.submit(world.writer_a, "Waiting for the notice")
    world.run_worker()
    assert world.post(held.id).state is PostState.HELD

    with pytest.raises(Conflict):
        approve_post(world.ctx, as_user(world.principal), held.id)

    assert world.post(held.id).state is PostState.HELD
    assert world.post(held.id).approved_by is None


# --------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------


def spec(world: World, **changes: Any) -> WindowSpec:
    start = now(world)
    base = WindowSpec(
        reason="The principal is at a conference; the team posts.",
        account_id=world.account.id,
        name="Conference",
        starts_at=start,
        ends_at=start + timedelta(hours=8),
        notice_text=NOTICE,
        reminder_text=REMINDER,
    )
    return dataclasses.replace(base, **changes)


def test_overlapping_windows_on_one_account_are_a_conflict(world: World) -> None:
    first = world.open_window(hours=8)
    size = ledger_size(world)

    with pytest.raises(Conflict, match="overlaps"):
        world.open_window(starts_at=first.policy.starts_at + timedelta(hours=7))
    with pytest.raises(Conflict):
        world.open_window(starts_at=first.policy.starts_at - timedelta(hours=1), hours=20)

    assert ledger_size(world) == size
    # Back to back is not an overlap (the end is exclusive).
    after = world.open_window(starts_at=first.policy.ends_at, hours=2)
    assert after.policy.starts_at == first.policy.ends_at


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at_offset": timedelta(hours=-1)}, "ends_at"),
        ({"ends_at_offset": timedelta(0)}, "ends_at"),
        ({"reminder_every": 0}, "reminder_every"),
        ({"tag": "team"}, "tag"),
        ({"notice_text": "n" * 501}, "notice_text"),
        ({"reminder_text": "r" * 501}, "reminder_text"),
        ({"notice_text": "   "}, "notice_text"),
        ({"name": ""}, "name"),
        ({"starts_at": datetime(2026, 11, 21, 9, 0)}, "starts_at"),
    ],
)
def test_an_invalid_window_is_a_validation_failure_naming_the_field(
    world: World, changes: dict[str, Any], field: str
) -> None:
    changes = dict(changes)
    offset = changes.pop("ends_at_offset", None)
    if offset is not None:
        changes["ends_at"] = now(world) + offset
    size = ledger_size(world)

    with pytest.raises(ValidationFailed) as failed:
        create_window(world.ctx, as_user(world.manager), spec(world, **changes))

    assert field in failed.value.fields
    assert ledger_size(world) == size


def test_every_invalid_window_field_is_reported_at_once(world: World) -> None:
    bad = spec(world, name=" ", ends_at=now(world) - timedelta(hours=1), reminder_every=0)

    with pytest.raises(ValidationFailed) as failed:
        create_window(world.ctx, as_user(world.manager), bad)

    assert set(failed.value.fields) >= {"name", "ends_at", "reminder_every"}


def test_a_tag_without_hash_is_fine_when_tagging_is_off(world: World) -> None:
    window = create_window(
        world.ctx, as_user(world.manager), spec(world, tag="team", tag_mode=TagMode.OFF)
    )
    assert window.policy.tag_mode is TagMode.OFF


def test_writers_cannot_open_windows(world: World) -> None:
    with pytest.raises(Forbidden):
        create_window(world.ctx, as_user(world.writer_a), spec(world))


# --------------------------------------------------------------------------------------------
# Cancel and reschedule
# --------------------------------------------------------------------------------------------


def test_the_author_may_cancel_a_queued_post_and_it_never_goes_out(world: World) -> None:
    live_window(world)
    post = world.submit(
        world.writer_a, "Second thoughts", publish_at=now(world) + timedelta(hours=1)
    )

    cancelled = cancel_post(world.ctx, as_user(world.writer_a), post.id)
    world.container.clock.advance(hours=2)
    world.run_worker()

    assert cancelled.state is PostState.CANCELLED
    assert world.post(post.id).state is PostState.CANCELLED
    assert timeline_texts(world) == [NOTICE]
    assert [e["tag"] for e in ledger_events(world, post)][-1] == "post:cancelled"


def test_another_writer_may_not_cancel_someone_elses_post(world: World) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Mine", publish_at=now(world) + timedelta(hours=1))

    with pytest.raises(Forbidden):
        cancel_post(world.ctx, as_user(world.writer_b), post.id)
    with pytest.raises(Forbidden):
        cancel_post(world.ctx, as_user(world.auditor), post.id)

    assert world.post(post.id).state is PostState.SCHEDULED
    # A manager and the principal may.
    assert cancel_post(world.ctx, as_user(world.manager), post.id).state is PostState.CANCELLED


def test_cancelling_a_published_post_is_a_conflict(world: World) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Already out")
    world.run_worker()
    assert world.post(post.id).state is PostState.PUBLISHED

    with pytest.raises(Conflict):
        cancel_post(world.ctx, as_user(world.writer_a), post.id)

    assert world.post(post.id).state is PostState.PUBLISHED


def test_rescheduling_to_another_time_inside_the_window_moves_the_post(world: World) -> None:
    live_window(world, hours=8)
    start = now(world)
    post = world.submit(world.writer_a, "Panel at two", publish_at=start + timedelta(hours=1))

    moved = reschedule_post(world.ctx, as_user(world.writer_a), post.id, start + timedelta(hours=2))
    assert moved.publish_at == start + timedelta(hours=2)
    world.container.clock.advance(minutes=90)
    world.run_worker()
    assert world.post(post.id).state is PostState.SCHEDULED, "not at its old time"
    world.container.clock.advance(minutes=30)
    world.run_worker()

    assert world.post(post.id).state is PostState.PUBLISHED
    assert "post:rescheduled" in [e["tag"] for e in ledger_events(world, post)]


def test_rescheduling_outside_the_window_is_refused_and_changes_nothing(world: World) -> None:
    window = live_window(world, hours=8)
    start = now(world)
    post = world.submit(world.writer_a, "Panel at two", publish_at=start + timedelta(hours=1))
    size = ledger_size(world)

    with pytest.raises(PolicyRefused) as refused:
        reschedule_post(
            world.ctx,
            as_user(world.writer_a),
            post.id,
            window.policy.ends_at + timedelta(minutes=1),
        )

    assert refused.value.refusal_code == "outside_window"
    assert world.post(post.id).publish_at == start + timedelta(hours=1)
    assert ledger_size(world) == size
    with pytest.raises(Forbidden):
        reschedule_post(world.ctx, as_user(world.writer_b), post.id, start + timedelta(hours=2))


def test_rescheduling_into_a_window_that_requires_approval_asks_for_approval(
    world: World,
) -> None:
    first = live_window(world, hours=2)
    second = world.open_window(
        starts_at=first.policy.ends_at + timedelta(hours=1), hours=4, requires_approval=True
    )
    post = world.submit(
        world.writer_a, "Moved to day two", publish_at=now(world) + timedelta(hours=1)
    )
    assert post.state is PostState.SCHEDULED

    moved = reschedule_post(
        world.ctx, as_user(world.writer_a), post.id, second.policy.starts_at + timedelta(hours=1)
    )

    assert moved.window_id == second.id
    assert moved.state is PostState.PENDING_APPROVAL, (
        "moving a post into a window that requires approval must not bypass the principal"
    )


# --------------------------------------------------------------------------------------------
# Reminders and order
# --------------------------------------------------------------------------------------------


def test_standalone_mode_publishes_a_separate_reminder_right_before_the_post_needing_it(
    world: World,
) -> None:
    window = live_window(world, every=3, reminder_mode=ReminderMode.STANDALONE)
    first = world.submit(world.writer_a, "One")
    second = world.submit(world.writer_b, "Two")
    third = world.submit(world.writer_a, "Three")

    world.run_worker()

    timeline = assert_policy_kept(world.container, world.account, window)
    assert [p.final_text for p in timeline] == [
        NOTICE,
        "One #team",
        "Two #team",
        REMINDER,
        "Three #team",
    ]
    reminder = timeline[3]
    assert reminder.kind is PostKind.REMINDER
    assert reminder.precedes_post_id == third.id
    assert third.id not in (first.id, second.id)
    assert window_now(world, window).posts_since_disclosure == 1
    with world.ctx.uow() as uow:
        created = [e for e in uow.ledger.entries() if e.tag == "reminder:created"]
    assert len(created) == 1
    assert created[0].data["before_post"] == third.public_id


def test_the_post_preceded_by_a_standalone_reminder_records_that_decision(world: World) -> None:
    # §3: "Every decision (... reminder inline/standalone ...) is stored with the post".
    live_window(world, every=2, reminder_mode=ReminderMode.STANDALONE)
    world.submit(world.writer_a, "One")
    second = world.submit(world.writer_b, "Two")
    world.run_worker()

    stored = world.post(second.id)
    assert stored.state is PostState.PUBLISHED
    assert "standalone" in json.dumps(stored.decisions), (
        f"the post keeps no trace of its standalone reminder: {stored.decisions}"
    )


def test_inline_mode_appends_the_reminder_to_the_post_that_would_break_the_cadence(
    world: World,
) -> None:
    window = live_window(world, every=2, reminder_mode=ReminderMode.INLINE)
    world.submit(world.writer_a, "One")
    world.submit(world.writer_b, "Two")

    world.run_worker()

    timeline = assert_policy_kept(world.container, world.account, window)
    assert [p.final_text for p in timeline] == [NOTICE, "One #team", f"Two #team\n\n{REMINDER}"]


def test_posts_on_one_account_go_out_one_at_a_time_in_publish_at_order(world: World) -> None:
    live_window(world)
    start = now(world)
    late = world.submit(world.writer_a, "Third", publish_at=start + timedelta(minutes=10))
    early = world.submit(world.writer_b, "First", publish_at=start + timedelta(minutes=5))
    middle = world.submit(world.principal, "Second", publish_at=start + timedelta(minutes=7))
    world.container.clock.advance(minutes=15)

    lease = timedelta(seconds=60)
    claim = publishing.claim_next(world.ctx, "worker-1", lease)
    assert claim is not None and claim.post.id == early.id
    # While one post of the account is in flight, no other worker may take the next one.
    assert publishing.claim_next(world.ctx, "worker-2", lease) is None
    receipt = world.container.publisher_for(claim.account).publish(
        claim.account, claim.text, idempotency_key=claim.idempotency_key
    )
    publishing.record_published(world.ctx, claim, receipt)
    follow = publishing.claim_next(world.ctx, "worker-2", lease)
    assert follow is not None and follow.post.id == middle.id
    receipt = world.container.publisher_for(follow.account).publish(
        follow.account, follow.text, idempotency_key=follow.idempotency_key
    )
    publishing.record_published(world.ctx, follow, receipt)
    world.run_worker()

    assert timeline_texts(world) == [NOTICE, "First #team", "Second", "Third #team"]
    assert world.post(late.id).state is PostState.PUBLISHED


def test_posts_not_yet_due_are_not_published(world: World) -> None:
    live_window(world)
    later = world.submit(world.writer_a, "Later", publish_at=now(world) + timedelta(minutes=30))
    world.run_worker()
    assert world.post(later.id).state is PostState.SCHEDULED
    world.container.clock.advance(minutes=30)
    world.run_worker()
    assert world.post(later.id).state is PostState.PUBLISHED
