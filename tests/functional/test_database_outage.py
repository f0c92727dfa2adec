"""The database goes away for a few seconds under API load: 503 problem+json, nothing
half-written, and the service (gunicorn web processes and a `ghostpost worker`) recovers by
itself.

PostgreSQL: the server is stopped with `pg_ctl stop -m immediate` (a crash: no clean shutdown
of sessions) and started again on the same port and data directory. The test database commits
synchronously: the suite's cluster runs with synchronous_commit=off, under which a crash may
lose commits that were already answered, which production settings never allow.

SQLite has no server to stop. Renaming or chmod-ing the file is no outage: the server's pooled
connections keep their open file descriptors (and root ignores permissions), and a connection
opened meanwhile creates an empty database next to the old WAL. What does happen to SQLite is
another process holding the write lock (a backup, a `sqlite3` shell left in a transaction)
longer than the busy timeout: every transaction (ghostpost begins them all with BEGIN
IMMEDIATE, /healthz included) then fails with OperationalError "database is locked". In
production that takes 30 s; here the web processes wait at most BUSY_MS (see
`short_busy_app`), so a lock held SQLITE_OUTAGE_SECONDS is the same outage, faster.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import make_url

from ghostpost import create_app
from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerTag, first_broken_entry
from ghostpost.domain.states import PostState
from ghostpost.settings import PROJECT_DIR, Settings
from tests.support.api import basic_auth, create_api_client
from tests.support.live import free_port
from tests.support.postgres import PostgresServer
from tests.support.world import World

CLIENTS = 8
#: PostgreSQL: a request to a stopped server fails at once, so two seconds hold many of them.
OUTAGE_SECONDS = 2.0
#: SQLite only: how long the web processes wait for the write lock (production: 30 s), and
#: how long the lock is held: long enough for requests to start and give up inside it (a
#: request started in the first two seconds gives up one second later, still inside).
BUSY_MS = 1000
SQLITE_OUTAGE_SECONDS = 3.0
#: Seconds of load before the outage and after recovery (at least three answers each way
#: either side, however busy the machine: `wait_for_answers_after`).
STEADY_SECONDS = 1.0
RECOVERY_TIMEOUT = 20.0
# Requests started this long after the first post-outage success must all succeed.
AFTER_RECOVERY_MARGIN = 0.5
#: Pause of each client between two posts (keeps the worker's backlog short).
PACE_SECONDS = 0.2
#: After a 503, retried keys try again this often until they succeed.
RETRY_PAUSE = 0.2
LEASE_SECONDS = 2
PROBLEM = "application/problem+json"


@pytest.fixture
def clock() -> FixedClock:
    # The worker process reads the real clock, so the window must be open in real time.
    return FixedClock(datetime.now(UTC))


def short_busy_app() -> Flask:
    """The production app (`ghostpost:create_app()`), except that SQLite gives up waiting for
    a held write lock after BUSY_MS instead of 30 s (gunicorn loads it in the SQLite run)."""
    container = bootstrap(Settings.load())

    @event.listens_for(container.engine, "connect")
    def _short_busy(dbapi_connection: Any, _record: Any) -> None:
        # Registered after ghostpost's own listener (PRAGMA busy_timeout=30000): overrides it.
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")

    return create_app(container=container)


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange as a client saw it (monotonic times)."""

    started: float
    ended: float
    path: str
    key: str | None
    status: int | None
    content_type: str
    body: Any
    error: str | None = None
    replayed: bool = False


def _send(method: str, url: str, path: str, key: str | None = None, **kwargs: Any) -> Answer:
    started = time.monotonic()
    # A new connection each time: a keep-alive connection the server closed while idle would
    # read as a reset, and a reset here must only ever mean a dead server process.
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    try:
        response = requests.request(method, url + path, headers=headers, timeout=60, **kwargs)
    except requests.RequestException as exc:
        return Answer(started, time.monotonic(), path, key, None, "", None, repr(exc))
    content_type = response.headers.get("Content-Type", "")
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return Answer(
        started,
        time.monotonic(),
        path,
        key,
        response.status_code,
        content_type,
        body,
        replayed=response.headers.get("Idempotent-Replayed") == "true",
    )


