"""Security headers and the session cookie, over HTTP (demo) and HTTPS (production-like)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from ghostpost import create_app
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.settings import Settings
from tests.support.web import sign_in
from tests.support.world import TEST_HASHER, World, build_world

pytestmark = pytest.mark.backend_independent(
    "response headers and cookie flags are set by the app, whatever the database"
)

PAGES = ["/", "/login", "/healthz", "/@avery", "/api/v1/docs", "/no-such-page"]


def csp_directives(value: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in value.split(";") if part.strip())


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(
    client: FlaskClient, world: World, path: str
) -> None:
    response = client.get(path)
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["script-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    # Served over plain HTTP (the demo): no HSTS, which would be ignored or lock people out.
    assert "Strict-Transport-Security" not in response.headers


def test_the_session_cookie_is_httponly_and_samesite_over_http(
    client: FlaskClient, world: World
) -> None:
    sign_in(client, world.writer_a.email)
    cookie = client.get_cookie("ghostpost")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


@pytest.fixture
def https_app(settings: Settings, clock: FixedClock):  # type: ignore[no-untyped-def]
    container: Container = bootstrap(
        settings.replace(public_url="https://ghostpost.example.com"),
        clock=clock,
        password_hasher=TEST_HASHER,
    )
    build_world(container)
    yield create_app(container=container)
    container.dispose()


def test_over_https_hsts_is_sent_and_the_cookie_is_host_locked(https_app) -> None:  # type: ignore[no-untyped-def]
    client = https_app.test_client()
    page = client.get("/login", base_url="https://ghostpost.example.com")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    token = _csrf(client)
    signed_in = client.post(
        "/login",
        base_url="https://ghostpost.example.com",
        # Over HTTPS, Flask-WTF also requires a same-origin Referer, as a browser sends.
        headers={"Referer": "https://ghostpost.example.com/login"},
        data={"email": "jordan@example.test", "password": "password-123", "csrf_token": token},
    )
    assert signed_in.status_code == 302
    # The anonymous visitor's signed cookie (the sign-in form's CSRF secret) is host-locked
    # too, and sign-in replaces it with the session cookie.
    anonymous = page.headers["Set-Cookie"]
    (set_cookie,) = [
        c for c in signed_in.headers.getlist("Set-Cookie") if c.startswith("__Host-ghostpost=")
    ]
    assert anonymous.startswith("__Host-ghostpost-anon=")
    for cookie in (anonymous, set_cookie):
        for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
            assert attribute in cookie
        assert "Domain=" not in cookie  # __Host- cookies must be host-only


def _csrf(client: FlaskClient) -> str:
    import re

    page = client.get("/login", base_url="https://ghostpost.example.com").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)
