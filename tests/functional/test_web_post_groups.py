"""One compose, several accounts, in the staff web app (forms with CSRF, no JavaScript): the
writer ticks accounts, previews one column per account and submits them all or none."""

from __future__ import annotations

import io
import re

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.model import Account, Post, Role, Source
from ghostpost.services import directory, groups, posts, windows
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden
from tests.support import images
from tests.support.web import csrf_from, sign_in
from tests.support.world import World, row_counts

TEXT = "Day two: the keynote starts at 10, come early for coffee and a good seat up front"


def account(world: World, handle: str, *, principal_id: int | None = None) -> Account:
    """A local account of 85 characters: the text fits, the tag does not."""
    return directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=principal_id or world.principal.principal_id or 0,
        platform="local",
        handle=handle,
        max_chars=85,
    )


def assign(world: World, target: Account) -> None:
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=target.id
    )


def live(world: World, target: Account, approver=None) -> None:  # type: ignore[no-untyped-def]
    window = world.open_window(account=target)
    windows.approve_notice(world.ctx, Actor.for_user(approver or world.principal), window.id)


def compose(
    client: FlaskClient,
    world: World,
    also: list[int],
    action: str = "submit",
    text: str = TEXT,
    **extra: str,
):  # type: ignore[no-untyped-def]
    token = csrf_from(client, "/compose")
    return client.post(
        "/compose",
        data={
            "csrf_token": token,
            "account_id": str(world.account.id),
            "also_account_ids": [str(i) for i in also],
            "text": text,
            "publish_at": "",
            "timezone": "UTC",
            "action": action,
            **extra,
        },
    )


def all_posts(world: World, *accounts: Account) -> list[Post]:
    with world.ctx.uow() as uow:
        found = [p for a in accounts for p in uow.posts.list_for_account(a.id)]
    return [p for p in found if p.kind.value == "regular"]


def counts(world: World) -> tuple[int, ...]:
    return row_counts(world.container.settings.database_url)


def columns(page: str) -> list[str]:
    return re.findall(r'class="group-column" data-account-id="(\d+)"', page)


def test_a_writer_previews_each_account_side_by_side_then_submits_them_together(
    world: World, client: FlaskClient
) -> None:
    short = account(world, "avery_short")
    assign(world, short)
    live(world, world.account)
    live(world, short)
    sign_in(client, world.writer_a.email)
    before = counts(world)

    previewed = compose(client, world, [short.id], action="preview")

    page = previewed.get_data(as_text=True)
    assert previewed.status_code == 200
    assert columns(page) == [str(world.account.id), str(short.id)]
    assert f"{TEXT} #team" in page  # the first account's budget has room for the tag
    assert "skipped: needs 6, has 4" in page  # the second's has no room for it
    assert counts(world) == before

    # The second account's post would go out without the tag: only on an explicit yes.
    refused = compose(client, world, [short.id])
    assert refused.status_code == 422
    assert "On @avery_short it would go out without #team" in refused.get_data(as_text=True)
    assert counts(world) == before

    submitted = compose(client, world, [short.id], untagged_ok="1")

    assert submitted.status_code == 302
    first, second = sorted(all_posts(world, world.account, short), key=lambda p: p.id)
    assert (first.account_id, second.account_id) == (world.account.id, short.id)
    assert first.group_id is not None and first.group_id == second.group_id
    assert first.final_text == f"{TEXT} #team" and second.final_text == TEXT
    assert submitted.headers["Location"].endswith(f"/posts/{first.public_id}")
    first_page = client.get(f"/posts/{first.public_id}").get_data(as_text=True)
    second_page = client.get(f"/posts/{second.public_id}").get_data(as_text=True)
    assert f'href="/posts/{second.public_id}"' in first_page
    assert f'href="/posts/{first.public_id}"' in second_page


def test_the_form_offers_only_the_accounts_the_writer_is_assigned_to(
    world: World, client: FlaskClient
) -> None:
    short = account(world, "avery_short")
    assign(world, short)
    account(world, "avery_unassigned")
    sign_in(client, world.writer_a.email)

    page = client.get("/compose").get_data(as_text=True)

    offered = re.findall(r'name="also_account_ids" value="(\d+)"', page)
    assert offered == [str(world.account.id), str(short.id)]