class Load:
    """CLIENTS threads POSTing /api/v1/posts and one polling /healthz, until stopped."""

    def __init__(self, url: str, token: str, world: World) -> None:
        self.url = url
        self.token = token
        self.world = world
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)
        ]
        self.threads.append(threading.Thread(target=self._health, daemon=True))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=RECOVERY_TIMEOUT + 30)

    def _client(self, number: int) -> None:
        authors = [self.world.writer_a.email, self.world.writer_b.email, self.world.principal.email]
        headers = {"Authorization": f"Bearer {self.token}"}
        sent = 0
        while not self.stop.is_set():
            key = f"outage-{number}-{sent}-{uuid.uuid4().hex[:8]}"
            body = {
                "account": self.world.account.id,
                "author": authors[sent % len(authors)],
                "text": f"Live from the show floor, note {key}",
            }
            # Half the keys are retried after a 503 until they succeed; the others are given up.
            retried = sent % 2 == 0
            sent += 1
            deadline = time.monotonic() + RECOVERY_TIMEOUT + SQLITE_OUTAGE_SECONDS + 10
            while True:
                answer = _send(
                    "POST",
                    self.url,
                    "/api/v1/posts",
                    key,
                    json=body,
                    headers={**headers, "Idempotency-Key": key},
                )
                self.answers.append(answer)
                if answer.status != 503 or not retried or time.monotonic() > deadline:
                    break
                time.sleep(RETRY_PAUSE)
            time.sleep(PACE_SECONDS)

    def _health(self) -> None:
        while not self.stop.is_set():
            self.answers.append(_send("GET", self.url, "/healthz"))
            time.sleep(0.1)

    def posts(self) -> list[Answer]:
        return [a for a in self.answers if a.path == "/api/v1/posts"]

    def health(self) -> list[Answer]:
        return [a for a in self.answers if a.path == "/healthz"]

    def wait_for_recovery(self, since: float) -> float:
        """Return when a POST started after `since` got its 201 (the first success)."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            done = [a for a in self.posts() if a.started > since and a.status == 201]
            if done:
                return min(a.ended for a in done)
            time.sleep(0.05)
        pytest.fail(f"no POST succeeded within {RECOVERY_TIMEOUT} s of the database's return")

    def wait_for_answers_after(self, moment: float, count: int = 3) -> None:
        """Return when POSTs and health checks have each answered `count` requests started
        after `moment`: on a busy machine a health check can take a second or more, so a
        fixed pause may end before any has answered."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            if all(
                sum(1 for a in group() if a.started > moment) >= count
                for group in (self.posts, self.health)
            ):
                return
            time.sleep(0.05)


