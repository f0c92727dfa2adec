"""Benchmark: the worker's cost per published post, in process (no platform but `local`).

Seeds a database as `bench/api_load.py` does (5 accounts with open windows, reminders every
10 posts), submits N posts through the API (Flask's test client), then lets one Worker publish
them with `publish_one` until nothing is due, and prints, per published post: SQL statements,
transactions, and this process's CPU (`time.process_time()`: a PostgreSQL server's time is
left out, so the figure holds still on a busy machine). The notary pass is not in the loop.

    .venv/bin/python bench/worker_publish.py                  # SQLite, then PostgreSQL
    .venv/bin/python bench/worker_publish.py --no-postgres -n 1000
    .venv/bin/python bench/worker_publish.py --profile        # cProfile of the loop, top 40

Not a test: nothing is asserted but that every post went out.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402

from bench.api_load import migrate, seed, settings_for, token_from_test_client  # noqa: E402
from bench.request_cpu import databases  # noqa: E402
from ghostpost.bootstrap import bootstrap  # noqa: E402
from ghostpost.db.engine import READ_ONLY, SINGLE_READ  # noqa: E402
from ghostpost.worker import Worker  # noqa: E402


def submit(url: str, work: Path, n: int) -> None:
    """Seed the database and submit `n` posts through the API."""
    settings = settings_for(url, work, "development")
    container = bootstrap(settings)
    try:
        seeded = seed(container, 5)
    finally:
        container.dispose()
    from ghostpost import create_app

    app = create_app(settings.replace(environment="production"))
    http = app.test_client()
    token = token_from_test_client(http, seeded)
    for i in range(n):
        answer = http.post(
            "/api/v1/posts",
            json={
                "account": seeded.accounts[i % len(seeded.accounts)],
                "author": seeded.authors[i % len(seeded.authors)],
                "text": f"Update {i} from the worker bench",
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"wb-{i}"},
        )
        if answer.status_code != 201:
            raise SystemExit(f"create answered {answer.status_code}: {answer.get_data()!r}")
    app.extensions["ghostpost"].dispose()


def bench(name: str, url: str, args: argparse.Namespace, work: Path) -> None:
    print(f"== {name}")
    migrate(url)
    submit(url, work, args.n)
    container = bootstrap(settings_for(url, work, "production"))
    statements: Counter[str] = Counter()
    transactions: Counter[str] = Counter()

    shown: list[str] = []

    def count_statement(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1
        if args.show and published == args.show:
            shown.append(" ".join(statement.split())[:160])

    def count_transaction(conn: Any) -> None:
        options = conn.get_execution_options()
        reads = options.get(READ_ONLY, False) or options.get(SINGLE_READ, False)
        transactions["read" if reads else "write"] += 1

    worker = Worker(container, worker_id="bench-worker")
    worker.notary_pass()  # the first, full pass: not part of publishing
    event.listen(container.engine, "before_cursor_execute", count_statement)
    event.listen(container.engine, "begin", count_transaction)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    published = 1
    start, times = time.process_time(), os.times()
    if profiler:
        profiler.enable()
    while worker.publish_one():
        published += 1
    published -= 1
    if profiler:
        profiler.disable()
    spent = (time.process_time() - start) * 1000
    after = os.times()
    user, system = ((after[k] - times[k]) * 1000 for k in (0, 1))
    event.remove(container.engine, "before_cursor_execute", count_statement)
    event.remove(container.engine, "begin", count_transaction)
    with container.engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM posts WHERE state NOT IN ('published')")
        ).scalar_one()
    if left:
        raise SystemExit(f"{left} posts not published")
    per = max(published, 1)
    kinds = ", ".join(f"{k} {v / per:.2f}" for k, v in statements.most_common())
    print(
        f"  {published} posts published: {sum(statements.values()) / per:.2f} statements "
        f"({kinds}), {transactions['write'] / per:.2f} write and "
        f"{transactions['read'] / per:.2f} read-only transactions, "
        f"{spent / per:.3f} ms CPU per post (user {user / per:.3f}, system {system / per:.3f})"
    )
    if shown:
        print(f"  the statements of publish number {args.show}:")
        print("\n".join(f"    {line}" for line in shown))
    if profiler:
        stats = pstats.Stats(profiler)
        stats.dump_stats(Path(tempfile.gettempdir()) / f"worker_publish-{name}-{os.getpid()}.prof")
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(30)
    container.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="posts to submit and publish")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--show", type=int, help="print the statements of this publish (1-)")
    parser.add_argument("--profile", action="store_true", help="cProfile the publishing loop")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ghostpost-worker-bench-"))
    work.chmod(0o755)
    print(f"bench/worker_publish.py; load average {os.getloadavg()[0]:.1f}")
    try:
        with databases(args, work) as found:
            for name, url, _bare_url in found:
                bench(name, url, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
