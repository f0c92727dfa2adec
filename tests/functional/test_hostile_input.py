"""Hostile input on every surface that takes text: the scheduler API (POST /api/v1/posts and
/api/v1/preview with a real token), the web compose form, the windows form and the admin users
form.

Each case is either refused with a clear 4xx that names the field (and nothing is stored: the
posts table and the ledger keep their size), or it is legitimate text (markup, SQL, template
syntax are just words in a post) that is stored exactly and shown escaped on every page.

Decisions written down here:

- C0 control characters other than tab, line feed and carriage return (and DEL) are refused
  with 422 naming the position: nothing a person writes contains them, NUL cannot be stored in
  PostgreSQL text at all, and the others (ESC sequences, backspace) make the published text
  differ from what the preview shows.
- Unbalanced bidi controls (an embedding, override or isolate left open, e.g. a lone U+202E)
  are refused: left open they flip everything after them on screen, including the `#team`
  ghostpost appends, so the disclosure would read "maet#". Balanced ones are legitimate in
  right-to-left text and are accepted.
- Look-alike tags (a zero-width joiner inside or after, full-width letters) are different
  hashtags on every platform: `#team` is still appended. `#Team` is the same hashtag (platforms
  match hashtags case-insensitively), so it counts as the tag already present.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from ghostpost.domain.model import Account, Window
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.support.api import Scheduler, scheduler_for
from tests.support.web import csrf_from, sign_in
from tests.support.world import World

PROBLEM = "application/problem+json"
API_PATHS = ("/api/v1/posts", "/api/v1/preview")
TAG = "#team"


@dataclass
class Setup:
    world: World
    api: Scheduler
    web: FlaskClient
    other_account: Account


@pytest.fixture
def setup(app: Flask, world: World, opened_window: Window) -> Setup:
    world.run_worker()  # the notice goes out
    other = directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="elsewhere",
    )
    api = scheduler_for(app.test_client(), world)
    web = app.test_client()
    sign_in(web, world.writer_a.email)
    return Setup(world, api, web, other)


class Cases:
    """Runs every row of a table in one test (one world, one token) and reports every row that
    fails, not just the first."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    @contextmanager
    def case(self, name: str) -> Iterator[None]:
        try:
            yield
        except AssertionError as exc:
            self.failures.append(f"{name}: {exc}")

    def check(self) -> None:
        assert not self.failures, "\n".join(self.failures)


def stored(world: World) -> tuple[int, int]:
    """(posts on every account, ledger entries)."""
    with world.ctx.uow() as uow:
        posts = sum(len(uow.posts.list_for_account(a.id)) for a in uow.accounts.list())
        size = sum(1 for _ in uow.ledger.entries())
    return posts, size


def assert_problem(response: Any, field: str | None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:500]
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)[:500]
    problem: dict[str, Any] = response.get_json()
    assert problem["detail"]
    if field is not None:
        assert field in problem.get("errors", {}), problem
    return problem