def test_a_writer_not_assigned_to_one_ticked_account_stores_nothing(
    world: World, client: FlaskClient
) -> None:
    unassigned = account(world, "avery_other")
    live(world, world.account)
    live(world, unassigned)
    sign_in(client, world.writer_a.email)
    before = counts(world)

    for action in ("submit", "preview"):
        response = compose(client, world, [unassigned.id], action=action)
        assert response.status_code == 403

    assert counts(world) == before


def test_one_account_whose_window_refuses_stores_nothing_for_any(
    world: World, client: FlaskClient
) -> None:
    closed = account(world, "avery_closed")  # no window: a delegated post is refused
    assign(world, closed)
    live(world, world.account)
    sign_in(client, world.writer_a.email)
    before = counts(world)

    response = compose(client, world, [closed.id], text="Short")

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f"Account {closed.id}:" in page
    assert columns(page) == [str(world.account.id), str(closed.id)]
    assert counts(world) == before


def test_an_account_ticked_twice_or_of_another_principal_is_refused(
    world: World, client: FlaskClient
) -> None:
    other = directory.create_principal(world.ctx, Actor.system("test"), "Blake Stone")
    blake = directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="blake@example.test",
        name="Blake Stone",
        role=Role.MANAGER,
        password="password-123",
        principal_id=other.id,
    )
    theirs = account(world, "blake", principal_id=other.id)
    assign(world, theirs)
    live(world, world.account)
    live(world, theirs, approver=blake)
    sign_in(client, world.writer_a.email)
    before = counts(world)

    twice = compose(client, world, [world.account.id])
    two_principals = compose(client, world, [theirs.id])

    assert twice.status_code == two_principals.status_code == 422
    assert "is given twice" in twice.get_data(as_text=True)
    assert "belong to different principals" in two_principals.get_data(as_text=True)
    assert counts(world) == before


def test_the_group_form_needs_the_csrf_token(world: World, client: FlaskClient) -> None:
    short = account(world, "avery_short")
    assign(world, short)
    live(world, world.account)
    live(world, short)
    sign_in(client, world.writer_a.email)
    before = counts(world)

    response = client.post(
        "/compose",
        data={
            "account_id": str(world.account.id),
            "also_account_ids": [str(short.id)],
            "text": TEXT,
            "timezone": "UTC",
            "action": "submit",
        },
    )

    assert response.status_code in (400, 403)
    assert counts(world) == before


def test_the_service_refuses_an_unassigned_account_even_past_the_form(world: World) -> None:
    """The form's own check is not the only wall: the group service refuses it too."""
    unassigned = account(world, "avery_other")
    live(world, world.account)
    live(world, unassigned)
    before = counts(world)
    command = posts.SubmitPost(
        account_id=world.account.id, author_id=world.writer_a.id, text=TEXT, source=Source.WEB
    )

    with pytest.raises(Forbidden, match=f"^Account {unassigned.id}: .* not assigned"):
        groups.submit_group(
            world.ctx, Actor.for_user(world.writer_a), command, [world.account.id, unassigned.id]
        )

    assert counts(world) == before


# ---------------------------------------------------------------------------------------------
# Threads and images in a group


def compose_form(client: FlaskClient, world: World, **fields: object):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {
        "csrf_token": csrf_from(client, "/compose"),
        "account_id": str(world.account.id),
        "text": "Keynote at 10",
        "publish_at": "",
        "timezone": "UTC",
        **fields,
    }
    return client.post("/compose", data=data, content_type="multipart/form-data")


