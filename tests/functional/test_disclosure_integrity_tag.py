"""Attack (issue 12, point 2): "#team" where the platform shows no hashtag #team.

An API client submits delegated posts whose text already holds "#team" inside a URL, continued
by a combining mark or a joiner, or after "=" or ")" -- places where the account's platform (here
our Mastodon-compatible "local" server, with Mastodon's hashtag rules) makes no hashtag #team.
The engine used to call the tag "already present", so the posts went out untagged, even under
`tag_mode=required`, and coverage counted them as tagged. Each must now go out with a real
#team, coverage must count only really tagged posts, and a required tag that does not fit is
refused with nothing stored.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.policy import TagMode
from ghostpost.domain.states import PostState
from ghostpost.services.context import Actor
from ghostpost.services.coverage import window_coverage
from tests.support.api import Scheduler, scheduler_for
from tests.support.world import World

#: Texts from the issue (and neighbours) that hold "#team" but show no hashtag #team on Mastodon.
FAKE_TAGS = {
    "in-url-query": "Slides https://example.com/a?utm=#team",
    "url-fragment": "Slides at https://example.com/talk#team",
    "combining-mark": "Great keynote #team\u0301",
    "joiner": "Great keynote #team\u200d",
    "joiner-inside-word": "Great keynote #team\u200dwork",
    "after-equals": "Vote x=#team",
    "after-smiley": "Thanks :)#team",
    "glued-to-word": "Thanks all#team",
    "longer-hashtag": "Great keynote #teamwork",
}
#: Texts whose "#team" is a real hashtag on Mastodon: the tag is not added twice.
REAL_TAGS = {
    "plain": "Great keynote #team",
    "capitalised": "Great keynote #Team",
    "in-parentheses": "Great keynote (#team)",
    "before-punctuation": "Great keynote #team!",
    "after-cjk-punctuation": "世界。#team",
}


def body(world: World, text: str) -> dict[str, object]:
    return {"account": world.account.id, "text": text, "author": world.writer_a.email}


def publish_all(scheduler: Scheduler, world: World, texts: dict[str, str]) -> dict[str, str]:
    """Submit each text as a delegated post, run the worker; return name -> public id."""
    ids = {}
    for name, text in texts.items():
        response = scheduler.create(body(world, text))
        assert response.status_code == 201, (name, response.get_json())
        ids[name] = response.get_json()["id"]
    world.run_worker()
    return ids


def shown_text(world: World, public_id: str) -> str:
    """The post's text as the platform holds it, checked against what ghostpost recorded."""
    with world.ctx.uow() as uow:
        post = uow.posts.by_public_id(public_id)
    assert post is not None
    assert post.state is PostState.PUBLISHED, (public_id, post.state)
    statuses = {str(s.id): s for s in world.container.local_store.timeline("avery", limit=500)}
    status = statuses[post.platform_post_id or ""]
    assert status.text == post.final_text
    return status.text


def shows_team(world: World, text: str) -> bool:
    """Whether Mastodon shows the hashtag #team in `text`, nothing glued on (domain.hashtags)."""
    return world.ctx.budget_for(world.account).finds_hashtag(text, "#team")


@pytest.mark.parametrize("mode", [TagMode.WHEN_FITS, TagMode.REQUIRED])
def test_a_fake_tag_does_not_pass_for_the_disclosure(
    client: FlaskClient, world: World, mode: TagMode
) -> None:
    window = world.approve_notice(world.open_window(every=1000, tag_mode=mode))
    scheduler = scheduler_for(client, world)

    ids = publish_all(scheduler, world, {**FAKE_TAGS, **REAL_TAGS})

    for name, text in FAKE_TAGS.items():
        shown = shown_text(world, ids[name])
        assert shown == text + " #team", name
        assert shows_team(world, shown), name
        assert not shows_team(world, text), name
    for name, text in REAL_TAGS.items():
        assert shown_text(world, ids[name]) == text, name

    # Coverage reads the stored decisions: every delegated post is tagged, for real.
    page = window_coverage(world.ctx, Actor.for_user(world.auditor), window.id)
    assert page.selected is not None
    coverage = page.selected.coverage
    published = len(FAKE_TAGS) + len(REAL_TAGS)
    assert (coverage.delegated_posts, coverage.tagged, coverage.untagged) == (
        published,
        published,
        0,
    )
    assert coverage.tag_skipped == 0


def test_a_required_tag_that_does_not_fit_next_to_a_fake_one_is_refused_storing_nothing(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(tag_mode=TagMode.REQUIRED))
    scheduler = scheduler_for(client, world)
    # 500 characters on Mastodon's count (the URL counts 23): full, with "#team" only in the URL.
    text = "x" * 476 + " https://example.com/a?utm=#team"
    assert world.ctx.budget_for(world.account).measure(text).primary.used == 500
    with world.ctx.uow() as uow:
        posts_before = len(uow.posts.list_for_account(world.account.id))
        ledger_before = len(list(uow.ledger.entries()))

    response = scheduler.create(body(world, text))

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["refusal"]["code"] == "tag_does_not_fit"
    with world.ctx.uow() as uow:
        assert len(uow.posts.list_for_account(world.account.id)) == posts_before
        assert len(list(uow.ledger.entries())) == ledger_before
    assert not [e for e in list_ledger(world) if e.tag == LedgerTag.POST_SUBMITTED]


def test_under_when_fits_a_full_post_with_a_fake_tag_is_counted_as_skipped(
    client: FlaskClient, world: World
) -> None:
    window = world.approve_notice(world.open_window(every=1000))
    scheduler = scheduler_for(client, world)
    text = "x" * 476 + " https://example.com/a?utm=#team"

    ids = publish_all(scheduler, world, {"full": text})

    assert shown_text(world, ids["full"]) == text
    page = window_coverage(world.ctx, Actor.for_user(world.auditor), window.id)
    assert page.selected is not None
    coverage = page.selected.coverage
    assert (coverage.delegated_posts, coverage.tagged, coverage.tag_skipped) == (1, 0, 1)


def list_ledger(world: World) -> list:  # type: ignore[type-arg]
    with world.ctx.uow() as uow:
        return list(uow.ledger.entries())
