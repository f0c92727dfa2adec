"""One compose, several accounts, through /api/v1 with a real OAuth token: a group is made all
or nothing, each account decided by its own policy, and every refusal names its account."""

from __future__ import annotations

import csv
import io
import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text as sql

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, Role
from ghostpost.services import directory, exports, windows
from ghostpost.services.context import Actor
from tests.support import images
from tests.support.api import Scheduler, scheduler_for
from tests.support.world import World, row_counts

TEXT = "Day two: the keynote starts at 10, come early for coffee and a good seat up front"


def short_account(
    world: World, handle: str = "avery_short", *, principal_id: int | None = None
) -> Account:
    """Another local account of 85 characters: the text fits, the tag does not."""
    return directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=principal_id or world.principal.principal_id or 0,
        platform="local",
        handle=handle,
        max_chars=85,
    )


def live_window(world: World, account: Account) -> None:
    world.approve_notice(world.open_window(account=account))


@pytest.fixture
def short(world: World) -> Account:
    account = short_account(world)
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=account.id
    )
    live_window(world, world.account)
    live_window(world, account)
    return account


def scheduler_of(client: FlaskClient, world: World, *accounts: Account) -> Scheduler:
    return scheduler_for(
        client,
        world,
        account_ids=[a.id for a in accounts],
        author_emails=[world.writer_a.email],
    )


def group_body(world: World, *accounts: Account, text: str = TEXT) -> dict:  # type: ignore[type-arg]
    return {"accounts": [a.id for a in accounts], "text": text, "author": world.writer_a.email}


def counts(world: World) -> tuple[int, ...]:
    return row_counts(world.container.settings.database_url)


def submitted(world: World) -> list:  # type: ignore[type-arg]
    with world.ctx.uow() as uow:
        return [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]


def test_a_group_is_one_post_per_account_each_decided_by_its_own_policy(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)

    response = scheduler.create(group_body(world, world.account, short))

    assert response.status_code == 201, response.get_json()
    group = response.get_json()
    first, second = group["posts"]
    assert [first["account"]["id"], second["account"]["id"]] == [world.account.id, short.id]
    assert first["text_if_published_now"] == f"{TEXT} #team"
    assert first["decisions"]["tag"]["outcome"] == "applied"
    assert second["text_if_published_now"] == TEXT
    assert second["decisions"]["tag"]["outcome"] == "skipped"
    assert first["group"] == second["group"] == group["id"]
    assert len(group["id"]) >= 22  # 128 random bits
    entries = submitted(world)
    assert [e.subject for e in entries] == [f"post:{first['id']}", f"post:{second['id']}"]
    assert all(e.data["group_id"] == group["id"] for e in entries)
    read = scheduler.get(f"/api/v1/posts/{second['id']}").get_json()
    assert read["group"] == group["id"]


def test_the_preview_of_a_group_shows_each_account_and_stores_nothing(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    before = counts(world)

    response = scheduler.post("/api/v1/preview", group_body(world, world.account, short))

    assert response.status_code == 200, response.get_json()
    first, second = response.get_json()["items"]
    assert (first["account"]["id"], second["account"]["id"]) == (world.account.id, short.id)
    assert first["decisions"]["tag"]["summary"] == "#team added"
    assert second["decisions"]["tag"]["outcome"] == "skipped"
    assert second["text_if_published_now"] == TEXT
    assert counts(world) == before


def test_a_writer_not_assigned_to_one_account_stores_nothing_and_is_told_which(
    client: FlaskClient, world: World, short: Account
) -> None:
    unassigned = short_account(world, "avery_other")
    live_window(world, unassigned)
    # The client may name the writer on every account; the writer is assigned to two of three.
    scheduler = scheduler_of(client, world, world.account, short, unassigned)
    before = counts(world)

    response = scheduler.create(group_body(world, world.account, short, unassigned))

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["errors"]["accounts"] == [f"account {unassigned.id}"]
    assert problem["detail"].startswith(f"Account {unassigned.id}:")
    assert counts(world) == before


def test_a_client_whose_grant_covers_only_some_accounts_stores_nothing(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account)
    before = counts(world)

    create = scheduler.create(group_body(world, world.account, short))
    preview = scheduler.post("/api/v1/preview", group_body(world, world.account, short))

    assert [create.status_code, preview.status_code] == [404, 404]
    assert create.get_json()["detail"] == f"Account {short.id}: No account {short.id}."
    assert counts(world) == before


def test_accounts_of_two_principals_are_refused(
    client: FlaskClient, world: World, short: Account
) -> None:
    other = directory.create_principal(world.ctx, Actor.system("test"), "Blake Stone")
    theirs = short_account(world, "blake", principal_id=other.id)
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=theirs.id
    )
    blake = directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="blake@example.test",
        name="Blake Stone",
        role=Role.MANAGER,
        password="password-123",
        principal_id=other.id,
    )
    window = world.open_window(account=theirs)
    windows.approve_notice(world.ctx, Actor.for_user(blake), window.id)
    scheduler = scheduler_of(client, world, world.account, theirs)
    before = counts(world)

    response = scheduler.create(group_body(world, world.account, theirs))

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"accounts": ["different principals"]}
    assert counts(world) == before


