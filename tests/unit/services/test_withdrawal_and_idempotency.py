"""Withdrawn grants hold posts; idempotent creates replay or refuse; a unit of work that raises
leaves nothing. In memory, through the real services (DESIGN.md §3, §4)."""

from __future__ import annotations

from typing import Any

import pytest

from ghostpost.domain.model import Post, Source
from ghostpost.domain.states import PostState
from ghostpost.services import directory
from ghostpost.services.api_queries import PostDetails
from ghostpost.services.clients import create_client
from ghostpost.services.context import Actor
from ghostpost.services.delegation import release_withdrawn_post
from ghostpost.services.errors import Conflict, Forbidden, ValidationFailed
from ghostpost.services.idempotency import (
    IdempotencyMismatch,
    request_fingerprint,
    submit_client_post_once,
    submit_post_once,
)
from ghostpost.services.posts import ClientPost, SubmitPost
from tests.unit.services.memory_world import MemoryWorld

SYSTEM = Actor.system("test")


def _unassign(world: MemoryWorld) -> None:
    directory.unassign_writer(
        world.ctx,
        Actor.for_user(world.manager),
        user_id=world.writer_a.id,
        account_id=world.account.id,
    )


def test_an_unassigned_writers_post_is_held_and_released_only_after_reassignment(
    world: MemoryWorld,
) -> None:
    world.live_window()
    post = world.submit(world.writer_a, "Panel at three")
    others = world.submit(world.writer_b, "Sam's post goes out as planned")

    _unassign(world)

    held = world.post(post.id)
    assert held.state is PostState.HELD
    assert held.state_reason is not None
    assert f"{world.writer_a.name} was unassigned from @avery" in held.state_reason
    withdrawn = next(e for e in world.events(post) if e["tag"] == "post:withdrawn")
    assert withdrawn["actor"] == f"user:{world.manager.id}"
    assert withdrawn["grant"] == "assignment" and withdrawn["was"] == "scheduled"
    world.run_worker()
    assert world.post(post.id).state is PostState.HELD
    assert world.post(others.id).state is PostState.PUBLISHED

    before = world.stored()
    with pytest.raises(Conflict, match="not assigned to @avery"):
        release_withdrawn_post(world.ctx, Actor.for_user(world.manager), post.id)
    assert world.stored() == before

    directory.assign_writer(
        world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=world.account.id
    )
    assert world.post(post.id).state is PostState.HELD, "reassigning alone releases nothing"
    with pytest.raises(Forbidden):
        release_withdrawn_post(world.ctx, Actor.for_user(world.writer_a), post.id)
    released = release_withdrawn_post(world.ctx, Actor.for_user(world.manager), post.id)
    assert released.state is PostState.SCHEDULED and "hold" not in released.decisions

    world.run_worker()
    assert world.post(post.id).final_text == "Panel at three #team"


def test_a_deactivated_writers_posts_are_held_until_reactivated_and_released(
    world: MemoryWorld,
) -> None:
    world.live_window()
    post = world.submit(world.writer_a, "Before the break")

    directory.set_user_active(world.ctx, SYSTEM, world.writer_a.id, False)

    assert world.post(post.id).state is PostState.HELD
    assert world.events(post)[-1]["grant"] == "user"
    with pytest.raises(Conflict, match="deactivated"):
        release_withdrawn_post(world.ctx, Actor.for_user(world.manager), post.id)
    directory.set_user_active(world.ctx, SYSTEM, world.writer_a.id, True)
    assert world.post(post.id).state is PostState.HELD
    release_withdrawn_post(world.ctx, Actor.for_user(world.manager), post.id)
    world.run_worker()
    assert world.post(post.id).state is PostState.PUBLISHED


def _render(post: Post) -> tuple[int, dict[str, Any]]:
    return 201, {"id": post.public_id, "state": post.state.value}


