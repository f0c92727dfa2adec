"""The hot path's parsing and rendering (api/schemas.py) against the marshmallow schemas they
stand in for: same data out, and every input the fast loader declines left to the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ghostpost.api.schemas import (
    MAX_ID,
    PostRequestSchema,
    PostSchema,
    PreviewSchema,
    load_post_request,
    plain_dumper,
)
from ghostpost.services.posts import MAX_TEXT_CODE_POINTS

_TRICKY_TEXTS = (
    "",
    "ab",
    "jordan@demo.test",
    "line one\nline two\ttab",
    "bell \x07",
    "del \x7f",
    "nul \x00",
    "lone \ud800 surrogate",
    "open \u202e bidi",
    "closed \u2066 isolate \u2069 done",
    "café ☕ 👩🏽‍💻",
    "x" * 320,
    "x" * 321,
    "y" * MAX_TEXT_CODE_POINTS,
    "y" * (MAX_TEXT_CODE_POINTS + 1),
    "2026-11-21T16:00:00+01:00",
    "2026-11-21T16:00:00Z",
    "2026-11-21t16:00:00z",
    "2026-11-21T16:00:00",
    "2026-03-29T02:30:00",
    "2026-10-25T02:30:00",
    "2026-02-30T10:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "Europe/Paris",
    "Not/AZone",
)
_TRICKY_TEXT = st.sampled_from(_TRICKY_TEXTS)
_TEXT = st.one_of(_TRICKY_TEXT, st.text(max_size=30))
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=MAX_ID + 2),
    st.sampled_from([0, 1, MAX_ID, MAX_ID + 1, 1.0, 2.5]),
    _TEXT,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
_FIELDS = ("account", "text", "author", "publish_at", "timezone", "in_reply_to")


@st.composite
def _bodies(draw: Any) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(_VALUE)  # not even an object
    body: dict[str, Any] = {}
    for name in _FIELDS:
        if draw(st.integers(0, 3)) == 0:
            continue  # absent
        if name == "account":
            body[name] = draw(st.one_of(st.integers(1, 50), _VALUE))
        else:
            body[name] = draw(st.one_of(_TEXT, _VALUE))
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.sampled_from(["extra", "Account", "id"]))] = draw(_VALUE)
    return body


def _schema_load(body: Any) -> dict[str, Any] | str:
    try:
        loaded: dict[str, Any] = PostRequestSchema().load(body)
    except ma.ValidationError:
        return "refused"
    return loaded


@settings(max_examples=600, deadline=None)
@given(_bodies())
@example({"account": 1, "text": "Hello", "author": "jordan@demo.test"})
@example({"account": True, "text": "Hello", "author": "jordan@demo.test"})
@example({"account": 1, "text": "Hi", "author": "a@b.c", "publish_at": None, "timezone": "UTC"})
@example({"account": 1, "text": "Hi", "author": "a@b.c", "publish_at": "2026-03-29T02:30:00",
          "timezone": "Europe/Paris"})  # fmt: skip
def test_the_fast_loader_accepts_only_what_the_schema_accepts_and_loads_the_same(
    body: Any,
) -> None:
    fast = load_post_request(body)
    if fast is not None:
        assert _schema_load(body) == fast


_VALID = {"account": 3, "text": "Hello", "author": "jo@demo.test"}
_NEAR_MISSES = [
    {**_VALID, name: value}
    for name in _FIELDS
    for value in [
        None, True, 0, -1, 1, MAX_ID, MAX_ID + 1, 1.0, 2.5, [], {}, "a" * 201, "a" * 41,
        "a" * 65, *_TRICKY_TEXTS,
    ]
] + [{k: v for k, v in _VALID.items() if k != name} for name in _VALID] + [
    {**_VALID, "publish_at": "2026-11-21T16:00:00", "timezone": zone}
    for zone in ["Europe/Paris", "Not/AZone", "", None]
]  # fmt: skip


@pytest.mark.parametrize("body", _NEAR_MISSES)
def test_one_field_off_is_loaded_as_the_schema_loads_it_or_left_to_it(body: Any) -> None:
    fast = load_post_request(body)
    if fast is not None:
        assert _schema_load(body) == fast


@pytest.mark.parametrize(
    "body",
    [
        {"account": 1, "text": "Day two: the keynote starts at 10.", "author": "jo@demo.test"},
        {"account": 7, "text": "Two\nlines, café", "author": "jo@demo.test", "in_reply_to": None},
        {
            "account": MAX_ID,
            "text": "",
            "author": "jo@demo.test",
            "publish_at": "2026-11-21T16:00:00",
            "timezone": "Europe/Paris",
            "in_reply_to": "109876",
        },
        {"account": 1, "text": "Later", "author": "jo@d.t", "publish_at": "2026-11-21T16:00:00Z"},
    ],
)
def test_the_usual_requests_take_the_fast_path(body: dict[str, Any]) -> None:
    assert load_post_request(body) == PostRequestSchema().load(body)


_WHEN = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
)
_TAG = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(["applied", "skipped", "not_applicable"]),
        "tag": st.text(max_size=5),
        "needs": st.one_of(st.none(), st.integers(0, 9)),
        "has": st.one_of(st.none(), st.integers(0, 9)),
        "unit": st.one_of(st.none(), st.text(max_size=5)),
        "summary": st.text(max_size=5),  # not in the schema: dropped
    }
)
_DECISIONS = st.fixed_dictionaries(
    {
        "stage": st.one_of(st.none(), st.just("submission")),
        "outcome": st.one_of(st.none(), st.just("accepted")),
        "delegated": st.booleans(),
        "tag": _TAG,
        "reminder": st.fixed_dictionaries(
            {"outcome": st.just("not_applicable"), "reason": st.text(max_size=5)}
        ),
        "held_reason": st.one_of(st.none(), st.text(max_size=5)),
        "length": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"used": st.integers(0, 500), "limit": st.integers(1, 500), "unit": st.just("x")},
                optional={"extra": st.integers()},
            ),
        ),
        "refusal": st.one_of(
            st.none(),
            st.fixed_dictionaries({"code": st.text(max_size=4), "message": st.text(max_size=4)}),
        ),
        "notes": st.lists(st.text(max_size=4), max_size=2),
    }
)
_COMMON = {
    "account": st.fixed_dictionaries(
        {"id": st.integers(1, 9), "platform": st.just("local"), "handle": st.text(max_size=4)}
    ),
    "author": st.fixed_dictionaries({"email": st.text(max_size=6), "name": st.text(max_size=6)}),
    "window": st.one_of(st.none(), st.integers(1, 9)),
    "publish_at": _WHEN,
    "text_if_published_now": st.one_of(st.none(), st.text(max_size=6)),
    "decided_at_publication": st.lists(st.sampled_from(["tag", "reminder"]), max_size=2),
    "decided_at_publication_note": st.text(max_size=6),
    "decisions": _DECISIONS,
}
_POSTS = st.fixed_dictionaries(
    {
        **_COMMON,
        "id": st.uuids().map(str),
        "kind": st.just("regular"),
        "state": st.just("queued"),
        "state_reason": st.one_of(st.none(), st.text(max_size=4)),
        "submitter": st.text(max_size=4),  # not in the schema: dropped
        "source": st.just("api"),
        "submitted_text": st.text(max_size=8),
        "published_text": st.one_of(st.none(), st.text(max_size=4)),
        "published_at": _WHEN,
        "created_at": _WHEN.filter(lambda when: when is not None),
        "platform_url": st.one_of(st.none(), st.text(max_size=4)),
        "in_reply_to": st.one_of(st.none(), st.text(max_size=4)),
        "links": st.fixed_dictionaries({"self": st.text(max_size=4), "cancel": st.text()}),
    },
    optional={"unexpected": st.integers()},
)
_PREVIEWS = st.fixed_dictionaries({**_COMMON, "accepted": st.booleans()})


@settings(max_examples=300, deadline=None)
@given(_POSTS)
def test_a_post_renders_as_the_post_schema_dumps_it(post: dict[str, Any]) -> None:
    rendered = plain_dumper(PostSchema)(post)
    assert rendered == PostSchema().dump(post)
    assert list(rendered) == list(PostSchema().dump(post))  # the same order, the same bytes


@settings(max_examples=200, deadline=None)
@given(_PREVIEWS)
def test_a_preview_renders_as_the_preview_schema_dumps_it(preview: dict[str, Any]) -> None:
    assert plain_dumper(PreviewSchema)(preview) == PreviewSchema().dump(preview)


def test_a_schema_the_plain_dumper_cannot_copy_is_refused_when_built() -> None:
    class Renamed(ma.Schema):
        name = ma.fields.String(data_key="Name")

    class Hooked(ma.Schema):
        name = ma.fields.String()

        @ma.post_dump
        def shout(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return data

    class Decimal(ma.Schema):
        amount = ma.fields.Decimal()

    for schema in (Renamed, Hooked, Decimal):
        with pytest.raises(TypeError):
            plain_dumper(schema)