def test_an_account_given_twice_is_refused(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    before = counts(world)

    response = scheduler.create(group_body(world, world.account, short, world.account))

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"accounts": [f"account {world.account.id} twice"]}
    assert counts(world) == before


def test_one_account_whose_window_refuses_stores_nothing_for_any(
    client: FlaskClient, world: World
) -> None:
    live_window(world, world.account)
    closed = short_account(world)  # no delegation window: a delegated post is refused
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=closed.id
    )
    scheduler = scheduler_of(client, world, world.account, closed)
    before = counts(world)

    response = scheduler.create(group_body(world, world.account, closed, text="Short"))

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "policy_refused"
    assert problem["detail"].startswith(f"Account {closed.id}:")
    assert counts(world) == before


def test_one_key_covers_the_group_and_other_accounts_under_it_are_refused(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    first = scheduler.create(group_body(world, world.account, short), key="group-1")
    after_first = counts(world)

    replay = scheduler.create(group_body(world, world.account, short), key="group-1")
    other_accounts = scheduler.create(group_body(world, world.account), key="group-1")
    one_account = scheduler.create(
        {"account": world.account.id, "text": TEXT, "author": world.writer_a.email},
        key="group-1",
    )

    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    for refused in (other_accounts, one_account):
        assert refused.status_code == 422
        assert refused.get_json()["code"] == "idempotency_key_reused"
    assert counts(world) == after_first


def test_account_and_accounts_together_are_refused_naming_both(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)

    both = scheduler.create({**group_body(world, world.account, short), "account": short.id})
    neither = scheduler.create({"text": TEXT, "author": world.writer_a.email})

    assert both.status_code == 422
    assert set(both.get_json()["errors"]) == {"account", "accounts"}
    assert neither.status_code == 422
    assert set(neither.get_json()["errors"]) == {"account"}
    assert submitted(world) == []


def test_the_openapi_document_describes_groups(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()

    create = spec["paths"]["/api/v1/posts"]["post"]
    request_schema = spec["components"]["schemas"]["PostRequest"]
    assert "accounts" in request_schema["properties"]
    assert "account" not in request_schema.get("required", [])
    created = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/PostGroup"} in created["oneOf"]
    assert "PreviewGroup" in spec["components"]["schemas"]


def export(world: World, report: str, fmt: str) -> str:
    prepared = exports.prepare_export(
        world.ctx,
        Actor.for_user(world.auditor),
        report,
        fmt,
        exports.ExportFilters(),
        public_keys=world.container.keyring.public_keys(),
    )
    return "".join(prepared.stream())


def test_the_exports_carry_the_group_and_a_planted_formula_is_defused(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    group = scheduler.create(group_body(world, world.account, short)).get_json()
    alone = world.submit(world.writer_a, "Made alone")
    # Someone writing to the database by hand plants a formula where the id was.
    with world.container.engine.begin() as db:
        db.execute(
            sql("UPDATE posts SET group_id = '=HYPERLINK(\"x\")' WHERE public_id = :id"),
            {"id": group["posts"][1]["id"]},
        )

    report = io.StringIO(export(world, "authorship", "csv"))
    rows = {r["post_id"]: r for r in csv.DictReader(report)}
    items = {
        r["post_id"]: r for r in map(json.loads, export(world, "authorship", "jsonl").splitlines())
    }
    ledger = [json.loads(line) for line in export(world, "ledger", "jsonl").splitlines()]

    first, second = (p["id"] for p in group["posts"])
    assert rows[first]["group_id"] == items[first]["group_id"] == group["id"]
    assert rows[second]["group_id"] == '\'=HYPERLINK("x")'
    assert items[second]["group_id"] == '=HYPERLINK("x")'
    assert rows[alone.public_id]["group_id"] == "" and items[alone.public_id]["group_id"] is None
    grouped = [
        e["data"]["group_id"]
        for e in ledger
        if e.get("tag") == LedgerTag.POST_SUBMITTED and "group_id" in e.get("data", {})
    ]
    assert grouped == [group["id"], group["id"]]


# ---------------------------------------------------------------------------------------------
# Images and threads in a group


def uploaded(scheduler: Scheduler, data: bytes, alt: str = "The stage before the keynote") -> str:
    response = scheduler.post(
        "/api/v1/media",
        data={"file": (io.BytesIO(data), "stage.png"), "description": alt},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    media_id: str = response.get_json()["id"]
    return media_id


def test_a_group_with_a_thread_and_an_image_is_the_same_thread_on_each_account(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    media_id = uploaded(scheduler, images.png())
    body = {
        **group_body(world, world.account, short, text="Keynote at 10"),
        "media_ids": [media_id],
        "thread": ["Doors open at 9", "Coffee by the stage"],
    }

    response = scheduler.create(body, key="group-thread")

    assert response.status_code == 201, response.get_json()
    group = response.get_json()
    assert [p["account"]["id"] for p in group["posts"]] == [world.account.id, short.id]
    entries = submitted(world)
    # Per account, its own three parts, each its own post and ledger entry, in order.
    assert [(e.data["account_id"], e.data["thread"]["position"]) for e in entries] == [
        (world.account.id, 1),
        (world.account.id, 2),
        (world.account.id, 3),
        (short.id, 1),
        (short.id, 2),
        (short.id, 3),
    ]
    assert {e.data["group_id"] for e in entries} == {group["id"]}
    firsts = [e for e in entries if e.data["thread"]["position"] == 1]
    for entry in firsts:
        [image] = entry.data["images"]
        assert image["alt_text"] == "The stage before the keynote"
    assert firsts[0].data["images"] == firsts[1].data["images"]
    assert all("images" not in e.data for e in entries if e.data["thread"]["position"] > 1)
    # Each account's parts were decided by its own policy: the tag on its first part only.
    tags = [e.data["decision"]["tag"]["outcome"] for e in entries]
    assert tags[0] == tags[3] == "applied"
    assert "applied" not in tags[1:3] + tags[4:]
    for post in group["posts"]:
        assert len(post["images"]) == 1
    # The same key and body replays the group; the key with other images is another request.
    replay = scheduler.create(body, key="group-thread")
    assert replay.get_json() == group
    other = scheduler.create({**body, "media_ids": []}, key="group-thread")
    assert other.get_json()["code"] == "idempotency_key_reused"


def test_a_second_request_reusing_the_groups_images_is_refused(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    media_id = uploaded(scheduler, images.png())
    body = {**group_body(world, world.account, short, text="Keynote"), "media_ids": [media_id]}
    assert scheduler.create(body).status_code == 201
    before = counts(world)

    alone = scheduler.create(
        {
            "account": short.id,
            "text": "Again",
            "author": world.writer_a.email,
            "media_ids": [media_id],
        }
    )
    again = scheduler.create(body)

    for refused in (alone, again):
        assert refused.status_code == 422, refused.get_json()
        assert "already attached" in refused.get_json()["detail"]
    assert counts(world) == before
    assert scheduler.get(f"/api/v1/media/{media_id}").get_json()["attached"] is True


def test_a_group_whose_image_one_platform_refuses_stores_nothing_and_names_it(
    client: FlaskClient, world: World
) -> None:
    bluesky = directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="bluesky",
        handle="avery.example.com",
    )
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=bluesky.id
    )
    live_window(world, world.account)
    live_window(world, bluesky)
    scheduler = scheduler_of(client, world, world.account, bluesky)
    # 2,400 pixels wide: fine on the local timeline (Mastodon's limits), over Bluesky's 2,000.
    media_id = uploaded(scheduler, images.png(width=2400, height=10))
    before = counts(world)
    body = {
        **group_body(world, world.account, bluesky, text="Keynote"),
        "media_ids": [media_id],
        "thread": ["Doors open at 9"],
    }

    preview = scheduler.post("/api/v1/preview", body)
    response = scheduler.create(body)

    for refused in (preview, response):
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["detail"].startswith(f"Account {bluesky.id}:")
    assert counts(world) == before
    assert scheduler.get(f"/api/v1/media/{media_id}").get_json()["attached"] is False
    # Without Bluesky, the same images go out.
    alone = scheduler.create(
        {**group_body(world, world.account, text="Keynote"), "media_ids": [media_id]}
    )
    assert alone.status_code == 201, alone.get_json()


def test_the_preview_of_a_group_thread_shows_each_accounts_parts(
    client: FlaskClient, world: World, short: Account
) -> None:
    scheduler = scheduler_of(client, world, world.account, short)
    before = counts(world)

    response = scheduler.post(
        "/api/v1/preview",
        {**group_body(world, world.account, short, text="Keynote"), "thread": ["Doors at 9"]},
    )

    assert response.status_code == 200, response.get_json()
    first, second = response.get_json()["items"]
    for item in (first, second):
        assert [p["position"] for p in item["parts"]] == [1, 2]
    assert first["parts"][0]["text_if_published_now"] == "Keynote #team"
    assert first["parts"][1]["text_if_published_now"] == "Doors at 9"
    assert counts(world) == before
