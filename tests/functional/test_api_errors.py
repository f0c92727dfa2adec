"""Bad input never breaks /api/v1: every mistake is a 4xx application/problem+json with a
stable type, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Window
from tests.support.api import Scheduler, scheduler_for
from tests.support.world import World

PROBLEM = "application/problem+json"


@pytest.fixture
def scheduler(client: FlaskClient, world: World, opened_window: Window) -> Scheduler:
    return scheduler_for(client, world)


def valid(world: World, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": world.account.id,
        "text": "A perfectly fine post",
        "author": world.writer_a.email,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    problem: dict[str, Any] = response.get_json()
    assert problem["type"] == f"urn:ghostpost:problem:{code}"
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    return problem


def assert_nothing_stored(world: World) -> None:
    with world.ctx.uow() as uow:
        posts = uow.posts.list_for_account(world.account.id)
        submitted = [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]
    assert [p.kind.value for p in posts] == ["notice"]
    assert submitted == []


# (raw body, content type) -> (status, code, field that the errors map names, if any)
RAW_BODIES = {
    "malformed-json": (b'{"account": 1,', "application/json", 400, "invalid_json", None),
    "invalid-utf8": (b'{"text": "\xff\xfe"}', "application/json", 400, "invalid_json", None),
    "utf8-bom": (b'\xef\xbb\xbf{"account": 1}', "application/json", 400, "invalid_json", None),
    "deep-nesting": (
        b"[" * 100_000 + b"]" * 100_000,
        "application/json",
        400,
        "invalid_json",
        None,
    ),
    "huge-integer": (
        b'{"account": 1' + b"0" * 5000 + b"}",
        "application/json",
        400,
        "invalid_json",
        None,
    ),
    "json-array": (b"[1, 2]", "application/json", 422, "validation_failed", "body"),
    "json-string": (b'"hello"', "application/json", 422, "validation_failed", "body"),
    "json-null": (b"null", "application/json", 422, "validation_failed", "body"),
    "empty-body": (b"", "application/json", 400, "invalid_json", None),
    "form-encoded": (
        b"account=1&text=hi",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
    "plain-text": (b'{"account": 1}', "text/plain", 415, "unsupported_media_type", None),
    "nan": (
        b'{"account": NaN, "text": "x", "author": "a@b.c"}',
        "application/json",
        422,
        "validation_failed",
        "account",
    ),
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_a_body_that_is_not_a_json_object_is_a_problem(
    scheduler: Scheduler, world: World, name: str
) -> None:
    raw, content_type, status, code, field = RAW_BODIES[name]

    response = scheduler.post("/api/v1/posts", key=f"k-{name}", data=raw, content_type=content_type)

    problem = assert_problem(response, status, code)
    if field:
        assert field in problem["errors"]
    assert_nothing_stored(world)


def test_a_body_over_one_mebibyte_is_413(scheduler: Scheduler, world: World) -> None:
    huge = json.dumps(valid(world, text="x" * (1024 * 1024 + 1)))

    response = scheduler.post(
        "/api/v1/posts", key="big", data=huge, content_type="application/json"
    )

    assert_problem(response, 413, "payload_too_large")
    assert_nothing_stored(world)


# changes to a valid body -> (status, code, field named in `errors`)
BAD_FIELDS: dict[str, tuple[dict[str, Any], int, str, str | None]] = {
    "unknown-field": ({"visibility": "public"}, 422, "validation_failed", "visibility"),
    "missing-text": ({"text": ...}, 422, "validation_failed", "text"),
    "missing-author": ({"author": ...}, 422, "validation_failed", "author"),
    "account-as-string": ({"account": "1"}, 422, "validation_failed", "account"),
    "account-as-float": ({"account": 1.5}, 422, "validation_failed", "account"),
    "account-as-bool": ({"account": True}, 422, "validation_failed", "account"),
    "account-zero": ({"account": 0}, 422, "validation_failed", "account"),
    "account-beyond-64-bits": ({"account": 2**70}, 422, "validation_failed", "account"),
    "text-as-number": ({"text": 42}, 422, "validation_failed", "text"),
    "text-as-list": ({"text": ["a"]}, 422, "validation_failed", "text"),
    "text-lone-surrogate": ({"text": "half \ud800 a pair"}, 422, "validation_failed", "text"),
    "text-nul": ({"text": "nul \x00 byte"}, 422, "validation_failed", "text"),
    "text-too-long": ({"text": "x" * 50_001}, 422, "validation_failed", "text"),
    "author-null": ({"author": None}, 422, "validation_failed", "author"),
    "author-unknown": ({"author": "ghost@example.test"}, 422, "validation_failed", "author"),
    "date-not-a-date": ({"publish_at": "tomorrow"}, 422, "validation_failed", "publish_at"),
    "date-month-13": (
        {"publish_at": "2026-13-01T00:00:00Z"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "date-no-seconds": (
        {"publish_at": "2026-11-21T10:00Z"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "date-year-zero": (
        {"publish_at": "0000-01-01T00:00:00Z"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "date-overflows-utc": (
        {"publish_at": "0001-01-01T00:00:00+01:00"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "date-in-the-past": (
        {"publish_at": "2026-11-20T09:00:00Z"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "date-naive-no-zone": (
        {"publish_at": "2026-11-21T10:00:00"},
        422,
        "validation_failed",
        "timezone",
    ),
    "zone-unknown": (
        {"publish_at": "2026-11-21T10:00:00", "timezone": "Mars/Olympus"},
        422,
        "validation_failed",
        "timezone",
    ),
    "zone-path": (
        {"publish_at": "2026-11-21T10:00:00", "timezone": "../../etc/passwd"},
        422,
        "validation_failed",
        "timezone",
    ),
    "zone-and-offset": (
        {"publish_at": "2026-11-21T10:00:00Z", "timezone": "UTC"},
        422,
        "validation_failed",
        "timezone",
    ),
    "zone-without-date": ({"timezone": "Europe/Paris"}, 422, "validation_failed", "timezone"),
    "local-time-skipped": (
        {"publish_at": "2027-03-28T02:30:00", "timezone": "Europe/Paris"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "local-time-repeated": (
        {"publish_at": "2027-10-31T02:30:00", "timezone": "Europe/Paris"},
        422,
        "validation_failed",
        "publish_at",
    ),
    "in-reply-to-number": ({"in_reply_to": 12345}, 422, "validation_failed", "in_reply_to"),
    "unknown-account": ({"account": 9999}, 404, "not_found", None),
    "empty-text": ({"text": "   "}, 422, "policy_refused", None),
    "over-budget": ({"text": "x" * 501}, 422, "policy_refused", None),
}


@pytest.mark.parametrize("name", list(BAD_FIELDS))
def test_a_bad_field_is_a_problem_naming_it_and_nothing_is_stored(
    scheduler: Scheduler, world: World, name: str
) -> None:
    changes, status, code, field = BAD_FIELDS[name]

    response = scheduler.create(valid(world, **changes), key=f"key-{name}")

    problem = assert_problem(response, status, code)
    if field:
        assert field in problem["errors"], problem
    assert_nothing_stored(world)


def test_preview_answers_bad_input_the_same_way(scheduler: Scheduler, world: World) -> None:
    response = scheduler.post("/api/v1/preview", valid(world, publish_at="soon", extra=1))

    problem = assert_problem(response, 422, "validation_failed")
    assert set(problem["errors"]) == {"extra"}  # unknown fields are reported first


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("state=lost", "state"),
        ("account=-1", "account"),
        ("account=99999999999999999999999", "account"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("cursor=%00", "cursor"),
        ("author=%00", "author"),
        ("colour=blue", "colour"),
    ],
)
def test_bad_list_filters_are_422_naming_the_parameter(
    scheduler: Scheduler, query: str, field: str
) -> None:
    problem = assert_problem(scheduler.get("/api/v1/posts?" + query), 422, "validation_failed")

    assert field in problem["errors"]


def test_unknown_routes_and_methods_under_the_api_are_problems(scheduler: Scheduler) -> None:
    assert_problem(scheduler.get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(
        scheduler.http.put("/api/v1/posts", headers=scheduler.auth), 405, "method_not_allowed"
    )


def test_a_problem_type_has_one_title_on_every_surface(scheduler: Scheduler) -> None:
    """A client shows a problem's title and branches on its code: the same code has the same
    title whether the API, the public pages or the staff app's poll answers it."""
    json_please = {"Accept": "application/json"}
    not_found = [
        scheduler.get("/api/v1/nothing-here"),
        scheduler.http.get("/@nobody", headers=json_please),
        scheduler.http.get("/@nobody/disclosure.json"),
    ]
    unauthorized = [
        scheduler.http.get("/api/v1/posts"),
        scheduler.http.get("/posts/status", headers=json_please),
    ]
    for responses, code, title in (
        (not_found, "not_found", "Not found"),
        (unauthorized, "unauthorized", "Unauthorized"),
    ):
        for response in responses:
            problem = response.get_json(force=True)
            assert response.mimetype == PROBLEM, response.request.path
            assert (problem["code"], problem["title"]) == (code, title), response.request.path


def test_a_missing_or_bad_token_is_401_before_the_body_is_read(
    client: FlaskClient, world: World
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        response = client.post("/api/v1/posts", data=b"{", headers=headers)
        assert response.status_code == 401
        assert response.mimetype == PROBLEM
        assert "WWW-Authenticate" in response.headers
