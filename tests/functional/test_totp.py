"""TOTP second factor: enrollment, the code step at sign-in, replay, the requirement setting."""

from __future__ import annotations

import html
import re

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.db.models import UserRow
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Role, User
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.web.auth import qr_data_uri
from tests.support.web import csrf_from, sign_in
from tests.support.world import World

PAGE = "/account/two-factor"


def _code(secret: str, clock: FixedClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def _enroll(client: FlaskClient, clock: FixedClock) -> str:
    """Enroll the signed-in user; return the secret shown on the page."""
    page = client.get(PAGE).get_data(as_text=True)
    found = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page)
    assert found, page
    secret = found.group(1)
    assert f"secret={secret}" in page  # the otpauth:// URI, as text
    response = client.post(
        PAGE,
        data={
            "action": "enable",
            "code": _code(secret, clock),
            "csrf_token": csrf_from(client, PAGE),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return secret


def _second_step(client: FlaskClient, code: str) -> int:
    token = csrf_from(client, "/login/two-factor")
    return client.post("/login/two-factor", data={"code": code, "csrf_token": token}).status_code


def _location(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    return response.headers.get("Location", "") if response.status_code == 302 else ""


def _enrolled_user(app: Flask, clock: FixedClock, email: str) -> str:
    client = app.test_client()
    sign_in(client, email)
    secret = _enroll(client, clock)
    clock.advance(seconds=30)  # the confirming code's step is used up
    return secret


def _sealed_secret(container: Container, user: User) -> str | None:
    with container.sessions() as db:
        return db.scalar(select(UserRow.totp_secret).where(UserRow.id == user.id))


def test_enrolled_user_signs_in_with_a_current_code(
    world: World, app: Flask, clock: FixedClock, container: Container
) -> None:
    secret = _enrolled_user(app, clock, world.writer_a.email)
    client = app.test_client()
    response = sign_in(client, world.writer_a.email)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login/two-factor")
    assert _second_step(client, _code(secret, clock)) == 302
    assert "/login" not in _location(client, "/home")
    # The ledger records both facts, never the secret.
    with container.services.uow() as uow:
        entries = [e for e in uow.ledger.entries() if e.tag == LedgerTag.USER_TOTP_ENABLED]
    assert [e.subject for e in entries] == [f"user:{world.writer_a.id}"]
    assert secret not in str(entries[0].data)


def test_a_wrong_code_is_refused_with_a_neutral_message(
    world: World, app: Flask, clock: FixedClock
) -> None:
    secret = _enrolled_user(app, clock, world.writer_a.email)
    client = app.test_client()
    sign_in(client, world.writer_a.email)
    wrong = f"{(int(_code(secret, clock)) + 1) % 1_000_000:06d}"
    token = csrf_from(client, "/login/two-factor")
    response = client.post("/login/two-factor", data={"code": wrong, "csrf_token": token})
    assert response.status_code == 401
    assert "The code is incorrect." in response.get_data(as_text=True)
    assert "/login" in _location(client, "/home")


def test_a_replayed_code_is_refused(world: World, app: Flask, clock: FixedClock) -> None:
    secret = _enrolled_user(app, clock, world.writer_a.email)
    code = _code(secret, clock)
    first = app.test_client()
    sign_in(first, world.writer_a.email)
    assert _second_step(first, code) == 302
    clock.advance(seconds=10)  # same step, still inside the window
    second = app.test_client()
    sign_in(second, world.writer_a.email)
    assert _second_step(second, code) == 401
    assert "/login" in _location(second, "/home")


def test_the_pending_session_reaches_no_staff_page(
    world: World, app: Flask, clock: FixedClock
) -> None:
    _enrolled_user(app, clock, world.manager.email)
    client = app.test_client()
    sign_in(client, world.manager.email)
    for path in ("/home", "/queue", PAGE):
        assert "/login" in _location(client, path), path


def test_the_pending_step_expires(world: World, app: Flask, clock: FixedClock) -> None:
    secret = _enrolled_user(app, clock, world.writer_a.email)
    client = app.test_client()
    sign_in(client, world.writer_a.email)
    clock.advance(minutes=6)
    assert "/login" in _location(client, "/login/two-factor")
    token = csrf_from(client, "/login")
    response = client.post(
        "/login/two-factor", data={"code": _code(secret, clock), "csrf_token": token}
    )
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "/login" in _location(client, "/home")


def test_the_secret_is_stored_sealed(
    world: World, app: Flask, clock: FixedClock, container: Container
) -> None:
    secret = _enrolled_user(app, clock, world.writer_a.email)
    sealed = _sealed_secret(container, world.writer_a)
    assert sealed is not None and sealed.startswith("gp1.")
    assert secret not in sealed
    opened = container.secretbox.open(sealed, bound_to=f"user:{world.writer_a.id}")
    assert opened == {"totp": secret}


def test_required_setting_forces_enrollment_for_admins_and_principals_only(
    world: World, app: Flask, clock: FixedClock, container: Container
) -> None:
    container.settings = container.settings.replace(totp_required_for_admins_and_principals=True)
    admin = directory.create_user(
        container.services,
        Actor.system("test"),
        email="ada@example.test",
        name="Ada Admin",
        role=Role.ADMIN,
        password="password-123",
    )
    for user in (admin, world.principal):
        client = app.test_client()
        response = sign_in(client, user.email)
        assert response.headers["Location"].endswith(PAGE), user.email
        for path in ("/home", "/queue", "/ledger"):
            assert _location(client, path).endswith(PAGE), (user.email, path)
        secret = _enroll(client, clock)
        assert _location(client, "/home") != ""  # /home sends them on to their start page
        assert not _location(client, "/home").endswith(PAGE)
        # Required: it cannot be turned off.
        token = csrf_from(client, PAGE)
        response = client.post(
            PAGE, data={"action": "disable", "code": _code(secret, clock), "csrf_token": token}
        )
        assert response.status_code == 409
        assert _sealed_secret(container, user) is not None
    writer = app.test_client()
    response = sign_in(writer, world.writer_a.email)
    assert not response.headers["Location"].endswith(PAGE)
    assert not _location(writer, "/home").endswith(PAGE)
    assert writer.get("/queue").status_code == 200


def test_a_user_turns_two_factor_off_with_a_current_code(
    world: World, app: Flask, clock: FixedClock, container: Container
) -> None:
    client = app.test_client()
    sign_in(client, world.writer_a.email)
    secret = _enroll(client, clock)
    token = csrf_from(client, PAGE)
    # The enrolling code is used up; a wrong one is refused.
    response = client.post(
        PAGE, data={"action": "disable", "code": _code(secret, clock), "csrf_token": token}
    )
    assert response.status_code == 422
    clock.advance(seconds=30)
    response = client.post(
        PAGE, data={"action": "disable", "code": _code(secret, clock), "csrf_token": token}
    )
    assert response.status_code == 302
    assert _sealed_secret(container, world.writer_a) is None
    with container.services.uow() as uow:
        tags = [e.tag for e in uow.ledger.entries()]
    assert LedgerTag.USER_TOTP_DISABLED in tags
    # Back to password-only sign-in.
    again = app.test_client()
    response = sign_in(again, world.writer_a.email)
    assert not response.headers["Location"].endswith("/login/two-factor")


def test_the_code_step_is_throttled(world: World, app: Flask, clock: FixedClock) -> None:
    secret = _enrolled_user(app, clock, world.writer_a.email)
    client = app.test_client()
    sign_in(client, world.writer_a.email)
    wrong = f"{(int(_code(secret, clock)) + 1) % 1_000_000:06d}"
    statuses = [_second_step(client, wrong) for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    # Throttled, even the right code waits.
    assert _second_step(client, _code(secret, clock)) == 429


def test_an_operator_resets_a_lost_second_factor_from_the_cli(world: World) -> None:
    import pytest

    from ghostpost.services.context import Actor
    from ghostpost.services.errors import Conflict as _Conflict
    from ghostpost.services.two_factor import reset_totp

    with pytest.raises(_Conflict):
        reset_totp(world.ctx, Actor.for_user(world.manager), world.writer_a.email)
    user = reset_totp(world.ctx, Actor.system("cli"), world.writer_a.email.upper())
    assert not user.totp_enabled
    with world.ctx.uow() as uow:
        entries = [e for e in uow.ledger.entries() if e.tag == "user:totp_disabled"]
    assert entries and entries[-1].data["reset"] is True


def test_setup_shows_a_qr_code_of_the_link_the_csp_allows(
    world: World, client: FlaskClient
) -> None:
    sign_in(client, world.writer_a.email)
    response = client.get(PAGE)
    page = response.get_data(as_text=True)
    uri = re.search(r'<code id="totp-uri">([^<]+)</code>', page)
    assert uri
    qr = re.search(r'<img id="totp-qr" src="([^"]+)" alt="([^"]+)"', page)
    assert qr, page
    assert qr.group(1).startswith("data:image/svg+xml")
    # The picture is the same link as the text beside it (same encoder, same settings).
    expected = qr_data_uri(html.unescape(uri.group(1)))
    assert html.unescape(qr.group(1)) == expected
    assert "img-src 'self' data:" in response.headers["Content-Security-Policy"]