def test_a_thread_with_an_image_goes_to_two_accounts_previewed_part_by_part(
    world: World, client: FlaskClient
) -> None:
    short = account(world, "avery_short")
    assign(world, short)
    live(world, world.account)
    live(world, short)
    sign_in(client, world.writer_a.email)
    before = counts(world)

    previewed = compose_form(
        client,
        world,
        action="preview",
        also_account_ids=[str(short.id)],
        thread=["Doors open at 9", ""],
        image_1=(io.BytesIO(images.png()), "stage.png"),
        image_1_alt="The stage before the keynote",
    )

    page = previewed.get_data(as_text=True)
    assert previewed.status_code == 200, page
    assert columns(page) == [str(world.account.id), str(short.id)]
    assert page.count("Part 2 of 2") == 2
    assert page.count("Doors open at 9</div>") == 2
    assert page.count('class="thumb"') >= 2 and 'alt="The stage before the keynote"' in page
    assert all_posts(world, world.account, short) == []
    assert counts(world)[0] == before[0]  # nothing but the upload itself is stored
    [media_id] = re.findall(r'name="media_ids" value="([^"]+)"', page)

    submitted = compose_form(
        client,
        world,
        action="submit",
        also_account_ids=[str(short.id)],
        thread=["Doors open at 9", ""],
        media_ids=media_id,
        **{f"alt_{media_id}": "The stage before the keynote"},
    )

    assert submitted.status_code == 302, submitted.get_data(as_text=True)
    made = sorted(all_posts(world, world.account, short), key=lambda p: p.id)
    assert [(p.account_id, p.thread_position) for p in made] == [
        (world.account.id, 1),
        (world.account.id, 2),
        (short.id, 1),
        (short.id, 2),
    ]
    assert len({p.group_id for p in made}) == 1 and made[0].group_id is not None
    with world.ctx.uow(read_only=True) as uow:
        images_of = [uow.media.images_of(p.id) for p in made]
    assert [len(i) for i in images_of] == [1, 0, 1, 0]
    assert images_of[0][0].alt_text == images_of[2][0].alt_text == "The stage before the keynote"
    # The post page shows the thread's parts, linked, and the other account's thread.
    first_page = client.get(f"/posts/{made[0].public_id}").get_data(as_text=True)
    assert 'id="post-thread"' in first_page
    assert f'href="/posts/{made[1].public_id}"' in first_page
    assert f'href="/posts/{made[2].public_id}"' in first_page
    assert f'href="/posts/{made[3].public_id}"' not in first_page
    second_page = client.get(f"/posts/{made[1].public_id}").get_data(as_text=True)
    assert f'href="/posts/{made[0].public_id}"' in second_page


def test_add_a_part_shows_one_more_field_and_stores_no_post(
    world: World, client: FlaskClient
) -> None:
    live(world, world.account)
    sign_in(client, world.writer_a.email)

    response = compose_form(client, world, action="add_part", thread=["Doors open at 9", ""])

    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert re.findall(r'id="(part_\d+)" name="thread"', page) == ["part_2", "part_3", "part_4"]
    assert "Doors open at 9" in page
    assert all_posts(world, world.account) == []


def test_a_single_accounts_thread_preview_shows_each_part(
    world: World, client: FlaskClient
) -> None:
    live(world, world.account)
    sign_in(client, world.writer_a.email)

    response = compose_form(client, world, action="preview", thread=["Doors open at 9"])

    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert 'id="preview-parts"' in page
    assert "Part 1 of 2" in page and "Part 2 of 2" in page
    assert all_posts(world, world.account) == []


def test_a_group_whose_image_one_platform_refuses_is_a_form_message_naming_it(
    world: World, client: FlaskClient
) -> None:
    bluesky = directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="bluesky",
        handle="avery.example.com",
    )
    assign(world, bluesky)
    live(world, world.account)
    live(world, bluesky)
    sign_in(client, world.writer_a.email)

    response = compose_form(
        client,
        world,
        action="submit",
        also_account_ids=[str(bluesky.id)],
        thread=["Doors open at 9"],
        image_1=(io.BytesIO(images.png(width=2400, height=10)), "wide.png"),
        image_1_alt="A wide banner",
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 422, page
    assert f"Account {bluesky.id}:" in page
    assert all_posts(world, world.account, bluesky) == []