class Outage:
    """Makes the database unavailable and available again, on either backend."""

    def __init__(self, settings: Settings, postgres: PostgresServer | None) -> None:
        self.postgres = postgres
        self.path = make_url(settings.database_url).database
        self._lock: sqlite3.Connection | None = None
        self.down = False
        self.seconds = OUTAGE_SECONDS if postgres is not None else SQLITE_OUTAGE_SECONDS

    def begin(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()  # pg_ctl stop -m immediate: a crash
        else:
            assert self.path is not None
            self._lock = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._lock.execute("BEGIN EXCLUSIVE")
        self.down = True

    def end(self) -> None:
        if not self.down:
            return
        if self.postgres is not None:
            self.postgres.resume()
        else:
            assert self._lock is not None
            self._lock.execute("ROLLBACK")
            self._lock.close()
        self.down = False


@dataclass
class Service:
    url: str
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    web_log: Path
    worker_log: Path


@contextmanager
def running_service(settings: Settings, sqlite: bool, tmp_path: Path) -> Iterator[Service]:
    """gunicorn and one `ghostpost worker`, as README deploys them. 2 x 6 threads: more than
    the clients, so that /healthz never queues behind POSTs waiting for the database."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")}
    env.update(
        GHOSTPOST_DATABASE_URL=settings.database_url,
        GHOSTPOST_SECRET_KEY=settings.secret_key,
        GHOSTPOST_ENVIRONMENT="test",
        GHOSTPOST_PUBLIC_URL=url,
        GHOSTPOST_SERVE_RUNS_WORKER="false",
        GHOSTPOST_API_RATE_LIMIT="100000 per minute",
        GHOSTPOST_WORKER_POLL_SECONDS="0.2",
        GHOSTPOST_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        GHOSTPOST_LEDGER_SIGNING_KEY=settings.ledger_signing_key,
        GHOSTPOST_LEDGER_PUBLIC_KEYS=settings.ledger_public_keys,
        GHOSTPOST_LEDGER_WITNESS_FILE=settings.ledger_witness_file,
        PYTHONPATH=str(PROJECT_DIR),
    )
    app = f"{__name__}:short_busy_app()" if sqlite else "ghostpost:create_app()"
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    with web_log.open("wb") as web_out, worker_log.open("wb") as worker_out:
        web = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "6"),
                *("--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", app),
            ],
            env=env,
            cwd=PROJECT_DIR,
            stdout=web_out,
            stderr=subprocess.STDOUT,
            # Its own process group, so that the master and its workers stop together.
            start_new_session=True,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "ghostpost", "worker"],
            env=env,
            cwd=PROJECT_DIR,
            stdout=worker_out,
            stderr=subprocess.STDOUT,
        )
        service = Service(url, web, worker, web_log, worker_log)
        try:
            deadline = time.monotonic() + 30
            while _send("GET", url, "/healthz").status != 200:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise RuntimeError(f"gunicorn did not come up:\n{web_log.read_text()}")
                time.sleep(0.1)
            yield service
        finally:
            # Nothing is asked of the service once the test has read its state (the load has
            # stopped, the worker has published everything or died): SIGKILL. A graceful
            # stop held each gunicorn worker ~2 s (gthread's keep-alive linger) for nothing,
            # and SIGTERM was already no cleaner for the worker, which does not handle it.
            if web.poll() is None:
                os.killpg(web.pid, signal.SIGKILL)
            if worker.poll() is None:
                worker.kill()
            for process in (web, worker):
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def fetch_token(url: str, client_id: str, secret: str) -> str:
    response = requests.post(
        url + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "posts:write"},
        headers={"Authorization": basic_auth(client_id, secret)},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _show(answers: list[Answer], limit: int = 5) -> str:
    """A few answers, briefly (the body only when it is not a success)."""
    lines = []
    for a in answers[:limit]:
        what = a.error or (a.body if a.status not in (200, 201) else "")
        lines.append(
            f"{a.path} key={a.key} {a.status} {a.content_type} "
            f"[{a.started:.2f}-{a.ended:.2f}] {str(what)[:300]}"
        )
    return "\n".join(lines) + (f"\n... {len(answers)} in all" if len(answers) > limit else "")


@pytest.mark.slow
def test_the_database_going_away_under_load_answers_503_loses_nothing_and_heals_itself(
    world: World, settings: Settings, postgres: PostgresServer | None, tmp_path: Path
) -> None:
    world.container.keyring.signer()  # one signing key, made before any process starts
    window = world.open_window(every=10)
    world.approve_notice(window)
    # Owned by the principal, so that the principal's own posts are in the mix (issue 12: only
    # the principal's own client posts as the principal).
    client, secret = create_api_client(
        world,
        scopes=("posts:write",),
        owner=world.principal,
        author_emails=[world.writer_a.email, world.writer_b.email, world.principal.email],
    )
    if postgres is not None:
        database = make_url(settings.database_url).database
        postgres.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    outage = Outage(settings, postgres)

    with running_service(settings, postgres is None, tmp_path) as service:
        token = fetch_token(service.url, client.client_id, secret)
        started = time.monotonic()
        with Load(service.url, token, world) as load:
            time.sleep(STEADY_SECONDS)
            load.wait_for_answers_after(started)
            try:
                going_down = time.monotonic()
                outage.begin()
                down = time.monotonic()
                time.sleep(outage.seconds)
                coming_back = time.monotonic()
            finally:
                outage.end()
            back = time.monotonic()
            recovered = load.wait_for_recovery(back)
            time.sleep(STEADY_SECONDS)
            load.wait_for_answers_after(recovered + AFTER_RECOVERY_MARGIN)
        # The worker publishes everything submitted, the outage's leftovers included.
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            with world.ctx.uow() as uow:
                posts = uow.posts.list_for_account(world.account.id)
            if all(p.state is PostState.PUBLISHED for p in posts):
                break
            if service.worker.poll() is not None:
                break
            time.sleep(0.2)
        web_alive = service.web.poll() is None
        worker_alive = service.worker.poll() is None

    web_log = service.web_log.read_text()
    worker_log = service.worker_log.read_text()
    answers = load.answers
    post_answers, health_answers = load.posts(), load.health()
    timing = (
        f"times: down {down:.2f}, back {back:.2f}, recovered {recovered:.2f}; "
        f"outage {down - going_down:.2f}s to begin, {outage.seconds}s down, "
        f"{back - coming_back:.2f}s to end, recovered {recovered - back:.2f}s after"
    )
    report = (
        f"{len(post_answers)} POSTs {dict(Counter(a.status for a in post_answers))}, "
        f"{len(health_answers)} health checks {dict(Counter(a.status for a in health_answers))}; "
        f"{timing}"
    )
    print(report)

    # Never a transport error (a crashed or hung server process), never anything but 201/503.
    broken = [a for a in answers if a.error is not None]
    assert not broken, f"{report}\n{_show(broken)}\n{web_log[-3000:]}"
    unexpected = [a for a in post_answers if a.status not in (201, 503)]
    unexpected += [a for a in health_answers if a.status not in (200, 503)]
    assert not unexpected, f"{report}\n{_show(unexpected)}\n{web_log[-3000:]}"
    assert web_alive, web_log[-3000:]
    assert web_log.count("Booting worker") == 2, f"a web process died and was replaced\n{web_log}"
    assert worker_alive, f"the worker died during the outage\n{worker_log[-3000:]}"

    # Every 503 is a problem+json that says what happened.
    for answer in (a for a in answers if a.status == 503):
        assert answer.content_type.startswith(PROBLEM), answer
        assert isinstance(answer.body, dict), answer
        assert answer.body["status"] == 503, answer
        assert answer.body["code"] == "database_unavailable", answer
        assert answer.body["title"] and answer.body["detail"], answer

    # During the outage everything failed; before it and after recovery everything worked.
    def inside(a: Answer) -> bool:
        return a.started >= down and a.ended <= coming_back

    for kind, group, ok in (("POST", post_answers, 201), ("healthz", health_answers, 200)):
        during = [a for a in group if inside(a)]
        assert during, f"no {kind} answered during the outage: {report}"
        assert all(a.status == 503 for a in during), f"{kind}: {report}\n{_show(during)}"
        before = [a for a in group if a.ended < going_down]
        assert before, f"no {kind} before the outage: {report}"
        failed_before = [a for a in before if a.status != ok]
        assert not failed_before, f"{kind} before the outage: {report}\n{_show(failed_before)}"
        after = [a for a in group if a.started > recovered + AFTER_RECOVERY_MARGIN]
        assert after, f"no {kind} after recovery: {report}"
        failed_after = [a for a in after if a.status != ok]
        assert not failed_after, f"{kind} after recovery: {report}\n{_show(failed_after)}"

    # Nothing half-written: a 201 has its post, its ledger entry and its key record; a key
    # that never got a 201 left nothing behind.
    keys = {a.key for a in post_answers}
    created: dict[str, list[Answer]] = {}
    for answer in post_answers:
        if answer.status == 201:
            created.setdefault(str(answer.key), []).append(answer)
    assert all(len(found) == 1 for found in created.values()), "a key succeeded twice"
    actor_ref = f"client:{client.client_id}"
    with world.ctx.uow() as uow:
        posts = uow.posts.list_for_account(world.account.id)
        entries = list(uow.ledger.entries())
        records = {key: uow.idempotency_keys.get(actor_ref, str(key)) for key in keys}
    platform = world.container.local_store.timeline(world.account.handle, limit=100_000)
    by_key: dict[str, list[Any]] = {}
    for post in posts:
        if "note outage-" in post.submitted_text:
            by_key.setdefault(post.submitted_text.rsplit(" ", 1)[-1], []).append(post)
    for key in keys:
        found = by_key.get(str(key), [])
        record = records[key]
        if key in created:
            answer = created[str(key)][0]
            assert len(found) == 1, f"{key}: {len(found)} posts for one 201"
            assert answer.body["id"] == found[0].public_id, answer
            assert record is not None and record.status == "completed", (key, record)
            assert record.response_status == 201
        else:
            assert not found, f"{key} failed yet left {len(found)} post(s)"
            assert record is None, f"{key} failed yet left its key record {record}"
    assert set(by_key) <= keys

    submitted = Counter(e.subject for e in entries if e.tag == LedgerTag.POST_SUBMITTED)
    for found in by_key.values():
        assert submitted[f"post:{found[0].public_id}"] == 1, found[0]
    assert first_broken_entry(entries) is None, "the ledger chain verifies"

    # The worker came back by itself too: everything went out, once.
    states = Counter(p.state for p in posts)
    assert states == {PostState.PUBLISHED: len(posts)}, f"{states}\n{worker_log[-3000:]}"
    assert sorted(str(s.id) for s in platform) == sorted(str(p.platform_post_id) for p in posts)
    published = Counter(e.subject for e in entries if e.tag == LedgerTag.POST_PUBLISHED)
    assert all(published[f"post:{p.public_id}"] == 1 for p in posts)
    replayed = sum(a.replayed for a in post_answers)
    retried = {a.key for a in post_answers if a.status == 503} & set(created)
    print(
        f"{len(created)} keys created ({len(retried)} after a 503, {replayed} on a replay), "
        f"{len(keys) - len(created)} given up after a 503"
    )
