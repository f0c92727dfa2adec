"""Benchmark: the CPU of one notary pass (ghostpost.services.ledger_integrity.Notary.run_pass).

Seeds a fresh SQLite database (or PostgreSQL with --database-url) with a ledger of --size
entries and a signed tree, then measures, in this process, `time.process_time()` per pass:

- an idle pass (nothing new: the chain head and the tree are signed already);
- a pass after N new entries, for each N in --new (verify them, extend and sign the tree, sign
  the chain head);
- a full-check pass (the worker's first: the whole chain and every stored leaf recomputed).

    .venv/bin/python bench/notary_pass.py                    # SQLite, ledger of 200
    .venv/bin/python bench/notary_pass.py --size 2000 --new 1 10 100 -n 30

Not a test: nothing is asserted. CPU of this process only (a database server's is left out).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.api_load import migrate, settings_for  # noqa: E402
from ghostpost.bootstrap import Container, bootstrap  # noqa: E402
from ghostpost.domain.ledger import LedgerTag  # noqa: E402
from ghostpost.services.ledger_integrity import PassOutcome  # noqa: E402

MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def append(container: Container, n: int) -> None:
    """Append n entries in one transaction (sealed leaves: users created)."""
    with container.services.uow() as uow:
        for _ in range(n):
            uow.ledger.append(
                tag=LedgerTag.USER_CREATED,
                actor="system:bench",
                subject="user:1",
                data={"email": "bench@example.org", "role": "writer"},
                occurred_at=MOMENT,
            )
        uow.commit()


def per_pass(
    label: str, rounds: int, prepare: Callable[[], None], run: Callable[[], object]
) -> None:
    spent = 0.0
    for _ in range(rounds):
        prepare()
        start = time.process_time()
        run()
        spent += time.process_time() - start
    print(f"  {label:<40} {spent / rounds * 1000:8.3f} ms CPU per pass (n={rounds})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200, help="ledger entries before measuring")
    parser.add_argument("--new", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("-n", "--rounds", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="notary-bench-"))
    try:
        url = args.database_url or f"sqlite:///{work / 'bench.db'}"
        migrate(url)
        container = bootstrap(settings_for(url, work, "development"))
        notary = container.notary
        append(container, args.size)
        first = notary.run_pass()
        assert first.outcome == PassOutcome.SIGNED, first
        print(f"notary pass, ledger of {args.size} entries ({url.split(':', 1)[0]}):")
        per_pass("idle (nothing new)", args.rounds, lambda: None, notary.run_pass)
        for n in args.new:
            per_pass(
                f"{n} new entries", args.rounds, lambda n=n: append(container, n), notary.run_pass
            )
        per_pass(
            "full check (worker's first pass)",
            max(3, args.rounds // 8),
            lambda: None,
            lambda: notary.run_pass(full_check=True),
        )
        alarm = container.notary_store.alarm()
        assert alarm is None, alarm
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.environ.pop("GHOSTPOST_BENCH", None)


if __name__ == "__main__":
    main()
