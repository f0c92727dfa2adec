"""The calendar page and the reschedule endpoint behind its drag and the post page's form.

The attacks come first: moving a post one may not move (another account's, another writer's, a
notice), without the CSRF token, to a past time or one the policy refuses. Each is refused with
a plain message and changes nothing: the post and the ledger stay as they were.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient

from ghostpost.domain.model import Account, Post, Window
from ghostpost.domain.states import PostState
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.support.web import csrf_from, post_form, sign_in
from tests.support.world import World

JSON = {"Accept": "application/json"}


def live_window(world: World) -> Window:
    """A window open from now for eight hours, its notice published."""
    window = world.open_window()
    world.approve_notice(window)
    world.run_worker()
    return window


def later_post(world: World, hours: float = 2, text: str = "Slides are up") -> Post:
    at = world.container.clock.now() + timedelta(hours=hours)
    post = world.submit(world.writer_a, text, publish_at=at)
    assert post.state is PostState.SCHEDULED
    return post


def ledger_size(world: World) -> int:
    with world.ctx.uow() as uow:
        return len(list(uow.ledger.entries()))


def unchanged(world: World, post: Post, size: int) -> None:
    assert world.post(post.id) == post
    assert ledger_size(world) == size


def local(world: World, hours: float) -> str:
    """The form value for now + `hours` (the tests' viewer reads UTC)."""
    return f"{world.container.clock.now() + timedelta(hours=hours):%Y-%m-%dT%H:%M}"


def second_account(world: World) -> Account:
    ctx, system = world.ctx, Actor.system("test")
    other = directory.create_principal(ctx, system, "Blake Ortiz")
    account = directory.create_account(
        ctx, system, principal_id=other.id, platform="local", handle="blake"
    )
    directory.assign_writer(ctx, system, user_id=world.outsider.id, account_id=account.id)
    return account


# --------------------------------------------------------------------------------------------
# Attacks: who may move what
# --------------------------------------------------------------------------------------------


def test_a_writer_cannot_move_a_post_of_an_account_they_are_not_assigned_to(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = later_post(world)
    size = ledger_size(world)
    sign_in(client, world.outsider.email)
    token = csrf_from(client, "/calendar")
    for headers in ({}, JSON):
        response = client.post(
            f"/posts/{post.public_id}/reschedule",
            data={"publish_at": local(world, 3), "csrf_token": token},
            headers=headers,
        )
        assert response.status_code == 404
    unchanged(world, post, size)


def test_a_writer_cannot_move_another_writers_post(world: World, client: FlaskClient) -> None:
    live_window(world)
    post = later_post(world)
    size = ledger_size(world)
    sign_in(client, world.writer_b.email)  # same account, not the author
    page = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert 'id="reschedule"' not in page
    calendar = client.get("/calendar").get_data(as_text=True)
    assert f'data-live-post="{post.public_id}"' in calendar
    assert 'draggable="true"' not in calendar
    token = csrf_from(client, "/calendar")
    response = client.post(
        f"/posts/{post.public_id}/reschedule",
        data={"publish_at": local(world, 3), "csrf_token": token},
        headers=JSON,
    )
    assert response.status_code == 403
    assert "Only the author, a manager or the principal" in response.get_json()["message"]
    form = client.post(
        f"/posts/{post.public_id}/reschedule",
        data={"publish_at": local(world, 3), "csrf_token": token},
    )
    assert form.status_code == 403
    assert "Only the author, a manager or the principal" in form.get_data(as_text=True)
    unchanged(world, post, size)


def test_without_the_csrf_token_nothing_moves(world: World, client: FlaskClient) -> None:
    live_window(world)
    post = later_post(world)
    size = ledger_size(world)
    sign_in(client, world.writer_a.email)
    for headers in ({}, JSON):
        response = client.post(
            f"/posts/{post.public_id}/reschedule",
            data={"publish_at": local(world, 3)},
            headers=headers,
        )
        assert response.status_code == 400
    unchanged(world, post, size)


def test_a_past_time_gets_a_plain_form_message_and_nothing_changes(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = later_post(world)
    size = ledger_size(world)
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, f"/posts/{post.public_id}")
    past = local(world, -2)
    response = client.post(
        f"/posts/{post.public_id}/reschedule", data={"publish_at": past, "csrf_token": token}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "That time has passed: choose a later one." in html
    assert "publish_at" not in re.sub(r'name="publish_at"', "", html)
    assert f'value="{past}"' in html  # the form keeps what was typed
    for garbage in ("", "tomorrow", "2026-11-21T10:00+02:00"):
        response = client.post(
            f"/posts/{post.public_id}/reschedule",
            data={"publish_at": garbage, "csrf_token": token},
        )
        assert response.status_code == 422, garbage
        assert 'id="reschedule-error"' in response.get_data(as_text=True)
    unchanged(world, post, size)


def test_a_time_the_policy_refuses_gets_its_reason_and_nothing_changes(
    world: World, client: FlaskClient
) -> None:
    live_window(world)  # ends in eight hours
    post = later_post(world)
    size = ledger_size(world)
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/calendar")
    response = client.post(
        f"/posts/{post.public_id}/reschedule",
        data={"publish_at": local(world, 30), "csrf_token": token},
        headers=JSON,
    )
    assert response.status_code == 422
    answer = response.get_json()
    assert answer["ok"] is False and answer["message"].startswith("Not moved: ")
    assert "+00:00" not in answer["message"] and "publish_at" not in answer["message"]
    form = client.post(
        f"/posts/{post.public_id}/reschedule",
        data={"publish_at": local(world, 30), "csrf_token": token},
    )
    assert form.status_code == 422 and 'id="reschedule-error"' in form.get_data(as_text=True)
    unchanged(world, post, size)


def test_a_notice_cannot_be_dragged_or_moved(world: World, client: FlaskClient) -> None:
    window = world.open_window()  # its notice awaits approval: a state moves are made in
    assert window.notice_post_id is not None
    notice = world.post(window.notice_post_id)
    size = ledger_size(world)
    sign_in(client, world.manager.email)
    calendar = client.get("/calendar").get_data(as_text=True)
    item = re.search(
        rf'<li class="cal-post[^"]*"\s+data-live-post="{notice.public_id}"[^>]*>', calendar
    )
    assert item, "the notice is on the calendar"
    assert "is-notice" in item.group(0) and "draggable" not in item.group(0)
    response = client.post(
        f"/posts/{notice.public_id}/reschedule",
        data={"publish_at": local(world, 3), "csrf_token": csrf_from(client, "/calendar")},
        headers=JSON,
    )
    assert response.status_code == 409
    assert "Notices and reminders are not rescheduled" in response.get_json()["message"]
    unchanged(world, notice, size)


def test_the_calendar_shows_only_what_the_viewer_may_see(world: World, client: FlaskClient) -> None:
    live_window(world)
    mine = later_post(world)
    other_account = second_account(world)
    world.open_window(account=other_account)
    theirs = world.submit(
        world.outsider,
        "Blake's team post",
        publish_at=world.container.clock.now() + timedelta(hours=1),
        account=other_account,
    )
    sign_in(client, world.outsider.email)
    html = client.get("/calendar").get_data(as_text=True)
    assert mine.public_id not in html and theirs.public_id in html
    assert "@avery" not in html  # not even in the account filter
    assert client.get(f"/calendar?account={world.account.id}").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client, "/calendar")})
    sign_in(client, world.writer_a.email)
    html = client.get("/calendar").get_data(as_text=True)
    assert mine.public_id in html and theirs.public_id not in html and "@blake" not in html
    assert client.get(f"/calendar?account={other_account.id}").status_code == 403