def api_body(world: World, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": world.account.id,
        "text": "A perfectly fine post",
        "author": world.writer_a.email,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def compose(setup: Setup, **fields: str) -> Any:
    data = {
        "account_id": str(setup.world.account.id),
        "text": "A perfectly fine post",
        "publish_at": "",
        "timezone": "UTC",
        "action": "submit",
        **fields,
    }
    data["csrf_token"] = csrf_from(setup.web, "/compose")
    return setup.web.post("/compose", data=data)


def assert_form_refused(response: Any, message: str | None = None) -> str:
    page: str = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, page[:500]
    assert response.mimetype == "text/html"
    if message is not None:
        assert message in page
    return page


# --------------------------------------------------------------------------------------------
# Post text: refused

REFUSED_TEXTS: dict[str, tuple[str, str]] = {
    # name -> (text, what the message names)
    "nul": ("before \x00 after", "position 8"),
    "bell": ("ding\x07", "position 5"),
    "escape-sequence": ("\x1b[31mred\x1b[0m", "position 1"),
    "backspace": ("over\x08write", "position 5"),
    "vertical-tab": ("a\x0bb", "position 2"),
    "delete": ("a\x7fb", "position 2"),
    "lone-rlo": ("all fine here \u202e", "bidi"),
    "rlo-mid-text": ("look \u202eesrever", "bidi"),
    "unclosed-isolate": ("\u2067مرحبا", "bidi"),
    "stray-pop": ("close \u202c without opening", "bidi"),
}


def test_api_refuses_control_characters_and_open_bidi_controls(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for name, (text, named) in REFUSED_TEXTS.items():
        for path in API_PATHS:
            with cases.case(f"{name} {path}"):
                body = api_body(setup.world, text=text)
                response = setup.api.post(path, body, key=str(uuid.uuid4()))
                problem = assert_problem(response, "text")
                assert response.status_code == 422
                assert named in " ".join(problem["errors"]["text"]), problem
                assert stored(setup.world) == before
    cases.check()


def test_compose_refuses_control_characters_and_open_bidi_controls(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for name, (text, named) in REFUSED_TEXTS.items():
        for action in ("submit", "preview"):
            with cases.case(f"{name} {action}"):
                response = compose(setup, text=text, action=action)
                page = assert_form_refused(response)
                assert response.status_code == 422
                assert named in page
                assert stored(setup.world) == before
    cases.check()


def test_compose_live_preview_refuses_control_characters(setup: Setup) -> None:
    token = csrf_from(setup.web, "/compose")
    response = setup.web.post(
        "/compose/preview",
        json={"account_id": setup.world.account.id, "text": "a\x00b"},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert_problem(response, None)
    assert response.status_code == 422


def test_lone_surrogates_in_json_are_refused(setup: Setup) -> None:
    before = stored(setup.world)
    raw = b'{"account": %d, "author": "%s", "text": "half \\ud800 pair"}' % (
        setup.world.account.id,
        setup.world.writer_a.email.encode(),
    )
    for path in ("/api/v1/posts", "/api/v1/preview"):
        response = setup.api.post(
            path, key=str(uuid.uuid4()), data=raw, content_type="application/json"
        )
        assert_problem(response, "text")
    token = csrf_from(setup.web, "/compose")
    response = setup.web.post(
        "/compose/preview",
        data=raw.replace(b'"account"', b'"account_id"').replace(b', "author": ', b', "x": '),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert 400 <= response.status_code < 500
    assert stored(setup.world) == before


def test_invalid_utf8_is_refused_by_the_api_and_replaced_by_the_form(setup: Setup) -> None:
    before = stored(setup.world)
    raw = b'{"account": 1, "author": "a@b.c", "text": "bad \xff\xfe bytes"}'
    for path in ("/api/v1/posts", "/api/v1/preview"):
        response = setup.api.post(
            path, key=str(uuid.uuid4()), data=raw, content_type="application/json"
        )
        assert_problem(response, None)
        assert response.status_code == 400
    assert stored(setup.world) == before
    # An HTML form has no way to say "this byte is invalid" (browsers always send UTF-8):
    # werkzeug keeps an invalid percent-escape as the literal text "%FF", so the post is stored
    # as plain text, never with a byte PostgreSQL or the hash chain would choke on.
    token = csrf_from(setup.web, "/compose")
    response = setup.web.post(
        "/compose",
        data=b"account_id=%d&text=bad+%%FF%%FE+bytes&timezone=UTC&action=submit&csrf_token=%s"
        % (setup.world.account.id, token.encode()),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with setup.world.ctx.uow() as uow:
        texts = [p.submitted_text for p in uow.posts.list_for_account(setup.world.account.id)]
    assert "bad %FF%FE bytes" in texts


# --------------------------------------------------------------------------------------------
# Post text: legitimate, stored exactly, the tag decided on the real text

INJECTIONS = {
    "sql": "'; DROP TABLE posts; --",
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "template": "{{7*7}} {% raw %}",
}

# name -> (text, final text)
ACCEPTED_TEXTS: dict[str, tuple[str, str]] = {
    **{f"injection-{k}": (v, f"{v} {TAG}") for k, v in INJECTIONS.items()},
    "tab-and-newlines": ("line one\n\tindented", f"line one\n\tindented {TAG}"),
    "balanced-embedding": ("\u202bשלום\u202c עולם", f"\u202bשלום\u202c עולם {TAG}"),
    "balanced-isolate": ("name: \u2067مرحبا\u2069!", f"name: \u2067مرحبا\u2069! {TAG}"),
    "zwj-inside-tag": ("hello #te\u200dam", f"hello #te\u200dam {TAG}"),
    "zwj-after-tag": ("hello #team\u200d", f"hello #team\u200d {TAG}"),
    "full-width-tag": ("hello #ｔｅａｍ", f"hello #ｔｅａｍ {TAG}"),
    "tag-in-url": ("see https://example.test/#team", f"see https://example.test/#team {TAG}"),
    "capitalised-tag-counts": ("hello #Team", "hello #Team"),
}


def _assert_stored_exactly(world: World, public_id: str, text: str, final: str) -> None:
    with world.ctx.uow() as uow:
        post = uow.posts.by_public_id(public_id)
    assert post is not None
    assert (post.submitted_text, post.final_text) == (text, final)
    outcome = post.decisions["submission"]["tag"]["outcome"]
    assert outcome == ("already_present" if final == text else "applied")


def test_api_stores_legitimate_text_exactly_and_decides_the_tag_on_it(setup: Setup) -> None:
    cases = Cases()
    for name, (text, final) in ACCEPTED_TEXTS.items():
        with cases.case(name):
            preview = setup.api.post("/api/v1/preview", api_body(setup.world, text=text))
            assert preview.status_code == 200, preview.get_data(as_text=True)
            assert preview.get_json()["text_if_published_now"] == final
            created = setup.api.create(api_body(setup.world, text=text))
            assert created.status_code == 201, created.get_data(as_text=True)
            body = created.get_json()
            assert (body["submitted_text"], body["text_if_published_now"]) == (text, final)
            _assert_stored_exactly(setup.world, body["id"], text, final)
    cases.check()


def test_compose_stores_legitimate_text_exactly(setup: Setup) -> None:
    cases = Cases()
    for name, (text, final) in ACCEPTED_TEXTS.items():
        with cases.case(name):
            response = compose(setup, text=text)
            assert response.status_code == 302, response.get_data(as_text=True)[:800]
            public_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
            _assert_stored_exactly(setup.world, public_id, text, final)
    cases.check()


def _assert_escaped(page: str, value: str, where: str) -> None:
    if any(c in value for c in "<>\"'&"):
        assert value not in page, f"{value!r} unescaped on {where}"
    assert str(escape(value)) in page, f"{value!r} missing on {where}"


def test_injections_are_shown_escaped_on_every_page(app: Flask, setup: Setup) -> None:
    world = setup.world
    ids = {}
    for name, value in INJECTIONS.items():
        response = setup.api.create(api_body(world, text=value))
        assert response.status_code == 201, response.get_data(as_text=True)
        ids[name] = response.get_json()["id"]
    manager = app.test_client()
    sign_in(manager, world.manager.email)
    pages = {"queue": manager.get("/queue")}
    pages.update({f"post {n}": manager.get(f"/posts/{i}") for n, i in ids.items()})
    world.run_worker()
    pages["ledger"] = manager.get("/ledger")
    pages["timeline"] = app.test_client().get(f"/@{world.account.handle}")
    for where, response in pages.items():
        assert response.status_code == 200, where
        page = response.get_data(as_text=True)
        values = (
            [INJECTIONS[where.removeprefix("post ")]]
            if where.startswith("post ")
            else list(INJECTIONS.values())
        )
        for value in values:
            _assert_escaped(page, value, where)


def test_injections_awaiting_approval_are_escaped_on_the_approvals_page(
    app: Flask, world: World
) -> None:
    world.approve_notice(world.open_window(requires_approval=True))
    world.run_worker()
    api = scheduler_for(app.test_client(), world)
    for value in INJECTIONS.values():
        assert api.create(api_body(world, text=value)).status_code == 201
    principal = app.test_client()
    sign_in(principal, world.principal.email)
    page = principal.get("/approvals").get_data(as_text=True)
    for value in INJECTIONS.values():
        _assert_escaped(page, value, "approvals")


# --------------------------------------------------------------------------------------------
# Sizes and nesting


def test_a_ten_megabyte_body_is_413_everywhere(setup: Setup) -> None:
    before = stored(setup.world)
    huge = "x" * (10 * 1024 * 1024)
    for path in ("/api/v1/posts", "/api/v1/preview"):
        response = setup.api.post(
            path,
            key=str(uuid.uuid4()),
            data='{"text": "' + huge + '"}',
            content_type="application/json",
        )
        assert response.status_code == 413
        assert_problem(response, None)
    response = compose(setup, text=huge)
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert stored(setup.world) == before


def test_a_ten_megabyte_text_is_413_in_the_composers_multipart_form_too(setup: Setup) -> None:
    # The compose form takes large files (phone photos), never a large text field.
    before = stored(setup.world)
    data = {
        "account_id": str(setup.world.account.id),
        "text": "x" * (10 * 1024 * 1024),
        "publish_at": "",
        "timezone": "UTC",
        "action": "submit",
        "csrf_token": csrf_from(setup.web, "/compose"),
        "image_1": (io.BytesIO(b""), ""),
    }
    response = setup.web.post("/compose", data=data, content_type="multipart/form-data")
    # werkzeug's test client spools a body over 500 kB to a temporary file it never closes.
    response.request.environ["wsgi.input"].close()
    assert response.status_code == 413
    assert stored(setup.world) == before


def test_json_nested_ten_thousand_deep_is_400(setup: Setup) -> None:
    before = stored(setup.world)
    deep = '{"text": ' + "[" * 10_000 + "]" * 10_000 + "}"
    for path in ("/api/v1/posts", "/api/v1/preview"):
        response = setup.api.post(
            path, key=str(uuid.uuid4()), data=deep, content_type="application/json"
        )
        assert response.status_code == 400
        assert_problem(response, None)
    token = csrf_from(setup.web, "/compose")
    response = setup.web.post(
        "/compose/preview",
        data=deep,
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert stored(setup.world) == before


# --------------------------------------------------------------------------------------------
# Dates and time zones

# name -> (publish_at, timezone or None, field named)
API_BAD_TIMES: dict[str, tuple[Any, Any, str]] = {
    "year-one": ("0001-01-01T00:00:00Z", None, "publish_at"),
    "year-one-local-east": ("0001-01-01T00:00:00", "Asia/Tokyo", "publish_at"),
    "end-of-time": ("9999-12-31T23:59:59Z", None, "publish_at"),
    "end-of-time-local-west": ("9999-12-31T23:59:59", "America/Los_Angeles", "publish_at"),
    "february-30": ("2026-02-30T10:00:00Z", None, "publish_at"),
    "offset-99-hours": ("2026-11-21T10:00:00+99:00", None, "publish_at"),
    "epoch-number": (10**20, None, "publish_at"),
    "empty": ("", None, "publish_at"),
    "mars": ("2026-11-21T10:00:00", "Mars/Olympus", "timezone"),
    "path-traversal": ("2026-11-21T10:00:00", "../../etc/passwd", "timezone"),
    "zone-300-chars": ("2026-11-21T10:00:00", "Europe/" + "x" * 293, "timezone"),
    "zone-as-number": ("2026-11-21T10:00:00", 5, "timezone"),
}


def test_api_refuses_absurd_dates_and_zones(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for name, (publish_at, zone, field) in API_BAD_TIMES.items():
        changes: dict[str, Any] = {"publish_at": publish_at}
        if zone is not None:
            changes["timezone"] = zone
        for path in API_PATHS:
            with cases.case(f"{name} {path}"):
                body = api_body(setup.world, **changes)
                response = setup.api.post(path, body, key=str(uuid.uuid4()))
                if name == "end-of-time" and path == "/api/v1/preview":
                    # A valid instant: the preview says the policy refuses it (no window then).
                    assert response.status_code == 200
                    assert response.get_json()["accepted"] is False
                elif name == "end-of-time":
                    problem = assert_problem(response, None)
                    assert problem["code"] == "policy_refused"
                else:
                    assert_problem(response, field)
                assert stored(setup.world) == before
    cases.check()


# name -> (publish_at, timezone)
WEB_BAD_TIMES: dict[str, tuple[str, str]] = {
    "year-one": ("0001-01-01T00:00", "UTC"),
    "year-one-east": ("0001-01-01T00:00", "Asia/Tokyo"),
    "end-of-time-west": ("9999-12-31T23:59", "America/Los_Angeles"),
    "february-30": ("2026-02-30T10:00", "UTC"),
    "offset-99-hours": ("2026-11-21T10:00+99:00", "UTC"),
    "epoch-number": (str(10**20), "UTC"),
    "mars": ("2026-11-21T10:00", "Mars/Olympus"),
    "path-traversal": ("2026-11-21T10:00", "../../etc/passwd"),
    "zone-300-chars": ("2026-11-21T10:00", "Europe/" + "x" * 293),
}


def test_compose_refuses_absurd_dates_and_zones(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for name, (publish_at, zone) in WEB_BAD_TIMES.items():
        for action in ("submit", "preview"):
            with cases.case(f"{name} {action}"):
                response = compose(setup, publish_at=publish_at, timezone=zone, action=action)
                assert response.status_code == 422
                assert_form_refused(response)
                assert stored(setup.world) == before
    cases.check()


# --------------------------------------------------------------------------------------------
# Accounts and authors

API_BAD_ACCOUNTS: dict[str, Any] = {
    "zero": 0,
    "negative": -1,
    "2**63": 2**63,
    "2**64": 2**64,
    "string": "1",
    "float": 1.5,
    "null": None,
    "bool": True,
}


def test_api_refuses_invalid_account_ids_and_hides_others(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for name, account in API_BAD_ACCOUNTS.items():
        for path in API_PATHS:
            with cases.case(f"{name} {path}"):
                body = api_body(setup.world, account=account)
                response = setup.api.post(path, body, key=str(uuid.uuid4()))
                assert response.status_code == 422
                assert_problem(response, "account")
                assert stored(setup.world) == before
    for account in (2**63 - 1, setup.other_account.id):
        for path in API_PATHS:
            with cases.case(f"{account} {path}"):
                body = api_body(setup.world, account=account)
                response = setup.api.post(path, body, key=str(uuid.uuid4()))
                assert response.status_code == 404
                assert_problem(response, None)
                assert stored(setup.world) == before
    cases.check()


def _api_bad_authors(world: World) -> dict[str, Any]:
    return {
        "unknown": "ghost@example.test",
        "not-assigned": world.outsider.email,
        "sql": "' OR 1=1 --@x.test",
        "script": "<script>@x.test",
        "nul": "jordan\x00@example.test",
        "number": 42,
        "empty": "",
    }


def test_api_refuses_unknown_and_other_authors(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for name, author in _api_bad_authors(setup.world).items():
        for path in API_PATHS:
            with cases.case(f"{name} {path}"):
                body = api_body(setup.world, author=author)
                response = setup.api.post(path, body, key=str(uuid.uuid4()))
                problem = assert_problem(response, None)
                assert "author" in problem.get("errors", {}) or response.status_code == 403
                assert stored(setup.world) == before
    cases.check()


WEB_BAD_ACCOUNTS = ["", "0", "-1", str(2**63), str(2**64), "1.5", "abc", "1 OR 1=1", "\x00"]


def test_compose_refuses_invalid_and_other_account_ids(setup: Setup) -> None:
    cases = Cases()
    before = stored(setup.world)
    for raw in WEB_BAD_ACCOUNTS:
        with cases.case(repr(raw)):
            assert_form_refused(compose(setup, account_id=raw))
            assert stored(setup.world) == before
    with cases.case("not assigned"):
        assert compose(setup, account_id=str(setup.other_account.id)).status_code == 403
        assert stored(setup.world) == before
    cases.check()


# --------------------------------------------------------------------------------------------
# Windows form and admin users form


@pytest.fixture
def manager_web(app: Flask, world: World) -> FlaskClient:
    web = app.test_client()
    sign_in(web, world.manager.email)
    return web


def window_form(world: World, **changes: str) -> dict[str, str]:
    return {
        "name": "Summit",
        "account_id": str(world.account.id),
        "starts_at": "2026-11-22T09:00",
        "ends_at": "2026-11-22T18:00",
        "timezone": "UTC",
        "notice_text": "My team helps me post during the summit.",
        "reminder_text": "My team helps run this account.",
        "reason": "The principal is at a conference; the team posts.",
        "reminder_every": "10",
        "reminder_mode": "inline",
        "tag": "#team",
        "tag_mode": "when_fits",
        "tag_position": "end",
        **changes,
    }


WINDOW_REFUSED = {
    "name-nul": ("name", "Summit\x00"),
    "name-escape": ("name", "Summit\x1b[2J"),
    "notice-nul": ("notice_text", "My team \x00 helps."),
    "notice-bell": ("notice_text", "My team helps.\x07"),
    "notice-open-rlo": ("notice_text", "My team helps. \u202e"),
    "reminder-nul": ("reminder_text", "\x00"),
    "tag-nul": ("tag", "#te\x00am"),
    "starts-year-one-east": ("starts_at", "0001-01-01T00:00"),
    "zone-traversal": ("timezone", "../../etc/passwd"),
}


def test_the_windows_form_refuses_hostile_values(world: World, manager_web: FlaskClient) -> None:
    cases = Cases()
    before = stored(world)
    for name, (field, value) in WINDOW_REFUSED.items():
        changes = {field: value}
        if name == "starts-year-one-east":
            changes["timezone"] = "Asia/Tokyo"
        with cases.case(name):
            token = csrf_from(manager_web, "/windows/new")
            response = manager_web.post(
                "/windows/new", data={**window_form(world, **changes), "csrf_token": token}
            )
            assert_form_refused(response)
            assert response.status_code == 422
            assert stored(world) == before
            with world.ctx.uow() as uow:
                assert uow.windows.list_for_account(world.account.id) == []
    cases.check()


def test_window_names_and_notices_are_stored_exactly_and_shown_escaped(
    world: World, manager_web: FlaskClient
) -> None:
    for day, value in enumerate(INJECTIONS.values(), start=22):
        token = csrf_from(manager_web, "/windows/new")
        form = window_form(
            world,
            name=f"W {value}",
            notice_text=f"My team helps. {value}",
            starts_at=f"2026-11-{day}T09:00",
            ends_at=f"2026-11-{day}T18:00",
        )
        response = manager_web.post("/windows/new", data={**form, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)[:800]
    with world.ctx.uow() as uow:
        kept = {
            (w.name, w.policy.notice_text) for w in uow.windows.list_for_account(world.account.id)
        }
    assert kept == {(f"W {v}", f"My team helps. {v}") for v in INJECTIONS.values()}
    windows_page = manager_web.get("/windows").get_data(as_text=True)
    principal = manager_web.application.test_client()
    sign_in(principal, world.principal.email)
    approvals_page = principal.get("/approvals").get_data(as_text=True)
    for value in INJECTIONS.values():
        _assert_escaped(windows_page, f"W {value}", "windows")
        _assert_escaped(approvals_page, f"My team helps. {value}", "approvals")


@pytest.fixture
def admin_web(app: Flask, world: World) -> Iterator[FlaskClient]:
    from ghostpost.domain.model import Role

    directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="root@example.test",
        name="Root",
        role=Role.ADMIN,
        password="password-123",
    )
    web = app.test_client()
    sign_in(web, "root@example.test")
    yield web


def user_form(**changes: str) -> dict[str, str]:
    return {
        "email": "new.person@example.test",
        "name": "New Person",
        "role": "writer",
        "password": "a-long-enough-password-1",
        **changes,
    }


USER_REFUSED = {
    "name-nul": ("name", "New\x00Person"),
    "name-escape": ("name", "New\x1b[2JPerson"),
    "name-open-rlo": ("name", "New Person\u202e"),
    "email-nul": ("email", "new\x00@example.test"),
    "principal-2**64": ("principal_id", str(2**64)),
    "role-sql": ("role", "admin' --"),
}


def test_the_users_form_refuses_hostile_values(world: World, admin_web: FlaskClient) -> None:
    cases = Cases()
    with world.ctx.uow() as uow:
        users_before = len(uow.users.list())
    before = stored(world)
    for name, (field, value) in USER_REFUSED.items():
        with cases.case(name):
            token = csrf_from(admin_web, "/admin/users")
            response = admin_web.post(
                "/admin/users", data={**user_form(**{field: value}), "csrf_token": token}
            )
            assert_form_refused(response)
            # The form has no principal field since issue 12: any principal_id sent is an
            # admin trying to link a principal, refused (403) whatever its value.
            assert response.status_code == (403 if field == "principal_id" else 422)
            assert stored(world) == before
            with world.ctx.uow() as uow:
                assert len(uow.users.list()) == users_before
    cases.check()


def test_user_names_are_stored_exactly_and_shown_escaped(
    world: World, admin_web: FlaskClient
) -> None:
    for number, value in enumerate(INJECTIONS.values()):
        token = csrf_from(admin_web, "/admin/users")
        form = user_form(name=f"Ms {value}", email=f"person{number}@example.test")
        response = admin_web.post("/admin/users", data={**form, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)[:800]
    with world.ctx.uow() as uow:
        names = {u.name for u in uow.users.list()}
    page = admin_web.get("/admin/users").get_data(as_text=True)
    for value in INJECTIONS.values():
        assert f"Ms {value}" in names
        _assert_escaped(page, f"Ms {value}", "admin users")


# --------------------------------------------------------------------------------------------
# Approval comments and ledger filters (NUL cannot even be a PostgreSQL query parameter)


def test_approval_comments_refuse_control_characters_and_keep_injections_as_text(
    app: Flask, world: World
) -> None:
    world.approve_notice(world.open_window(requires_approval=True))
    world.run_worker()
    first = world.submit(world.writer_a, "first for approval")
    second = world.submit(world.writer_a, "second for approval")
    principal = app.test_client()
    sign_in(principal, world.principal.email)
    cases = Cases()
    for decision in ("approve", "reject"):
        with cases.case(f"nul {decision}"):
            before = stored(world)
            response = principal.post(
                f"/approvals/posts/{first.public_id}",
                data={
                    "decision": decision,
                    "comment": "no\x00pe",
                    "csrf_token": csrf_from(principal, "/approvals"),
                },
            )
            assert_form_refused(response, "U+0000")
            assert response.status_code == 422
            assert stored(world) == before
            assert world.post(first.id).state.value == "pending_approval"
    comment = INJECTIONS["script"]
    response = principal.post(
        f"/approvals/posts/{second.public_id}",
        data={
            "decision": "reject",
            "comment": comment,
            "csrf_token": csrf_from(principal, "/approvals"),
        },
    )
    assert response.status_code == 302
    assert world.post(second.id).state_reason == f"rejected by {world.principal.name}: {comment}"
    page = principal.get(f"/posts/{second.public_id}").get_data(as_text=True)
    _assert_escaped(page, comment, "post detail")
    cases.check()


def test_ledger_and_export_filters_refuse_nul(app: Flask, world: World) -> None:
    manager = app.test_client()
    sign_in(manager, world.manager.email)
    cases = Cases()
    for query in (
        "/ledger?subject=a%00b",
        "/ledger?action=a%00b",
        "/ledger?author=a%00b",
        "/queue?state=a%00b",
    ):
        with cases.case(query):
            response = manager.get(query)
            assert 400 <= response.status_code < 500, response.status_code
    for query in (
        "/ledger/export?author=a%00b&format=csv",
        "/ledger/export?author=a%00b&report=ledger",
    ):
        with cases.case(query):
            # The export form's convention: back to the form with the reason, nothing sent.
            response = manager.get(query)
            assert response.status_code == 302, response.status_code
            assert response.headers["Location"].endswith("/ledger#export")
            page = manager.get("/ledger").get_data(as_text=True)
            assert "Export not started" in page and "U+0000" in page
    with cases.case("injection subject"):
        value = INJECTIONS["attribute"]
        response = manager.get("/ledger", query_string={"subject": value})
        assert response.status_code == 200
        assert value not in response.get_data(as_text=True)
    cases.check()
