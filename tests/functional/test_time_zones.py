"""Each user's time zone: taken from the browser at the first sign-in (never from junk, never
over a chosen one), changed on the account page, used by every staff page (UTC on hover), and
never by the exports."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ghostpost.clock import FixedClock
from ghostpost.domain.model import User
from ghostpost.services import time_zones
from tests.support.web import PASSWORD, csrf_from, post_form, sign_in
from tests.support.world import World

ACCOUNT_PAGE = "/account/time-zone"


def sign_in_from(client: FlaskClient, email: str, browser_zone: str) -> int:
    """Sign in through the login form as a browser whose script read `browser_zone`."""
    token = csrf_from(client, "/login")
    data = {"email": email, "password": PASSWORD, "csrf_token": token, "time_zone": browser_zone}
    return client.post("/login", data=data).status_code


def zone_of(world: World, user: User) -> str | None:
    with world.ctx.uow() as uow:
        stored = uow.users.get(user.id)
    assert stored is not None
    return stored.time_zone


def ledger_size(world: World) -> int:
    with world.ctx.uow() as uow:
        return len(list(uow.ledger.entries()))


def shown(at: datetime, local: str) -> str:
    """The markup a page shows for `at` read as `local`, with its UTC spelling on hover."""
    instant = at.astimezone(UTC)
    return (
        f'<time datetime="{instant:%Y-%m-%dT%H:%M:%S}Z" title="{instant:%Y-%m-%d %H:%M} UTC">'
        f"{local}</time>"
    )


# -- attacks first: what the browser sends is never trusted -----------------------------------


@pytest.mark.parametrize(
    "junk",
    [
        "Mars/Base",
        "Europe/" + "x" * 493,  # 500 characters
        "../etc",
        "../../etc/passwd",
        "localtime",  # this machine's zone, not a place
        "posix/Europe/Lisbon",
        "europe/lisbon",  # names are exact
        " Europe/Lisbon",
        "Europe/Lisbon\x00",
        "",
    ],
)
def test_junk_is_no_zone(junk: str) -> None:
    # The service's own check (the sign-in itself is driven through the form below).
    assert time_zones.known_zone(junk) is None


def test_junk_zones_at_sign_in_store_nothing_and_never_fail_it(world: World, app: Flask) -> None:
    entries = ledger_size(world)
    for junk in ("Mars/Base", "Europe/" + "x" * 493, "../etc", "localtime", "Europe/Lisbon\x00"):
        client = app.test_client()
        assert sign_in_from(client, world.writer_a.email, junk) == 302, junk
        assert client.get("/home").status_code in (200, 302)  # signed in
        assert "Sign in</h1>" not in client.get("/compose").get_data(as_text=True)
        assert zone_of(world, world.writer_a) is None, junk
    # No field at all (a browser without the script) is no zone either.
    assert sign_in(app.test_client(), world.writer_a.email).status_code == 302
    assert zone_of(world, world.writer_a) is None
    assert ledger_size(world) == entries
    # A wrong password with a good zone stores nothing either.
    client = app.test_client()
    token = csrf_from(client, "/login")
    bad = {"email": world.writer_a.email, "password": "wrong-password-0", "csrf_token": token}
    assert client.post("/login", data={**bad, "time_zone": "Asia/Tokyo"}).status_code == 401
    assert zone_of(world, world.writer_a) is None


def test_the_first_sign_in_stores_the_browser_zone_and_later_ones_keep_it(
    world: World, app: Flask
) -> None:
    entries = ledger_size(world)
    assert sign_in_from(app.test_client(), world.writer_a.email, "Europe/Lisbon") == 302
    assert zone_of(world, world.writer_a) == "Europe/Lisbon"
    assert sign_in_from(app.test_client(), world.writer_a.email, "Asia/Tokyo") == 302
    assert zone_of(world, world.writer_a) == "Europe/Lisbon"
    # Another user's sign-in from another browser is theirs alone.
    assert sign_in_from(app.test_client(), world.manager.email, "America/New_York") == 302
    assert zone_of(world, world.manager) == "America/New_York"
    assert zone_of(world, world.writer_a) == "Europe/Lisbon"
    # A display preference, like the notification choices: not a ledger event.
    assert ledger_size(world) == entries


def test_the_login_form_carries_the_browser_zone_by_a_script_the_csp_allows(
    client: FlaskClient,
) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<input type="hidden" name="time_zone" id="browser-time-zone" value="">' in page
    assert '<script src="/static/sign_in.js" defer></script>' in page
    assert "<script>" not in page  # no inline script: the CSP is script-src 'self'
    with client.get("/static/sign_in.js") as response:
        script = response.get_data(as_text=True)
    assert "resolvedOptions().timeZone" in script and "browser-time-zone" in script


def test_with_two_factor_the_zone_is_stored_once_the_code_is_right(
    world: World, app: Flask, clock: FixedClock
) -> None:
    import pyotp

    from tests.functional.test_totp import _enrolled_user, _second_step

    secret = _enrolled_user(app, clock, world.writer_a.email)
    client = app.test_client()
    assert sign_in_from(client, world.writer_a.email, "Europe/Lisbon") == 302
    assert zone_of(world, world.writer_a) is None  # the password alone signs nobody in
    assert _second_step(client, "000000") == 401
    assert zone_of(world, world.writer_a) is None
    assert _second_step(client, pyotp.TOTP(secret).at(clock.now())) == 302
    assert zone_of(world, world.writer_a) == "Europe/Lisbon"


# -- the account page ------------------------------------------------------------------------


def test_the_user_changes_their_zone_on_the_account_page(world: World, client: FlaskClient) -> None:
    entries = ledger_size(world)
    sign_in(client, world.writer_a.email)
    page = client.get(ACCOUNT_PAGE).get_data(as_text=True)
    assert "You have not chosen a time zone" in page
    assert "<option selected>UTC</option>" in page
    assert f'href="{ACCOUNT_PAGE}">Time zone</a>' in page  # beside Two-factor and Notifications
    response = post_form(client, ACCOUNT_PAGE, {"time_zone": "Asia/Tokyo"}, ACCOUNT_PAGE)
    assert response.status_code == 302
    assert zone_of(world, world.writer_a) == "Asia/Tokyo"
    page = client.get(ACCOUNT_PAGE).get_data(as_text=True)
    assert "Times are now shown in Asia/Tokyo." in page
    assert "<option selected>Asia/Tokyo</option>" in page
    # 09:00 UTC is 18:00 in Tokyo.
    assert shown(world.container.clock.now(), "2026-11-21 18:00 JST") in page
    # Refused by name; nothing changes.
    for junk, said in (("Mars/Base", "“Mars/Base”"), ("../etc", "“../etc”"), ("x" * 500, "…”")):
        response = post_form(client, ACCOUNT_PAGE, {"time_zone": junk}, ACCOUNT_PAGE)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert f"{said} is not a time zone: choose one from the list." in html
        assert "x" * 100 not in html
        assert zone_of(world, world.writer_a) == "Asia/Tokyo"
    # Without the CSRF token nothing changes either.
    response = client.post(ACCOUNT_PAGE, data={"time_zone": "Europe/Lisbon"})
    assert response.status_code == 400
    assert zone_of(world, world.writer_a) == "Asia/Tokyo"
    assert ledger_size(world) == entries


def test_the_account_page_needs_a_signed_in_user(client: FlaskClient) -> None:
    response = client.post(ACCOUNT_PAGE, data={"time_zone": "Europe/Lisbon"})
    assert response.status_code in (302, 400)
    assert client.get(ACCOUNT_PAGE).status_code == 302


# -- every staff page in the viewer's zone ---------------------------------------------------


def set_zone(world: World, user: User, zone: str) -> None:
    time_zones.set_time_zone(world.ctx, user, zone)


@pytest.mark.parametrize(
    ("zone", "moments"),
    [
        (
            "Europe/Lisbon",
            # Winter (WET, UTC+0) and summer (WEST, UTC+1).
            [
                (datetime(2027, 1, 10, 9, 0, tzinfo=UTC), "2027-01-10 09:00 WET"),
                (datetime(2027, 7, 1, 9, 0, tzinfo=UTC), "2027-07-01 10:00 WEST"),
            ],
        ),
        (
            "America/New_York",
            # Either side of the change on 14 March 2027 (EST, UTC-5; EDT, UTC-4).
            [
                (datetime(2027, 3, 13, 15, 0, tzinfo=UTC), "2027-03-13 10:00 EST"),
                (datetime(2027, 3, 15, 15, 0, tzinfo=UTC), "2027-03-15 11:00 EDT"),
            ],
        ),
    ],
)
def test_staff_pages_show_times_in_the_viewers_zone_with_utc_on_hover(
    world: World, client: FlaskClient, zone: str, moments: list[tuple[datetime, str]]
) -> None:
    window = world.open_window(hours=8)  # 2026-11-21 09:00–17:00 UTC
    posts = [
        world.submit(world.principal, f"Post {i}", publish_at=at)
        for i, (at, _) in enumerate(moments)
    ]
    set_zone(world, world.manager, zone)
    sign_in(client, world.manager.email)
    start, end = {
        "Europe/Lisbon": ("2026-11-21 09:00 WET", "2026-11-21 17:00 WET"),
        "America/New_York": ("2026-11-21 04:00 EST", "2026-11-21 12:00 EST"),
    }[zone]
    queue = client.get("/queue").get_data(as_text=True)
    for (at, local), post in zip(moments, posts, strict=True):
        assert shown(at, local) in queue
        detail = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
        assert f"<dt>Publish at</dt><dd>{shown(at, local)}</dd>" in detail
    windows_page = client.get("/windows").get_data(as_text=True)
    assert f"{shown(window.policy.starts_at, start)} –<br>{shown(window.policy.ends_at, end)}" in (
        windows_page
    )
    ledger = client.get("/ledger").get_data(as_text=True)
    seconds = start.replace(" W", ":00 W").replace(" E", ":00 E")
    instant = world.container.clock.now()
    assert (
        f'<time datetime="{instant:%Y-%m-%dT%H:%M:%S}Z" title="{instant:%Y-%m-%d %H:%M:%S} UTC">'
        f"{seconds}</time>"
    ) in ledger
    # The same pages for a user without a zone: UTC.
    other = client.application.test_client()
    sign_in(other, world.auditor.email)
    assert shown(window.policy.starts_at, "2026-11-21 09:00 UTC") in other.get("/windows").get_data(
        as_text=True
    )


def test_forms_default_to_the_viewers_zone_and_flashes_say_both(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window(hours=8)  # 09:00–17:00 UTC: 04:00–12:00 in New York
    set_zone(world, world.manager, "America/New_York")
    sign_in(client, world.manager.email)
    # The window form: the user's zone selected, the times in it; saving it unchanged is no
    # move (the times come back to the same instants).
    edit = f"/windows/{window.id}/edit"
    html = client.get(edit).get_data(as_text=True)
    assert "<option selected>America/New_York</option>" in html
    assert 'value="2026-11-21T04:00"' in html and 'value="2026-11-21T12:00"' in html
    as_shown = {
        "name": "Conference",
        "starts_at": "2026-11-21T04:00",
        "ends_at": "2026-11-21T12:00",
        "timezone": "America/New_York",
        "notice_text": window.policy.notice_text,
        "reminder_text": window.policy.reminder_text,
        "reason": window.policy.reason,
        "reminder_every": str(window.policy.reminder_every),
        "reminder_mode": window.policy.reminder_mode.value,
        "tag": window.policy.tag,
        "tag_mode": window.policy.tag_mode.value,
        "tag_position": window.policy.tag_position.value,
    }
    entries = ledger_size(world)
    response = post_form(client, edit, as_shown, edit)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert ledger_size(world) == entries  # "Nothing changed."
    new = client.get("/windows/new").get_data(as_text=True)
    assert "<option selected>America/New_York</option>" in new
    assert 'value="2026-11-21T05:00"' in new  # the next full hour in New York
    # Compose (the principal, writing their own post): the schedule's zone is the user's, and
    # the script leaves it alone.
    set_zone(world, world.principal, "America/New_York")
    client = client.application.test_client()
    sign_in(client, world.principal.email)
    compose = client.get("/compose").get_data(as_text=True)
    assert "<option selected>America/New_York</option>" in compose
    assert 'data-auto="1"' not in compose
    response = client.post(
        "/compose",
        data={
            "csrf_token": csrf_from(client, "/compose"),
            "account_id": str(world.account.id),
            "text": "Later today",
            "publish_at": "2026-11-21T10:00",
            "timezone": "America/New_York",
            "action": "submit",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "scheduled for 2026-11-21 10:00 EST (2026-11-21 15:00 UTC)." in page


def test_exports_stay_utc_whatever_the_viewers_zone(world: World, client: FlaskClient) -> None:
    world.open_window(hours=8)
    world.submit(world.principal, "Published now")
    world.submit(world.writer_a, "From the team")
    world.run_worker()
    sign_in(client, world.manager.email)
    paths = [
        "/ledger/export?report=authorship&format=csv",
        "/ledger/export?report=authorship&format=jsonl",
        "/ledger/export?report=ledger",
    ]

    def exports() -> list[bytes]:
        bodies = []
        for path in paths:
            with client.get(path) as response:  # closed: each streamed export holds a slot
                assert response.status_code == 200, path
                bodies.append(response.get_data())
        return bodies

    before = exports()
    assert b"2026-11-21T09:00" in before[0]
    set_zone(world, world.manager, "Asia/Tokyo")
    assert exports() == before
    assert re.search(rb"\+09:00|JST", b"".join(before)) is None
