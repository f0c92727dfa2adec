"""One compose, several accounts, in a real browser against a real server and worker: the
writer ticks a second account, previews one column per account, submits, and both go out."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, expect

from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.browser.test_delegated_posting import sign_in
from tests.support.live import LiveServer

TEXT = "Day two: the keynote starts at 10, come early for coffee and a good seat up front"


def timeline(server: LiveServer, handle: str) -> str:
    with urllib.request.urlopen(f"{server.url}/@{handle}") as response:
        return response.read().decode()


def test_a_writer_composes_once_to_two_accounts_and_both_are_published(
    browser: Browser, live_server: LiveServer, screenshots: Path
) -> None:
    world = live_server.world
    short = directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="avery_short",
        max_chars=85,  # the text fits, the tag does not
    )
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=short.id
    )
    world.approve_notice(world.open_window())
    world.approve_notice(world.open_window(account=short))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)

    sign_in(page, live_server, world.writer_a.email)
    page.goto(f"{live_server.url}/compose?account={world.account.id}")
    page.get_by_label("Post text").fill(TEXT)
    page.locator(f'input[name="also_account_ids"][value="{short.id}"]').check()
    page.get_by_role("button", name="Preview", exact=True).click()

    columns = page.locator("#group-preview .group-column")
    expect(columns).to_have_count(2)
    expect(columns.nth(0)).to_contain_text("@avery · local")
    expect(columns.nth(0).locator(".final-text")).to_have_text(f"{TEXT} #team")
    expect(columns.nth(1)).to_contain_text("@avery_short · local")
    expect(columns.nth(1).locator(".final-text")).to_have_text(TEXT)
    expect(columns.nth(1)).to_contain_text("skipped: needs 6, has 4")
    page.screenshot(path=screenshots / "compose-group-preview.png", full_page=True)

    # @avery_short's post goes out without the tag: the writer says so explicitly.
    page.get_by_label("Send without #team", exact=False).check()
    page.get_by_role("button", name="Publish now").click()
    expect(page.get_by_role("status")).to_contain_text("Submitted to 2 accounts")
    expect(page.locator("#post-group")).to_contain_text("@avery_short")

    # The worker thread in `ghostpost serve` publishes the notices, then each account's post.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        both = timeline(live_server, "avery"), timeline(live_server, "avery_short")
        if f"{TEXT} #team" in both[0] and TEXT in both[1]:
            break
        time.sleep(0.3)
    assert f"{TEXT} #team" in both[0]
    assert TEXT in both[1] and f"{TEXT} #team" not in both[1]
    page.locator("#post-group a").first.click()
    expect(page.locator("#post-state")).to_contain_text("published")
    expect(page.locator("#post-group")).to_contain_text("@avery ·")
    page.screenshot(path=screenshots / "post-group.png", full_page=True)
    context.close()