# --------------------------------------------------------------------------------------------
# The page and the moves that work
# --------------------------------------------------------------------------------------------


def test_week_and_month_show_posts_windows_and_the_notice_with_live_marks(
    world: World, client: FlaskClient
) -> None:
    window = live_window(world)
    post = later_post(world)
    sign_in(client, world.writer_a.email)
    week = client.get("/calendar?view=week&date=2026-11-21").get_data(as_text=True)
    assert "Week of 16 November 2026" in week
    item = re.search(
        rf'<li class="cal-post state-scheduled movable"\s+data-live-post="{post.public_id}"'
        r'[^>]*draggable="true"[^>]*data-time="11:00"',
        week,
    )
    assert item, "the post is draggable, with its time of day"
    assert f'href="/posts/{post.public_id}"' in week
    assert '<span class="badge scheduled" data-live-state>Scheduled</span>' in week
    # 09:00–17:00 of Saturday 21 November is shaded, the hour before it not.
    assert re.search(
        r'class="cal-slot in-window[^"]*" data-drop-day="2026-11-21" data-drop-hour="09"', week
    )
    assert re.search(r'class="cal-slot empty" data-drop-day="2026-11-21" data-drop-hour="08"', week)
    assert f"Notice of {window.name}" in week
    assert "<time datetime=" in week
    month = client.get("/calendar?view=month&date=2026-11-05").get_data(as_text=True)
    assert "November 2026" in month and post.public_id in month
    assert re.search(r'class="cal-day[^"]*in-window[^"]*" data-drop-day="2026-11-21"', month)
    assert 'data-drop-day="2026-10-26"' in month  # the grid starts on the Monday before the 1st
    assert 'data-drop-day="2026-12-06"' in month
    # Navigation: previous, today and next keep the view.
    assert 'href="/calendar?view=month&amp;date=2026-10-01"' in month
    assert 'href="/calendar?view=month&amp;date=2026-12-01"' in month
    assert 'href="/calendar?view=month&amp;date=2026-11-21"' in month
    # Junk parameters fall back to this week; the ends of the calendar are no 500.
    for query in (
        "view=year&date=nope&account=x",
        "view=month&date=9999-12-31",
        "view=week&date=9999-12-31",
        "view=month&date=0001-01-01",
        f"view=month&date={'9' * 400}",
    ):
        response = client.get(f"/calendar?{query}")
        assert response.status_code == 200, query
        assert "November 2026</span>" in response.get_data(as_text=True), query


