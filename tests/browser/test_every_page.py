"""Every HTML page of the app, at 1280 px and on a 390 px phone, on the demo's data: a screenshot
of each in build/screenshots/<page>-<width>.png, axe-core finds no serious or critical
violation at either width, and at 390 px nothing is wider than the screen.

The pages come from the app's URL map, not from a list kept here: every GET route is a page
unless its blueprint is an API or it is named in NOT_PAGES with the reason. A page without
arguments is visited as the first role it answers 200 for; one with arguments needs its values
in PAGES, and a page this module cannot reach fails the test by name.

One server, one browser context per role (signed in once), each page loaded once and looked at
in both widths: a server or context start costs more than the checks.

axe-core (tests/support/axe, installed by scripts/axe-deps) goes in with `add_init_script`:
Playwright adds it through the DevTools protocol, which the pages' Content-Security-Policy
(`script-src 'self'`) does not govern, so the pages are checked under their real CSP, with no
`bypass_csp`. (`add_script_tag(path=...)` inlines the file, and the CSP refuses it.)
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import text

from ghostpost import create_app
from ghostpost.demo import HANDLE
from ghostpost.services import windows
from ghostpost.services.context import Actor
from tests.support.browser_pages import (
    AXE,
    PHONE,
    WIDTHS,
    axe_violations,
    overflow,
    sign_in,
)
from tests.support.live import LiveDemo, live_demo_server

DEMO_MANAGER = "morgan@demo.ghostpost.test"
MAX_SHOT_HEIGHT = 5000

#: Blueprints that answer JSON, files or other protocols, never a page.
API_BLUEPRINTS = {"api_v1", "mastodon", "mastodon_oauth", "mastodon_face"}
#: GET routes of the web blueprints that are not pages a person reads, and why.
NOT_PAGES = {
    "static": "stylesheets and scripts",
    "metrics": "Prometheus text for the operator's scraper",
    "public.favicon": "an icon",
    "public.healthz": "a health check for load balancers",
    "public.status_image": "an image file",
    "public.media_file": "an image file",
    "public.disclosure_data": "JSON beside the disclosure page",
    "ledger_keys.well_known": "JSON key list",
    "api_v1_docs.openapi_json": "the OpenAPI document (JSON)",
    "exports.export": "a CSV/JSON download",
    "live.statuses": "JSON that live.js polls for the states of the posts a page shows",
    "accounts.callback": "the platform's OAuth redirect target: a redirect, never a page",
    "staff.home": "redirects to the signed-in role's first page",
    "auth.second_factor": "only between the password and the code, for a user with two-factor",
    "guards.mine": "redirects the principal to their guards page (guards.settings)",
}

#: The order in which a page without arguments is tried: the first role it answers 200 for.
TRY_ORDER = ("anonymous", "manager", "principal", "writer", "auditor", "admin")


@dataclass
class Visit:
    """How to open one page: as whom, and the URL path (with the seeded world's ids)."""

    role: str
    path: str


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    visited: dict[str, Visit] = field(default_factory=dict)


def page_endpoints(app: Flask) -> dict[str, Any]:
    """{endpoint: its GET rule} for every route that renders a page."""
    rules = {}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        if "GET" not in (rule.methods or ()) or blueprint in API_BLUEPRINTS:
            continue
        if rule.endpoint in NOT_PAGES:
            continue
        rules[rule.endpoint] = rule
    return rules


@dataclass
class Seeded:
    """Ids in the demo's world that pages with arguments need."""

    window_id: int
    principal_id: int
    delegated_post: str
    principal_post: str
    status_id: str
    authorize_query: str


def seeded_ids(demo: LiveDemo) -> Seeded:
    """The ids, after adding what the demo lacks for a fuller look: an upcoming window whose
    notice waits for the principal (the approvals page and the windows table's second row)."""
    ctx = demo.container.services
    with ctx.uow() as uow:
        manager = uow.users.by_email(DEMO_MANAGER)
        account = uow.accounts.by_handle("local", HANDLE)
    assert manager is not None and account is not None
    starts = ctx.clock.now() + timedelta(days=40)
    windows.create_window(
        ctx,
        Actor.for_user(manager),
        windows.WindowSpec(
            account_id=account.id,
            name="Product launch week",
            starts_at=starts,
            ends_at=starts + timedelta(days=7),
            notice_text="During launch week my team will post some updates for me.",
            reminder_text="Reminder: my team helps with this account during launch week.",
            requires_approval=True,
            reason="Avery is travelling to the launch events all week.",
        ),
    )
    with demo.container.engine.connect() as connection:
        window_id = connection.execute(text("SELECT min(id) FROM windows")).scalar_one()
        published = connection.execute(
            text(
                "SELECT p.public_id, p.platform_post_id, u.principal_id IS NOT NULL"
                " FROM posts p JOIN users u ON u.id = p.author_id"
                " WHERE p.state = 'published' AND p.kind = 'regular' ORDER BY p.id"
            )
        ).all()
    by_principal = {bool(row[2]): row for row in published}
    # A Mastodon app asking to sign in: the consent page (/oauth/authorize) needs one.
    request = urllib.request.Request(
        demo.url + "/api/v1/apps",
        data=urllib.parse.urlencode(
            {
                "client_name": "Tooter",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write",
            }
        ).encode(),
    )
    with urllib.request.urlopen(request) as response:
        app = json.load(response)
    authorize_query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "scope": "read write",
        }
    )
    return Seeded(
        window_id=window_id,
        principal_id=account.principal_id,
        delegated_post=by_principal[False][0],
        principal_post=by_principal[True][0],
        status_id=by_principal[True][1],
        authorize_query=authorize_query,
    )


