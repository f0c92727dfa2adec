"""The authorship report reads a post's stored `decisions` through `decision_summary`; on
SQLite the export computes the same summary in SQL (json_type / json_extract, so no document is
decoded in Python). The two must agree for any document, the odd ones included (a missing or
null stage, a tag that is not an object, a number where a word belongs, "delegated" as any JSON
value): a report that said "#team added" where the stored decision says otherwise would be a
false disclosure record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, String, create_engine, literal, select, type_coerce

from ghostpost.db.exports import _sqlite_decision_summary
from ghostpost.domain.policy import decision_summary

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "#team", "applied", "skipped", "inline", "standalone", "none", "x"])
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["tag", "outcome", "a"]), inner, max_size=3)
    ),
    max_leaves=6,
)
TAG = st.fixed_dictionaries(
    {},
    optional={
        "tag": ANY_JSON,
        "outcome": ANY_JSON,
        "needs": ANY_JSON,
        "has": ANY_JSON,
        "unit": ANY_JSON,
    },
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "stage": st.sampled_from(["submission", "publication"]),
        "tag": TAG | ANY_JSON,
        "reminder": st.fixed_dictionaries({}, optional={"outcome": ANY_JSON}) | ANY_JSON,
    },
)
DECISIONS = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "delegated": ANY_JSON,
        "submission": RECORD | ANY_JSON,
        "publication": RECORD | ANY_JSON,
        "hold": ANY_JSON,
    },
)


@pytest.fixture(scope="module")
def sqlite() -> Iterator[Connection]:
    with create_engine("sqlite://").connect() as connection:
        yield connection


def summary_in_sql(connection: Connection, document: str | None) -> tuple[Any, ...]:
    column = type_coerce(literal(document, String), String)
    row = connection.execute(select(*_sqlite_decision_summary(column))).one()
    return (bool(row[0]), *row[1:])


def test_a_real_decision_is_summarised_alike(sqlite: Connection) -> None:
    record = {
        "stage": "publication",
        "outcome": "publish",
        "tag": {"outcome": "skipped", "tag": "#team", "needs": 6, "has": 2, "unit": "characters"},
        "reminder": {"outcome": "inline", "reason": "post 10 of every 10"},
        "length": {"used": 498, "limit": 500, "unit": "characters"},
        "held_reason": None,
        "refusal": None,
        "notes": ["a note"],
    }
    decisions = {"delegated": True, "submission": {**record, "stage": "submission"}}
    decisions["publication"] = record
    expected = (True, "publication", "#team", "skipped", 6, 2, "characters", "inline")
    assert decision_summary(decisions) == expected
    assert summary_in_sql(sqlite, json.dumps(decisions)) == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decisions=DECISIONS)
def test_sql_and_python_summaries_agree(sqlite: Connection, decisions: Any) -> None:
    # As SQLAlchemy's JSON type stores it: None as JSON null.
    document = json.dumps(decisions)
    in_sql = summary_in_sql(sqlite, document)
    in_python = decision_summary(decisions)
    assert in_sql == in_python
    # Same types too (1 == True, 1.0 == 1): an integer cell is not a float's.
    assert [type(v) for v in in_sql] == [type(v) for v in in_python]


def test_a_null_column_is_summarised_as_no_decision(sqlite: Connection) -> None:
    assert summary_in_sql(sqlite, None) == decision_summary(None)
