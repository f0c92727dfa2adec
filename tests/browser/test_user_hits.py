"""Issue 17's "What a user hit", each point in Chromium at 1280 px and on a 390 px phone, on the
demo's data: real pages, real clicks, a screenshot per test and width (build/screenshots/hits-*),
and at 390 px no page visited is wider than the screen.

One demo server and one signed-in browser context per role for the module; each test opens a
page at its width. Set-up that is not the point (a scheduled post, an account whose window
needs approval) goes through the services. A test that changes something undoes it (the
confirmation pages' undo) or acts on its own post, so both widths start alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ghostpost.demo import HANDLE, PEOPLE
from ghostpost.domain.model import Post, Source, User
from ghostpost.domain.states import PostState
from ghostpost.services import directory, posts, windows
from ghostpost.services.auth import writable_accounts
from ghostpost.services.context import Actor
from tests.support.browser_pages import AXE, PHONE, axe_violations, overflow, sign_in
from tests.support.live import LiveDemo, live_demo_server

WIDTHS = pytest.mark.parametrize("width", [1280, PHONE])
#: A second account of the principal whose window needs her approval of each post.
REVIEWED = "avery_reviewed"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    with live_demo_server(tmp_path_factory.mktemp("user-hits")) as server:
        yield server


def user(demo: LiveDemo, name: str) -> User:
    with demo.container.services.uow() as uow:
        found = uow.users.by_email(f"{name}@demo.ghostpost.test")
    assert found is not None
    return found


def account_id(demo: LiveDemo, handle: str) -> int:
    with demo.container.services.uow() as uow:
        account = uow.accounts.by_handle("local", handle)
    assert account is not None
    return account.id


def submit(demo: LiveDemo, author: str, text: str, handle: str = HANDLE, **when: object) -> Post:
    writer = user(demo, author)
    return posts.submit_post(
        demo.container.services,
        Actor.for_user(writer),
        posts.SubmitPost(
            account_id=account_id(demo, handle),
            author_id=writer.id,
            text=text,
            source=Source.WEB,
            **when,  # type: ignore[arg-type]
        ),
    )


def state_of(demo: LiveDemo, post: Post | str) -> PostState:
    """The state of `post` (or of the post with that public id) now."""
    public_id = post if isinstance(post, str) else post.public_id
    with demo.container.services.uow() as uow:
        found = uow.posts.by_public_id(public_id)
    assert found is not None
    return found.state


@pytest.fixture(scope="module")
def reviewed(demo: LiveDemo) -> int:
    """@avery_reviewed: Jordan writes for it, and its live window needs the principal's approval
    of every post (its notice approved and published by the server's worker)."""
    ctx = demo.container.services
    system = Actor.system("test")
    avery, jordan = user(demo, "avery"), user(demo, "jordan")
    assert avery.principal_id is not None
    account = directory.create_account(
        ctx, system, principal_id=avery.principal_id, platform="local", handle=REVIEWED
    )
    directory.assign_writer(ctx, system, user_id=jordan.id, account_id=account.id)
    now = ctx.clock.now()
    window = windows.create_window(
        ctx,
        Actor.for_user(user(demo, "morgan")),
        windows.WindowSpec(
            account_id=account.id,
            name="Reviewed week",
            starts_at=now,
            ends_at=now + timedelta(days=7),
            notice_text="My team posts here this week; I approve each post.",
            reminder_text="Reminder: my team helps with this account.",
            requires_approval=True,
            reason="Avery reviews every post this week.",
        ),
    )
    windows.approve_notice(ctx, Actor.for_user(avery), window.id)
    deadline = time.monotonic() + 20
    while True:
        with ctx.uow() as uow:
            current = uow.windows.get(window.id)
        if current is not None and current.notice_published_at is not None:
            return account.id
        assert time.monotonic() < deadline, "the server's worker did not publish the notice"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def as_role(browser: Browser, demo: LiveDemo) -> Iterator[Callable[[str], BrowserContext]]:
    """A signed-in context per role (test_every_page's roles), made on first use."""
    contexts: dict[str, BrowserContext] = {}

    def context(role: str) -> BrowserContext:
        if role not in contexts:
            contexts[role] = sign_in(browser, demo, role, axe=False)
        return contexts[role]

    yield context
    for opened in contexts.values():
        opened.close()


@pytest.fixture
def opened(as_role: Callable[[str], BrowserContext]) -> Iterator[Callable[[str, int], Page]]:
    """A new tab as `role` at `width` px (with axe-core in the pages it loads at 390 px, for
    `look(..., axe=True)`), closed after the test."""
    tabs: list[Page] = []

    def tab(role: str, width: int) -> Page:
        page = as_role(role).new_page()
        page.set_viewport_size({"width": width, "height": 900})
        if width == PHONE:
            page.add_init_script(path=str(AXE))
        tabs.append(page)
        return page

    yield tab
    for page in tabs:
        page.close()


def look(page: Page, screenshots: Path, name: str, width: int, *, axe: bool = False) -> None:
    """The screenshot; at 390 px, nothing wider than the screen (and axe, if asked)."""
    page.screenshot(path=screenshots / f"hits-{name}-{width}.png", full_page=True)
    if width == PHONE:
        assert overflow(page) is None, f"{name}: {overflow(page)}"
        if axe:
            assert axe_violations(page) == [], name


def click_and_wait(page: Page, name: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).first.click()


@WIDTHS
def test_the_demo_window_started_with_seconds_saves_unchanged(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    with demo.container.services.uow() as uow:
        [window] = uow.windows.list_for_account(account_id(demo, HANDLE))
    assert window.policy.starts_at.second or window.policy.starts_at.microsecond
    page = opened("manager", width)
    page.goto(f"{demo.url}/windows")
    page.locator(f'a[href="/windows/{window.id}/edit"]').first.click()
    page.wait_for_url(f"**/windows/{window.id}/edit")
    click_and_wait(page, "Save window")
    expect(page.locator(".flash.ok")).to_contain_text("Nothing changed.")
    expect(page.locator(".flash.error, [aria-invalid=true]")).to_have_count(0)
    look(page, screenshots, "window-saved-unchanged", width)


@WIDTHS
def test_deactivating_a_user_asks_first_then_acts_and_reactivate_undoes_it(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    rita = user(demo, "rita")
    page = opened("admin", width)
    page.goto(f"{demo.url}/admin/users")
    # One word for the principal on every page (not "manager").
    expect(page.locator(f"#user-{user(demo, 'avery').id}")).to_contain_text("principal")
    row = page.locator(f"#user-{rita.id}")
    with page.expect_navigation():
        row.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("heading", name="Deactivate Rita Okafor?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("press Reactivate")
    assert user(demo, "rita").is_active, "the first click only asks"
    look(page, screenshots, "confirm-deactivate", width)
    click_and_wait(page, "Deactivate Rita Okafor")
    assert not user(demo, "rita").is_active
    with page.expect_navigation():
        page.locator(f"#user-{rita.id}").get_by_role("button", name="Reactivate").click()
    assert user(demo, "rita").is_active


@WIDTHS
def test_unassigning_a_writer_asks_first_then_acts_and_assigning_again_undoes_it(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    avery_id, sam = account_id(demo, HANDLE), user(demo, "sam")

    def writes_for_avery() -> bool:
        return avery_id in {a.id for a in writable_accounts(demo.container.services, sam)}

    page = opened("manager", width)
    page.goto(f"{demo.url}/windows")
    with page.expect_navigation():
        page.get_by_role("button", name="Unassign Sam Rivera").first.click()
    expect(page.get_by_role("heading", name=f"Unassign Sam Rivera from @{HANDLE}?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("assign them again")
    assert writes_for_avery(), "the first click only asks"
    look(page, screenshots, "confirm-unassign", width, axe=True)
    click_and_wait(page, "Unassign Sam Rivera")
    assert not writes_for_avery()
    page.get_by_label(f"Assign a writer to @{HANDLE}").select_option(label="Sam Rivera (writer)")
    with page.expect_navigation():
        page.locator(f"#assign-{avery_id}").locator("xpath=../..").get_by_role(
            "button", name="Assign"
        ).click()
    assert writes_for_avery()


@WIDTHS
def test_cancelling_a_post_asks_first_says_it_cannot_be_undone_then_acts(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    later = demo.container.services.clock.now() + timedelta(hours=3)
    post = submit(demo, "jordan", f"Booth demo at {width}", publish_at=later)
    assert post.state is PostState.SCHEDULED
    page = opened("writer", width)
    page.goto(f"{demo.url}/posts/{post.public_id}")
    click_and_wait(page, "Cancel post")
    expect(page.get_by_role("heading", name="Cancel this post?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("This cannot be undone")
    assert state_of(demo, post) is PostState.SCHEDULED, "the first click only asks"
    look(page, screenshots, "confirm-cancel", width, axe=True)
    click_and_wait(page, "Cancel post")
    assert state_of(demo, post) is PostState.CANCELLED


@WIDTHS
def test_the_composer_says_what_it_does_and_stops_bad_posts(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    page = opened("writer", width)
    page.goto(f"{demo.url}/compose?account={account_id(demo, HANDLE)}")
    button = page.locator("#submit-button")
    expect(button).to_have_text("Publish now")
    later = demo.container.services.clock.now() + timedelta(days=1)
    page.get_by_label("Publish at").fill(f"{later:%Y-%m-%dT%H:%M}")
    expect(button).to_have_text("Schedule post")
    page.get_by_label("Publish at").fill("")
    expect(button).to_have_text("Publish now")

    text = page.get_by_label("Post text")
    text.fill("x" * 600)
    expect(button).to_be_disabled()
    expect(page.locator("#preview-refusal")).to_contain_text("cut 100 characters")
    expect(page.locator("#preview-text")).to_be_hidden()
    look(page, screenshots, "compose-over-limit", width)

    # No room for #team: the post goes out only with the box ticked, checked by the server too.
    prefix = f"At {width} px: "
    text.fill(prefix + "y" * (496 - len(prefix)))
    untagged = page.get_by_label("Send without #team", exact=False)
    expect(untagged).to_be_visible()
    expect(button).to_be_enabled()
    click_and_wait(page, "Publish now")
    expect(page.locator("#compose-error")).to_contain_text("tick “Send without #team”")
    look(page, screenshots, "compose-untagged-refused", width, axe=True)
    page.get_by_label("Send without #team", exact=False).check()
    click_and_wait(page, "Publish now")
    assert re.search(r"/posts/[^/]+$", page.url), page.url
    expect(page.locator(".flash.ok")).to_have_text("Submitted: publishing now.")
    look(page, screenshots, "compose-published-now", width)


@WIDTHS
def test_the_principal_rejects_with_a_comment_and_the_writer_edits_and_resubmits(
    demo: LiveDemo,
    reviewed: int,
    opened: Callable[[str, int], Page],
    screenshots: Path,
    width: int,
) -> None:
    post = submit(demo, "jordan", f"First try ({width})", handle=REVIEWED)
    assert post.state is PostState.PENDING_APPROVAL
    principal = opened("principal", width)
    principal.goto(f"{demo.url}/approvals")
    decide = principal.locator(f'form[action="/approvals/posts/{post.public_id}"]')
    decide.get_by_label("Comment for Jordan Park").fill("Say it warmer, please")
    look(principal, screenshots, "approvals-reject", width)
    with principal.expect_navigation():
        decide.get_by_role("button", name="Reject").click()
    assert state_of(demo, post) is PostState.REFUSED

    writer = opened("writer", width)
    writer.goto(f"{demo.url}/posts/{post.public_id}")
    expect(writer.locator("main")).to_contain_text("Rejected by Avery Chen")
    expect(writer.locator("main")).to_contain_text("Say it warmer, please")
    look(writer, screenshots, "post-rejected-with-comment", width, axe=True)
    writer.get_by_role("link", name="Edit and resubmit").click()
    writer.wait_for_url("**/compose?*")
    text = writer.get_by_label("Post text")
    expect(text).to_have_value(f"First try ({width})")
    text.fill(f"A warmer second try ({width})")
    click_and_wait(writer, "Publish now")
    resubmitted = writer.url.rsplit("/", 1)[1]
    assert resubmitted != post.public_id
    assert state_of(demo, resubmitted) is PostState.PENDING_APPROVAL  # she decides again


@WIDTHS
def test_queue_rows_open_the_post(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    page = opened("writer", width)
    page.goto(f"{demo.url}/queue")
    link = page.get_by_role("link", name="Open this post ›").first
    expect(link).to_be_visible()
    look(page, screenshots, "queue-open-links", width)
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")


@WIDTHS
def test_an_admin_signs_in_and_lands_on_the_queue(
    browser: Browser, demo: LiveDemo, screenshots: Path, width: int
) -> None:
    [(email, password)] = [(e, p) for e, *_, p, _principal in PEOPLE if e.startswith("ada@")]
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{demo.url}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{demo.url}/queue")
        look(page, screenshots, "admin-landing", width)
    finally:
        context.close()


@WIDTHS
def test_the_timeline_shows_who_with_links_and_every_page_has_its_icon(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    page = opened("anonymous", width)
    page.goto(f"{demo.url}/@{HANDLE}")
    expect(page.get_by_role("heading", name="Avery Chen")).to_be_visible()
    expect(page.locator(".avatar")).to_have_text("AC")
    expect(page.locator('a[href="https://example.com/booth"]')).to_have_text(
        "https://example.com/booth"
    )
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    answer = page.request.get(demo.url + (icon or "/favicon.ico"))
    assert answer.status == 200 and answer.body()[:4] == b"\x00\x00\x01\x00"  # an ICO file
    look(page, screenshots, "timeline", width)


@WIDTHS
def test_two_factor_setup_shows_a_qr_code(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    page = opened("writer", width)
    page.goto(f"{demo.url}/account/two-factor")
    qr = page.locator("#totp-qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR image did not load"
    look(page, screenshots, "two-factor-qr", width)


@WIDTHS
def test_errors_are_in_plain_words(
    demo: LiveDemo, opened: Callable[[str, int], Page], screenshots: Path, width: int
) -> None:
    page = opened("writer", width)
    missing = page.goto(f"{demo.url}/posts/no-such-post")
    assert missing is not None and missing.status == 404
    expect(page.locator("main")).to_contain_text("404 Not found")
    look(page, screenshots, "not-found", width)

    # Past the demo window's end: the refusal quotes the time as people read it, not ISO 8601.
    page.goto(f"{demo.url}/compose?account={account_id(demo, HANDLE)}")
    after_the_window = demo.container.services.clock.now() + timedelta(days=60)
    page.get_by_label("Post text").fill("Too late for the window")
    page.get_by_label("Publish at").fill(f"{after_the_window:%Y-%m-%dT%H:%M}")
    page.get_by_label("Time zone").select_option("UTC")
    click_and_wait(page, "Schedule post")
    error = page.locator("#compose-error").inner_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", error), error
    assert not re.search(r"\d\d:\d\d:\d\d|\+00:00|\dT\d", error), error
    look(page, screenshots, "compose-refused-time", width)
