"""Server-side web sessions: fixation, logout, idle/absolute timeouts, deactivation, storage."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ghostpost.bootstrap import Container
from ghostpost.cli import main
from ghostpost.clock import FixedClock
from ghostpost.db.models import WebSessionRow
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.web_sessions import purge_web_sessions
from ghostpost.settings import Settings
from ghostpost.web.sessions import EXPIRED_MESSAGE, timeouts
from tests.support.web import csrf_from, sign_in
from tests.support.world import World


def _cookie(app: Flask, client: FlaskClient) -> str | None:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie is not None else None


def _replay(app: Flask, token: str) -> FlaskClient:
    """A second browser that only knows the copied cookie value."""
    other = app.test_client()
    other.set_cookie(app.config["SESSION_COOKIE_NAME"], token)
    return other


def _rows(container: Container) -> list[WebSessionRow]:
    with container.sessions() as db:
        return list(db.scalars(select(WebSessionRow)))


def _sends_to_login(client: FlaskClient) -> bool:
    response = client.get("/home")
    return response.status_code == 302 and "/login" in response.headers["Location"]


def _signed_in(client: FlaskClient) -> bool:
    # /home sends a signed-in user on to their start page, anyone else to /login.
    response = client.get("/home")
    return response.status_code == 302 and "/login" not in response.headers["Location"]


def test_signing_in_changes_the_session_id_and_kills_the_old_one(
    world: World, app: Flask, client: FlaskClient
) -> None:
    csrf_before = csrf_from(client, "/login")
    # Before sign-in nothing is stored: the sign-in form's CSRF secret is in a signed cookie.
    anonymous_name = app.config["SESSION_COOKIE_NAME"] + "-anon"
    anonymous = client.get_cookie(anonymous_name)
    assert _cookie(app, client) is None and anonymous is not None
    sign_in(client, world.writer_a.email)
    after = _cookie(app, client)
    assert after is not None
    assert client.get_cookie(anonymous_name) is None
    assert _signed_in(client)
    assert csrf_from(client, "/home") != csrf_before
    # The pre-login cookie (e.g. planted by an attacker, who kept a copy) opens nothing after
    # the sign-in.
    planted = app.test_client()
    planted.set_cookie(anonymous_name, anonymous.value)
    assert _sends_to_login(planted)


def test_logout_revokes_the_session_server_side(
    world: World, app: Flask, client: FlaskClient
) -> None:
    sign_in(client, world.writer_a.email)
    token = _cookie(app, client)
    assert token is not None
    copy = _replay(app, token)
    assert _signed_in(copy)  # the copied cookie worked while signed in
    client.post("/logout", data={"csrf_token": csrf_from(client, "/home")})
    assert _sends_to_login(client)
    replayed = copy.get("/home")
    assert replayed.status_code == 302 and "/login" in replayed.headers["Location"]
    assert EXPIRED_MESSAGE in copy.get("/login").get_data(as_text=True)


def test_an_idle_session_expires(
    world: World, app: Flask, client: FlaskClient, clock: FixedClock
) -> None:
    sign_in(client, world.writer_a.email)
    for _ in range(3):  # activity keeps it alive well past one idle period
        clock.advance(minutes=20)
        assert _signed_in(client)
    clock.advance(minutes=30)
    response = client.get("/home")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert EXPIRED_MESSAGE in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_session_expires_after_the_absolute_timeout_however_active(
    world: World, client: FlaskClient, clock: FixedClock
) -> None:
    sign_in(client, world.writer_a.email)
    for _ in range(12 * 4 - 1):  # a request every 15 minutes, up to 11:45 after sign-in
        clock.advance(minutes=15)
        assert _signed_in(client)
    clock.advance(minutes=14)
    assert _signed_in(client)
    clock.advance(minutes=1)  # 12 hours after sign-in, 1 minute after the last request
    assert _sends_to_login(client)


def test_deactivating_a_user_kills_their_sessions_at_once(
    world: World, app: Flask, client: FlaskClient, container: Container
) -> None:
    sign_in(client, world.writer_a.email)
    assert _signed_in(client)
    directory.set_user_active(world.ctx, Actor.system("t"), world.writer_a.id, False)
    assert all(r.revoked_at is not None for r in _rows(container) if r.user_id is not None)
    assert _sends_to_login(client)
    # Even once reactivated, the old session stays dead: they sign in again.
    directory.set_user_active(world.ctx, Actor.system("t"), world.writer_a.id, True)
    assert _sends_to_login(client)


def test_the_cookie_is_an_opaque_token_and_the_database_holds_only_its_hash(
    world: World, app: Flask, client: FlaskClient, container: Container
) -> None:
    sign_in(client, world.writer_a.email)
    token = _cookie(app, client)
    assert token is not None
    assert len(token) == 43 and "." not in token  # 32 random bytes, no signed payload
    assert world.writer_a.email not in token
    live = [r for r in _rows(container) if r.revoked_at is None]
    assert [r.user_id for r in live] == [world.writer_a.id]
    assert live[0].id == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in r.id and token not in str(r.data) for r in _rows(container))


def test_quiet_requests_do_not_write_the_session(
    world: World, client: FlaskClient, container: Container, clock: FixedClock
) -> None:
    sign_in(client, world.writer_a.email)
    client.get("/home")
    seen = [r.last_seen_at for r in _rows(container) if r.revoked_at is None]
    clock.advance(seconds=30)
    client.get("/home")
    assert [r.last_seen_at for r in _rows(container) if r.revoked_at is None] == seen
    clock.advance(seconds=31)
    client.get("/home")
    assert [r.last_seen_at for r in _rows(container) if r.revoked_at is None] == [clock.now()]


def test_purge_deletes_sessions_dead_for_over_a_day(
    world: World, app: Flask, client: FlaskClient, container: Container, clock: FixedClock
) -> None:
    sign_in(client, world.writer_a.email)
    client.post("/logout", data={"csrf_token": csrf_from(client, "/home")})
    total = len(_rows(container))
    assert total >= 1  # the signed-in session (anonymous visitors store none)
    limits = timeouts(container.settings)
    assert purge_web_sessions(container.services, limits) == 0
    clock.advance(days=1, minutes=31)
    assert purge_web_sessions(container.services, limits) == total
    assert _rows(container) == []


def test_a_form_posted_after_the_session_expired_goes_to_login_with_the_reason(
    world: World, client: FlaskClient, clock: FixedClock
) -> None:
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/home")
    clock.advance(minutes=31)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert EXPIRED_MESSAGE in client.get("/login").get_data(as_text=True)


def test_the_purge_command_runs_against_a_fresh_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    result = runner.invoke(main, ["sessions", "purge"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 0 web session(s) dead for over a day"


def test_a_signed_in_page_while_the_database_is_gone_is_a_503_not_a_500(
    client: FlaskClient, world: World, settings: Settings
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite file moved away; PostgreSQL outages: test_database_outage.py")
    sign_in(client, world.writer_a.email)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    world.container.engine.dispose()
    path.rename(path.with_suffix(".away"))
    try:
        # A new connection finds an empty file: every query fails (OperationalError).
        down = client.get("/queue")
        assert down.status_code == 503  # an HTML page for the browser, never a bare 500
        assert "database is not reachable" in down.get_data(as_text=True)
    finally:
        world.container.engine.dispose()
        path.unlink(missing_ok=True)
        path.with_suffix(".away").rename(path)
    assert client.get("/queue").status_code == 200  # the same session works again


def test_api_requests_neither_read_nor_save_the_staff_session(
    world: World, app: Flask, client: FlaskClient, container: Container, clock: FixedClock
) -> None:
    """A bearer-token request from a browser that is signed in to the staff app (the cookie
    rides along) reads no session row, extends no session and sets no cookie: the API never
    acts on, or keeps alive, a staff session."""
    from sqlalchemy import event

    from tests.support.api import scheduler_for

    sign_in(client, world.writer_a.email)
    client.get("/home")
    assert _cookie(app, client) is not None
    scheduler = scheduler_for(client, world)
    seen = [(r.id, r.last_seen_at) for r in _rows(container)]
    touched: list[str] = []

    def _statement(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        if "web_sessions" in sql:
            touched.append(sql)

    clock.advance(seconds=120)  # past the session's write-back interval
    event.listen(container.engine, "before_cursor_execute", _statement)
    try:
        answers = [
            scheduler.get("/api/v1/accounts"),
            scheduler.post(
                "/api/v1/preview",
                {"account": world.account.id, "author": world.writer_a.email, "text": "Hi"},
            ),
            client.post("/oauth/token", data={"grant_type": "client_credentials"}),
            client.get(f"/compat/mastodon/{world.account.id}/api/v1/accounts/verify_credentials"),
        ]
    finally:
        event.remove(container.engine, "before_cursor_execute", _statement)
    assert [a.status_code for a in answers][:2] == [200, 200], [a.get_data() for a in answers]
    assert touched == []
    assert all("Set-Cookie" not in a.headers for a in answers), [a.headers for a in answers]
    assert [(r.id, r.last_seen_at) for r in _rows(container)] == seen
    assert _signed_in(client)  # the browser's session is untouched, still alive