def pages_with_arguments(ids: Seeded) -> dict[str, Visit]:
    """The pages whose URL needs ids, and the role that sees them."""
    return {
        "public.timeline": Visit("anonymous", f"/@{HANDLE}"),
        "public.status": Visit("anonymous", f"/@{HANDLE}/{ids.status_id}"),
        "public.disclosure": Visit("anonymous", f"/@{HANDLE}/disclosure"),
        "posts.detail": Visit("manager", f"/posts/{ids.delegated_post}"),
        "posts.confirm_delete": Visit("principal", f"/posts/{ids.principal_post}/delete"),
        "windows.edit_window": Visit("manager", f"/windows/{ids.window_id}/edit"),
        "authorize.authorize": Visit("manager", f"/oauth/authorize?{ids.authorize_query}"),
        "coverage.coverage": Visit("manager", f"/coverage?window={ids.window_id}"),
        "guards.settings": Visit("principal", f"/principals/{ids.principal_id}/guards"),
    }


#: Pages that look different for another role, seen again as that role (the writer's own queue
#: and composer, the auditor's ledger): `<page>-<role>-<width>.png`.
SECOND_LOOKS = (
    ("queue.queue", Visit("writer", "/queue")),
    ("compose.compose", Visit("writer", "/compose")),
    ("ledger.ledger", Visit("auditor", "/ledger")),
)


@dataclass
class AfterAForm:
    """A page a form's POST answers with rather than a GET route: the form's page, the fields
    to fill ({selector: value}), the button that posts it; `refused` if the answer must show
    a form error."""

    name: str
    visit: Visit
    fills: dict[str, str]
    button: str
    refused: bool = False


