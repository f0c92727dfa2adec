"""Helpers for driving the staff web app with Flask's test client."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PASSWORD = "password-123"  # every tests.support.world user has it


def csrf_from(client: FlaskClient, path: str) -> str:
    """Return the CSRF token embedded in the page at `path` (following redirects)."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    """Sign in through the real login form."""
    token = csrf_from(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def post_form(
    client: FlaskClient, path: str, data: dict[str, str], token_from: str = "/home"
) -> TestResponse:
    """POST a form with a valid CSRF token taken from a page of the signed-in session."""
    return client.post(path, data={**data, "csrf_token": csrf_from(client, token_from)})
