"""Threads through /api/v1: `thread` makes a post a chain of parts, each its own post and
ledger entries, published in order as replies, never interleaved, under the same disclosure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ghostpost.db.models import LedgerEntryRow, PostRow
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Post
from ghostpost.domain.policy import PostKind, ReminderMode, TagMode
from ghostpost.domain.states import PostState
from ghostpost.services import posts
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict
from tests.support.api import Scheduler, scheduler_for
from tests.support.web import post_form, sign_in
from tests.support.world import REMINDER, World


def stored(world: World) -> tuple[int, int]:
    with world.container.sessions() as session:
        count = session.scalar(select(func.count()).select_from(PostRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(count or 0), int(entries or 0)


def thread_body(world: World, *parts: str, **extra: object) -> dict[str, Any]:
    first, *rest = parts
    return {
        "account": world.account.id,
        "text": first,
        "thread": rest,
        "author": world.writer_a.email,
        **extra,
    }


def lone_body(world: World, text: str) -> dict[str, Any]:
    return {"account": world.account.id, "text": text, "author": world.writer_a.email}


def timeline(world: World) -> list[Post]:
    """The account's published posts in the order they went out."""
    with world.ctx.uow() as uow:
        found = [
            p
            for p in uow.posts.list_for_account(world.account.id)
            if p.state is PostState.PUBLISHED
        ]
    return sorted(found, key=lambda p: int(p.platform_post_id or 0))


def parts_of(world: World, thread_id: str) -> list[Post]:
    with world.ctx.uow() as uow:
        found = [
            p for p in uow.posts.list_for_account(world.account.id) if p.thread_id == thread_id
        ]
    return sorted(found, key=lambda p: p.thread_position or 0)


def local_parent(world: World, post: Post) -> int | None:
    status = world.container.local_store.get(world.account.handle, int(post.platform_post_id or 0))
    assert status is not None
    return status.in_reply_to_id


