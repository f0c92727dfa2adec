"""Kill the worker at random points, 50+ times in a row: nothing lost, nothing published twice.

Each run is one worker process that dies at a point chosen at random:

- ``before_publish``: os._exit just before the platform is called (nothing was sent);
- ``after_accept``: os._exit right after the platform accepted, before the receipt is returned;
- ``before_record``: os._exit on entering ``publishing.record_published`` (the outcome is known
  to the worker, not to the database);
- ``sigkill``: a real SIGKILL from this process after a random 0-300 ms, wherever it lands.

os._exit, like kill -9, runs no exception handler, rollback or ``finally``. The next run adopts
what the dead worker left ``publishing`` once its lease has run out, and asks the platform.

Speed: a fresh ``python -m ghostpost`` costs about a second of imports, so the workers are forks
of the test process (tests/support/forked_worker.py), which closes its own pooled connections
before each fork; each builds its own container (own engine).

Time: the lease is the minimum (1 s) and the account's next post waits behind the post a dead
worker left ``publishing``. Waiting out ~50 leases for real would cost ~50 s per backend, so
the workers read "ghostpost time": the real clock plus an offset that only grows, and only
when a stale lease blocks the account, by exactly what is left of that lease. Adoption thus
still happens only once the lease has expired on the clock the worker reads (as the suite does
everywhere with FixedClock); tests/functional/test_worker_crash.py waits a real lease.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghostpost.adapters.base import Receipt
from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerTag, first_broken_entry
from ghostpost.domain.model import Account
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState
from ghostpost.services import publishing
from ghostpost.settings import Settings
from ghostpost.worker import Worker
from tests.support.timeline import assert_policy_kept
from tests.support.world import World

RUNS = 56
INITIAL_POSTS = 60
#: Keep at least this many posts due, so that every run has something to be killed in.
LOW_WATER = 12
TOP_UP = 10
LEASE_SECONDS = 1
MAX_KILL_DELAY = 0.3

BEFORE_PUBLISH = "before_publish"
AFTER_ACCEPT = "after_accept"
BEFORE_RECORD = "before_record"
SIGKILL = "sigkill"
KINDS = (BEFORE_PUBLISH, AFTER_ACCEPT, BEFORE_RECORD, SIGKILL)
#: A planned death exits with its own code; anything else is a real failure.
EXIT_CODES = {BEFORE_PUBLISH: 101, AFTER_ACCEPT: 102, BEFORE_RECORD: 103}
CHILD_ERROR = 3
KILLED = -9
#: At least this many runs of each kind must really have died (not finished first).
MIN_DEATHS_PER_KIND = 5


@pytest.fixture
def clock() -> FixedClock:
    # The worker processes read the real clock (plus an offset), so the window must be open in
    # real time.
    return FixedClock(datetime.now(UTC))


class AheadClock:
    """The real clock plus a fixed offset: "ghostpost time" of one worker process."""

    def __init__(self, ahead: float) -> None:
        self._ahead = timedelta(seconds=ahead)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._ahead


class DyingPublisher:
    """Wraps the real publisher; dies on the Nth publish, before sending or after acceptance."""

    def __init__(self, inner: Any, crash_on: int, after_accept: bool) -> None:
        self._inner = inner
        self.platform = inner.platform
        self._crash_on = crash_on
        self._after_accept = after_accept
        self._calls = 0

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        **sent: Any,
    ) -> Receipt:
        self._calls += 1
        crash = self._calls == self._crash_on
        if crash and not self._after_accept:
            os._exit(EXIT_CODES[BEFORE_PUBLISH])
        receipt: Receipt = self._inner.publish(
            account, text, idempotency_key=idempotency_key, options=options, **sent
        )
        if crash:
            os._exit(EXIT_CODES[AFTER_ACCEPT])
        return receipt

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        found: Receipt | None = self._inner.lookup(account, idempotency_key=idempotency_key)
        return found


def _die_on_nth_record(crash_on: int) -> None:
    """Make the Nth call of publishing.record_published (this process only) die on entry."""
    real: Callable[..., Any] = publishing.record_published
    calls = 0

    def dying(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == crash_on:
            os._exit(EXIT_CODES[BEFORE_RECORD])
        return real(*args, **kwargs)

    publishing.record_published = dying  # type: ignore[assignment]


def worker_process(
    settings: Settings, kind: str | None, crash_on: int, ahead: float, log_path: str
) -> None:
    """Body of one worker process (a fork of the test): build, arm the fault, run once."""
    # Everything the process prints (logs, tracebacks, C-level messages) goes to its log file.
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    # Coverage's tracer came with the fork; what it would record here is never saved (the
    # process ends in os._exit or SIGKILL), so it would only cost CPU.
    sys.settrace(None)
    threading.settrace(None)
    try:
        warnings.simplefilter("error")  # as strict as the suite
        logging.basicConfig(level=logging.INFO, force=True)
        container = bootstrap(settings, clock=AheadClock(ahead))
        if kind in (BEFORE_PUBLISH, AFTER_ACCEPT):
            container.publishers["local"] = DyingPublisher(
                container.publishers["local"], crash_on, after_accept=kind == AFTER_ACCEPT
            )
        elif kind == BEFORE_RECORD:
            _die_on_nth_record(crash_on)
        Worker(container).run(once=True)
        container.dispose()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(CHILD_ERROR)


class KillLoop:
    """Runs the worker processes and keeps ghostpost time ahead of any stale lease."""

    def __init__(self, world: World, settings: Settings, logs: Path) -> None:
        self.world = world
        self.settings = settings.replace(worker_lease_seconds=LEASE_SECONDS)
        self.forks = multiprocessing.get_context("fork")
        self.logs = logs
        self.ahead = 0.0
        self.runs = 0

    def posts(self) -> list[Any]:
        with self.world.ctx.uow() as uow:
            return uow.posts.list_for_account(self.world.account.id)

    def skip_stale_leases(self, posts: list[Any]) -> None:
        """Move ghostpost time past the lease of any post left `publishing` (only if needed)."""
        leases = [p.lease_until for p in posts if p.state is PostState.PUBLISHING]
        assert len(leases) <= 1, "at most one post of an account is in flight"
        for lease_until in leases:
            assert lease_until is not None
            left = (lease_until - datetime.now(UTC)).total_seconds() - self.ahead
            self.ahead += max(0.0, left + 0.01)

    def start(self, kind: str | None, crash_on: int, posts: list[Any]) -> tuple[Any, Path]:
        """Fork the next worker; `posts`: the account's posts as read since the last worker
        ended (nothing but submissions has changed them since, and those add no lease)."""
        self.skip_stale_leases(posts)
        self.runs += 1
        log = self.logs / f"run-{self.runs:03d}-{kind}.log"
        self.world.container.dispose()  # no database connection crosses the fork
        process = self.forks.Process(
            target=worker_process,
            args=(self.settings, kind, crash_on, self.ahead, str(log)),
            daemon=True,
        )
        process.start()
        return process, log

    @staticmethod
    def wait(process: Any, log: Path, context: str) -> int:
        process.join(timeout=30)
        if process.exitcode is None:
            process.kill()
            process.join()
            pytest.fail(f"{context}: worker hung\n{_read(log)}")
        code: int = process.exitcode
        return code

    def run_clean(self, context: str) -> None:
        process, log = self.start(None, 0, self.posts())
        code = self.wait(process, log, context)
        assert code == 0, f"{context}: clean worker exited {code}\n{_read(log)}"


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else "(no log)"


@pytest.mark.slow
def test_a_worker_killed_fifty_times_at_random_points_loses_nothing_and_duplicates_nothing(
    world: World, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    seed = int(os.environ.get("GP_KILL_LOOP_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    tag = f"[seed {seed}; rerun with GP_KILL_LOOP_SEED={seed}]"
    world.container.keyring.signer()  # the signing key exists before any worker can die
    window = world.open_window(every=5)
    world.approve_notice(window)
    authors = [world.writer_a, world.writer_b, world.principal]
    submitted = 0

    def submit(count: int) -> None:
        nonlocal submitted
        for _ in range(count):
            author = authors[submitted % len(authors)]
            world.submit(author, f"Update {submitted} from the show floor")
            submitted += 1

    submit(INITIAL_POSTS)
    logs = tmp_path / "workers"
    logs.mkdir()
    loop = KillLoop(world, settings, logs)

    # Every kind equally often, in a random order.
    plan = [KINDS[i % len(KINDS)] for i in range(RUNS)]
    rng.shuffle(plan)
    planned: Counter[str] = Counter()
    died: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    left_in_flight: Counter[str] = Counter()
    # The posts are read once between two workers (nothing else changes their states): for
    # what the dead worker left, how many are due, and the lease to skip.
    posts = loop.posts()
    for number, kind in enumerate(plan, start=1):
        due = sum(p.state in (PostState.SCHEDULED, PostState.HELD) for p in posts)
        if due < LOW_WATER:
            clock.set(datetime.now(UTC) + timedelta(seconds=loop.ahead))
            submit(TOP_UP)
        crash_on = rng.randint(1, 3)
        delay = rng.uniform(0, MAX_KILL_DELAY)
        context = f"{tag} run {number} ({kind}, crash_on={crash_on}, delay={delay:.3f})"
        planned[kind] += 1
        process, log = loop.start(kind, crash_on, posts)
        if kind == SIGKILL:
            time.sleep(delay)
            process.kill()
        code = loop.wait(process, log, context)
        expected = KILLED if kind == SIGKILL else EXIT_CODES[kind]
        assert code in (expected, 0), f"{context}: worker exited {code}\n{_read(log)}"
        if code == 0:
            finished[kind] += 1
        else:
            died[kind] += 1
        posts = loop.posts()
        if any(p.state is PostState.PUBLISHING for p in posts):
            left_in_flight[kind] += 1

    # A clean worker adopts whatever the last death left and publishes the rest.
    for attempt in range(3):
        loop.run_clean(f"{tag} clean worker {attempt}")
        if not any(
            p.state in (PostState.SCHEDULED, PostState.HELD, PostState.PUBLISHING)
            for p in loop.posts()
        ):
            break

    report = (
        f"{tag} runs={loop.runs} posts submitted={submitted} planned={dict(planned)} "
        f"died={dict(died)} finished first={dict(finished)} "
        f"left publishing={dict(left_in_flight)} ghostpost time ahead={loop.ahead:.1f}s"
    )
    print(report)
    assert loop.runs >= 50
    for kind in KINDS:
        assert died[kind] >= MIN_DEATHS_PER_KIND, f"too few {kind} deaths: {report}"

    account = world.account
    statuses = world.container.local_store.timeline(account.handle, limit=10_000)
    with world.ctx.uow() as uow:
        posts = uow.posts.list_for_account(account.id)
        entries = list(uow.ledger.entries())
    states = Counter(p.state for p in posts)
    failed_without_reason = [
        p.id for p in posts if p.state is PostState.FAILED and not (p.state_reason or "").strip()
    ]
    assert not failed_without_reason, f"failed without a reason: {failed_without_reason} {report}"
    # The local platform never refuses: every post, notice and reminder must be out.
    assert states == {PostState.PUBLISHED: len(posts)}, f"{states} {report}"
    assert len(posts) >= submitted + 1, "the submitted posts and the notice"

    published = {p.platform_post_id for p in posts if p.state is PostState.PUBLISHED}
    on_platform = [str(s.id) for s in statuses]
    assert len(on_platform) == len(set(on_platform))
    assert len(published) == len([p for p in posts if p.state is PostState.PUBLISHED]), (
        f"two posts share a platform status {report}"
    )
    assert set(on_platform) == published, (
        f"duplicates or orphans on the platform: {len(on_platform)} statuses for "
        f"{len(published)} published posts {report}"
    )

    assert first_broken_entry(entries) is None, f"the ledger chain verifies {report}"
    tags_by_subject: dict[str, Counter[str]] = {}
    for entry in entries:
        tags_by_subject.setdefault(entry.subject, Counter())[entry.tag] += 1
    for post in posts:
        tags = tags_by_subject.get(f"post:{post.public_id}", Counter())
        assert tags[LedgerTag.POST_PUBLISHED] == 1, f"post {post.id}: {dict(tags)} {report}"
    all_tags = Counter(e.tag for e in entries)
    assert all_tags[LedgerTag.POST_LATE_RESULT] == 0, report
    reconciled = sum(
        1 for e in entries if e.tag == LedgerTag.POST_PUBLISHED and e.data.get("reconciled")
    )
    # Deaths after acceptance are found on the platform; deaths before sending are requeued.
    assert reconciled >= died[AFTER_ACCEPT], report
    assert all_tags[LedgerTag.POST_REQUEUED] >= died[BEFORE_PUBLISH], report

    try:
        assert_policy_kept(world.container, account, window)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report}") from exc
