"""The whole day of a delegated account, in a real browser against a real server and worker."""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.support.live import LiveServer
from tests.support.web import PASSWORD
from tests.support.world import NOTICE, REMINDER

EVERY = 3


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def compose(page: Page, server: LiveServer, text: str) -> None:
    page.goto(f"{server.url}/compose?account={server.world.account.id}")
    page.get_by_label("Post text").fill(text)


def timeline(server: LiveServer) -> str:
    with urllib.request.urlopen(f"{server.url}/@{server.world.account.handle}") as response:
        return response.read().decode()


def test_writers_compose_the_principal_approves_and_the_timeline_keeps_the_policy(
    browser: Browser, live_server: LiveServer, screenshots: Path
) -> None:
    world = live_server.world
    world.open_window(every=EVERY)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)

    sign_in(page, live_server, world.writer_a.email)
    compose(page, live_server, "Doors open at booth 12!")
    # The live counter counts the text *with* the disclosure ghostpost will add.
    expect(page.locator("#counter")).to_have_text("29 / 500 — #team will be added")
    expect(page.locator("#preview-text")).to_have_text("Doors open at booth 12! #team")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    page.screenshot(path=screenshots / "compose.png", full_page=True)

    page.get_by_label("Post text").fill("x" * 496)
    expect(page.locator("#counter")).to_have_text(
        "496 / 500 — #team skipped: needs 6, has 4 characters"
    )
    page.screenshot(path=screenshots / "compose-tag-skipped.png", full_page=True)
    # Going out without the tag needs an explicit yes, offered right there.
    expect(page.get_by_label("Send without #team", exact=False)).to_be_visible()
    # Over the limit: no submitting, and the preview shows the refusal, not a final text.
    page.get_by_label("Post text").fill("x" * 600)
    expect(page.locator("#counter")).to_contain_text("600 / 500")
    expect(page.get_by_role("button", name="Publish now")).to_be_disabled()
    expect(page.locator("#preview-text")).to_be_hidden()
    expect(page.locator("#preview-refusal")).to_contain_text("cut 100 characters")
    expect(page.get_by_label("Send without #team", exact=False)).to_be_hidden()

    # Schedule one post for later, in an explicitly chosen time zone.
    later = datetime.now(UTC) + timedelta(hours=2)
    page.get_by_label("Post text").fill("Keynote starts soon")
    page.get_by_label("Publish at").fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Time zone").select_option("UTC")
    # With a time, the button says it schedules (it said "Publish now" before).
    page.get_by_role("button", name="Schedule post").click()
    expect(page.locator("#post-state")).to_contain_text("scheduled")

    # Posts due now wait for the notice.
    for i in range(EVERY + 1):
        compose(page, live_server, f"Live from the show, update {i}")
        page.get_by_role("button", name="Publish now").click()
        expect(page.get_by_role("status")).to_contain_text(
            "held until the window's notice is published"
        )
    page.goto(live_server.url + "/queue")
    expect(
        page.get_by_text("waiting for the window's notice to be published").first
    ).to_be_visible()
    page.screenshot(path=screenshots / "queue-held.png", full_page=True)
    sign_out(page)

    sign_in(page, live_server, world.principal.email)
    page.goto(live_server.url + "/approvals")
    page.get_by_role("button", name="Approve notice").click()
    expect(page.get_by_text("approved; it goes out now")).to_be_visible()

    # The worker thread in `ghostpost serve` publishes the notice, then the held posts in order.
    deadline = time.monotonic() + 20
    page_text = timeline(live_server)
    while page_text.count("Live from the show") < EVERY + 1 and time.monotonic() < deadline:
        time.sleep(0.3)
        page_text = timeline(live_server)
    assert page_text.count("Live from the show") == EVERY + 1
    assert NOTICE in page_text
    assert page_text.count("#team") == EVERY + 1
    assert REMINDER in page_text, "a reminder goes out at the Nth post"
    assert "Keynote starts soon" not in page_text, "the scheduled post waits for its time"
    # Newest first: the notice is the oldest published status.
    assert page_text.index("update 0") < page_text.index(NOTICE)

    page.goto(f"{live_server.url}/@{world.account.handle}")
    page.screenshot(path=screenshots / "timeline.png", full_page=True)
    page.goto(live_server.url + "/queue")
    page.screenshot(path=screenshots / "queue.png", full_page=True)
    page.goto(live_server.url + "/coverage")
    expect(page.locator("svg").first).to_be_visible()
    page.screenshot(path=screenshots / "coverage.png", full_page=True)
    context.close()


def test_a_writer_cannot_open_another_accounts_compose_page(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server, live_server.world.outsider.email)
    response = page.goto(f"{live_server.url}/compose?account={live_server.world.account.id}")
    assert response is not None and response.status == 403


def test_a_form_post_without_its_csrf_token_is_rejected(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server, live_server.world.writer_a.email)
    response = page.request.post(
        live_server.url + "/compose",
        form={
            "account_id": str(live_server.world.account.id),
            "text": "forged",
            "action": "submit",
        },
    )
    assert response.status == 400
    assert "CSRF" in response.text()