def after_a_form(known: dict[str, Visit]) -> tuple[AfterAForm, ...]:
    """The confirmation step of one-click-destroys actions, and forms refused by the server
    (past the browser's own checks), where the error messages and aria-invalid are."""
    return (
        AfterAForm("confirm-deactivate-user", Visit("admin", "/admin/users"), {}, "Deactivate"),
        AfterAForm(
            "error-create-user",
            Visit("admin", "/admin/users"),
            # Spaces pass the browser's `required`; the server says the name is missing.
            {
                "#user-email": "nia@demo.ghostpost.test",
                "#user-name": "   ",
                "#user-password": "x" * 9,
            },
            "Create user",
            refused=True,
        ),
        AfterAForm(
            "error-edit-window",
            known["windows.edit_window"],
            {"#ends_at": "2020-01-01T00:00"},
            "Save window",
            refused=True,
        ),
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    with live_demo_server(tmp_path_factory.mktemp("every-page")) as server:
        yield server


@pytest.fixture(scope="module")
def known(demo: LiveDemo) -> dict[str, Visit]:
    return pages_with_arguments(seeded_ids(demo))


def keyboard_traps(page: Page) -> list[str]:
    """Visible form controls and links a keyboard cannot reach, or reaches out of order."""
    found = page.evaluate(
        """() => [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
            .filter(e => e.type !== 'hidden' && e.getClientRects().length > 0 && !e.disabled)
            .filter(e => e.tabIndex < 0 || e.tabIndex > 0)
            .slice(0, 4)
            .map(e => e.outerHTML.slice(0, 80))"""
    )
    return list(found)


def not_covered(endpoint: str, rule: Any) -> str:
    return f"{endpoint} ({rule.rule}) is not covered: add its ids to pages_with_arguments"


def uncovered(endpoints: dict[str, Any], known: dict[str, Visit]) -> list[str]:
    """The pages with arguments nobody said how to open."""
    return [
        not_covered(endpoint, rule)
        for endpoint, rule in sorted(endpoints.items())
        if rule.arguments and endpoint not in known
    ]


def slug(endpoint: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", endpoint.lower()).strip("-")


def look_at(page: Page, name: str, screenshots: Path) -> list[str]:
    """A screenshot and axe at both widths; the Tab order and overflow checks on the phone;
    the problems."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        # The whole page, down to a phone-scroll's worth: a long ledger is 25 000 px of cards.
        height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_SHOT_HEIGHT)
        page.screenshot(
            path=screenshots / f"{name}-{width}.png",
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": height},
        )
        # axe at both widths: the DOM is the same, but what is hidden, stacked or too small
        # to read (contrast, target size, visibility) is decided by the layout. At 1280 px
        # it costs about 13 s more on the whole module on a busy machine.
        problems += [f"{name} at {width} px: axe {v}" for v in axe_violations(page)]
        if width == PHONE:
            problems += [f"{name}: out of the Tab order: {e}" for e in keyboard_traps(page)]
            if wide := overflow(page):
                problems.append(f"{name} at {width} px: {wide}")
    return problems


def is_page(response: Any, path: str) -> bool:
    """A 200 HTML answer at `path` itself (a sign-in redirect is not the page)."""
    return (
        response is not None
        and response.status == 200
        and urllib.parse.urlsplit(response.url).path == urllib.parse.urlsplit(path).path
        and response.headers.get("content-type", "").startswith("text/html")
    )


def test_every_page_is_readable_on_a_phone_and_passes_axe(
    browser: Browser, demo: LiveDemo, known: dict[str, Visit], screenshots: Path
) -> None:
    assert AXE.exists(), f"{AXE} is missing: run scripts/axe-deps"
    endpoints = page_endpoints(create_app(container=demo.container))
    contexts: dict[str, BrowserContext] = {}
    pages: dict[str, Page] = {}

    def tab(role: str) -> Page:
        if role not in pages:
            contexts[role] = sign_in(browser, demo, role)
            pages[role] = contexts[role].new_page()
        return pages[role]

    findings = Findings()
    try:
        for endpoint, rule in sorted(endpoints.items()):
            name = slug(endpoint)
            if endpoint in known:
                visit = known[endpoint]
                response = tab(visit.role).goto(demo.url + visit.path)
                if not is_page(response, visit.path):
                    status = response.status if response else "no response"
                    findings.problems.append(f"{endpoint}: {visit.path} as {visit.role}: {status}")
                    continue
            elif rule.arguments:
                findings.problems.append(not_covered(endpoint, rule))
                continue
            else:
                for role in TRY_ORDER:
                    # A bare request with the role's cookies: cheaper than loading the page.
                    probe = tab(role).request.get(demo.url + rule.rule, max_redirects=0)
                    if is_page(probe, rule.rule):
                        visit = Visit(role, rule.rule)
                        tab(role).goto(demo.url + rule.rule)
                        break
                else:
                    findings.problems.append(
                        f"{endpoint} ({rule.rule}) answered no role with a page: add it to "
                        "pages_with_arguments or NOT_PAGES"
                    )
                    continue
            findings.visited[endpoint] = visit
            findings.problems += look_at(pages[visit.role], name, screenshots)
        for endpoint, visit in SECOND_LOOKS:
            response = tab(visit.role).goto(demo.url + visit.path)
            if not is_page(response, visit.path):
                findings.problems.append(f"{endpoint} as {visit.role}: no page")
                continue
            findings.visited[f"{endpoint} ({visit.role})"] = visit
            findings.problems += look_at(
                tab(visit.role), f"{slug(endpoint)}-{visit.role}", screenshots
            )
        for form in after_a_form(known):
            page = tab(form.visit.role)
            page.goto(demo.url + form.visit.path)
            for selector, value in form.fills.items():
                page.fill(selector, value)
            with page.expect_navigation():
                page.get_by_role("button", name=form.button).first.click()
            if form.refused and not page.locator("[aria-invalid=true], [role=alert]").count():
                findings.problems.append(f"{form.name}: the form was not refused")
            findings.visited[form.name] = form.visit
            findings.problems += look_at(page, form.name, screenshots)
    finally:
        for context in contexts.values():
            context.close()
    print("pages:", ", ".join(f"{e} as {v.role}" for e, v in findings.visited.items()))
    assert not findings.problems, "\n".join(findings.problems)


def test_a_writer_composes_and_publishes_with_the_keyboard_alone_on_a_phone(
    browser: Browser, demo: LiveDemo
) -> None:
    context = sign_in(browser, demo, "writer")
    try:
        page = context.new_page()
        page.set_viewport_size({"width": PHONE, "height": 900})
        page.goto(demo.url + "/compose")

        def tab_to(selector: str) -> None:
            for _ in range(60):
                page.keyboard.press("Tab")
                if page.evaluate("(s) => document.activeElement.matches(s)", selector):
                    return
            pytest.fail(f"Tab never reached {selector}")

        tab_to("#text")
        page.keyboard.type("Typed and sent with the keyboard alone, from a phone. #team")
        tab_to("#submit-button")
        page.keyboard.press("Enter")
        page.wait_for_url("**/posts/*")
        assert "Typed and sent with the keyboard alone" in page.locator("main").inner_text()
    finally:
        context.close()


def test_a_page_added_later_is_found_in_the_url_map_and_named_until_covered(
    demo: LiveDemo, known: dict[str, Visit]
) -> None:
    app = create_app(container=demo.container)
    # As another issue's settings page would arrive: a GET route of a web blueprint.
    app.add_url_rule("/accounts/<int:account_id>/later", "later.settings", lambda account_id: "")
    app.add_url_rule("/account/later", "later.preferences", lambda: "")
    endpoints = page_endpoints(app)
    assert {"later.settings", "later.preferences"} <= set(endpoints)
    assert uncovered(endpoints, known) == [
        "later.settings (/accounts/<int:account_id>/later) is not covered: add its ids to "
        "pages_with_arguments"
    ]
