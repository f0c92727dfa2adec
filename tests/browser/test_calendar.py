"""The calendar in Chromium: week and month at 1280 px and on a 390 px phone, a post dragged to
another hour and another day (and the ledger entry the move writes), a drop the policy refuses,
and the post page's Reschedule form with JavaScript off.

One server and one browser for the module; the writer signs in once per context. The seeded
window runs from now until next week's Friday (UTC, the viewer's zone until per-user zones):
next week's Wednesday to Thursday is inside it, Friday outside.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ghostpost.domain.model import Post
from ghostpost.domain.states import PostState
from tests.support.live import LiveServer, live_server
from tests.support.web import PASSWORD

PHONE = 390


def next_week(weekday: int, hour: int) -> datetime:
    """Next week's `weekday` (0 is Monday) at `hour`:00 UTC."""
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday())
    day = monday + timedelta(days=weekday)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


WEDNESDAY, THURSDAY, TUESDAY, FRIDAY = 2, 3, 1, 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("calendar")) as running:
        world = running.world
        now = datetime.now(UTC)
        window = world.open_window(
            starts_at=now, hours=(next_week(FRIDAY, 0) - now).total_seconds() / 3600
        )
        world.approve_notice(window)
        assert window.notice_post_id is not None
        deadline = time.monotonic() + 20
        while world.post(window.notice_post_id).state is not PostState.PUBLISHED:
            assert time.monotonic() < deadline, "the server's worker did not publish the notice"
            time.sleep(0.2)
        yield running


def submit(server: LiveServer, text: str, at: datetime) -> Post:
    post = server.world.submit(server.world.writer_a, text, publish_at=at)
    assert post.state is PostState.SCHEDULED
    return post


