"""One compose, a thread with an image, two accounts, in a real browser against a real server
and worker: the preview shows each account's parts side by side, both threads go out in
order with the image and its alt text, and the ledger names the image and the group."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, expect

from ghostpost.domain.ledger import LedgerTag
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.browser.test_delegated_posting import sign_in
from tests.support import images
from tests.support.live import LiveServer

FIRST = "Day two: the keynote starts at 10"
SECOND = "Doors open at 9, coffee by the stage"
ALT = "The empty stage before the keynote, chairs in rows"


def timeline(server: LiveServer, handle: str) -> str:
    with urllib.request.urlopen(f"{server.url}/@{handle}") as response:
        return response.read().decode()


def statuses(page: str) -> dict[str, str]:
    """Each status's text -> its article's HTML."""
    found = {}
    for article in re.findall(r"<article.*?</article>", page, re.S):
        text = re.search(r"<p>(.*?)</p>", article, re.S)
        if text:
            found[text.group(1)] = article
    return found


def test_a_thread_with_an_image_goes_to_two_accounts_and_both_are_published_in_order(
    browser: Browser, live_server: LiveServer, screenshots: Path, tmp_path: Path
) -> None:
    world = live_server.world
    events = directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="avery_events",
    )
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=events.id
    )
    world.approve_notice(world.open_window())
    world.approve_notice(world.open_window(account=events))
    photo = tmp_path / "stage.jpg"
    photo.write_bytes(images.jpeg_with_gps(width=64, height=48))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)

    sign_in(page, live_server, world.writer_a.email)
    page.goto(f"{live_server.url}/compose?account={world.account.id}")
    page.get_by_label("Post text").fill(FIRST)
    page.get_by_label("Part 2").fill(SECOND)
    page.locator(f'input[name="also_account_ids"][value="{events.id}"]').check()
    page.locator("#image_1").set_input_files(photo)
    page.locator("#image_1_alt").fill(ALT)
    # Enter in a field previews (the form's default button), as the Preview button does.
    page.locator("#publish_at").press("Enter")

    columns = page.locator("#group-preview .group-column")
    expect(columns).to_have_count(2)
    for index, handle in enumerate(("@avery · local", "@avery_events · local")):
        column = columns.nth(index)
        expect(column).to_contain_text(handle)
        parts = column.locator(".thread-part")
        expect(parts).to_have_count(2)
        expect(parts.nth(0).locator(".final-text")).to_have_text(f"{FIRST} #team")
        expect(parts.nth(1).locator(".final-text")).to_have_text(SECOND)
        expect(parts.nth(0).locator(f'img[alt="{ALT}"]')).to_have_count(1)
    page.screenshot(path=screenshots / "compose-group-thread-preview.png", full_page=True)

    page.get_by_role("button", name="Publish now").click()
    expect(page.get_by_role("status")).to_contain_text("Submitted to 2 accounts, one thread each")
    expect(page.locator("#post-thread li")).to_have_count(2)
    expect(page.locator("#post-group")).to_contain_text("@avery_events")

    # The worker thread in `ghostpost serve` publishes the notices, then each thread in order.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pages = [statuses(timeline(live_server, h)) for h in ("avery", "avery_events")]
        if all(SECOND in found for found in pages):
            break
        time.sleep(0.3)
    for found in pages:
        first, second = found[f"{FIRST} #team"], found[SECOND]
        assert f'alt="{ALT}"' in first and "<img" not in second
        first_id = re.search(r'id="status-(\d+)"', first)
        assert first_id is not None
        # The second part answers the first, so it was published after it.
        assert f'href="#status-{first_id.group(1)}"' in second
    page.goto(f"{live_server.url}/@avery_events")
    expect(page.locator(f'img[alt="{ALT}"]')).to_have_count(1)
    expect(page.locator("a.in-reply-to")).to_have_count(1)
    page.screenshot(path=screenshots / "timeline-group-thread.png", full_page=True)
    page.goto(f"{live_server.url}/@avery")
    page.get_by_text(f"{FIRST} #team").wait_for()

    with world.ctx.uow(read_only=True) as uow:
        entries = [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]
    group_id = entries[0].data["group_id"]
    image_hash = entries[0].data["images"][0]["hash"]
    assert {e.data["group_id"] for e in entries} == {group_id}
    context.close()

    # The ledger, as the auditor reads it, names the images (hash, alt text) and the group.
    auditor = browser.new_context(viewport={"width": 1280, "height": 900})
    page = auditor.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, world.auditor.email)
    page.goto(f"{live_server.url}/ledger?action=post:submitted")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(4)
    recorded = page.locator("details.raw pre")
    with_image = [
        text for text in recorded.all_text_contents() if image_hash in text and ALT in text
    ]
    assert len(with_image) == 2  # each account's first part
    assert sum(group_id in text for text in recorded.all_text_contents()) == 4
    page.screenshot(path=screenshots / "ledger-group-thread.png", full_page=True)
    auditor.close()
