"""db.engine.execute_prepared stores exactly what SQLAlchemy's own execute() stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ghostpost.bootstrap import Container
from ghostpost.db.engine import (
    connection_of,
    execute_prepared,
    make_session_factory,
    read_one_prepared,
    read_one_untyped,
    typed_row,
)
from ghostpost.db.models import IdempotencyKeyRow, PostRow
from tests.support.world import World

_KEYS = IdempotencyKeyRow.__table__
_INSERT_KEY = insert(_KEYS)
# A value of the statement's own (status) bound, one of the caller's processed (JSON).
_COMPLETE = (
    update(_KEYS)
    .where(_KEYS.c.key == bindparam("for_key"), _KEYS.c.status == "in_flight")
    .values(status="completed", response_body=bindparam("body", type_=_KEYS.c.response_body.type))
)


def _stored(container: Container, key: str) -> tuple[object, ...]:
    """The row as the database holds it (the driver's values, no type processing)."""
    with container.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT fingerprint, status, response_status, response_body, created_at"
                " FROM idempotency_keys WHERE key = :key"
            ),
            {"key": key},
        ).one()
    return tuple(found)


def test_prepared_and_ordinary_statements_store_the_same_values(container: Container) -> None:
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC) + timedelta(hours=1)
    body = {"text": 'Grüße ✓ "quoted"', "n": [1, 2], "none": None}
    with container.engine.begin() as connection:
        for key, run in (("ordinary", connection.execute), ("prepared", None)):
            values = {
                "client_id": "client:x",
                "key": key,
                "fingerprint": "f" * 64,
                "status": "in_flight",
                "created_at": at,
                "response_status": 201,
            }
            if run is None:
                execute_prepared(connection, _INSERT_KEY, values)
                done = execute_prepared(connection, _COMPLETE, {"for_key": key, "body": body})
            else:
                run(_INSERT_KEY, values)
                done = run(_COMPLETE, {"for_key": key, "body": body})
            assert done.rowcount == 1
    assert _stored(container, "prepared") == _stored(container, "ordinary")
    with container.engine.connect() as connection:
        rows = connection.execute(select(_KEYS.c.response_body, _KEYS.c.created_at)).all()
    assert [tuple(r) for r in rows] == [(body, at), (body, at)]


@pytest.mark.parametrize(
    "where",
    [
        _KEYS.c.key == bindparam("k"),  # one value, no bind processor
        _KEYS.c.created_at == bindparam("at", type_=_KEYS.c.created_at.type),  # one, processed
        (_KEYS.c.key == bindparam("k")) & (_KEYS.c.client_id == bindparam("c")),  # several
        (_KEYS.c.key == bindparam("k")) & (_KEYS.c.created_at <= bindparam("at")),  # mixed
    ],
    ids=["one", "one-processed", "several", "several-processed"],
)
def test_a_prepared_statement_binds_its_values_as_sqlalchemy_does(
    container: Container, where: object
) -> None:
    """Each way of laying the caller's values out (one or several, with or without a bind
    processor) finds the rows SQLAlchemy's own execute finds, and no others."""
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    statement = select(_KEYS.c.key, _KEYS.c.client_id).where(where).order_by(_KEYS.c.key)
    with container.engine.begin() as connection:
        for key, client, later in (("a", "client:x", 0), ("b", "client:y", 0), ("c", "x", 5)):
            values = {"client_id": client, "key": key, "fingerprint": "f" * 64}
            when = at + timedelta(seconds=later)
            connection.execute(_INSERT_KEY, {**values, "status": "in_flight", "created_at": when})
        given: dict[str, object] = {"k": "a", "c": "client:x", "at": at}
        names = set(statement.compile().params)
        parameters = {name: value for name, value in given.items() if name in names}
        ordinary = [tuple(row) for row in connection.execute(statement, parameters).all()]
        assert ordinary, "the case must find a row to compare"
        assert execute_prepared(connection, statement, parameters).all() == ordinary


