"""Signing in and out of the staff app, with CSRF and throttling."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.web import csrf_from, sign_in
from tests.support.world import World


def test_signing_in_starts_a_session_and_signing_out_ends_it(
    world: World, client: FlaskClient
) -> None:
    response = sign_in(client, world.writer_a.email)
    assert response.status_code == 302
    home = client.get("/home", follow_redirects=True)
    assert "Jordan Park" in home.get_data(as_text=True)
    token = csrf_from(client, "/home")
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/home").status_code == 302


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    world: World, client: FlaskClient
) -> None:
    wrong = sign_in(client, world.writer_a.email, "not-the-password")
    unknown = sign_in(client, "nobody@example.test", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    message = "The email or password is incorrect."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)


def test_a_form_post_without_the_csrf_token_is_rejected(world: World, client: FlaskClient) -> None:
    response = client.post(
        "/login", data={"email": world.writer_a.email, "password": "password-123"}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_sign_in_is_throttled_with_a_clear_message(world: World, client: FlaskClient) -> None:
    # Five failures for one account from one address (LOGIN_PAIR_FAILURES), then refused.
    statuses = [sign_in(client, world.writer_a.email, "wrong").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    last = sign_in(client, world.writer_a.email)
    assert "Too many sign-in attempts" in last.get_data(as_text=True)
    assert last.headers.get("Retry-After")


def test_the_next_parameter_never_redirects_off_site(world: World, client: FlaskClient) -> None:
    token = csrf_from(client, "/login")
    response = client.post(
        "/login",
        data={
            "email": world.writer_a.email,
            "password": "password-123",
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert response.headers["Location"] in ("/home", "http://localhost/home")


def test_pages_carry_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
