"""What the browser tests share: signing in as a demo role, axe-core, and the phone-width check."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page

from ghostpost.demo import PEOPLE
from ghostpost.settings import PROJECT_DIR
from tests.support.live import LiveDemo

AXE = PROJECT_DIR / "tests" / "support" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
PHONE = 390

#: Who signs in as each role: the demo's people (ghostpost.demo.PEOPLE).
ROLES = {
    "principal": "avery",
    "manager": "morgan",
    "writer": "jordan",
    "auditor": "rita",
    "admin": "ada",
}


def sign_in(browser: Browser, demo: LiveDemo, role: str, *, axe: bool = True) -> BrowserContext:
    """A context signed in as `role`, with axe-core in each of its pages unless `axe` is false
    (parsing it on every load costs)."""
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
    if axe:
        context.add_init_script(path=str(AXE))
    context.set_default_timeout(10_000)
    if role != "anonymous":
        email, password = next(
            (email, password)
            for email, _name, _role, password, _principal in PEOPLE
            if email.startswith(ROLES[role] + "@")
        )
        # The sign-in form posted by the context's own request client (its cookies are the
        # context's): the form itself is checked in test_login.py, and pages cost seconds here.
        form = context.request.get(demo.url + "/login").text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, "no CSRF token on the sign-in page"
        answer = context.request.post(
            demo.url + "/login",
            form={"csrf_token": token.group(1), "email": email, "password": password},
            max_redirects=0,
        )
        assert answer.status == 302, f"{role} could not sign in: {answer.status}"
    return context


def axe_violations(page: Page) -> list[str]:
    """Serious and critical violations: rule id, impact and the elements, one line each."""
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.id} (${v.impact}): ` + v.nodes.slice(0, 4)
                    .map(n => n.target.join(' ')).join(', '));
        }"""
    )
    return list(found)


def overflow(page: Page) -> str | None:
    """What sticks out past the screen's width at 390 px, if anything."""
    width = page.evaluate("document.documentElement.scrollWidth")
    if width <= PHONE:
        return None
    culprits = page.evaluate(
        """(limit) => {
            const right = (e) => e.getBoundingClientRect().right;
            const name = (e) => e.tagName.toLowerCase()
                + (e.className ? '.' + String(e.className).split(' ').join('.') : '');
            return [...document.querySelectorAll('body *')]
                .filter(e => right(e) > limit + 1)
                .filter(e => !e.parentElement || right(e.parentElement) <= limit + 1)
                .slice(0, 4)
                .map(e => name(e) + ' ' + Math.round(e.getBoundingClientRect().width) + 'px');
        }""",
        PHONE,
    )
    return f"{width} px wide: {', '.join(culprits)}"
