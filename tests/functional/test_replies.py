"""Replies through the real HTTP interfaces: `in_reply_to` (/api/v1) and `in_reply_to_id` (the
Mastodon face) are published as real replies, under the same disclosure as any post; a reply
never crosses to another account. Replies that publish straight away run in windows whose
reply_policy allows them (by default a person approves them: tests/functional/test_guards.py)."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select

from ghostpost.db.models import LedgerEntryRow, PostRow
from ghostpost.domain.model import Account
from ghostpost.domain.policy import ReplyPolicy, TagMode
from ghostpost.domain.states import PostState
from ghostpost.services import clients, directory
from ghostpost.services.context import Actor
from tests.support.api import Scheduler, fetch_token, scheduler_for
from tests.support.world import World

SYSTEM = Actor.system("test")


def stored(world: World) -> tuple[int, int]:
    with world.container.sessions() as session:
        posts = session.scalar(select(func.count()).select_from(PostRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(posts or 0), int(entries or 0)


def body(world: World, text: str, **extra: object) -> dict:  # type: ignore[type-arg]
    return {"account": world.account.id, "text": text, "author": world.writer_a.email, **extra}


def published(world: World, scheduler: Scheduler, text: str) -> dict:  # type: ignore[type-arg]
    """Create a post through the API and run the worker: the post as the API then shows it."""
    created = scheduler.create(body(world, text))
    assert created.status_code == 201, created.get_json()
    world.run_worker()
    post = scheduler.get(f"/api/v1/posts/{created.get_json()['id']}").get_json()
    assert post["state"] == "published", post
    return post  # type: ignore[no-any-return]


def local_status(world: World, post_public_id: str):  # type: ignore[no-untyped-def]
    with world.ctx.uow() as uow:
        post = uow.posts.by_public_id(post_public_id)
    assert post is not None and post.platform_post_id is not None
    found = world.container.local_store.get(world.account.handle, int(post.platform_post_id))
    assert found is not None
    return found


def test_a_reply_to_an_own_post_goes_out_as_a_real_reply_and_tagged(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(reply_policy=ReplyPolicy.ALLOW))
    scheduler = scheduler_for(client, world)
    parent = published(world, scheduler, "Keynote at 10")

    reply = scheduler.create(body(world, "Slides are up", in_reply_to=parent["id"]))
    assert reply.status_code == 201, reply.get_json()
    world.run_worker()

    status = local_status(world, reply.get_json()["id"])
    parent_status = local_status(world, parent["id"])
    assert status.in_reply_to_id == parent_status.id
    with world.ctx.uow() as uow:
        [sending] = [
            e
            for e in uow.ledger.entries()
            if e.subject == f"post:{reply.get_json()['id']}" and e.tag == "post:publishing"
        ]
    answered = str(parent_status.id)
    assert sending.data["reply_to"] == {"parent_id": answered, "root_id": answered}
    assert status.text == "Slides are up #team"  # a reply never escapes the tag


def test_attack_a_delegated_reply_that_cannot_carry_a_required_tag_is_refused(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(tag_mode=TagMode.REQUIRED))
    scheduler = scheduler_for(client, world)
    parent = published(world, scheduler, "Keynote at 10")
    before = stored(world)

    response = scheduler.create(body(world, "x" * 497, in_reply_to=parent["id"]))

    assert response.status_code == 422, response.get_json()
    assert stored(world) == before


def test_attack_a_delegated_reply_outside_every_window_is_refused(
    client: FlaskClient, world: World
) -> None:
    window = world.approve_notice(world.open_window(hours=1))
    scheduler = scheduler_for(client, world)
    parent = published(world, scheduler, "Keynote at 10")
    world.container.clock.advance(hours=2)
    assert window.policy.ends_at < world.container.clock.now()
    scheduler = scheduler_for(client, world, name="Scheduler 2")  # the first token expired
    before = stored(world)

    response = scheduler.create(body(world, "Late answer", in_reply_to=parent["id"]))

    assert response.status_code == 422, response.get_json()
    assert stored(world) == before


def other_account(world: World) -> Account:
    account = directory.create_account(
        world.ctx,
        SYSTEM,
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="avery_work",
    )
    directory.assign_writer(world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=account.id)
    world.approve_notice(world.open_window(account=account))
    return account


def test_attack_in_reply_to_naming_another_accounts_post_is_refused_by_name(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    work = other_account(world)
    scheduler = scheduler_for(client, world, account_ids=[world.account.id, work.id])
    parent = published(world, scheduler, "Keynote at 10")
    with world.ctx.uow() as uow:
        platform_id = uow.posts.by_public_id(parent["id"]).platform_post_id  # type: ignore[union-attr]
    before = stored(world)

    for named in (parent["id"], platform_id):
        response = scheduler.create(
            {
                "account": work.id,
                "text": "Answer",
                "author": world.writer_a.email,
                "in_reply_to": named,
            }
        )
        assert response.status_code == 422, response.get_json()
        assert "another account" in response.get_json()["detail"]
        assert stored(world) == before


def test_a_reply_to_a_post_not_yet_published_is_refused(client: FlaskClient, world: World) -> None:
    world.approve_notice(world.open_window())
    scheduler = scheduler_for(client, world)
    later = world.container.clock.now() + timedelta(hours=1)
    queued = scheduler.create(body(world, "Later", publish_at=later.isoformat())).get_json()
    before = stored(world)

    response = scheduler.create(body(world, "Answer", in_reply_to=queued["id"]))

    assert response.status_code == 422
    assert "not published" in response.get_json()["detail"]
    assert stored(world) == before


def test_a_reply_to_a_platform_post_id_that_does_not_exist_fails_on_the_platform(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(reply_policy=ReplyPolicy.ALLOW))
    scheduler = scheduler_for(client, world)

    reply = scheduler.create(body(world, "Answering someone", in_reply_to="999999"))
    assert reply.status_code == 201
    world.run_worker()

    post = scheduler.get(f"/api/v1/posts/{reply.get_json()['id']}").get_json()
    assert post["state"] == PostState.FAILED.value
    assert "does not exist" in post["state_reason"]


def test_the_mastodon_face_takes_in_reply_to_id_as_a_real_reply(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(reply_policy=ReplyPolicy.ALLOW))
    record, secret = clients.create_client(
        world.ctx,
        SYSTEM,
        name="Compat",
        owner_email=world.manager.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[world.account.id],
        default_author_email=world.writer_a.email,
    )
    headers = {"Authorization": f"Bearer {fetch_token(client, record.client_id, secret)}"}
    path = f"/compat/mastodon/{world.account.id}/api/v1/statuses"
    first = client.post(path, json={"status": "Keynote at 10"}, headers=headers)
    assert first.status_code == 200, first.get_json()
    world.run_worker()

    reply = client.post(
        path, json={"status": "Slides", "in_reply_to_id": first.get_json()["id"]}, headers=headers
    )
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_json()["in_reply_to_id"] == first.get_json()["id"]
    world.run_worker()
    reply_post = reply.get_json()["ghostpost"]["id"]
    parent_post = first.get_json()["ghostpost"]["id"]
    assert local_status(world, reply_post).in_reply_to_id == local_status(world, parent_post).id

    before = stored(world)
    missing = client.post(path, json={"status": "x", "in_reply_to_id": "987654"}, headers=headers)
    assert missing.status_code == 404
    assert stored(world) == before
