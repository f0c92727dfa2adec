"""Idempotent creates (reliability.md §2): one Idempotency-Key, one post, however often and
however concurrently it is sent; the key, post, ledger entry and response commit together."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from ghostpost.api.schemas import PostRequestSchema
from ghostpost.api.v1 import create_fingerprint
from ghostpost.cli import main
from ghostpost.clock import FixedClock
from ghostpost.db import idempotency as db_idempotency
from ghostpost.domain.ledger import LedgerTag, first_broken_entry
from ghostpost.domain.model import Post, Source, Window
from ghostpost.services import directory, idempotency
from ghostpost.services.context import Actor
from ghostpost.services.idempotency import RequestInFlight, submit_post_once
from ghostpost.services.posts import SubmitPost
from tests.conftest import BACKEND
from tests.support.api import Scheduler, create_api_client, scheduler_for
from tests.support.world import World


@pytest.fixture
def scheduler(client: FlaskClient, world: World, opened_window: Window) -> Scheduler:
    return scheduler_for(client, world)


def body(world: World, text: str = "Doors open at 9") -> dict[str, Any]:
    return {"account": world.account.id, "text": text, "author": world.writer_a.email}


def api_posts(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        return [p for p in uow.posts.list_for_account(world.account.id) if p.source is Source.API]


def submitted_entries(world: World) -> list[Any]:
    with world.ctx.uow() as uow:
        return [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]


# --------------------------------------------------------------------------------------------
# Over HTTP, one request at a time


def test_the_same_key_and_body_replays_the_first_response_and_creates_nothing(
    scheduler: Scheduler, world: World
) -> None:
    first = scheduler.create(body(world), key="order-1")
    second = scheduler.create(body(world), key="order-1")

    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.get_data() == first.get_data()
    assert second.headers["Location"] == first.headers["Location"]
    assert len(api_posts(world)) == 1
    assert len(submitted_entries(world)) == 1


def test_a_replay_is_the_original_answer_even_after_the_post_moved_on(
    scheduler: Scheduler, world: World
) -> None:
    first = scheduler.create(body(world), key="order-1").get_json()
    scheduler.post(f"/api/v1/posts/{first['id']}/cancel")

    replay = scheduler.create(body(world), key="order-1")

    assert replay.get_json()["state"] == "scheduled"  # as answered then; GET tells the news
    assert scheduler.get(f"/api/v1/posts/{first['id']}").get_json()["state"] == "cancelled"


def test_equivalent_bodies_have_the_same_fingerprint(scheduler: Scheduler, world: World) -> None:
    first = scheduler.create(
        {**body(world), "publish_at": "2026-11-21T16:00:00+01:00"}, key="same-instant"
    )
    again = scheduler.post(
        "/api/v1/posts",
        key="same-instant",
        data=json.dumps(
            {
                "publish_at": "2026-11-21T10:00:00",
                "timezone": "America/New_York",
                "author": world.writer_a.email.upper(),
                "text": "Doors open at 9",
                "account": world.account.id,
            }
        ),
        content_type="application/json",
    )

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()


def test_the_same_key_with_another_body_is_422_and_changes_nothing(
    scheduler: Scheduler, world: World
) -> None:
    scheduler.create(body(world), key="order-1")

    reused = scheduler.create(body(world, "Something else entirely"), key="order-1")

    assert reused.status_code == 422
    assert reused.mimetype == "application/problem+json"
    assert reused.get_json()["type"] == "urn:ghostpost:problem:idempotency_key_reused"
    assert len(api_posts(world)) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "idempotency_key_missing"),
        ({"Idempotency-Key": ""}, "idempotency_key_missing"),
        ({"Idempotency-Key": "k" * 256}, "idempotency_key_invalid"),
        ({"Idempotency-Key": "clé-1"}, "idempotency_key_invalid"),
        ({"Idempotency-Key": "tab\there"}, "idempotency_key_invalid"),
    ],
    ids=["absent", "empty", "too-long", "non-ascii", "control-char"],
)
def test_a_create_without_a_valid_key_is_400_and_stores_nothing(
    scheduler: Scheduler, world: World, headers: dict[str, str], code: str
) -> None:
    response = scheduler.post("/api/v1/posts", body(world), headers=headers)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code
    assert api_posts(world) == []


def test_a_key_of_255_printable_characters_is_accepted(scheduler: Scheduler, world: World) -> None:
    key = "".join(chr(33 + n % 94) for n in range(255))

    assert scheduler.create(body(world), key=key).status_code == 201


def test_keys_belong_to_their_client(
    client: FlaskClient, scheduler: Scheduler, world: World
) -> None:
    other = scheduler_for(client, world)

    mine = scheduler.create(body(world), key="shared-key")
    theirs = other.create(body(world), key="shared-key")

    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]
    assert theirs.get_json()["submitter"] == f"client:{other.client.client_id}"
    assert len(api_posts(world)) == 2


def test_a_refused_request_stores_no_key_so_a_corrected_one_may_use_it(
    scheduler: Scheduler, world: World
) -> None:
    refused = scheduler.create(body(world, "z" * 600), key="retry-me")
    corrected = scheduler.create(body(world, "Short enough"), key="retry-me")

    assert refused.status_code == 422
    assert refused.get_json()["code"] == "policy_refused"
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers


def test_a_key_whose_first_request_is_still_running_is_409_with_retry_after(
    scheduler: Scheduler, world: World
) -> None:
    # A claimed key whose response is not stored yet is what a concurrent request sees.
    fingerprint = create_fingerprint(PostRequestSchema().load(body(world)))
    with world.ctx.uow() as uow:
        client_ref = f"client:{scheduler.client.client_id}"
        assert uow.idempotency_keys.claim(client_ref, "busy", fingerprint, world.ctx.clock.now())
        uow.commit()

    response = scheduler.create(body(world), key="busy")

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["code"] == "idempotency_key_in_flight"


# --------------------------------------------------------------------------------------------
# Concurrency: a real HTTP server, and two transactions racing in the service


@pytest.fixture
def http_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def http_post(
    url: str, payload: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.slow
def test_eight_simultaneous_creates_with_one_key_make_exactly_one_post(
    http_server: str, scheduler: Scheduler, world: World
) -> None:
    payload = json.dumps(body(world, "Eight hands, one post")).encode()
    headers = {
        **scheduler.auth,
        "Content-Type": "application/json",
        "Idempotency-Key": "burst-1",
    }
    start = threading.Barrier(8)

    def fire(_: int) -> tuple[int, dict[str, str], bytes]:
        start.wait()
        return http_post(http_server + "/api/v1/posts", payload, headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fire, range(8)))

    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}, results
    created = [(h, b) for status, h, b in results if status == 201]
    originals = [h for h, _ in created if "Idempotent-Replayed" not in h]
    assert len(originals) == 1, statuses
    assert len({b for _, b in created}) == 1, "every 201 carries the same body"
    for status, h, _ in results:
        if status == 409:
            assert h["Retry-After"] == "1"
    [post] = api_posts(world)
    assert [e.subject for e in submitted_entries(world)] == [f"post:{post.public_id}"]


@pytest.mark.slow
def test_simultaneous_creates_and_other_appends_chain_every_entry_once(
    http_server: str, scheduler: Scheduler, world: World
) -> None:
    """On PostgreSQL a create locks the ledger head in its post's INSERT and appends with the
    head that statement read. Racing creates (and other appends, which lock the head on their
    own) must each chain on the head the previous holder committed: a stale head would give
    two entries one seq (a 500) or fork the chain."""
    threads, creates = 6, 8
    start = threading.Barrier(threads + 1)

    def fire(thread: int) -> list[int]:
        start.wait()
        statuses = []
        for n in range(creates):
            payload = json.dumps(body(world, f"Racer {thread} post {n}")).encode()
            headers = {
                **scheduler.auth,
                "Content-Type": "application/json",
                "Idempotency-Key": f"race-{thread}-{n}",
            }
            statuses.append(http_post(http_server + "/api/v1/posts", payload, headers)[0])
        return statuses

    def other_appends() -> None:
        start.wait()
        for n in range(creates):
            directory.create_principal(world.ctx, Actor.system("test"), f"Racing principal {n}")

    with ThreadPoolExecutor(max_workers=threads + 1) as pool:
        others = pool.submit(other_appends)
        results = list(pool.map(fire, range(threads)))
        others.result()

    assert [s for statuses in results for s in statuses] == [201] * (threads * creates)
    with world.ctx.uow() as uow:
        entries = list(uow.ledger.entries())
        size, head = uow.ledger.head()
    assert first_broken_entry(entries) is None
    assert (size, head) == (entries[-1].seq, entries[-1].entry_hash)
    posts = api_posts(world)
    assert len(posts) == threads * creates
    submitted = [e.subject for e in entries if e.tag == LedgerTag.POST_SUBMITTED]
    assert sorted(submitted) == sorted(f"post:{p.public_id}" for p in posts)


def _command(world: World) -> SubmitPost:
    return SubmitPost(
        account_id=world.account.id,
        author_id=world.writer_a.id,
        text="Raced",
        source=Source.API,
    )


def _client_actor(world: World, name: str) -> Actor:
    """The actor of a real API client of the world's account (posts name only granted authors,
    so the client must exist)."""
    api_client, _ = create_api_client(world, name=name)
    return Actor.for_client(api_client.client_id, frozenset({world.account.id}))


def _race(world: World, *, hold_seconds: float, first_fails: bool = False) -> tuple[Any, Any]:
    """Run two submit_post_once calls with one key: the first holds its transaction open
    (inside render) while the second arrives; with `first_fails` it then raises (rolls back)."""
    actor = _client_actor(world, "racer")
    rendering = threading.Event()
    outcomes: dict[str, Any] = {}

    def slow_render(post: Post) -> tuple[int, dict[str, Any]]:
        rendering.set()
        time.sleep(hold_seconds)
        if first_fails:
            raise RuntimeError("the first request failed")
        return 201, {"id": post.public_id}

    def first() -> None:
        try:
            outcomes["first"] = submit_post_once(
                world.ctx, actor, _command(world), key="k", fingerprint="f" * 64, render=slow_render
            )
        except RuntimeError as exc:
            outcomes["first"] = exc

    def second() -> None:
        rendering.wait(10)
        try:
            outcomes["second"] = submit_post_once(
                world.ctx,
                actor,
                _command(world),
                key="k",
                fingerprint="f" * 64,
                render=lambda post: (201, {"id": "never"}),
            )
        except RequestInFlight as exc:
            outcomes["second"] = exc

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes["first"], outcomes["second"]


def test_a_duplicate_arriving_mid_transaction_waits_and_replays_the_winner(
    scheduler: Scheduler, world: World
) -> None:
    first, second = _race(world, hold_seconds=0.5)

    assert first[2] is False
    assert second == (201, first[1], True)
    assert len(api_posts(world)) == 1


def test_a_duplicate_waiting_for_a_first_request_that_fails_takes_the_key(
    scheduler: Scheduler, world: World
) -> None:
    # PostgreSQL: the second finds the key's lock held and no record, waits for the lock, and
    # claims the key once the first has rolled back (SQLite: it waits for the write lock).
    first, second = _race(world, hold_seconds=0.5, first_fails=True)

    assert isinstance(first, RuntimeError)
    [post] = api_posts(world)
    assert second == (201, {"id": "never"}, False)
    assert [e.subject for e in submitted_entries(world)] == [f"post:{post.public_id}"]


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite queues whole writers instead")
def test_on_postgresql_a_duplicate_stops_waiting_and_gets_409(
    scheduler: Scheduler, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_idempotency, "CLAIM_WAIT_MS", 200)

    first, second = _race(world, hold_seconds=1.5)

    assert first[2] is False
    assert isinstance(second, RequestInFlight)
    assert len(api_posts(world)) == 1


def test_the_key_post_ledger_entry_and_response_commit_together(
    scheduler: Scheduler, world: World
) -> None:
    actor = _client_actor(world, "atomic")

    def broken_render(post: Post) -> tuple[int, dict[str, Any]]:
        raise RuntimeError("rendering failed")

    with pytest.raises(RuntimeError):
        submit_post_once(
            world.ctx, actor, _command(world), key="k", fingerprint="f" * 64, render=broken_render
        )

    assert api_posts(world) == []
    assert submitted_entries(world) == []
    with world.ctx.uow() as uow:
        assert uow.idempotency_keys.get(actor.ref, "k") is None


# --------------------------------------------------------------------------------------------
# Retention


def test_keys_are_kept_24_hours_then_purged(world: World, clock: FixedClock) -> None:
    actor = _client_actor(world, "keeper")

    def remember(key: str) -> None:
        submit_post_once(
            world.ctx,
            actor,
            _command(world),
            key=key,
            fingerprint="f" * 64,
            render=lambda post: (201, {"id": post.public_id}),
        )

    world.approve_notice(world.open_window(hours=48))
    remember("old")
    clock.advance(hours=23)
    remember("young")
    clock.advance(hours=1, seconds=1)

    removed = idempotency.purge_keys(world.ctx)

    assert removed == 1
    with world.ctx.uow() as uow:
        assert uow.idempotency_keys.get(actor.ref, "old") is None
        assert uow.idempotency_keys.get(actor.ref, "young") is not None
    with pytest.raises(idempotency.ValidationFailed):
        idempotency.purge_keys(world.ctx, older_than=timedelta(hours=23))


def test_the_cli_purges_keys_and_refuses_less_than_24_hours(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("GHOSTPOST_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", database_url)

    done = CliRunner().invoke(main, ["api", "purge-keys"])
    too_soon = CliRunner().invoke(main, ["api", "purge-keys", "--older-than-hours", "2"])

    assert done.exit_code == 0, done.output
    assert "deleted 0 idempotency key(s) older than 24 h" in done.output
    assert too_soon.exit_code == 2
