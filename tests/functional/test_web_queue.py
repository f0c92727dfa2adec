"""The queue and the post page: grouping by state, filters, role rules, cancel and retry."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from ghostpost.adapters.base import PermanentError, Receipt
from ghostpost.adapters.local import LocalPublisher
from ghostpost.bootstrap import Container
from ghostpost.domain.model import Account, Post, Window
from ghostpost.domain.policy import ReminderMode
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState
from ghostpost.services import directory, posts
from ghostpost.services.context import Actor
from ghostpost.services.queue import QUEUE_PAGE_SIZE
from tests.support.web import csrf_from, post_form, sign_in
from tests.support.world import NOTICE, World

PLATFORM_ERROR = "422 Unprocessable: text contains a blocked link"


class FlakyPlatform:
    """Refuses every post for good while `failing`; otherwise publishes on the local platform."""

    platform = "local"

    def __init__(self, container: Container) -> None:
        self._inner = LocalPublisher(container.local_store, container.settings.public_url)
        self.failing = True

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        **sent: Any,
    ) -> Receipt:
        if self.failing:
            raise PermanentError(PLATFORM_ERROR)
        return self._inner.publish(
            account, text, idempotency_key=idempotency_key, options=options, **sent
        )

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        return None


@pytest.fixture
def flaky(container: Container) -> FlakyPlatform:
    fake = FlakyPlatform(container)
    container.publishers["local"] = fake
    return fake


def live_window(world: World) -> Window:
    window = world.open_window()
    world.approve_notice(window)
    world.run_worker()
    return window


def rows(html: str) -> list[str]:
    """Return the public ids of the posts listed on a queue page, in order."""
    return re.findall(r'<tr id="post-([0-9a-f-]{36})">', html)


def section(html: str, group: str) -> str:
    found = re.search(rf'<tbody class="group-{group}">(.*?)</tbody>', html, re.S)
    assert found, f"no {group} section"
    return found.group(1)


def failed_post(world: World, flaky: FlakyPlatform, text: str = "Link to the slides") -> Post:
    flaky.failing = False
    live_window(world)
    flaky.failing = True
    post = world.submit(world.writer_a, text)
    world.run_worker()
    post = world.post(post.id)
    assert post.state is PostState.FAILED
    return post


def second_account(world: World) -> Account:
    ctx, system = world.ctx, Actor.system("test")
    other = directory.create_principal(ctx, system, "Blake Ortiz")
    account = directory.create_account(
        ctx, system, principal_id=other.id, platform="local", handle="blake"
    )
    directory.assign_writer(ctx, system, user_id=world.outsider.id, account_id=account.id)
    return account


def ledger_tags(world: World, post: Post) -> list[str]:
    with world.ctx.uow() as uow:
        return [e.tag for e in uow.ledger.entries() if e.subject == f"post:{post.public_id}"]


# --------------------------------------------------------------------------------------------
# Grouping and reasons
# --------------------------------------------------------------------------------------------


def test_held_and_pending_posts_are_grouped_with_their_reasons(
    world: World, client: FlaskClient
) -> None:
    world.open_window()
    early = world.submit(world.writer_a, "Too early for the notice")
    world.run_worker()
    assert world.post(early.id).state is PostState.HELD
    sign_in(client, world.writer_a.email)
    html = client.get("/queue").get_data(as_text=True)
    held = section(html, "held")
    assert early.public_id in held
    assert "waiting for the window&#39;s notice to be published" in held
    pending = section(html, "pending_approval")
    assert NOTICE in pending and ">Notice</span>" in pending
    assert "awaiting the principal&#39;s approval" in pending
    # Attention first: held before pending approval; the tabs count each group.
    assert html.index('id="group-held"') < html.index('id="group-pending_approval"')
    assert re.search(r'Held <span class="count">1</span>', html)
    assert re.search(r'All <span class="count">2</span>', html)


def test_published_scheduled_and_cancelled_posts_show_what_people_need(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    out = world.submit(world.writer_a, "Already out")
    world.run_worker()
    later = world.submit(
        world.writer_a, "Later today", publish_at=world.container.clock.now() + timedelta(hours=2)
    )
    gone = world.submit(world.writer_a, "Never mind")
    posts.cancel_post(world.ctx, Actor.for_user(world.writer_a), gone.id)
    sign_in(client, world.writer_a.email)
    html = client.get("/queue").get_data(as_text=True)
    published = section(html, "published")
    out = world.post(out.id)
    assert f'href="{out.platform_url}"' in published and "View published post" in published
    scheduled = section(html, "scheduled")
    assert later.public_id in scheduled and "2026-11-21 11:00" in scheduled
    assert ">Cancel</button>" in scheduled  # the author may cancel it
    closed = section(html, "closed")
    assert gone.public_id in closed and "cancelled" in closed
    assert ">Cancel</button>" not in closed


# --------------------------------------------------------------------------------------------
# Failed posts: the platform's error and Retry
# --------------------------------------------------------------------------------------------


def test_retry_after_a_platform_failure_sends_the_post_back_and_it_publishes(
    world: World, client: FlaskClient, flaky: FlakyPlatform
) -> None:
    post = failed_post(world, flaky)
    assert post.attempts == 1
    sign_in(client, world.writer_a.email)
    html = client.get("/queue?state=failed").get_data(as_text=True)
    failed = section(html, "failed")
    assert f"Platform error: {PLATFORM_ERROR}" in failed
    assert ">Retry</button>" in failed
    response = post_form(
        client, f"/posts/{post.public_id}/retry", {"next": "/queue?state=failed"}, "/queue"
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/queue?state=failed"
    assert "Post queued again" in client.get("/queue").get_data(as_text=True)
    retried = world.post(post.id)
    assert retried.state is PostState.SCHEDULED
    assert retried.next_attempt_at is None
    assert retried.attempts == 1  # attempts keep counting
    assert retried.state_reason == "retry requested by Jordan Park"
    assert ledger_tags(world, post)[-1] == "post:retry_requested"
    flaky.failing = False
    world.run_worker()
    published = world.post(post.id)
    assert published.state is PostState.PUBLISHED
    assert published.attempts == 2
    page = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert published.platform_url is not None and published.platform_url in page


def test_only_the_author_a_manager_or_the_principal_may_retry(
    world: World, client: FlaskClient, flaky: FlakyPlatform
) -> None:
    post = failed_post(world, flaky)
    sign_in(client, world.writer_b.email)  # same account, not the author
    html = client.get("/queue").get_data(as_text=True)
    assert post.public_id in html and ">Retry</button>" not in html
    assert post_form(client, f"/posts/{post.public_id}/retry", {}, "/queue").status_code == 403
    assert world.post(post.id).state is PostState.FAILED
    client.post("/logout", data={"csrf_token": csrf_from(client, "/queue")})
    sign_in(client, world.manager.email)
    assert post_form(client, f"/posts/{post.public_id}/retry", {}, "/queue").status_code == 302
    assert world.post(post.id).state is PostState.SCHEDULED
    # Retrying what is not failed is a conflict, not a crash.
    assert post_form(client, f"/posts/{post.public_id}/retry", {}, "/queue").status_code == 409


def test_cancel_is_for_the_author_a_manager_or_the_principal(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    soon = world.container.clock.now() + timedelta(hours=1)
    mine = world.submit(world.writer_a, "Mine to cancel", publish_at=soon)
    theirs = world.submit(world.writer_b, "Not mine", publish_at=soon)
    sign_in(client, world.writer_a.email)
    assert post_form(client, f"/posts/{theirs.public_id}/cancel", {}, "/queue").status_code == 403
    response = post_form(client, f"/posts/{mine.public_id}/cancel", {"confirm": "yes"}, "/queue")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/posts/{mine.public_id}"
    assert world.post(mine.id).state is PostState.CANCELLED
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Post cancelled; it will not be published." in page
    # An off-site "next" is ignored.
    client.post("/logout", data={"csrf_token": csrf_from(client, "/queue")})
    sign_in(client, world.principal.email)
    response = post_form(
        client,
        f"/posts/{theirs.public_id}/cancel",
        {"next": "https://evil.example/", "confirm": "yes"},
        "/queue",
    )
    assert response.headers["Location"] == f"/posts/{theirs.public_id}"
    assert world.post(theirs.id).state is PostState.CANCELLED


def test_cancel_and_retry_need_the_csrf_token(world: World, client: FlaskClient) -> None:
    live_window(world)
    post = world.submit(
        world.writer_a, "Stay", publish_at=world.container.clock.now() + timedelta(hours=1)
    )
    sign_in(client, world.writer_a.email)
    assert client.post(f"/posts/{post.public_id}/cancel").status_code == 400
    assert client.post(f"/posts/{post.public_id}/retry").status_code == 400
    assert world.post(post.id).state is PostState.SCHEDULED


# --------------------------------------------------------------------------------------------
# Who reads what
# --------------------------------------------------------------------------------------------


def test_auditors_read_every_account_but_get_no_buttons(world: World, client: FlaskClient) -> None:
    live_window(world)
    other = second_account(world)
    world.open_window(account=other)
    ours = world.submit(
        world.writer_a, "Ours", publish_at=world.container.clock.now() + timedelta(hours=1)
    )
    theirs = world.submit(world.outsider, "Theirs", account=other)
    sign_in(client, world.auditor.email)
    html = client.get("/queue").get_data(as_text=True)
    assert ours.public_id in html and theirs.public_id in html
    main = html.split("<main", 1)[1]
    assert 'method="post"' not in main and "Cancel</button>" not in main
    detail = client.get(f"/posts/{ours.public_id}").get_data(as_text=True)
    assert ">Cancel post</button>" not in detail
    assert post_form(client, f"/posts/{ours.public_id}/cancel", {}, "/queue").status_code == 403
    assert world.post(ours.id).state is PostState.SCHEDULED


def test_writers_see_only_the_accounts_they_are_assigned_to(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    other = second_account(world)
    world.open_window(account=other)
    ours = world.submit(world.writer_a, "Ours")
    theirs = world.submit(world.outsider, "Theirs", account=other)
    sign_in(client, world.writer_a.email)
    html = client.get("/queue").get_data(as_text=True)
    assert ours.public_id in html and theirs.public_id not in html
    assert "@blake" not in html
    assert client.get(f"/queue?account={other.id}").status_code == 403
    assert client.get(f"/posts/{theirs.public_id}").status_code == 404
    assert post_form(client, f"/posts/{theirs.public_id}/cancel", {}, "/queue").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_from(client, "/queue")})
    sign_in(client, world.outsider.email)
    html = client.get("/queue").get_data(as_text=True)
    assert theirs.public_id in html and ours.public_id not in html


def test_unknown_posts_and_filters_get_clear_answers(world: World, client: FlaskClient) -> None:
    sign_in(client, world.writer_a.email)
    assert client.get("/posts/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/queue?state=lost").status_code == 422
    assert client.get("/queue?page=0").status_code == 200  # not a page number: the first page
    assert "Nothing in the queue yet." in client.get("/queue").get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# Filters and pages
# --------------------------------------------------------------------------------------------


def test_filters_by_account_window_and_state_work_as_plain_links(
    world: World, client: FlaskClient
) -> None:
    clock = world.container.clock
    first = live_window(world)
    a = world.submit(world.writer_a, "In the first window")
    world.run_worker()
    second = world.open_window(starts_at=clock.now() + timedelta(days=1))
    b = world.submit(world.writer_a, "In the second", publish_at=clock.now() + timedelta(days=1))
    ctx, system = world.ctx, Actor.system("test")
    x_account = directory.create_account(
        ctx, system, principal_id=world.account.principal_id, platform="x", handle="avery_x"
    )
    c = world.submit(world.principal, "On X", account=x_account)
    sign_in(client, world.manager.email)

    def listed(query: str) -> set[str]:
        response = client.get(f"/queue{query}")
        assert response.status_code == 200
        return set(rows(response.get_data(as_text=True)))

    notices = {p.public_id for p in _notices(world)}
    assert listed("") == {a.public_id, b.public_id, c.public_id} | notices
    assert listed(f"?account={x_account.id}") == {c.public_id}
    assert listed(f"?window={first.id}") == {a.public_id, _notice_of(world, first).public_id}
    assert listed(f"?window={second.id}&state=scheduled") == {b.public_id}
    assert listed(f"?account={world.account.id}&state=published") == {
        a.public_id,
        _notice_of(world, first).public_id,
    }
    html = client.get(f"/queue?account={x_account.id}").get_data(as_text=True)
    assert f'<option value="{x_account.id}" selected>' in html
    assert '<label for="filter-account">Account</label>' in html
    assert '<label for="filter-window">Window</label>' in html
    assert '<label for="filter-state">State</label>' in html
    # State tabs keep the other filters.
    assert f'href="/queue?account={x_account.id}&amp;state=failed"' in html


def _notices(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        return [p for p in uow.posts.list_for_account(world.account.id) if p.kind.value == "notice"]


def _notice_of(world: World, window: Window) -> Post:
    with world.ctx.uow() as uow:
        found = uow.windows.get(window.id)
        assert found is not None and found.notice_post_id is not None
        post = uow.posts.get(found.notice_post_id)
    assert post is not None
    return post


def test_the_queue_shows_fifty_posts_a_page(world: World, client: FlaskClient) -> None:
    live_window(world)
    clock = world.container.clock
    for i in range(QUEUE_PAGE_SIZE + 5):
        world.submit(world.writer_a, f"Post {i}", publish_at=clock.now() + timedelta(minutes=i + 1))
    sign_in(client, world.writer_a.email)
    first = client.get("/queue?state=scheduled").get_data(as_text=True)
    assert len(rows(first)) == QUEUE_PAGE_SIZE
    assert "Page 1 of 2" in first and "Next page" in first
    assert "1–50 of 55 posts" in first
    assert 'href="/queue?state=scheduled&amp;page=2"' in first
    second = client.get("/queue?state=scheduled&page=2").get_data(as_text=True)
    assert len(rows(second)) == 5
    assert "Previous page" in second and "Next page" not in second
    # The next one to go out comes first.
    assert ">Post 0 #team</a>" in first and ">Post 54 #team</a>" in second
    beyond = client.get("/queue?state=scheduled&page=9").get_data(as_text=True)
    assert "No posts on this page." in beyond


# --------------------------------------------------------------------------------------------
# The post page
# --------------------------------------------------------------------------------------------


def test_the_post_page_shows_authorship_decisions_and_ledger_link(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "x" * 496)  # too long for the tag: skipped
    world.run_worker()
    post = world.post(post.id)
    sign_in(client, world.manager.email)
    html = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert "Jordan Park" in html and "(delegated)" in html
    assert "<dd>web app</dd>" in html
    assert "At submission" in html and "At publication" in html
    assert "#team skipped: needs 6, has 4 characters" in html
    assert "Not due: 9 more before a reminder" in html
    assert "Sent exactly as submitted." in html
    assert f'href="{post.platform_url}"' in html
    assert f'href="/ledger?subject=post:{post.public_id}"' in html
    assert ">published</span>" in html
    client.post("/logout", data={"csrf_token": csrf_from(client, "/queue")})
    sign_in(client, world.writer_a.email)
    html = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert "/ledger?subject=" not in html  # writers do not read the ledger


def test_notices_and_reminders_have_pages_that_say_what_they_are(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window(every=2, reminder_mode=ReminderMode.STANDALONE)
    world.approve_notice(window)
    world.run_worker()
    for text in ("one", "two"):
        world.submit(world.writer_a, text)
        world.run_worker()
        world.run_worker()
    with world.ctx.uow() as uow:
        by_kind = {p.kind.value: p for p in uow.posts.list_for_account(world.account.id)}
    sign_in(client, world.manager.email)
    notice = client.get(f"/posts/{by_kind['notice'].public_id}").get_data(as_text=True)
    assert "This is the window's notice: a disclosure itself." in notice
    approved = '<time datetime="2026-11-21T09:00:00Z" title="2026-11-21 09:00 UTC">'
    assert (
        f"<dd>Avery Chen · {approved}2026-11-21 09:00 UTC</time></dd>" in notice
    )  # approved by the principal
    reminder = client.get(f"/posts/{by_kind['reminder'].public_id}").get_data(as_text=True)
    assert "This is a standalone reminder: a disclosure itself (standalone mode)." in reminder
    assert "<dd>ghostpost (worker)</dd>" in reminder
    second = next(p for p in _all(world) if p.submitted_text == "two")
    html = client.get(f"/posts/{second.public_id}").get_data(as_text=True)
    assert "Before it went out: a reminder first" in html
    assert "A standalone reminder went out just before this post (standalone mode)" in html


def _all(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        return uow.posts.list_for_account(world.account.id)


@pytest.mark.parametrize("query", ["account=%C2%B2", "window=99999999999999999999999", "page=-1"])
def test_odd_query_values_never_break_the_queue(world: World, client, query: str) -> None:  # type: ignore[no-untyped-def]
    # A value that is no id (or no page) is ignored, as if the field were empty: the whole
    # queue, not an error page.
    live_window(world)
    post = world.submit(world.writer_a, "Queued for later")
    sign_in(client, world.manager.email)
    plain = client.get("/queue")
    odd = client.get(f"/queue?{query}")
    assert (plain.status_code, odd.status_code) == (200, 200)
    assert post.public_id in rows(plain.get_data(as_text=True))
    assert rows(odd.get_data(as_text=True)) == rows(plain.get_data(as_text=True))


def test_the_largest_page_number_shows_an_empty_page(world: World, client) -> None:  # type: ignore[no-untyped-def]
    live_window(world)
    post = world.submit(world.writer_a, "Queued for later")
    sign_in(client, world.manager.email)
    assert post.public_id in rows(client.get("/queue").get_data(as_text=True))
    response = client.get("/queue?page=9223372036854775807")
    assert response.status_code == 200
    assert rows(response.get_data(as_text=True)) == []


def test_cancelling_asks_first_and_says_it_cannot_be_undone(
    world: World, client: FlaskClient
) -> None:
    live_window(world)
    soon = world.container.clock.now() + timedelta(hours=1)
    post = world.submit(world.writer_a, "Think twice", publish_at=soon)
    sign_in(client, world.writer_a.email)
    response = post_form(client, f"/posts/{post.public_id}/cancel", {"next": "/queue"}, "/queue")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Cancel this post?" in html and "Think twice" in html
    assert "cannot be undone" in html and 'name="next" value="/queue"' in html
    assert world.post(post.id).state is PostState.SCHEDULED
    confirmed = {"next": "/queue", "confirm": "yes"}
    response = post_form(client, f"/posts/{post.public_id}/cancel", confirmed, "/queue")
    assert response.status_code == 302
    assert world.post(post.id).state is PostState.CANCELLED


def test_queue_rows_say_they_open_the_post(world: World, client: FlaskClient) -> None:
    live_window(world)
    post = world.submit(world.writer_a, "Open me", publish_at=world.container.clock.now())
    sign_in(client, world.writer_a.email)
    html = client.get("/queue").get_data(as_text=True)
    row = html.split(f'id="post-{post.public_id}"')[1].split("</tr>")[0]
    assert f'<a class="open-link" href="/posts/{post.public_id}">Open' in row
    css = client.get("/static/app.css")
    assert "table.queue tbody tr:hover" in css.get_data(as_text=True)
    css.close()