def create(scheduler: Scheduler, body: dict[str, Any]) -> dict[str, Any]:
    response = scheduler.create(body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_a_thread_goes_out_in_order_as_a_reply_chain_tagged_on_its_first_part(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    scheduler = scheduler_for(client, world)

    preview = scheduler.post("/api/v1/preview", json=thread_body(world, "One", "Two", "Three"))
    assert preview.status_code == 200, preview.get_json()
    shown = preview.get_json()["parts"]
    assert [p["text_if_published_now"] for p in shown] == ["One #team", "Two", "Three"]
    assert [p["decisions"]["tag"]["outcome"] for p in shown] == ["applied", "off", "off"]

    first = create(scheduler, thread_body(world, "One", "Two", "Three"))
    assert first["thread"] == {"id": first["id"], "position": 1, "parts": 3}
    second = scheduler.get(f"/api/v1/posts/{parts_of(world, first['id'])[1].public_id}")
    assert second.get_json()["text_if_published_now"] == "Two"
    assert second.get_json()["thread"] == {"id": first["id"], "position": 2, "parts": 3}
    world.run_worker()

    parts = parts_of(world, first["id"])
    assert [p.final_text for p in parts] == ["One #team", "Two", "Three"]
    assert [p.state for p in parts] == [PostState.PUBLISHED] * 3
    assert local_parent(world, parts[0]) is None
    assert local_parent(world, parts[1]) == int(parts[0].platform_post_id or 0)
    assert local_parent(world, parts[2]) == int(parts[1].platform_post_id or 0)
    with world.ctx.uow() as uow:
        entries = list(uow.ledger.entries())
    for part in parts:  # each part its own ledger entries
        tags = [e.tag for e in entries if e.subject == f"post:{part.public_id}"]
        assert tags.count(LedgerTag.POST_SUBMITTED) == 1
        assert tags.count(LedgerTag.POST_PUBLISHED) == 1


def test_attack_a_later_part_cannot_go_out_untagged_when_the_window_tags_every_part(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(tag_mode=TagMode.REQUIRED, tag_every_part=True))
    scheduler = scheduler_for(client, world)
    before = stored(world)

    refused = scheduler.create(thread_body(world, "One", "x" * 497))
    assert refused.status_code == 422, refused.get_json()
    assert "Part 2" in refused.get_json()["detail"]
    assert stored(world) == before

    first = create(scheduler, thread_body(world, "One", "Two"))
    world.run_worker()
    assert [p.final_text for p in parts_of(world, first["id"])] == ["One #team", "Two #team"]


def test_attack_a_concurrent_post_cannot_land_between_two_parts(
    client: FlaskClient, world: World
) -> None:
    # Updated: the principal approved the first part alone, and the account waited for the
    # second; approval now takes the thread whole (see the tests below), so the other post is
    # held back by the thread going out, not by a half-approved one.
    world.approve_notice(world.open_window(requires_approval=True))
    scheduler = scheduler_for(client, world)
    first = create(scheduler, thread_body(world, "One", "Two"))
    lone = create(scheduler, lone_body(world, "Meanwhile"))
    principal = Actor.for_user(world.principal)
    with world.ctx.uow() as uow:
        lone_post = uow.posts.by_public_id(lone["id"])
    assert lone_post is not None
    posts.approve_post(world.ctx, principal, lone_post.id)
    posts.approve_post(world.ctx, principal, parts_of(world, first["id"])[0].id)
    world.run_worker()
    texts = [p.submitted_text for p in timeline(world) if p.kind is PostKind.REGULAR]
    assert texts in (["One", "Two", "Meanwhile"], ["Meanwhile", "One", "Two"])


def principal_web(client: FlaskClient, world: World) -> FlaskClient:
    """A second browser, the principal's, signed in through the login form."""
    browser = client.application.test_client()
    sign_in(browser, world.principal.email)
    return browser


def ledger_tags(world: World, post: Post) -> list[str]:
    with world.ctx.uow() as uow:
        return [e.tag for e in uow.ledger.entries() if e.subject == f"post:{post.public_id}"]


@pytest.mark.parametrize("named_part", [0, 2])
def test_the_principal_approves_a_thread_as_one_item_from_any_part(
    client: FlaskClient, world: World, named_part: int
) -> None:
    world.approve_notice(world.open_window(requires_approval=True))
    scheduler = scheduler_for(client, world)
    first = create(scheduler, thread_body(world, "One", "Two", "Three"))
    parts = parts_of(world, first["id"])
    browser = principal_web(client, world)

    page = browser.get("/approvals").get_data(as_text=True)
    assert "A thread of 3 parts" in page
    assert page.count('action="/approvals/posts/') == 1  # one item, one decision
    assert ">Approve the thread</button>" in page

    named = parts[named_part]
    response = post_form(
        browser, f"/approvals/posts/{named.public_id}", {"decision": "approve"}, "/approvals"
    )
    assert response.status_code == 302
    assert "Approved the thread" in browser.get("/approvals").get_data(as_text=True)
    parts = parts_of(world, first["id"])
    assert [p.state for p in parts] == [PostState.SCHEDULED] * 3
    assert {p.approved_by for p in parts} == {world.principal.id}
    for part in parts:  # one ledger entry per part
        assert ledger_tags(world, part).count(LedgerTag.POST_APPROVED) == 1
    world.run_worker()
    assert [p.state for p in parts_of(world, first["id"])] == [PostState.PUBLISHED] * 3


def test_the_principal_rejects_a_thread_as_one_item(client: FlaskClient, world: World) -> None:
    world.approve_notice(world.open_window(requires_approval=True))
    scheduler = scheduler_for(client, world)
    first = create(scheduler, thread_body(world, "One", "Two"))
    browser = principal_web(client, world)
    second = parts_of(world, first["id"])[1]

    response = post_form(
        browser,
        f"/approvals/posts/{second.public_id}",
        {"decision": "reject", "comment": "Not this one"},
        "/approvals",
    )
    assert response.status_code == 302
    parts = parts_of(world, first["id"])
    assert [p.state for p in parts] == [PostState.REFUSED] * 2
    assert all("Not this one" in (p.state_reason or "") for p in parts)
    for part in parts:
        assert ledger_tags(world, part).count(LedgerTag.POST_REJECTED) == 1
    world.run_worker()
    assert timeline(world) == [p for p in timeline(world) if p.kind is PostKind.NOTICE]


def test_attack_a_half_approved_thread_never_starts_nor_blocks_the_account(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(requires_approval=True))
    scheduler = scheduler_for(client, world)
    first = create(scheduler, thread_body(world, "One", "Two"))
    lone = create(scheduler, lone_body(world, "Meanwhile"))
    parts = parts_of(world, first["id"])
    # Part 1 approved alone, as every database holds threads approved before approval took
    # them whole.
    with world.ctx.uow() as uow:
        uow.posts.approve(
            parts[0].id,
            state=PostState.SCHEDULED,
            approved_by=world.principal.id,
            approved_at=world.ctx.clock.now(),
            publish_at=parts[0].publish_at,
        )
        lone_post = uow.posts.by_public_id(lone["id"])
        uow.commit()
    assert lone_post is not None
    posts.approve_post(world.ctx, Actor.for_user(world.principal), lone_post.id)

    world.run_worker()
    regular = [p.submitted_text for p in timeline(world) if p.kind is PostKind.REGULAR]
    assert regular == ["Meanwhile"]  # nothing of the thread; the account is not blocked
    assert [p.state for p in parts_of(world, first["id"])] == [
        PostState.SCHEDULED,
        PostState.PENDING_APPROVAL,
    ]

    browser = principal_web(client, world)
    response = post_form(
        browser, f"/approvals/posts/{parts[1].public_id}", {"decision": "approve"}, "/approvals"
    )
    assert response.status_code == 302
    world.run_worker()
    regular = [p.submitted_text for p in timeline(world) if p.kind is PostKind.REGULAR]
    assert regular == ["Meanwhile", "One", "Two"]


def test_attack_a_reminder_never_lands_between_two_parts(client: FlaskClient, world: World) -> None:
    world.approve_notice(world.open_window(every=3, reminder_mode=ReminderMode.STANDALONE))
    scheduler = scheduler_for(client, world)
    create(scheduler, lone_body(world, "Alone"))
    world.run_worker()  # notice, then 1 post since the disclosure

    first = create(scheduler, thread_body(world, "One", "Two"))  # 1 + 2 reaches N = 3
    world.run_worker()

    kinds = [(p.kind, p.submitted_text) for p in timeline(world) if p.kind is not PostKind.NOTICE]
    assert kinds == [
        (PostKind.REGULAR, "Alone"),
        (PostKind.REMINDER, REMINDER),
        (PostKind.REGULAR, "One"),
        (PostKind.REGULAR, "Two"),
    ]
    assert parts_of(world, first["id"])[1].reply_to_post_id == parts_of(world, first["id"])[0].id


def test_a_thread_longer_than_the_cadence_allows_is_refused_and_nothing_is_stored(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(every=3))
    scheduler = scheduler_for(client, world)
    before = stored(world)

    response = scheduler.create(thread_body(world, "One", "Two", "Three"))

    assert response.status_code == 422, response.get_json()
    assert "at most 2 parts" in response.get_json()["detail"]
    assert stored(world) == before


def test_a_part_that_fails_for_good_holds_the_later_parts_with_the_reason(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    scheduler = scheduler_for(client, world)
    first = create(scheduler, thread_body(world, "One", "Two", "Three"))
    parts = parts_of(world, first["id"])
    # The first part fails for good (the principal cancels it before it goes out).
    posts.cancel_post(world.ctx, Actor.for_user(world.principal), parts[0].id)
    create(scheduler, lone_body(world, "Other"))

    world.run_worker()

    parts = parts_of(world, first["id"])
    assert [p.state for p in parts] == [PostState.CANCELLED, PostState.HELD, PostState.HELD]
    assert "part 1 of its thread did not go out (cancelled" in (parts[1].state_reason or "")
    # The account is not blocked by the broken thread.
    assert [p.submitted_text for p in timeline(world) if p.kind is PostKind.REGULAR] == ["Other"]


def test_attack_one_part_cannot_be_moved_out_of_its_thread(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    scheduler = scheduler_for(client, world)
    later = world.container.clock.now() + timedelta(hours=1)
    first = create(scheduler, thread_body(world, "One", "Two", publish_at=later.isoformat()))
    second = parts_of(world, first["id"])[1]
    before = stored(world)

    # Only the Mastodon face (on its own host) reschedules; its service call is this one.
    with pytest.raises(Conflict, match="go out together"):
        posts.reschedule_post(
            world.ctx, Actor.for_user(world.principal), second.id, later + timedelta(hours=1)
        )

    assert stored(world) == before
    assert parts_of(world, first["id"])[1].publish_at == second.publish_at
