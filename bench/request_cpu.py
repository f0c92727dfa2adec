"""Benchmark: the app's CPU per request, in process (no gunicorn, no network, no other load).

Seeds a database as `bench/api_load.py` does, then sends N `POST /api/v1/posts`, N
`POST /api/v1/preview`, and the bare app's N `POST /insert`, `POST /insert-chained` and
`POST /ping`, through Flask's test client, and prints `time.process_time()` per request:
this process's CPU only, so a PostgreSQL server's time is left out and the figure holds
still on a busy machine (wall time does not). Each row also prints the wall time per
request, which holds the fsyncs (of the commit and of SQLite's checkpoints) that CPU time
leaves out but a sync worker waits for; it moves with the machine's load. The test client's
own cost (building the WSGI environ) is in every row alike.
On SQLite it also prints the WAL pages a create's commit writes and how long a create holds
the write lock (wall and CPU): what two gunicorn workers wait for from each other.

    .venv/bin/python bench/request_cpu.py                    # SQLite, then PostgreSQL
    .venv/bin/python bench/request_cpu.py --no-postgres -n 2000
    .venv/bin/python bench/request_cpu.py --profile create   # cProfile of the creates, top 40

Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile  # the profile is saved to $TMPDIR/request_cpu-<route>-<pid>.prof
import itertools
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.api_load import migrate, seed, settings_for, token_from_test_client  # noqa: E402
from ghostpost.bootstrap import bootstrap  # noqa: E402


def per_request(label: str, n: int, send: Callable[[int], Any], profile: str | None) -> float:
    for i in range(20):  # warm-up: caches, pool, first statements compiled
        send(-1 - i)
    profiler = cProfile.Profile(time.process_time) if profile and profile in label else None
    start, times, wall = time.process_time(), os.times(), time.perf_counter()
    if profiler:
        profiler.enable()
    for i in range(n):
        send(i)
    if profiler:
        profiler.disable()
    spent = (time.process_time() - start) / n * 1000
    wall = (time.perf_counter() - wall) / n * 1000
    after = os.times()
    user, system = ((after[k] - times[k]) / n * 1000 for k in (0, 1))
    print(
        f"  {label:<34} {spent:6.3f} ms CPU per request "
        f"(user {user:.3f}, system {system:.3f}; wall {wall:.3f}, fsyncs in it; n={n})"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        route = label.split()[-1].replace("/", "_")
        stats.dump_stats(Path(tempfile.gettempdir()) / f"request_cpu-{route}-{os.getpid()}.prof")
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
    return spent


def wal_pages_per_request(engine: Any, database: Path, n: int, send: Callable[[int], Any]) -> float:
    """Send `n` requests with the WAL emptied first and checkpoints off (SQLite's automatic
    ones on the engine's connections, and the writer queue's: both restored afterwards), and
    return the WAL pages they wrote each."""
    import sqlite3

    from sqlalchemy import event

    from ghostpost.db import writer_queue

    def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    event.listen(engine, "connect", no_autocheckpoint)
    engine.dispose()  # new connections, with the listener
    every = writer_queue.CHECKPOINT_EVERY
    writer_queue.CHECKPOINT_EVERY = 10**12  # a knob of the bench, not of the app
    try:
        send(-10_000)  # the first connection of the pool, before the WAL is emptied
        outside = sqlite3.connect(database)
        page_size = int(outside.execute("PRAGMA page_size").fetchone()[0])
        outside.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        outside.close()
        for i in range(n):
            send(-20_000 - i)
        wal = Path(f"{database}-wal").stat().st_size
        return (wal - 32) / (page_size + 24) / n  # WAL header; each frame: header + page
    finally:
        writer_queue.CHECKPOINT_EVERY = every
        event.remove(engine, "connect", no_autocheckpoint)
        engine.dispose()


def write_lock_held(n: int, send: Callable[[int], Any]) -> tuple[float, float, float]:
    """Send `n` requests and return, per request, the wall and CPU milliseconds the SQLite
    write lock (the writer queue's turn: BEGIN IMMEDIATE to COMMIT) was held, and the write
    transactions taken. Under load the other writers wait this long: on SQLite, throughput is
    about 1 / (wall time held per create)."""
    from ghostpost.db.writer_queue import QueuedWritersConnection as Queued

    begin, give = Queued.begin_write, Queued.give_writer_turn
    taken: dict[int, tuple[float, float]] = {}
    held = [0.0, 0.0, 0]

    def timed_begin(self: Any, run: Callable[[], object]) -> None:
        taken[id(self)] = (time.perf_counter(), time.process_time())
        begin(self, run)

    def timed_give(self: Any) -> None:
        holding = self._holding is not None
        give(self)
        started = taken.pop(id(self), None)
        if holding and started is not None:
            held[0] += time.perf_counter() - started[0]
            held[1] += time.process_time() - started[1]
            held[2] += 1

    Queued.begin_write, Queued.give_writer_turn = timed_begin, timed_give  # type: ignore[method-assign]
    try:
        for i in range(n):
            send(-30_000 - i)
    finally:
        Queued.begin_write, Queued.give_writer_turn = begin, give  # type: ignore[method-assign]
    return held[0] / n * 1000, held[1] / n * 1000, held[2] / n


@contextmanager
def databases(args: argparse.Namespace, work: Path) -> Iterator[list[tuple[str, str, str]]]:
    found = []
    if not args.no_sqlite:
        found.append(("sqlite", f"sqlite:///{work / 'gp.db'}", f"sqlite:///{work / 'bare.db'}"))
    if args.no_postgres:
        yield found
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as server:
        found.append(("postgresql", server.create_database("gp"), server.create_database("bare")))
        yield found


def bench(name: str, url: str, bare_url: str, args: argparse.Namespace, work: Path) -> None:
    print(f"== {name}")
    migrate(url)
    seed_settings = settings_for(url, work, "development")
    container = bootstrap(seed_settings)
    try:
        seeded = seed(container, 5)
    finally:
        container.dispose()
    from ghostpost import create_app

    app = create_app(seed_settings.replace(environment="production"))
    http = app.test_client()
    token = token_from_test_client(http, seeded)
    auth = {"Authorization": f"Bearer {token}"}
    accounts, authors = seeded.accounts, seeded.authors

    def body(i: int, what: str) -> dict[str, Any]:
        return {
            "account": accounts[i % len(accounts)],
            "author": authors[i % len(authors)],
            "text": f"{what} number {i} from the CPU bench",
        }

    fresh_keys = itertools.count()

    def create(i: int) -> None:
        # A fresh key on every call: a later round's creates are creates, not replays.
        answer = http.post(
            "/api/v1/posts",
            json=body(i, "Post"),
            headers={**auth, "Idempotency-Key": f"cpu-{next(fresh_keys)}"},
        )
        if answer.status_code != 201:
            raise SystemExit(f"create answered {answer.status_code}: {answer.get_data()!r}")

    def preview(i: int) -> None:
        answer = http.post("/api/v1/preview", json=body(i, "Preview"), headers=auth)
        if answer.status_code != 200:
            raise SystemExit(f"preview answered {answer.status_code}: {answer.get_data()!r}")

    from bench.bare_app import ENV_URL, create_bare_app, init_schema

    init_schema(bare_url)
    os.environ[ENV_URL] = bare_url
    bare_app = create_bare_app()
    bare_http = bare_app.test_client()

    def insert(i: int) -> None:
        bare_http.post("/insert", json=body(i, "Bare"))

    def insert_chained(i: int) -> None:
        bare_http.post("/insert-chained", json=body(i, "Chained"))

    def ping(i: int) -> None:
        bare_http.post("/ping", json=body(i, "Ping"))

    if name == "sqlite":
        # What each commit writes (and fsyncs, under the writer lock): a count, not a time,
        # so it holds still on a busy machine. Before the timed rows: their keys come after.
        gp_engine = app.extensions["ghostpost"].engine
        bare_engine = bare_app.extensions["bench_engine"]
        gp_pages = wal_pages_per_request(gp_engine, work / "gp.db", min(args.n, 500), create)
        bare_pages = wal_pages_per_request(bare_engine, work / "bare.db", min(args.n, 500), insert)
        print(
            f"  SQLite WAL pages written per request (each fsynced at commit): "
            f"ghostpost create {gp_pages:.1f}, bare insert {bare_pages:.1f}"
        )
        for _ in range(args.rounds):
            wall, cpu, turns = write_lock_held(args.n, create)
            print(
                f"  SQLite write lock held per create: {wall:.3f} ms wall, {cpu:.3f} ms CPU "
                f"({turns:.2f} write transactions per create)"
            )
    for _ in range(args.rounds):
        per_request("ghostpost POST /api/v1/posts", args.n, create, args.profile)
        per_request("bare POST /insert", args.n, insert, args.profile)
        per_request("bare POST /insert-chained", args.n, insert_chained, args.profile)
        per_request("ghostpost POST /api/v1/preview", args.n, preview, args.profile)
        per_request("bare POST /ping", args.n, ping, args.profile)
    app.extensions["ghostpost"].dispose()
    bare_app.extensions["bench_engine"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="requests per row")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the five rows")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--profile", help="cProfile the rows whose label contains this (e.g. posts, preview)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ghostpost-cpu-bench-"))
    work.chmod(0o755)
    print(f"bench/request_cpu.py; load average {os.getloadavg()[0]:.1f}")
    try:
        with databases(args, work) as found:
            for name, url, bare_url in found:
                bench(name, url, bare_url, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
