"""Issue 12, point 5: the worker and the coverage dashboard agree on the cadence, and no preview
or API answer promises a text the worker may still change.

Each test reproduces what was seen on main, through the real interfaces: the API with an OAuth
token, the web app signed in with CSRF, the worker on the real database.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Post, Window
from ghostpost.domain.policy import INLINE_REMINDER_SEPARATOR, PostKind, ReminderMode
from ghostpost.services import coverage, publishing
from ghostpost.services.context import Actor
from tests.support.api import Scheduler, scheduler_for
from tests.support.web import csrf_from, sign_in
from tests.support.world import REMINDER, World


def stored_window(world: World, window: Window) -> Window:
    with world.ctx.uow() as uow:
        found = uow.windows.get(window.id)
    assert found is not None
    return found


def dashboard_figures(client: FlaskClient, world: World, window: Window) -> dict[str, str]:
    """The coverage dashboard's headline numbers, as the manager reads them."""
    sign_in(client, world.manager.email)
    html = client.get(f"/coverage?window={window.id}").get_data(as_text=True)
    found = re.search(
        r"Reminders sent / due</div>\s*<div class=\"value\">(\d+) / (\d+)</div>\s*"
        r"<div class=\"[a-z]+\">(\d+) missed",
        html,
    )
    run = re.search(
        r"Longest run without a disclosure</div>\s*<div class=\"value\">(\d+)</div>", html
    )
    assert found and run, "the dashboard shows its figures"
    return {
        "sent": found.group(1),
        "due": found.group(2),
        "missed": found.group(3),
        "longest_run": run.group(1),
    }


def carries_reminder(post: Post) -> bool:
    return post.final_text.endswith(INLINE_REMINDER_SEPARATOR + REMINDER)


