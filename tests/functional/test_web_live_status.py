"""GET /posts/status: the JSON that live.js polls so staff pages follow a post's state.

Attacks first: who may ask, what an outsider learns (nothing, not even existence), hostile or
oversized input, and whether polling keeps a forgotten tab signed in. Then the answer follows
the real worker's state changes.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.domain.states import PostState
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.queue import MAX_STATUS_IDS
from tests.functional.test_web_queue import (
    PLATFORM_ERROR,
    FlakyPlatform,
    live_window,
    second_account,
)
from tests.support.web import sign_in
from tests.support.world import World

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def flaky(container: Container) -> FlakyPlatform:
    fake = FlakyPlatform(container)
    fake.failing = False
    container.publishers["local"] = fake
    return fake


def statuses(client: FlaskClient, *ids: str) -> Any:
    response = client.get("/posts/status", query_string=[("id", i) for i in ids])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def ledger_size(world: World) -> int:
    with world.ctx.uow(read_only=True) as uow:
        return sum(1 for _ in uow.ledger.entries())


# --------------------------------------------------------------------------------------------
# Attacks
# --------------------------------------------------------------------------------------------


def test_anonymous_callers_get_401_json_not_a_login_page(world: World, client: FlaskClient) -> None:
    post = world.submit(world.principal, "The principal's own words")
    response = client.get("/posts/status", query_string={"id": post.public_id})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert "Location" not in response.headers
    assert post.public_id not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_a_writer_learns_nothing_about_a_post_on_an_account_they_do_not_write_for(
    world: World, client: FlaskClient
) -> None:
    other = second_account(world)  # the outsider writes for it; writer_a does not
    world.open_window(account=other)
    theirs = world.submit(world.outsider, "Blake's launch day", account=other)
    sign_in(client, world.writer_a.email)
    about_theirs = statuses(client, theirs.public_id)
    about_nothing = statuses(client, UNKNOWN)
    # The same answer as for an id that names no post: existence does not leak.
    assert about_theirs == about_nothing == {"posts": []}
    # The outsider, who writes for that account, does see it.
    client.post("/logout")
    sign_in(client, world.outsider.email)
    assert [p["id"] for p in statuses(client, theirs.public_id)["posts"]] == [theirs.public_id]


def test_a_writer_unassigned_after_the_page_loaded_stops_seeing_the_post(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Slides are up")
    sign_in(client, world.writer_a.email)
    assert [p["id"] for p in statuses(client, post.public_id)["posts"]] == [post.public_id]
    directory.unassign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=world.account.id
    )
    assert statuses(client, post.public_id, UNKNOWN) == {"posts": []}


MALFORMED = ["", "x" * 65, "../../etc/passwd", "' OR 1=1 --", "\u00b2", "\x00", "a b", "<script>"]


def test_malformed_ids_are_skipped_like_unknown_ones(world: World, client: FlaskClient) -> None:
    post = world.submit(world.principal, "Booth 12")
    sign_in(client, world.principal.email)
    answer = statuses(client, *MALFORMED, post.public_id, post.public_id, *MALFORMED)
    assert [p["id"] for p in answer["posts"]] == [post.public_id]


def test_too_many_ids_are_refused_clearly_and_the_cap_itself_is_answered(
    world: World, client: FlaskClient
) -> None:
    post = world.submit(world.principal, "Booth 12")
    sign_in(client, world.principal.email)
    at_cap = [post.public_id] + [UNKNOWN] * (MAX_STATUS_IDS - 1)
    assert len(statuses(client, *at_cap)["posts"]) == 1
    response = client.get("/posts/status", query_string=[("id", UNKNOWN)] * (MAX_STATUS_IDS + 1))
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert f"at most {MAX_STATUS_IDS} posts" in response.get_json()["detail"]
    # No ids at all: an empty answer, not an error.
    assert statuses(client) == {"posts": []}


def test_polling_does_not_keep_a_forgotten_tab_signed_in(
    world: World, client: FlaskClient, clock: FixedClock
) -> None:
    post = world.submit(world.principal, "Booth 12")
    sign_in(client, world.principal.email)
    before = ledger_size(world)
    # A tab left open polls all along; the idle timeout (30 minutes) still counts from the
    # last page the person opened.
    for _ in range(5):
        clock.advance(minutes=5)
        statuses(client, post.public_id)
    clock.advance(minutes=6)
    response = client.get("/posts/status", query_string={"id": post.public_id})
    assert response.status_code == 401
    assert client.get("/queue").headers["Location"].startswith("/login")
    assert ledger_size(world) == before


def test_polls_answer_while_a_writer_holds_the_write_lock(
    world: World, client: FlaskClient
) -> None:
    post = world.submit(world.principal, "Booth 12")
    sign_in(client, world.principal.email)
    statuses(client, post.public_id)
    answers: list[int] = []

    def poll() -> None:
        response = client.get("/posts/status", query_string={"id": post.public_id})
        answers.append(response.status_code)

    with world.ctx.uow() as writer:
        writer.principals.add("Uncommitted while the page polls")
        reader = threading.Thread(target=poll)
        reader.start()
        reader.join(timeout=20)
        assert not reader.is_alive(), "a poll waited for the writer"
    assert answers == [200]


# --------------------------------------------------------------------------------------------
# The answer follows the real worker
# --------------------------------------------------------------------------------------------


def test_the_answer_follows_a_post_from_scheduled_to_published(
    world: World, client: FlaskClient, clock: FixedClock, flaky: FlakyPlatform
) -> None:
    live_window(world)
    post = world.submit(
        world.writer_a, "Keynote in ten minutes", clock.now() + timedelta(minutes=5)
    )
    sign_in(client, world.writer_a.email)
    [scheduled] = statuses(client, post.public_id)["posts"]
    assert scheduled == {
        "id": post.public_id,
        "state": "scheduled",
        "label": "scheduled",
        "final": False,
        "reason": None,
        "platform_url": None,
        "published_at": None,
        "published_label": None,
    }
    clock.advance(minutes=6)
    world.run_worker()
    [published] = statuses(client, post.public_id)["posts"]
    stored = world.post(post.id)
    assert stored.state is PostState.PUBLISHED and stored.published_at is not None
    assert published["state"] == "published" and published["label"] == "published"
    assert published["final"] is True
    assert published["platform_url"] == stored.platform_url and stored.platform_url
    assert published["published_at"] == stored.published_at.isoformat().replace("+00:00", "Z")
    assert published["published_label"] == stored.published_at.strftime("%Y-%m-%d %H:%M UTC")
    assert published["reason"] is None


def test_the_answer_says_why_a_post_failed_in_the_pages_words(
    world: World, client: FlaskClient, flaky: FlakyPlatform
) -> None:
    live_window(world)
    flaky.failing = True
    post = world.submit(world.writer_a, "Link to the slides")
    sign_in(client, world.manager.email)
    world.run_worker()
    [failed] = statuses(client, post.public_id)["posts"]
    assert failed["state"] == "failed" and failed["final"] is True
    assert failed["reason"] == f"Platform error: {PLATFORM_ERROR}"
    assert failed["platform_url"] is None
    # The page shows the same words before any poll.
    page = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert f"Platform error: {PLATFORM_ERROR}" in page
    assert 'data-live-post="' + post.public_id + '"' in page


def test_pending_approval_reads_as_the_pages_word_it(world: World, client: FlaskClient) -> None:
    window = world.open_window(requires_approval=True)
    world.approve_notice(window)
    world.run_worker()
    post = world.submit(world.writer_a, "Needs the principal's yes")
    sign_in(client, world.writer_a.email)
    [waiting] = statuses(client, post.public_id)["posts"]
    assert waiting["state"] == "pending_approval"
    assert waiting["label"] == "pending approval"
    assert waiting["final"] is False
    assert waiting["reason"] == world.post(post.id).state_reason


def test_queue_rows_and_the_post_page_carry_the_live_marks(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = world.submit(
        world.writer_a, "Booth 12", world.container.clock.now() + timedelta(hours=1)
    )
    sign_in(client, world.writer_a.email)
    queue = client.get("/queue").get_data(as_text=True)
    assert f'data-live-post="{post.public_id}"' in queue
    assert "data-live-state" in queue and "data-live-reason" in queue
    assert 'data-live-url="/posts/status"' in queue and "data-live-poll-ms=" in queue
    assert "/static/live.js" in queue
