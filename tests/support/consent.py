"""Click "Authorize" on a platform's OAuth consent page, as the principal's browser would."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1][1][values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and values.get("name"):
            # The browser sends the clicked button: the form's first one (Authorize).
            self.forms[-1][1].setdefault(values["name"], values.get("value", ""))


def approve(authorize_url: str) -> str:
    """Open the consent page, submit its first form (Authorize); return the redirect target."""
    with requests.Session() as browser:
        page = browser.get(authorize_url, timeout=10)
        page.raise_for_status()
        parser = _Forms()
        parser.feed(page.text)
        action, fields = parser.forms[0]
        answer = browser.post(
            urljoin(authorize_url, action), data=fields, allow_redirects=False, timeout=10
        )
        assert answer.status_code in (302, 303), answer.text[:300]
        return answer.headers["Location"]
