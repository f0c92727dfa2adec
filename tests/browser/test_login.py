"""Signing in through a real browser."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.live import LiveServer
from tests.support.web import PASSWORD


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_writer_signs_in_and_out(page: Page, live_server: LiveServer, screenshots: Path) -> None:
    sign_in(page, live_server, live_server.world.writer_a.email)
    expect(page.get_by_text("Signed in as Jordan Park")).to_be_visible()
    page.screenshot(path=screenshots / "login-done.png")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_wrong_password_shows_one_neutral_message(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("nobody@example.test")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