def test_a_statement_needing_python_defaults_takes_sqlalchemys_path(world: World) -> None:
    # No `attempts`, `content_warning`, ...: their defaults are filled in Python by SQLAlchemy.
    values = {
        "public_id": "prepared-defaults",
        "account_id": world.account.id,
        "kind": "regular",
        "state": "scheduled",
        "author_id": world.writer_a.id,
        "submitter": "system:test",
        "source": "api",
        "submitted_text": "x",
        "final_text": "x",
        "publish_at": datetime(2026, 3, 1, tzinfo=UTC),
        "idempotency_key": "gp-prepared-defaults",
        "decisions": {},
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    with world.container.engine.begin() as connection:
        execute_prepared(connection, insert(PostRow.__table__), values)
        stored = connection.execute(
            select(PostRow.attempts, PostRow.content_warning, PostRow.visibility).where(
                PostRow.public_id == "prepared-defaults"
            )
        ).one()
    assert tuple(stored) == (0, "", "public")


def test_driver_errors_still_pass_through_sqlalchemy(container: Container) -> None:
    values = {
        "client_id": "client:x",
        "key": "twice",
        "fingerprint": "f",
        "status": "in_flight",
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    with container.engine.begin() as connection:
        execute_prepared(connection, _INSERT_KEY, values)
        # Wrapped by SQLAlchemy (its handle_error events ran): the type the surfaces map.
        with pytest.raises(IntegrityError):
            execute_prepared(connection, _INSERT_KEY, values)


_ONE = select(_KEYS.c.id).where(_KEYS.c.key == bindparam("for_key"))


def test_a_single_read_unit_runs_one_prepared_statement(container: Container) -> None:
    """The engine's before_execute hooks (which exec_driver_sql does not fire) still apply."""
    single = make_session_factory(container.engine, single_read=True)
    with single() as session:
        connection = connection_of(session)
        execute_prepared(connection, _ONE, {"for_key": "a"}).all()
        with pytest.raises(RuntimeError, match="one statement"):
            execute_prepared(connection, _ONE, {"for_key": "b"})


#: Typed columns whose driver values SQLAlchemy converts (JSON, the UTC datetime, a boolean on
#: SQLite), one NULL among them, and a key to read by.
_TYPED = select(
    _KEYS.c.key,
    _KEYS.c.response_body,
    _KEYS.c.created_at,
    _KEYS.c.response_status,
    (_KEYS.c.status == "in_flight").label("in_flight"),
).where(_KEYS.c.key == bindparam("for_key"))


def test_a_prepared_read_returns_what_sqlalchemys_typed_row_holds(container: Container) -> None:
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    body = {"text": "Grüße ✓", "n": [1, 2], "none": None}
    with container.engine.begin() as connection:
        connection.execute(
            _INSERT_KEY,
            {
                "client_id": "client:x",
                "key": "typed",
                "fingerprint": "f",
                "status": "in_flight",
                "created_at": at,
                "response_body": body,
            },
        )
    with container.engine.connect() as connection:
        typed = tuple(connection.execute(_TYPED, {"for_key": "typed"}).one())
        assert read_one_prepared(connection, _TYPED, {"for_key": "typed"}) == typed
        assert typed == ("typed", body, at, None, True)
        assert read_one_prepared(connection, _TYPED, {"for_key": "missing"}) is None
        # The same row before it is typed (what the plan ahead compares), then typed.
        untyped = read_one_untyped(connection, _TYPED, {"for_key": "typed"})
        assert untyped is not None and len(untyped) == len(typed)
        assert typed_row(connection, _TYPED, {"for_key": "typed"}, untyped) == typed
        assert read_one_untyped(connection, _TYPED, {"for_key": "missing"}) is None


def test_a_prepared_read_is_seen_and_wrapped_like_any_statement(container: Container) -> None:
    """Statement listeners (counters, tests' race hooks) see it; a driver error comes back as
    SQLAlchemy's (the type the surfaces map); the single-read count applies."""
    seen: list[str] = []

    def _statement(conn: object, cursor: object, sql: str, *args: object) -> None:
        seen.append(sql)

    event.listen(container.engine, "before_cursor_execute", _statement)
    try:
        with container.engine.connect() as connection:
            read_one_prepared(connection, _ONE, {"for_key": "a"})
    finally:
        event.remove(container.engine, "before_cursor_execute", _statement)
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("SELECT")
    broken = (
        select(_KEYS.c.id)
        .where(_KEYS.c.key == bindparam("for_key"))
        .where(text("no_such_column = 1"))
    )
    with container.engine.connect() as connection, pytest.raises(DBAPIError):
        read_one_prepared(connection, broken, {"for_key": "a"})
    single = make_session_factory(container.engine, single_read=True)
    with single() as session:
        connection = connection_of(session)
        read_one_prepared(connection, _ONE, {"for_key": "a"})
        with pytest.raises(RuntimeError, match="one statement"):
            read_one_prepared(connection, _ONE, {"for_key": "b"})