def regular_published(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        posts = uow.posts.list_for_account(world.account.id)
    return sorted(
        (p for p in posts if p.kind is PostKind.REGULAR and p.published_at is not None),
        key=lambda p: p.id,
    )


def two_windows(world: World, every: int) -> tuple[Window, Window]:
    clock = world.container.clock
    first = world.open_window(starts_at=clock.now(), hours=6, every=every)
    second = world.open_window(starts_at=first.policy.ends_at + timedelta(minutes=30), hours=3)
    return first, second


# -- One cadence -----------------------------------------------------------------------------


def test_another_windows_notice_inside_a_window_counts_for_the_worker_as_for_coverage(
    world: World, client: FlaskClient
) -> None:
    """Seen on main: the dashboard counted window B's notice as a disclosure inside window A and
    the worker did not, so the worker added a reminder after a run shorter than N and
    "reminders sent / due" read 1 / 0."""
    clock = world.container.clock
    first, second = two_windows(world, every=4)
    world.approve_notice(first)
    world.run_worker()
    for number in (1, 2):
        world.submit(world.writer_a, f"Before the other notice {number}")
        clock.advance(minutes=5)
        world.run_worker()
    # The next window's notice goes out in the middle of this one.
    # (Past the second window's notice time, an hour before its start: it goes out at once.)
    clock.set(first.policy.ends_at - timedelta(minutes=25))
    world.approve_notice(second)
    world.run_worker()
    assert stored_window(world, second).notice_published_at is not None
    for number in (3, 4, 5, 6):
        clock.advance(minutes=2)
        world.submit(world.writer_b, f"After the other notice {number}")
        world.run_worker()

    posts = regular_published(world)
    # A run of 2, the other notice (a disclosure), then 3 posts make a run of 3 < N = 4: the
    # 6th post is the first one that would make 4 in a row, and only it carries the reminder.
    assert [carries_reminder(p) for p in posts] == [False, False, False, False, False, True]
    page = coverage.window_coverage(world.ctx, Actor.for_user(world.manager), first.id)
    assert page.selected is not None
    cov = page.selected.coverage
    assert (cov.notices, cov.reminders_sent, cov.reminders_due, cov.reminders_missed) == (
        2,
        1,
        1,
        0,
    )
    assert stored_window(world, first).posts_since_disclosure == cov.marks[-1].run == 0
    assert dashboard_figures(client, world, first) == {
        "sent": "1",
        "due": "1",
        "missed": "0",
        "longest_run": "3",
    }
    # The other window's own timeline starts with its notice, wherever it fell.
    second_page = coverage.window_coverage(world.ctx, Actor.for_user(world.manager), second.id)
    assert second_page.selected is not None
    assert [m.kind.value for m in second_page.selected.coverage.marks] == ["notice"]


def test_a_post_confirmed_after_its_window_ended_counts_where_it_was_published(
    world: World,
) -> None:
    """A slow platform: the principal's post is claimed in window A and confirmed after A
    ended, inside window C that follows at once. Coverage puts it on C's timeline (by its
    confirmed publish time), so the worker counts it in C's run, not A's."""
    clock = world.container.clock
    first = world.open_window(starts_at=clock.now(), hours=1, every=3)
    following = world.open_window(starts_at=first.policy.ends_at, hours=2, every=3)
    world.approve_notice(first)
    world.approve_notice(following)
    world.run_worker()  # both notices go out now, before A ends
    clock.set(first.policy.ends_at - timedelta(seconds=5))
    world.submit(world.principal, "Thanks for coming, everyone")
    claim = publishing.claim_next(world.ctx, "slow-worker", timedelta(minutes=5))
    assert claim is not None and claim.post.kind is PostKind.REGULAR
    receipt = world.container.publisher_for(claim.account).publish(
        claim.account, claim.text, idempotency_key=claim.idempotency_key
    )
    clock.advance(seconds=10)  # the platform answered after A's end
    publishing.record_published(world.ctx, claim, receipt)

    manager = Actor.for_user(world.manager)
    for window, expected_run in ((first, 0), (following, 1)):
        page = coverage.window_coverage(world.ctx, manager, window.id)
        assert page.selected is not None
        marks = page.selected.coverage.marks
        assert stored_window(world, window).posts_since_disclosure == marks[-1].run
        assert marks[-1].run == expected_run


# -- Honest previews -------------------------------------------------------------------------


def live_window(world: World, every: int = 3) -> Window:
    window = world.open_window(every=every, reminder_mode=ReminderMode.INLINE)
    world.approve_notice(window)
    world.run_worker()
    return window


def test_an_api_preview_announcing_a_reminder_says_it_is_decided_at_publication(
    world: World, client: FlaskClient
) -> None:
    """Seen on main: the preview and the created post's `final_text` carried an inline reminder;
    another post went out first with the reminder, and the post was published without it."""
    clock = world.container.clock
    live_window(world, every=3)
    scheduler: Scheduler = scheduler_for(client, world)
    world.submit(world.writer_a, "One")
    world.submit(world.writer_a, "One more")
    world.run_worker()  # a run of 2: the next post would make 3 in a row, N = 3
    body = {"account": world.account.id, "text": "Two", "author": world.writer_b.email}

    preview = scheduler.post("/api/v1/preview", body).get_json()
    assert "final_text" not in preview
    assert preview["text_if_published_now"] == f"Two #team{INLINE_REMINDER_SEPARATOR}{REMINDER}"
    assert preview["decided_at_publication"] == ["tag", "reminder", "notice_hold"]
    assert "decided when the post goes out" in preview["decided_at_publication_note"]

    later = (clock.now() + timedelta(minutes=10)).isoformat()
    created = scheduler.create({**body, "publish_at": later}).get_json()
    assert "final_text" not in created
    assert created["published_text"] is None
    assert created["text_if_published_now"].endswith(REMINDER)
    assert created["decided_at_publication"] == ["tag", "reminder", "notice_hold"]
    with world.ctx.uow() as uow:
        stored = uow.posts.by_public_id(created["id"])
    assert stored is not None and stored.final_text == "Two #team", "nothing speculative stored"

    # The principal's post goes out first, after a standalone reminder: "Two" no longer needs
    # one (run 1 when it goes out).
    world.submit(world.principal, "Straight from me")
    world.run_worker()
    waiting = scheduler.get(f"/api/v1/posts/{created['id']}").get_json()
    assert waiting["text_if_published_now"] == "Two #team", "the answer follows the run now"
    assert waiting["published_text"] is None

    clock.advance(minutes=11)
    world.run_worker()
    done = scheduler.get(f"/api/v1/posts/{created['id']}").get_json()
    assert done["state"] == "published"
    on_platform = [s.text for s in world.container.local_store.timeline(world.account.handle)]
    assert done["published_text"] == on_platform[0] == "Two #team"
    assert done["decided_at_publication"] == []
    assert done["text_if_published_now"] is None
    assert "final_text" not in done

    listed = scheduler.get("/api/v1/posts").get_json()["items"]
    assert all("final_text" not in item for item in listed)


def test_the_web_preview_says_if_it_went_out_now_and_what_is_decided_later(
    world: World, client: FlaskClient
) -> None:
    live_window(world, every=2)
    world.submit(world.writer_b, "Doors open")
    world.run_worker()  # a run of 1: the next post is due the reminder
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    response = client.post(
        "/compose/preview",
        json={"account_id": world.account.id, "text": "Hello from the booth"},
        headers={"X-CSRFToken": token},
    )
    body = response.get_json()
    assert "final_text" not in body
    assert body["text_if_published_now"].endswith(REMINDER)
    assert body["decided_at_publication"] == ["tag", "reminder", "notice_hold"]
    assert any("decided when the post goes out" in note for note in body["notes"])

    html = client.post(
        "/compose",
        data={
            "account_id": str(world.account.id),
            "text": "Hello from the booth",
            "action": "preview",
            "csrf_token": token,
        },
    ).get_data(as_text=True)
    assert "If it went out now" in html
    assert "Final text" not in html
    assert "decided when the post goes out" in html


# -- Policy in force -------------------------------------------------------------------------


def test_the_policy_in_force_at_publication_is_recorded_with_the_post_and_in_the_ledger(
    world: World,
) -> None:
    window = live_window(world, every=5)
    post = world.submit(world.writer_a, "Keynote in ten minutes")
    world.run_worker()
    published = world.post(post.id)
    policy = window.policy
    expected = {
        "window_id": window.id,
        "starts_at": policy.starts_at.isoformat(),
        "ends_at": policy.ends_at.isoformat(),
        "notice_text": policy.notice_text,
        "reminder_text": policy.reminder_text,
        "reminder_every": 5,
        "reminder_mode": "inline",
        "tag": "#team",
        "tag_mode": "when_fits",
        "tag_position": "end",
        "requires_approval": False,
    }
    assert published.decisions["policy_in_force"] == expected
    with world.ctx.uow() as uow:
        entries = [
            e
            for e in uow.ledger.entries()
            if e.tag == LedgerTag.POST_PUBLISHED and e.subject == f"post:{post.public_id}"
        ]
    assert len(entries) == 1
    assert entries[0].data["policy_in_force"] == expected
    assert entries[0].data["window_id"] == window.id
    assert entries[0].data["counted_in_windows"] == [window.id]
