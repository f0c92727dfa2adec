"""Submitting a post, in memory: who may author, the notice before delegated posts, the #team
tag, and the ledger entry written in the same unit of work (DESIGN.md §3, §4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ghostpost.domain.model import Source
from ghostpost.domain.policy import TagMode
from ghostpost.domain.states import PostState
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict, Forbidden, NotFound, PolicyRefused, ValidationFailed
from ghostpost.services.posts import SubmitPost, submit_post
from tests.unit.services.memory_world import NOTICE, MemoryWorld


def test_a_delegated_post_waits_for_the_notice_and_goes_out_after_it(world: MemoryWorld) -> None:
    window = world.open_window()
    post = world.submit(world.writer_a, "Backstage with the team")

    world.run_worker()
    assert world.post(post.id).state is PostState.HELD, "never before the notice"
    assert world.timeline() == []

    world.approve_notice(window)
    world.run_worker()

    assert world.timeline() == [NOTICE, "Backstage with the team #team"]
    assert world.post(post.id).state is PostState.PUBLISHED


def test_a_delegated_post_outside_every_window_is_refused_and_stores_nothing(
    world: MemoryWorld,
) -> None:
    window = world.live_window(hours=8)
    after_it = window.policy.ends_at + timedelta(hours=1)
    before = world.stored()

    with pytest.raises(PolicyRefused) as refused:
        world.submit(world.writer_a, "After the show", publish_at=after_it)

    assert refused.value.refusal_code == "outside_window"
    assert world.stored() == before
    # The principal's own posts need no window, no notice and no tag.
    own = world.submit(world.principal, "My own words, after the show", publish_at=after_it)
    assert own.state is PostState.SCHEDULED and own.final_text == "My own words, after the show"


def test_a_required_tag_that_does_not_fit_is_refused_saying_how_much_to_cut(
    world: MemoryWorld,
) -> None:
    world.live_window(tag_mode=TagMode.REQUIRED)
    before = world.stored()

    with pytest.raises(PolicyRefused) as refused:
        world.submit(world.writer_a, "x" * 498)  # 504 of 500 with " #team"

    assert refused.value.refusal_code == "tag_does_not_fit"
    assert "Cut 4 characters" in refused.value.message
    assert world.stored() == before


def test_a_tag_that_does_not_fit_is_skipped_with_its_numbers_on_record(world: MemoryWorld) -> None:
    world.live_window(tag_mode=TagMode.WHEN_FITS)
    post = world.submit(world.writer_a, "y" * 498)
    world.run_worker()

    done = world.post(post.id)
    assert done.state is PostState.PUBLISHED and done.final_text == "y" * 498
    expected = {"outcome": "skipped", "tag": "#team", "needs": 6, "has": 2, "unit": "characters"}
    assert done.decisions["submission"]["tag"] == expected
    assert done.decisions["publication"]["tag"] == expected
    published = next(e for e in world.events(post) if e["tag"] == "post:published")
    assert published["decision"]["tag"] == expected


def test_the_submission_entry_names_the_writer_and_the_submitter(world: MemoryWorld) -> None:
    world.live_window()
    before_posts, before_entries = world.stored()

    post = submit_post(
        world.ctx,
        Actor.system("api"),
        SubmitPost(world.account.id, world.writer_b.id, "Scheduled for Sam", Source.API),
    )

    assert world.stored() == (before_posts + 1, before_entries + 1), "post and entry together"
    [submitted] = world.events(post)
    assert submitted["tag"] == "post:submitted" and submitted["actor"] == "system:api"
    assert submitted["writer"]["email"] == world.writer_b.email
    assert submitted["delegated"] is True and submitted["state"] == "scheduled"
    assert post.author_id == world.writer_b.id and post.submitter == "system:api"


@pytest.mark.parametrize(
    ("who", "author", "error", "says"),
    [
        ("outsider", "outsider", Forbidden, "not assigned"),
        ("auditor", "auditor", Forbidden, "not assigned"),
        ("writer_a", "writer_b", Forbidden, "as themselves"),
    ],
)
def test_nobody_authors_what_they_may_not_and_nothing_is_stored(
    world: MemoryWorld, who: str, author: str, error: type[Exception], says: str
) -> None:
    world.live_window()
    before = world.stored()

    with pytest.raises(error, match=says):
        submit_post(
            world.ctx,
            Actor.for_user(getattr(world, who)),
            SubmitPost(world.account.id, getattr(world, author).id, "Not mine to say", Source.WEB),
        )

    assert world.stored() == before


def test_auditors_are_never_assigned(world: MemoryWorld) -> None:
    with pytest.raises(Conflict, match="Auditors"):
        directory.assign_writer(
            world.ctx, Actor.system("test"), user_id=world.auditor.id, account_id=world.account.id
        )


def test_unknown_accounts_authors_and_bad_times_store_nothing(world: MemoryWorld) -> None:
    world.live_window()
    before = world.stored()
    now = world.clock.now()
    api = Actor.system("api")

    with pytest.raises(NotFound):
        submit_post(world.ctx, api, SubmitPost(99_999, world.writer_a.id, "Where?", Source.API))
    with pytest.raises(NotFound):
        submit_post(world.ctx, api, SubmitPost(world.account.id, 99_999, "Who?", Source.API))
    with pytest.raises(ValidationFailed) as naive:
        world.submit(world.writer_a, "No zone", publish_at=now.replace(tzinfo=None))
    with pytest.raises(ValidationFailed) as past:
        world.submit(world.writer_a, "Too late", publish_at=now - timedelta(hours=1))

    assert "publish_at" in naive.value.fields and "publish_at" in past.value.fields
    assert world.stored() == before
