"""A browser in Tokyo signs in for the first time: its zone is stored (read by static/sign_in.js
under the real CSP), pages show times in it, and hovering a time shows it in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.live import LiveServer, live_server
from tests.support.web import PASSWORD

#: A window's start far from the server's real clock: 00:00 UTC is 09:00 in Tokyo.
START = datetime(2031, 1, 6, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("zones")) as running:
        running.world.open_window(starts_at=START, hours=8)
        yield running


@pytest.mark.parametrize(("width", "who"), [(1280, "manager"), (390, "auditor")])
def test_a_browser_in_tokyo_signs_in_and_reads_local_times_with_utc_on_hover(
    browser: Browser, server: LiveServer, screenshots: Path, width: int, who: str
) -> None:
    user = getattr(server.world, who)
    context = browser.new_context(
        viewport={"width": width, "height": 900}, timezone_id="Asia/Tokyo"
    )
    try:
        page: Page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(server.url + "/login")
        expect(page.locator("#browser-time-zone")).to_have_value("Asia/Tokyo")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text(f"Signed in as {user.name}")).to_be_visible()
        with server.container.services.uow() as uow:
            stored = uow.users.get(user.id)
        assert stored is not None and stored.time_zone == "Asia/Tokyo"

        page.goto(server.url + "/windows")
        start = page.locator(f'time[datetime="{START:%Y-%m-%dT%H:%M:%S}Z"]').first
        expect(start).to_have_text("2031-01-06 09:00 JST")
        start.hover()
        expect(start).to_have_attribute("title", "2031-01-06 00:00 UTC")
        page.screenshot(path=screenshots / f"time-zone-windows-{width}.png", full_page=True)

        page.goto(server.url + "/account/time-zone")
        expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
        page.screenshot(path=screenshots / f"time-zone-account-{width}.png", full_page=True)
    finally:
        context.close()
