"""Attacks on the fast create path (issue 14): a cached bearer token and one write transaction
per create must not let a revoked client, a withdrawn author grant or a replayed key through.

"Elsewhere" is a second container on the same database: another gunicorn process, whose
revocation this process's token cache does not hear about (it honours it within
api_token_cache_seconds, on the services' clock)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, event, update

from ghostpost import create_app
from ghostpost.api.v1 import render_post
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.db.models import (
    AssignmentRow,
    OAuthClientAuthorRow,
    OAuthClientRow,
    UserRow,
    WindowRow,
)
from ghostpost.db.writer_queue import lock_path_for
from ghostpost.domain.model import Source, Window
from ghostpost.services import clients, directory
from ghostpost.services.api_queries import PostDetails
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.conftest import BACKEND
from tests.support.api import Scheduler, scheduler_for
from tests.support.statements import counted, create_write_statements
from tests.support.world import World


@pytest.fixture
def elsewhere(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    other = bootstrap(settings, clock=clock)
    yield other
    other.dispose()


@pytest.fixture
def scheduler(client: FlaskClient, world: World, opened_window: Window) -> Scheduler:
    return scheduler_for(client, world)


def _body(world: World, text: str = "Doors open at 9") -> dict[str, Any]:
    return {"account": world.account.id, "text": text, "author": world.writer_a.email}


def _stored(world: World) -> tuple[int, int]:
    with world.ctx.uow(read_only=True) as uow:
        posts = [p for p in uow.posts.list_for_account(world.account.id) if p.source is Source.API]
        return len(posts), uow.ledger.head()[0]


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_bound(
    scheduler: Scheduler, world: World, elsewhere: Container, clock: FixedClock, settings: Settings
) -> None:
    assert scheduler.get("/api/v1/accounts").status_code == 200  # the grant is now cached
    assert clients.revoke_token(elsewhere.services, scheduler.client, scheduler.token)
    # Within the bound the cached grant may still answer reads (documented) ...
    clock.advance(seconds=settings.api_token_cache_seconds + 0.001)
    # ... past it, never.
    answer = scheduler.get("/api/v1/accounts")
    assert answer.status_code == 401, answer.get_json()


def test_a_token_revoked_in_this_process_stops_working_at_once(
    scheduler: Scheduler, world: World
) -> None:
    assert scheduler.get("/api/v1/accounts").status_code == 200
    assert clients.revoke_token(world.ctx, scheduler.client, scheduler.token)
    assert scheduler.get("/api/v1/accounts").status_code == 401


def test_a_client_revoked_elsewhere_cannot_create_while_its_token_is_cached(
    scheduler: Scheduler, world: World, elsewhere: Container
) -> None:
    assert scheduler.get("/api/v1/accounts").status_code == 200
    before = _stored(world)
    clients.revoke_client(elsewhere.services, Actor.system("test"), scheduler.client.client_id)
    before = (before[0], before[1] + 1)  # the revocation's own ledger entry
    answer = scheduler.create(_body(world), key="after-revocation")
    # 401 once the grant is read again, 403 while this process still holds it: never 201.
    assert answer.status_code in (401, 403), answer.get_json()
    assert _stored(world) == before


def test_an_author_grant_withdrawn_elsewhere_applies_to_the_very_next_create(
    scheduler: Scheduler, world: World, elsewhere: Container
) -> None:
    assert scheduler.get("/api/v1/accounts").status_code == 200
    clients.set_client_authors(
        elsewhere.services,
        Actor.system("test"),
        scheduler.client.client_id,
        author_emails=[world.writer_b.email],
        keep_default=False,
    )
    before = _stored(world)
    answer = scheduler.create(_body(world), key="withdrawn-author")
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    assert _stored(world) == before
    # The preview refuses the same way, from its one read-only transaction.
    preview = scheduler.post("/api/v1/preview", json=_body(world))
    assert preview.status_code == 422, preview.get_json()


def test_one_create_is_one_transaction_of_a_few_statements(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    with counted(container.engine) as (begins, statements):
        answer = scheduler.create(_body(world), key="counted")
    assert answer.status_code == 201, answer.get_json()
    written = create_write_statements(container.engine, begins, statements)
    # SQLite: claim the key, one read, post, ledger head, entry, head update, complete the
    # key. PostgreSQL folds them into four: the claim with the read, the post, the head's
    # lock, the key's completion with the entry and the head's move. An uncontended claim sets
    # no lock_timeout.
    assert "SET" not in written, statements
    budget = 4 if container.engine.dialect.name == "postgresql" else 7
    assert len(written) <= budget, statements
    replay = scheduler.create(_body(world), key="counted")
    assert replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == answer.get_json()


def test_one_preview_is_one_read_only_transaction_of_one_statement(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    with counted(container.engine) as (begins, statements):
        answer = scheduler.post("/api/v1/preview", json=_body(world))
    assert answer.status_code == 200, answer.get_json()
    # PostgreSQL: BEGIN READ ONLY goes with the read (no SET TRANSACTION of its own); SQLite
    # runs its deferred BEGIN as a statement.
    assert len(begins) == 1, statements
    assert [s for s in statements if s != "BEGIN"] == ["SELECT"], statements  # deferred


@contextlib.contextmanager
def round_trips(container: Container) -> Iterator[list[int]]:
    """PostgreSQL: count the round trips the pool's connections make meanwhile, as the wire
    sees them (libpq's trace of every message): each ends with the server's ReadyForQuery,
    whatever sent it (a statement, BEGIN, COMMIT, ROLLBACK, the pool's checks). The count
    (one number) is in the list once the block ends."""
    traced: list[tuple[Any, Any]] = []

    def _trace(dbapi_connection: Any, *_args: Any) -> None:
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed at the block's end)
        dbapi_connection.pgconn.trace(log.fileno())
        traced.append((dbapi_connection, log))

    # The idle pooled connections are traced from now, so that what the pool does on checkout
    # (a pre-ping) counts too; connections opened meanwhile from their start.
    for record in list(container.engine.pool._pool.queue):  # type: ignore[attr-defined]
        if record.dbapi_connection is not None:
            _trace(record.dbapi_connection)
    event.listen(container.engine.pool, "connect", _trace)
    counted: list[int] = []
    try:
        yield counted
    finally:
        event.remove(container.engine.pool, "connect", _trace)
        total = 0
        for dbapi_connection, log in traced:
            dbapi_connection.pgconn.untrace()
            log.seek(0)
            total += sum("ReadyForQuery" in line for line in log.read().decode().splitlines())
            log.close()
        counted.append(total)


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has no round trips to count")
def test_postgresql_round_trips_of_one_create_and_one_preview(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """A create: BEGIN READ WRITE, the key's claim with the joined read, the post with the
    head's lock, the key's completion with the entry and the head's move, COMMIT. No pre-ping: a
    pooled connection the server dropped is found by a socket check (no round trip). A
    preview: its one SELECT, outside any explicit transaction (no BEGIN, no ROLLBACK)."""
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    assert scheduler.post("/api/v1/preview", json=_body(world)).status_code == 200
    with round_trips(container) as create:
        answer = scheduler.create(_body(world), key="round-trips")
    assert answer.status_code == 201, answer.get_json()
    with round_trips(container) as preview:
        answer = scheduler.post("/api/v1/preview", json=_body(world))
    assert answer.status_code == 200, answer.get_json()
    assert create == [5]
    assert preview == [1]


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serialises writers (BEGIN IMMEDIATE)")
def test_a_create_waiting_for_an_account_the_worker_holds_does_not_hold_the_ledger_head(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The lock order of every ledger writer: the rows a write references, then the head. A
    worker holds the account (FOR UPDATE, as a publish does) and then locks the head: a create
    for that account must wait for the account without holding the head, or the two would
    deadlock (PostgreSQL would abort one)."""
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    answers: list[Any] = []
    with container.engine.connect() as worker:
        worker.exec_driver_sql(
            "SELECT id FROM accounts WHERE id = %(id)s FOR UPDATE", {"id": world.account.id}
        )
        create = threading.Thread(target=lambda: answers.append(scheduler.create(_body(world))))
        create.start()
        # Wait until the create waits for a lock (the account's row).
        deadline = time.monotonic() + 10
        with container.engine.connect() as watcher:
            while not watcher.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
            ).scalar_one():
                assert time.monotonic() < deadline, "the create never waited for the account"
                time.sleep(0.02)
        # The worker's next lock, the head: free, because the create does not hold it.
        worker.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        worker.exec_driver_sql("SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE")
        worker.commit()
    create.join(timeout=30)
    assert not create.is_alive()
    assert answers[0].status_code == 201, answers[0].get_json()


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serialises writers (BEGIN IMMEDIATE)")
def test_a_writer_unassigned_while_their_create_is_in_flight_finds_the_post_and_holds_it(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The unassignment locks the account before its ledger entry (rows, then the head), so
    it waits for the create in flight on that account: the create commits, then the
    unassignment finds its post and holds it. (Locking the account only for the posts it
    found, after its entry, it found none, and the post went out by an unassigned writer.)
    The create is made to wait (for its window, which another transaction holds) after it
    locked the account."""
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    answers: list[Any] = []
    errors: list[BaseException] = []

    def unassign() -> None:
        try:
            directory.unassign_writer(
                world.ctx,
                Actor.system("test"),
                user_id=world.writer_a.id,
                account_id=world.account.id,
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    def waiting() -> int:
        with container.engine.connect() as watcher:
            return int(
                watcher.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                ).scalar_one()
            )

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 10
        while waiting() < count:
            assert time.monotonic() < deadline, f"fewer than {count} waiting"
            time.sleep(0.02)

    with container.engine.connect() as holder:
        holder.exec_driver_sql(
            "SELECT id FROM windows WHERE account_id = %(id)s FOR UPDATE",
            {"id": world.account.id},
        )
        create = threading.Thread(target=lambda: answers.append(scheduler.create(_body(world))))
        create.start()
        wait_for(1)  # the create holds the account (FOR KEY SHARE) and waits for the window
        unassigning = threading.Thread(target=unassign)
        unassigning.start()
        # The unassignment waits for the account (or, locking nothing, is already done).
        deadline = time.monotonic() + 10
        while unassigning.is_alive() and waiting() < 2:
            assert time.monotonic() < deadline, "the unassignment neither waited nor ended"
            time.sleep(0.02)
        holder.commit()
    create.join(timeout=30)
    unassigning.join(timeout=30)
    assert not errors, errors
    assert answers[0].status_code == 201, answers[0].get_json()
    with world.ctx.uow(read_only=True) as uow:
        post = uow.posts.by_public_id(answers[0].get_json()["id"])
    assert post is not None
    assert post.state.value == "held", post


def _withdrawn_while_the_create_waits(
    scheduler: Scheduler, world: World, container: Container, withdraw: Any
) -> tuple[Any, tuple[int, int]]:
    """Run `withdraw` (a grant's withdrawal, in its own transaction) so that it is in flight
    when the create reads (not committed: the read sees the grant) and commits before the
    create's insert; return the create's answer and what was stored before. Made
    deterministic by holding the ledger head, the withdrawal's last lock, until the create
    waits too."""
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    before = _stored(world)
    answers: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            withdraw()
        except BaseException as exc:  # reported below
            errors.append(exc)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 10
        with container.engine.connect() as watcher:
            while (
                watcher.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                ).scalar_one()
                < count
            ):
                assert time.monotonic() < deadline, f"fewer than {count} waiting"
                time.sleep(0.02)
                watcher.rollback()

    with container.engine.connect() as holder:
        holder.exec_driver_sql("SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE")
        withdrawing = threading.Thread(target=run)
        withdrawing.start()
        wait_for(1)  # the grant withdrawn (uncommitted), the accounts locked; waits for the head
        create = threading.Thread(target=lambda: answers.append(scheduler.create(_body(world))))
        create.start()
        wait_for(2)  # the create read the grant as it was, then waits in its insert
        holder.commit()
    withdrawing.join(timeout=30)
    create.join(timeout=30)
    assert not errors, errors
    assert not create.is_alive()
    return answers[0], before


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serialises writers (BEGIN IMMEDIATE)")
def test_a_writer_unassigned_between_the_creates_read_and_its_insert_cannot_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The create decides on its one read, taken before any lock. An unassignment in flight
    then (its DELETE not yet committed, so the read still sees the assignment) commits before
    the create's insert: the insert must not store a post by a writer no longer assigned (the
    unassignment, done, holds nothing it has not seen). Made deterministic by holding the
    ledger head, the unassignment's last lock, until the create waits too."""
    answer, before = _withdrawn_while_the_create_waits(
        scheduler,
        world,
        container,
        lambda: directory.unassign_writer(
            world.ctx,
            Actor.system("test"),
            user_id=world.writer_a.id,
            account_id=world.account.id,
        ),
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    # Nothing stored by the refused create: the unassignment's entry only.
    posts, entries = _stored(world)
    assert (posts, entries) == (before[0], before[1] + 1)


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serialises writers (BEGIN IMMEDIATE)")
def test_a_writer_deactivated_between_the_creates_read_and_its_insert_cannot_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """As for the unassigned writer above: the deactivation, done, held the writer's posts it
    saw; the create that read the writer as active must not store one after it."""
    answer, before = _withdrawn_while_the_create_waits(
        scheduler,
        world,
        container,
        lambda: directory.set_user_active(
            world.ctx, Actor.system("test"), world.writer_a.id, False
        ),
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    posts, entries = _stored(world)
    assert (posts, entries) == (before[0], before[1] + 1)  # the deactivation's entry only


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serialises writers (BEGIN IMMEDIATE)")
def test_a_client_revoked_between_the_creates_read_and_its_insert_cannot_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The revocation, done, held what the client had submitted; the create that read the
    client as active (its token cached) must not store a post after it."""
    answer, before = _withdrawn_while_the_create_waits(
        scheduler,
        world,
        container,
        lambda: clients.revoke_client(world.ctx, Actor.system("test"), scheduler.client.client_id),
    )
    assert answer.status_code in (401, 403), answer.get_json()
    posts, entries = _stored(world)
    assert (posts, entries) == (before[0], before[1] + 1)  # the revocation's entry only


def _changed_while_the_create_waits_for_the_write_lock(
    scheduler: Scheduler, world: World, container: Container, change: Any
) -> Any:
    """SQLite: run `change(connection)` in a write transaction that holds the writers' turn,
    send a create, and commit the change only once the create waits for the turn: its plan
    ahead (a read-only transaction, which waits for nobody) read the facts as they were, and
    its write transaction finds them changed. Return the create's answer. The wait is seen
    in /proc/locks (a blocked flock on the queue's lock file), not guessed with a sleep."""
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    database = container.engine.url.database
    assert database is not None
    inode = os.stat(lock_path_for(database) or "").st_ino
    answers: list[Any] = []

    def create_waits() -> bool:
        with open("/proc/locks") as locks:
            return any("->" in line and f":{inode} " in line for line in locks)

    with container.engine.connect() as holder:
        holder.begin()  # BEGIN IMMEDIATE, in the writers' turn
        change(holder)
        create = threading.Thread(target=lambda: answers.append(scheduler.create(_body(world))))
        create.start()
        deadline = time.monotonic() + 10
        while not create_waits():
            assert create.is_alive(), answers and answers[0].get_json()
            assert time.monotonic() < deadline, "the create never waited for the turn"
            time.sleep(0.01)
        holder.commit()
    create.join(timeout=30)
    assert not create.is_alive()
    return answers[0]


@pytest.mark.parametrize("later", [None, timedelta(minutes=30)], ids=["now", "scheduled"])
def test_the_answer_is_what_the_stored_post_renders_to(
    scheduler: Scheduler, world: World, clock: FixedClock, later: timedelta | None
) -> None:
    """On SQLite a lone post's answer is rendered before the write transaction, from the row
    built ahead (no row id yet): it must be exactly what the post as stored renders to, row
    id and all, as it is on PostgreSQL, where the answer is rendered after the insert."""
    publish_at = {"publish_at": (clock.now() + later).isoformat()} if later else {}
    body = {**_body(world), **publish_at}
    answer = scheduler.create(body)
    assert answer.status_code == 201, answer.get_json()
    with world.ctx.uow(read_only=True) as uow:
        stored = uow.posts.by_public_id(answer.get_json()["id"])
        assert stored is not None
        account, author = uow.accounts.get(stored.account_id), uow.users.get(stored.author_id)
        principal = uow.principals.get(world.account.principal_id)
    assert account is not None and author is not None and principal is not None
    details = PostDetails(stored, account, author, principal_name=principal.name)
    assert answer.get_json() == json.loads(json.dumps(render_post(details, "/api/v1/posts")))


def _renamed(user_id: int, name: str) -> Any:
    """A change for _changed_while_the_create_waits_for_the_write_lock (or
    _created_again_after): a user's new name."""
    return lambda holder: holder.execute(
        update(UserRow).where(UserRow.id == user_id).values(name=name)
    )


def _unassigned(world: World) -> Any:
    """A change: writer A no longer assigned to the account."""
    return lambda holder: holder.execute(
        delete(AssignmentRow).where(
            AssignmentRow.user_id == world.writer_a.id,
            AssignmentRow.account_id == world.account.id,
        )
    )


def _window_changed(world: World, **values: Any) -> Any:
    """A change: the account's window with `values`."""
    return lambda holder: holder.execute(
        update(WindowRow).where(WindowRow.account_id == world.account.id).values(**values)
    )


def _check_held_for_approval(world: World, answer: Any) -> None:
    """The post is stored as waiting for approval: in the answer, the row and its entry."""
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["state"] == "pending_approval", body
    with world.ctx.uow(read_only=True) as uow:
        stored = uow.posts.by_public_id(body["id"])
        assert stored is not None and stored.state.value == "pending_approval"
    assert _submitted_entry(world, body["id"])["state"] == "pending_approval"


def _check_recorded_as_renamed(world: World, answer: Any) -> None:
    """The answer and the ledger's `writer` carry writer A's new name."""
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["author"]["name"] == "Alex Renamed", body
    writer = _submitted_entry(world, body["id"])["writer"]
    assert writer == {**writer, "id": world.writer_a.id, "name": "Alex Renamed"}


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL plans in its write transaction")
def test_attack_a_writer_unassigned_after_the_plan_ahead_cannot_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The plan ahead read the writer as assigned; the unassignment commits before the
    create's write transaction, which must decide on what it reads, not on the plan."""
    before = _stored(world)
    answer = _changed_while_the_create_waits_for_the_write_lock(
        scheduler, world, container, _unassigned(world)
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    assert _stored(world) == before


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL plans in its write transaction")
def test_attack_a_window_ended_after_the_plan_ahead_refuses_the_delegated_post(
    scheduler: Scheduler, world: World, container: Container, clock: FixedClock
) -> None:
    """The plan ahead decided the delegated post inside the window (tagged, accepted); the
    window ends before the create's write transaction, which must refuse it as outside
    every window instead of storing what the plan decided."""
    before = _stored(world)
    answer = _changed_while_the_create_waits_for_the_write_lock(
        scheduler, world, container, _window_changed(world, ends_at=clock.now())
    )
    assert answer.status_code == 422, answer.get_json()
    assert "outside_window" in json.dumps(answer.get_json()), answer.get_json()
    assert _stored(world) == before


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL plans in its write transaction")
def test_a_plan_ahead_on_unchanged_facts_is_what_gets_stored(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """Another writer's transaction in between that changes none of the create's facts: the
    plan ahead stands, and the post is stored as a create without it would store it."""
    answer = _changed_while_the_create_waits_for_the_write_lock(
        scheduler,
        world,
        container,
        _renamed(world.manager.id, "Morgan Renamed"),
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["state"] == "scheduled"
    assert body["text_if_published_now"] == "Doors open at 9 #team"


def _submitted_entry(world: World, public_id: str) -> dict[str, Any]:
    with world.ctx.uow(read_only=True) as uow:
        (entry,) = uow.ledger.search(subject=f"post:{public_id}", tag="post:submitted")
        return dict(entry.data)


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL plans in its write transaction")
def test_attack_approval_required_after_the_plan_ahead_holds_the_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The plan ahead built the post's row as scheduled (its window asked no approval); the
    window starts requiring the principal's approval before the create's write transaction,
    which must store the post as waiting for it, not the row built ahead."""
    answer = _changed_while_the_create_waits_for_the_write_lock(
        scheduler, world, container, _window_changed(world, requires_approval=True)
    )
    _check_held_for_approval(world, answer)


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL plans in its write transaction")
def test_attack_a_writer_renamed_after_the_plan_ahead_is_recorded_by_their_new_name(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """Who wrote the post, as the ledger records it, is the writer as the write transaction
    read them: a rename committed after the plan ahead is in the entry (the plan's row and
    entry, built from the old name, are not what is stored)."""
    answer = _changed_while_the_create_waits_for_the_write_lock(
        scheduler, world, container, _renamed(world.writer_a.id, "Alex Renamed")
    )
    _check_recorded_as_renamed(world, answer)


def _created_again_after(
    scheduler: Scheduler, world: World, container: Container, change: Any, *, first: str = "posts"
) -> Any:
    """Create once (on SQLite this process now plans the client's next creates ahead on the
    facts that create read, without reading them), commit `change(connection)` straight to
    the database (as another process, or someone with the database and no key, would: this
    process hears nothing of it), and create again: return the second create's answer.
    `first="preview"`: the first request is a preview, whose facts are kept the same way."""
    assert scheduler.get("/api/v1/accounts").status_code == 200  # token read and cached
    if first == "preview":
        earlier = scheduler.post("/api/v1/preview", _body(world, "Doors open at 8"))
        assert earlier.status_code == 200, earlier.get_json()
    else:
        earlier = scheduler.create(_body(world, "Doors open at 8"))
        assert earlier.status_code == 201, earlier.get_json()
    with container.engine.begin() as connection:
        change(connection)
    return scheduler.create(_body(world))


def _deactivated(world: World) -> Any:
    """A change: writer A's account turned inactive."""
    return lambda holder: holder.execute(
        update(UserRow).where(UserRow.id == world.writer_a.id).values(is_active=False)
    )


def _author_grant_withdrawn(world: World) -> Any:
    """A change: the client may no longer name writer A (its grant row deleted)."""
    return lambda holder: holder.execute(
        delete(OAuthClientAuthorRow).where(OAuthClientAuthorRow.user_id == world.writer_a.id)
    )


@pytest.mark.parametrize("first", ["posts", "preview"])
@pytest.mark.parametrize("withdrawn", [_unassigned, _deactivated, _author_grant_withdrawn])
def test_attack_a_writer_withdrawn_since_the_last_create_cannot_post(
    scheduler: Scheduler, world: World, container: Container, withdrawn: Any, first: str
) -> None:
    """The facts the last create (or preview) read say writer A may be named; the next create
    must decide on the assignment, the writer and the client's grant as they are now."""
    answer = _created_again_after(scheduler, world, container, withdrawn(world), first=first)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    assert _stored(world)[0] == (1 if first == "posts" else 0)  # the first create's only


def test_attack_a_window_ended_since_the_last_create_refuses_the_delegated_post(
    scheduler: Scheduler, world: World, container: Container, clock: FixedClock
) -> None:
    answer = _created_again_after(
        scheduler, world, container, _window_changed(world, ends_at=clock.now())
    )
    assert answer.status_code == 422, answer.get_json()
    assert "outside_window" in json.dumps(answer.get_json()), answer.get_json()
    assert _stored(world)[0] == 1


def test_attack_approval_required_since_the_last_create_holds_the_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    answer = _created_again_after(
        scheduler, world, container, _window_changed(world, requires_approval=True)
    )
    _check_held_for_approval(world, answer)


def test_attack_a_writer_renamed_since_the_last_create_is_recorded_by_their_new_name(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    answer = _created_again_after(
        scheduler, world, container, _renamed(world.writer_a.id, "Alex Renamed")
    )
    _check_recorded_as_renamed(world, answer)


def _client_deactivated(scheduler: Scheduler) -> Any:
    """A change: the client's row turned inactive, with no revocation through the service."""
    client_id = scheduler.client.client_id
    return lambda holder: holder.execute(
        update(OAuthClientRow).where(OAuthClientRow.client_id == client_id).values(is_active=False)
    )


def test_attack_a_client_deactivated_since_the_last_create_cannot_post(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The client's row turned inactive in the database, no revocation through the service
    (this process's token cache still vouches for it): no post, whatever the facts kept."""
    answer = _created_again_after(scheduler, world, container, _client_deactivated(scheduler))
    assert answer.status_code in (401, 403), answer.get_json()
    assert _stored(world)[0] == 1


def _previewed_again_after(
    scheduler: Scheduler, world: World, container: Container, change: Any
) -> tuple[Any, Any]:
    """Preview (this process keeps the facts its read built: a later read that finds the same
    row reuses them), commit `change(connection)` straight to the database (this process hears
    nothing of it), and preview the same request again: return both answers."""
    first = scheduler.post("/api/v1/preview", _body(world))
    assert first.status_code == 200, first.get_json()
    with container.engine.begin() as connection:
        change(connection)
    return first, scheduler.post("/api/v1/preview", _body(world))


#: Changes committed between two previews, each one the second preview must show.
_PREVIEW_CHANGES: dict[str, Any] = {
    "writer unassigned": lambda world, clock: _unassigned(world),
    "writer deactivated": lambda world, clock: _deactivated(world),
    "author grant withdrawn": lambda world, clock: _author_grant_withdrawn(world),
    "writer renamed": lambda world, clock: _renamed(world.writer_a.id, "Alex New"),
    "window ended": lambda world, clock: _window_changed(world, ends_at=clock.now()),
    # Nine posts since the notice (every 10): the next one carries the reminder inline.
    "reminder due": lambda world, clock: _window_changed(world, posts_since_disclosure=9),
}


@pytest.mark.parametrize("change", list(_PREVIEW_CHANGES.values()), ids=list(_PREVIEW_CHANGES))
def test_attack_a_preview_after_a_change_answers_as_a_process_that_kept_nothing(
    scheduler: Scheduler,
    world: World,
    container: Container,
    elsewhere: Container,
    clock: FixedClock,
    change: Any,
) -> None:
    """The second preview is what another process, which kept no facts, answers now; and the
    change did change the answer (else the test would prove nothing)."""
    first, again = _previewed_again_after(scheduler, world, container, change(world, clock))
    elsewhere_app = create_app(container=elsewhere).test_client()
    fresh = Scheduler(elsewhere_app, scheduler.client, scheduler.token)
    expected = fresh.post("/api/v1/preview", _body(world))
    assert (again.status_code, again.get_json()) == (expected.status_code, expected.get_json())
    assert (first.status_code, first.get_json()) != (expected.status_code, expected.get_json())


def test_attack_a_preview_after_its_client_was_deactivated_is_refused(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The client's row turned inactive in the database (no revocation through the service:
    this process's token cache still vouches for it): the next preview is refused."""
    _, again = _previewed_again_after(scheduler, world, container, _client_deactivated(scheduler))
    assert again.status_code in (401, 403), again.get_json()


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL plans in its write transaction")
def test_a_create_after_another_plans_on_its_facts_without_reading_them(
    scheduler: Scheduler, world: World, container: Container
) -> None:
    """The client's second create on the same account, naming the same writer, is planned
    ahead on the facts the first one read: one transaction, the write (the facts unchanged,
    its plan is what gets stored)."""
    assert scheduler.get("/api/v1/accounts").status_code == 200
    assert scheduler.create(_body(world, "Doors open at 8")).status_code == 201
    with counted(container.engine) as (begins, statements):
        answer = scheduler.create(_body(world))
    assert answer.status_code == 201, answer.get_json()
    assert len(begins) == 1, statements
    assert answer.get_json()["text_if_published_now"] == "Doors open at 9 #team"
