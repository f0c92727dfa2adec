"""Live status in a real browser: the queue and the post page follow a post from scheduled to
published (or failed, with the reason) without a reload, at 1280 and 390 px.

One `ghostpost serve` for the module, without its worker thread: the test process runs the real
worker against the server's database when it wants the posts to move. The page polls every
0.3 s (GHOSTPOST_LIVE_STATUS_POLL_SECONDS), so nothing waits on a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ghostpost.adapters.base import PermanentError, Receipt
from ghostpost.adapters.local import LocalPublisher
from ghostpost.bootstrap import Container
from ghostpost.domain.model import Account
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState
from tests.support.live import LiveServer, live_server
from tests.support.web import PASSWORD

PLATFORM_ERROR = "422 Unprocessable: text contains a blocked link"
#: Posts whose text holds this word are refused by the platform for good.
REFUSED_WORD = "blocked"
#: Long enough for a loaded machine; a poll comes every 0.3 s.
SEEN_WITHIN_MS = 10_000
#: The status endpoint's path, as the page's requests show it.
POLL = "/posts/status?"
#: Long enough for five polls at 0.3 s: silence over it means the page stopped asking.
QUIET_MS = 1_500


class PickyPlatform:
    """The real local platform, except that it refuses every text with REFUSED_WORD."""

    platform = "local"

    def __init__(self, container: Container) -> None:
        self._inner = LocalPublisher(container.local_store, container.settings.public_url)

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        **sent: Any,
    ) -> Receipt:
        if REFUSED_WORD in text:
            raise PermanentError(PLATFORM_ERROR)
        return self._inner.publish(
            account, text, idempotency_key=idempotency_key, options=options, **sent
        )

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        return self._inner.lookup(account, idempotency_key=idempotency_key)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("live-status"),
        GHOSTPOST_SERVE_RUNS_WORKER="false",
        GHOSTPOST_LIVE_STATUS_POLL_SECONDS="0.3",
    ) as running:
        world = running.world
        running.container.publishers["local"] = PickyPlatform(running.container)
        world.approve_notice(world.open_window())
        world.run_worker()  # the notice goes out: delegated posts are not held
        yield running


def signed_in(browser: Browser, server: LiveServer, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(server.world.writer_a.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return context


def watched(page: Page, problems: list[str]) -> Page:
    """Record script errors and CSP refusals, and mark the document to detect a reload."""
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"{page.url}: {message.text}") if message.type == "error" else None
        ),
    )
    return page


def show(page: Page, visibility: str) -> None:
    """Make the page's tab hidden or visible, as switching tabs does."""
    page.evaluate(
        """visibility => {
            Object.defineProperty(document, "visibilityState", {
                configurable: true, get: () => visibility,
            });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        visibility,
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_the_queue_and_post_pages_follow_the_worker_without_a_reload(
    browser: Browser, server: LiveServer, screenshots: Path, width: int
) -> None:
    world = server.world
    going_out = world.submit(world.writer_a, f"Keynote recap at {width} px")
    refused = world.submit(world.writer_a, f"A {REFUSED_WORD} link at {width} px")
    context = signed_in(browser, server, width)
    problems: list[str] = []
    queue = watched(context.new_page(), problems)
    queue.goto(server.url + "/queue")
    post_page = watched(context.new_page(), problems)
    post_page.goto(f"{server.url}/posts/{going_out.public_id}")
    refused_page = watched(context.new_page(), problems)
    refused_page.goto(f"{server.url}/posts/{refused.public_id}")

    row_ok = queue.locator(f'[data-live-post="{going_out.public_id}"]')
    row_refused = queue.locator(f'[data-live-post="{refused.public_id}"]')
    expect(row_ok.locator("[data-live-state]")).to_have_text("scheduled")
    expect(row_refused.locator("[data-live-state]")).to_have_text("scheduled")
    expect(post_page.locator("#post-state")).to_have_text("scheduled")
    expect(post_page.locator("#platform-link")).to_have_count(0)
    for page in (queue, post_page, refused_page):
        page.evaluate("window.notReloaded = true")

    world.run_worker()
    assert world.post(going_out.id).state is PostState.PUBLISHED
    assert world.post(refused.id).state is PostState.FAILED

    reason = f"Platform error: {PLATFORM_ERROR}"
    expect(row_ok.locator("[data-live-state]")).to_have_text("published", timeout=SEEN_WITHIN_MS)
    expect(row_ok.locator("[data-live-state]")).to_have_class("badge published")
    expect(row_ok.get_by_role("link", name="View published post")).to_have_attribute(
        "href", world.post(going_out.id).platform_url or "missing"
    )
    expect(row_refused.locator("[data-live-state]")).to_have_text("failed", timeout=SEEN_WITHIN_MS)
    expect(row_refused.locator("[data-live-reason]")).to_have_text(reason)
    expect(row_refused.locator("[data-live-reason]")).to_be_visible()

    expect(post_page.locator("#post-state")).to_have_text("published", timeout=SEEN_WITHIN_MS)
    expect(
        post_page.get_by_role("link", name=world.post(going_out.id).platform_url)
    ).to_be_visible()
    expect(refused_page.locator("#post-state")).to_have_text("failed", timeout=SEEN_WITHIN_MS)
    expect(refused_page.locator("#post-reason")).to_have_text(reason)
    expect(refused_page.locator("#post-reason")).to_have_class("state-reason error-text")

    for page in (queue, post_page, refused_page):
        assert page.evaluate("window.notReloaded") is True, f"{page.url} was reloaded"
    queue.screenshot(path=screenshots / f"live-queue-{width}.png", full_page=True)
    refused_page.screenshot(path=screenshots / f"live-post-failed-{width}.png", full_page=True)
    assert problems == []
    context.close()


def test_polling_pauses_while_the_tab_is_hidden_and_stops_once_signed_out(
    browser: Browser, server: LiveServer
) -> None:
    world = server.world
    waiting = world.submit(world.writer_a, "Later today", datetime.now(UTC) + timedelta(hours=2))
    context = signed_in(browser, server, 1280)
    queue = context.new_page()
    polls: list[str] = []
    queue.on("request", lambda request: polls.append(request.url) if POLL in request.url else None)
    with queue.expect_request(lambda request: POLL in request.url):
        queue.goto(server.url + "/queue")
    expect(queue.locator(f'[data-live-post="{waiting.public_id}"]')).to_be_visible()

    # Hidden (another tab in front): no request at all until it is shown again.
    show(queue, "hidden")
    queue.wait_for_timeout(300)  # a poll already in flight lands
    before = len(polls)
    queue.wait_for_timeout(QUIET_MS)
    assert len(polls) == before, "polled while hidden"
    with queue.expect_request(lambda request: POLL in request.url):
        show(queue, "visible")

    # Signed out in another tab: the next poll gets 401 and the page stops asking.
    other = context.new_page()
    other.goto(server.url + "/queue")
    with queue.expect_response(lambda answer: POLL in answer.url and answer.status == 401):
        other.get_by_role("button", name="Sign out").click()
        expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    after = len(polls)
    queue.wait_for_timeout(QUIET_MS)
    assert len(polls) == after, "kept polling after the session ended"
    context.close()