def test_dropping_a_post_moves_it_through_reschedule_post_and_writes_the_ledger(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = later_post(world)
    size = ledger_size(world)
    sign_in(client, world.writer_a.email)
    response = client.post(
        f"/posts/{post.public_id}/reschedule",
        data={"publish_at": "2026-11-21T14:00", "csrf_token": csrf_from(client, "/calendar")},
        headers=JSON,
    )
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["ok"] is True and answer["message"] == "Moved to 2026-11-21 14:00 UTC."
    assert answer["publish_at"] == "2026-11-21T14:00:00Z" and answer["time"] == "14:00"
    moved = world.post(post.id)
    assert moved.publish_at == world.container.clock.now() + timedelta(hours=5)
    assert ledger_size(world) == size + 1
    with world.ctx.uow() as uow:
        entry = list(uow.ledger.entries())[-1]
    assert entry.tag == "post:rescheduled" and entry.subject == f"post:{post.public_id}"
    assert entry.actor == f"user:{world.writer_a.id}"


def test_the_post_page_form_reschedules_without_javascript(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = later_post(world)
    sign_in(client, world.writer_a.email)
    page = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert 'id="reschedule-at" name="publish_at"' in page and 'value="2026-11-21T11:00"' in page
    response = post_form(
        client,
        f"/posts/{post.public_id}/reschedule",
        {"publish_at": "2026-11-21T15:30", "next": f"/posts/{post.public_id}"},
        f"/posts/{post.public_id}",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/posts/{post.public_id}"
    assert "Moved to 2026-11-21 15:30 UTC." in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert world.post(post.id).publish_at == world.container.clock.now() + timedelta(hours=6.5)