def signed_in(browser: Browser, server: LiveServer, *, javascript: bool = True) -> BrowserContext:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(server.url + "/login")
    page.fill("#email", server.world.writer_a.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/compose|/queue|/home"))
    page.close()
    return context


@pytest.fixture(scope="module")
def writer(browser: Browser, server: LiveServer) -> Iterator[BrowserContext]:
    context = signed_in(browser, server)
    yield context
    context.close()


def last_entry_for(server: LiveServer, post: Post) -> tuple[str, str, str]:
    with server.world.ctx.uow() as uow:
        entries = [e for e in uow.ledger.entries() if e.subject == f"post:{post.public_id}"]
    entry = entries[-1]
    return entry.tag, entry.actor, str(entry.data.get("publish_at"))


def no_overflow(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE


def test_week_and_month_at_both_widths(
    writer: BrowserContext, server: LiveServer, screenshots: Path
) -> None:
    post = submit(server, "Keynote recap at ten", next_week(WEDNESDAY, 10))
    page = writer.new_page()
    wednesday = next_week(WEDNESDAY, 0).date().isoformat()
    for view in ("week", "month"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{server.url}/calendar?view={view}&date={wednesday}")
        item = page.locator(f'[data-live-post="{post.public_id}"]')
        expect(item).to_be_visible()
        expect(item.locator("[data-live-state]")).to_have_text("Scheduled")
        expect(page.locator(".in-window").first).to_be_visible()
        assert page.get_by_role("link", name="Calendar").get_attribute("aria-current") == "page"
        page.screenshot(path=str(screenshots / f"calendar-{view}-1280.png"), full_page=True)
        page.set_viewport_size({"width": PHONE, "height": 844})
        expect(item).to_be_visible()
        no_overflow(page)
        if view == "month":
            # A list of days: one column, the weekday header gone.
            display = "getComputedStyle(document.querySelector('.cal-month')).display"
            assert page.evaluate(display) == "block"
            assert page.locator(".cal-weekdays").is_hidden()
            box = item.bounding_box()
            assert box is not None and box["width"] > PHONE / 2
        page.screenshot(path=str(screenshots / f"calendar-{view}-390.png"), full_page=True)
        # The post opens from the calendar.
        page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(f'[data-live-post="{post.public_id}"] a').click()
    page.wait_for_url(f"**/posts/{post.public_id}")
    page.close()


def test_dragging_a_post_to_another_hour_and_day_reschedules_it(
    writer: BrowserContext, server: LiveServer
) -> None:
    post = submit(server, "Panel highlights", next_week(WEDNESDAY, 9))
    page = writer.new_page()
    page.goto(f"{server.url}/calendar?view=week&date={next_week(WEDNESDAY, 0).date()}")
    item = page.locator(f'[data-live-post="{post.public_id}"]')
    thursday = next_week(THURSDAY, 0).date().isoformat()
    slot = page.locator(f'[data-drop-day="{thursday}"][data-drop-hour="14"]')
    item.drag_to(slot)
    expect(page.locator("#cal-status")).to_have_text(
        f"Moved to {next_week(THURSDAY, 14):%Y-%m-%d %H:%M} UTC."
    )
    expect(slot.locator(f'[data-live-post="{post.public_id}"]')).to_be_visible()
    assert server.world.post(post.id).publish_at == next_week(THURSDAY, 14)
    tag, actor, at = last_entry_for(server, post)
    assert (tag, actor) == ("post:rescheduled", f"user:{server.world.writer_a.id}")
    assert at == next_week(THURSDAY, 14).isoformat()

    # The month view keeps the time of day: Thursday 14:00 becomes Tuesday 14:00.
    page.goto(f"{server.url}/calendar?view=month&date={thursday}")
    tuesday = next_week(TUESDAY, 0).date().isoformat()
    page.locator(f'[data-live-post="{post.public_id}"]').drag_to(
        page.locator(f'li.cal-day[data-drop-day="{tuesday}"]')
    )
    expect(page.locator("#cal-status")).to_have_text(
        f"Moved to {next_week(TUESDAY, 14):%Y-%m-%d %H:%M} UTC."
    )
    assert server.world.post(post.id).publish_at == next_week(TUESDAY, 14)
    assert last_entry_for(server, post)[2] == next_week(TUESDAY, 14).isoformat()

    # Friday is past the window's end: the policy refuses, the page says so, nothing moves.
    page.goto(f"{server.url}/calendar?view=week&date={tuesday}")
    friday = next_week(FRIDAY, 0).date().isoformat()
    page.locator(f'[data-live-post="{post.public_id}"]').drag_to(
        page.locator(f'[data-drop-day="{friday}"][data-drop-hour="10"]')
    )
    status = page.locator("#cal-status")
    expect(status).to_have_class(re.compile("error"))
    expect(status).to_contain_text("Not moved: ")
    assert server.world.post(post.id).publish_at == next_week(TUESDAY, 14)
    # The published notice is not draggable.
    expect(page.locator(".cal-post.is-notice[draggable]")).to_have_count(0)
    page.close()


def test_without_javascript_the_post_page_form_reschedules(
    browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    post = submit(server, "Booth tour", next_week(WEDNESDAY, 11))
    context = signed_in(browser, server, javascript=False)
    page = context.new_page()
    page.goto(f"{server.url}/posts/{post.public_id}")
    field = page.locator("#reschedule-at")
    assert field.input_value() == f"{next_week(WEDNESDAY, 11):%Y-%m-%dT%H:%M}"
    field.fill(f"{next_week(WEDNESDAY, 16):%Y-%m-%d}T16:30")
    page.get_by_role("button", name="Reschedule").click()
    expect(page.locator(".flash.ok")).to_have_text(
        f"Moved to {next_week(WEDNESDAY, 16) + timedelta(minutes=30):%Y-%m-%d %H:%M} UTC."
    )
    assert server.world.post(post.id).publish_at == next_week(WEDNESDAY, 16) + timedelta(minutes=30)
    assert last_entry_for(server, post)[0] == "post:rescheduled"
    # A refused time: the form says why, in words, and keeps the value.
    field = page.locator("#reschedule-at")
    field.fill(f"{next_week(FRIDAY, 10):%Y-%m-%dT%H:%M}")
    page.get_by_role("button", name="Reschedule").click()
    expect(page.locator("#reschedule-error")).to_be_visible()
    page.screenshot(path=str(screenshots / "post-reschedule-refused-1280.png"), full_page=True)
    assert server.world.post(post.id).publish_at == next_week(WEDNESDAY, 16) + timedelta(minutes=30)
    context.close()