def test_the_same_key_and_body_create_one_post_and_replay_its_answer(world: MemoryWorld) -> None:
    world.live_window()
    actor = Actor.system("api")
    cmd = SubmitPost(world.account.id, world.writer_a.id, "Once only", Source.API)
    body = {"text": "Once only"}

    first = submit_post_once(
        world.ctx, actor, cmd, key="k-1", fingerprint=request_fingerprint(body), render=_render
    )
    after_first = world.stored()
    again = submit_post_once(
        world.ctx, actor, cmd, key="k-1", fingerprint=request_fingerprint(body), render=_render
    )

    assert first[2] is False and again == (first[0], first[1], True)
    assert world.stored() == after_first
    before = world.stored()
    with pytest.raises(IdempotencyMismatch):
        submit_post_once(
            world.ctx,
            actor,
            cmd,
            key="k-1",
            fingerprint=request_fingerprint({"text": "Something else"}),
            render=_render,
        )
    assert world.stored() == before
    # Another submitter's same key is its own.
    other = submit_post_once(
        world.ctx,
        Actor.system("other"),
        cmd,
        key="k-1",
        fingerprint=request_fingerprint(body),
        render=_render,
    )
    assert other[2] is False and other[1]["id"] != first[1]["id"]


def test_a_create_that_fails_after_storing_leaves_no_post_entry_or_key(
    world: MemoryWorld,
) -> None:
    world.live_window()
    actor = Actor.system("api")
    cmd = SubmitPost(world.account.id, world.writer_a.id, "Rendered badly", Source.API)
    fingerprint = request_fingerprint({"text": cmd.text})
    before = world.stored()

    def broken(post: Post) -> tuple[int, dict[str, Any]]:
        raise RuntimeError("the renderer broke after the post and entry were written")

    with pytest.raises(RuntimeError):
        submit_post_once(world.ctx, actor, cmd, key="k-2", fingerprint=fingerprint, render=broken)

    assert world.stored() == before
    # The key stayed unused: the retry creates the post.
    status, _, replayed = submit_post_once(
        world.ctx, actor, cmd, key="k-2", fingerprint=fingerprint, render=_render
    )
    assert (status, replayed) == (201, False)


def test_an_api_clients_create_writes_post_entry_and_answer_in_one_unit(
    world: MemoryWorld,
) -> None:
    world.live_window()
    client, _ = create_client(
        world.ctx,
        SYSTEM,
        name="Scheduler",
        owner_email=world.manager.email,
        scopes="posts:write",
        account_ids=[world.account.id],
        author_emails=[world.writer_a.email],
    )
    actor = Actor.for_client(client.client_id, client.account_ids)
    request = ClientPost(world.account.id, world.writer_a.email, "From the scheduler", Source.API)

    def render(details: PostDetails) -> tuple[int, dict[str, Any]]:
        return 201, {"id": details.post.public_id, "author": details.author.email}

    fingerprint = request_fingerprint({"text": request.text})
    status, body, replayed = submit_client_post_once(
        world.ctx, actor, request, key="c-1", fingerprint=fingerprint, render=render
    )
    again = submit_client_post_once(
        world.ctx, actor, request, key="c-1", fingerprint=fingerprint, render=render
    )

    assert (status, replayed) == (201, False) and again == (status, body, True)
    assert body["author"] == world.writer_a.email
    [post] = [p for p in world.posts() if p.submitter == f"client:{client.client_id}"]
    [submitted] = world.events(post)
    assert submitted["actor"] == f"client:{client.client_id}"
    assert submitted["writer"]["email"] == world.writer_a.email
    before = world.stored()
    with pytest.raises(ValidationFailed, match="not one this client may name"):
        submit_client_post_once(
            world.ctx,
            actor,
            ClientPost(world.account.id, world.writer_b.email, "Not granted", Source.API),
            key="c-2",
            fingerprint=fingerprint,
            render=render,
        )
    assert world.stored() == before
