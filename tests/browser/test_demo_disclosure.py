"""Issue 18's acceptance in Chromium, on the demo's own data (`ghostpost.demo.seed_demo`) served
by a real `ghostpost serve` whose worker publishes and notarises: the principal's disclosure page,
then `/verify` on a team post, on the principal's post and on an unknown URL, with the proof
checked in the browser, and refused once altered.

One server and one page for the module: a server start costs more than all the checks.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from ghostpost.demo import HANDLE, PRINCIPAL
from tests.support.live import LiveDemo, live_demo_server

#: The demo's writers: never named on a public page.
WRITERS = ("Jordan Park", "Sam Rivera", "Morgan Lee")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    with live_demo_server(tmp_path_factory.mktemp("demo")) as server:
        yield server


@pytest.fixture(scope="module")
def public_page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def published_urls(demo: LiveDemo) -> dict[bool, str]:
    """One published post's URL per authorship: {delegated: url}, from the ledger itself."""
    with demo.container.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT data FROM ledger_entries WHERE tag = 'post:published' ORDER BY seq")
        ).scalars()
        urls: dict[bool, str] = {}
        for data in rows:
            entry = json.loads(data)
            if entry.get("kind") == "regular":
                urls.setdefault(entry["delegated"], entry["platform_url"])
    assert set(urls) == {True, False}, urls
    return urls


def proven_answer(demo: LiveDemo, url: str) -> dict[str, Any]:
    """The public API's answer once the serving worker's notary covers the post."""
    query = urllib.parse.urlencode({"url": url})
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(f"{demo.url}/api/v1/public/verify?{query}") as response:
            answer: dict[str, Any] = json.load(response)
        if answer["proof"] is not None or time.monotonic() > deadline:
            assert answer["proof"] is not None, "the notary never covered the post"
            return answer
        time.sleep(0.2)


def test_the_demo_principals_disclosure_page_says_why_and_how_without_naming_writers(
    demo: LiveDemo, public_page: Page, screenshots: Path
) -> None:
    public_page.goto(f"{demo.url}/@{HANDLE}")
    public_page.get_by_role("link", name="Who posts here: the disclosure page").click()

    expect(public_page).to_have_url(f"{demo.url}/@{HANDLE}/disclosure")
    main = public_page.locator("main")
    expect(main).to_contain_text("DevSummit 2026")
    expect(main).to_contain_text("Avery is on stage and in meetings at DevSummit")
    expect(main).to_contain_text("a reminder every 10 posts")
    expect(main).to_contain_text("During the show, some of my posts will be written")
    for writer in WRITERS:
        expect(main).not_to_contain_text(writer)
    public_page.screenshot(path=screenshots / "demo-disclosure-1280.png", full_page=True)


def test_verifying_a_team_post_a_principal_post_and_an_unknown_url(
    demo: LiveDemo, public_page: Page, screenshots: Path
) -> None:
    urls = published_urls(demo)
    for url in urls.values():
        proven_answer(demo, url)
    status = public_page.locator("#proof-status")

    public_page.goto(f"{demo.url}/verify")
    public_page.get_by_label("Post address (URL)").fill(urls[True])
    public_page.get_by_role("button", name="Verify").click()
    expect(public_page.locator("main")).to_contain_text("Written by the team")
    expect(status).to_have_text("Proof checked in your browser")
    for writer in WRITERS:
        expect(public_page.locator("main")).not_to_contain_text(writer)
    public_page.screenshot(path=screenshots / "demo-verify-team-1280.png", full_page=True)

    public_page.goto(f"{demo.url}/verify?" + urllib.parse.urlencode({"url": urls[False]}))
    expect(public_page.locator("main")).to_contain_text(f"Written by {PRINCIPAL}")
    expect(status).to_have_text("Proof checked in your browser")

    unknown = f"{demo.url}/@{HANDLE}/999999999"
    public_page.goto(f"{demo.url}/verify?" + urllib.parse.urlencode({"url": unknown}))
    expect(public_page.locator("main")).to_contain_text("Not published through ghostpost")
    expect(status).to_have_count(0)


def test_the_in_page_check_refuses_a_real_answer_once_altered(
    demo: LiveDemo, public_page: Page, screenshots: Path
) -> None:
    answer = proven_answer(demo, published_urls(demo)[True])
    leaf = json.loads(answer["proof"]["leaf"])
    leaf["authorship"] = "principal"  # the team's post passed off as the principal's own
    altered = {**answer, "verdict": "principal"}
    altered["proof"] = {**answer["proof"], "leaf": json.dumps(leaf, separators=(",", ":"))}

    for pasted, expected in ((answer, "Proof checked in your browser"), (altered, "step 4")):
        public_page.goto(f"{demo.url}/verify")
        public_page.get_by_label("Answer (JSON)").fill(json.dumps(pasted))
        public_page.get_by_role("button", name="Check proof").click()
        expect(public_page.locator("#proof-status")).to_contain_text(expected)
    public_page.screenshot(path=screenshots / "demo-verify-altered-1280.png", full_page=True)
