"""Benchmark: export a large ledger and authorship report; memory must stay flat as rows grow.

Seeds a fresh database quickly (bulk inserts, not the services): a small directory through
the real services, then N ledger entries (a valid hash chain, a signed checkpoint every
`--checkpoint-every` entries as ghostpost signs every append) and a published post for
every `--post-every`-th entry (default every second: N/2 posts, so the authorship report has
enough rows that a run's fixed start-up does not decide its rate). Each post's `decisions`
differ, as in real use (the tag's numbers, the length, the reminder's reason, the notes, and
the outcomes vary): a report that cached its work per distinct `decisions` would be flattered
by identical ones. At each size (default N/10 and N) it runs `ghostpost audit export` in a
subprocess per export:

- the authorship report as CSV (one row per seeded post),
- the raw ledger as JSONL (every entry and checkpoint),

and prints rows/second and the peak RSS of the exporting process (its own VmHWM, reported by
the child at exit, so each export is measured alone), next to a baseline export of zero rows:
the fixed cost of a run (start Python, import Flask and SQLAlchemy, connect). "net rows/s"
leaves that fixed time out. The same two exports run filtered to the account (`--account`);
the seeded ledger has one account, and the entries between the posts' name a post that does
not exist (so belong to no account): a filtered ledger export lists one entry in
`--post-every`.

Each export is compared with a **bare export** of the same rows: a child that imports only the
database driver (through SQLAlchemy's engine), reads the columns with the driver's cursor
(server-side on PostgreSQL), and writes each line with one f-string (JSONL) or csv.writer
(CSV) — the speed the database and Python can stream at, with no ghostpost code. "× bare" is
net rows/s over the bare export's net rows/s (each net of its own zero-row run). The bare
export of a filtered one reads the same rows (`WHERE account_id = ?`, the entries' derived
column and its index; no checkpoints).

    .venv/bin/python bench/ledger_export.py                       # SQLite file, 100k and 1M
    .venv/bin/python bench/ledger_export.py --postgres            # throwaway PostgreSQL server
    .venv/bin/python bench/ledger_export.py --database-url postgresql+psycopg://u@host/db
    .venv/bin/python bench/ledger_export.py --entries 200000 --sizes 20000,200000

Not a test: nothing is asserted. The database must be empty (it is migrated here).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, update  # noqa: E402

from ghostpost.audit.keys import FileKeyring  # noqa: E402
from ghostpost.bootstrap import Container, bootstrap  # noqa: E402
from ghostpost.cli import alembic_config  # noqa: E402
from ghostpost.db.models import (  # noqa: E402
    LedgerCheckpointRow,
    LedgerEntryRow,
    LedgerHeadRow,
    PostRow,
)
from ghostpost.domain.checkpoint import checkpoint_note  # noqa: E402
from ghostpost.domain.ledger import canonical_json, chain_entry  # noqa: E402
from ghostpost.domain.model import Role  # noqa: E402
from ghostpost.services import directory  # noqa: E402
from ghostpost.services.context import Actor  # noqa: E402
from ghostpost.settings import Settings  # noqa: E402

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BATCH = 10_000
TEXTS = [
    "Day two of the summit: the keynote on open standards starts at 10, see you in hall B.",
    "Grüße aus Zürich — thank you all for coming 👋🏽 #team",
    '=SUM(A1:A9) is not a formula here, and "quotes", commas, and\na second line are fine.',
    "Reminder: my team helps run this account.",
]


@dataclass
class Seeded:
    entries: int = 0
    posts: int = 0
    head_hash: str = "0" * 64
    last_signed_at: str = ""


def ledger_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def settings_for(database_url: str, work: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="bench-secret-key-0123456789",
        environment="development",
        ledger_signing_key=str(work / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(work / "keys" / "public"),
        ledger_witness_file=str(work / "witness" / "checkpoints.jsonl"),
    )


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOSTPOST_")}
    for name in (
        "database_url",
        "secret_key",
        "environment",
        "ledger_signing_key",
        "ledger_public_keys",
        "ledger_witness_file",
    ):
        env[f"GHOSTPOST_{name.upper()}"] = str(getattr(settings, name))
    env["PYTHONPATH"] = str(ROOT)
    return env


def seed_directory(container: Container) -> tuple[int, list[int]]:
    """A principal, an account and ten writers, made through the services (signed entries)."""
    ctx, system = container.services, Actor.system("bench")
    principal = directory.create_principal(ctx, system, "Avery Chen")
    account = directory.create_account(
        ctx, system, principal_id=principal.id, platform="local", handle="avery"
    )
    writers = []
    for i in range(10):
        user = directory.create_user(
            ctx,
            system,
            email=f"writer{i}@bench.test",
            name=f"Writer {i}",
            role=Role.WRITER,
            password="bench-password-123",
            principal_id=None,
        )
        directory.assign_writer(ctx, system, user_id=user.id, account_id=account.id)
        writers.append(user.id)
    return account.id, writers


#: Tag outcomes as the policy engine records them, and how often each is seeded (of 20).
TAG_OUTCOMES = ["applied"] * 12 + ["already_present"] * 3 + ["skipped"] * 2 + ["off", "none", ""]
REMINDER_OUTCOMES = ["none"] * 7 + ["inline", "standalone", "not_applicable"]


def varied_decisions(seq: int, text: str) -> dict[str, Any]:
    """A post's stored `decisions`, different for (nearly) every post as in real use: the tag's
    numbers, the length used, the reminder's reason and the notes follow the post, and the
    outcomes vary (a report that cached by decision would gain nothing here)."""
    rng = random.Random(seq)
    used = len(text) + rng.randrange(0, 200)
    limit = rng.choice([280, 500, 3000])
    outcome = rng.choice(TAG_OUTCOMES)
    tag = {
        "outcome": outcome,
        "tag": rng.choice(["#team", "#team", "#staff", "#ad"]) if outcome else "",
        "needs": 6 if outcome in ("applied", "skipped") else None,
        "has": limit - used if outcome in ("applied", "skipped") else None,
        "unit": rng.choice(["characters", "graphemes"]) if outcome != "none" else None,
    }
    every = rng.randrange(3, 12)
    reminder = rng.choice(REMINDER_OUTCOMES)

    def record(stage: str) -> dict[str, Any]:
        return {
            "stage": stage,
            "outcome": "publish" if stage == "publication" else rng.choice(["accept", "hold"]),
            "tag": tag,
            "reminder": {
                "outcome": reminder,
                "reason": f"post {seq % every + 1} of every {every}" if reminder != "none" else "",
            },
            "length": {"used": used, "limit": limit, "unit": tag["unit"] or "characters"},
            "held_reason": None,
            "refusal": None,
            "notes": [f"measured {used} of {limit}"] * rng.randrange(0, 3),
        }

    decisions: dict[str, Any] = {
        "delegated": rng.random() < 0.9,
        "submission": record("submission"),
    }
    if rng.random() < 0.95:  # a few were published before the publication record existed
        decisions["publication"] = record("publication")
    else:
        decisions["publication"] = None
    return decisions


def seed_until(
    container: Container,
    state: Seeded,
    entries: int,
    account_id: int,
    writers: list[int],
    checkpoint_every: int,
    post_every: int = 10,
) -> None:
    """Append entries (and a post for every `post_every`-th) until the ledger holds `entries`."""
    signer = FileKeyring(
        container.settings.ledger_signing_key,
        container.settings.ledger_public_keys,
        generate_missing=True,
    ).signer()
    with container.sessions() as session:
        head = session.scalar(select(LedgerHeadRow).where(LedgerHeadRow.id == 1))
        assert head is not None
        seq, prev = head.size, head.head_hash
        entry_rows: list[dict[str, Any]] = []
        checkpoint_rows: list[dict[str, Any]] = []
        post_rows: list[dict[str, Any]] = []
        while seq < entries:
            seq += 1
            at = START + timedelta(seconds=seq)
            occurred_at = ledger_time(at)
            writer = writers[seq % len(writers)]
            if seq % post_every == 0:
                public_id = str(uuid.uuid4())
                text = TEXTS[seq % len(TEXTS)] + f" #{seq}"
                decisions = varied_decisions(seq, text)
                decision = decisions["publication"]
                post_rows.append(
                    {
                        "public_id": public_id,
                        "account_id": account_id,
                        "kind": "regular",
                        "state": "published",
                        "author_id": writer,
                        "submitter": f"user:{writer}",
                        "source": "web",
                        "submitted_text": text,
                        "final_text": text + " #team",
                        "published_at": at,
                        "platform_post_id": str(seq),
                        "platform_url": f"http://bench.test/@avery/{seq}",
                        "idempotency_key": f"gp-{public_id}",
                        "decisions": decisions,
                        "attempts": 1,
                        "created_at": at - timedelta(minutes=5),
                        "updated_at": at,
                    }
                )
                tag, subject = "post:published", f"post:{public_id}"
                data: dict[str, Any] = {
                    "final_text": text + " #team",
                    "decision": decision,
                    "platform_url": f"http://bench.test/@avery/{seq}",
                }
            else:
                tag, subject = "post:submitted", f"post:{uuid.uuid4()}"
                data = {
                    "writer": {"id": writer, "email": f"writer{writer}@bench.test"},
                    "submitted_text": TEXTS[seq % len(TEXTS)],
                    "source": "web",
                }
            entry = chain_entry(
                seq=seq,
                occurred_at=occurred_at,
                tag=tag,
                actor=f"user:{writer}",
                subject=subject,
                data=data,
                prev_hash=prev,
            )
            prev = entry.entry_hash
            entry_rows.append(
                {
                    "seq": seq,
                    "occurred_at": occurred_at,
                    "tag": tag,
                    "actor": entry.actor,
                    "subject": subject,
                    "data": canonical_json(data),
                    "prev_hash": entry.prev_hash,
                    "entry_hash": entry.entry_hash,
                }
            )
            if seq % checkpoint_every == 0 or seq == entries:
                signed_at = max(occurred_at, state.last_signed_at)
                state.last_signed_at = signed_at
                checkpoint_rows.append(
                    {
                        "size": seq,
                        "head_hash": prev,
                        "signed_at": signed_at,
                        "key_id": signer.key_id,
                        "signature": signer.sign(checkpoint_note(seq, prev, signed_at)),
                        "kind": "append",
                    }
                )
            if len(entry_rows) >= BATCH or seq == entries:
                post_ids: dict[str, int] = {}
                if post_rows:
                    inserted = session.execute(
                        insert(PostRow).returning(PostRow.public_id, PostRow.id), post_rows
                    )
                    post_ids = {public_id: post_id for public_id, post_id in inserted}
                for row in entry_rows:
                    # The derived columns, as the append fills them (subject_refs).
                    post_id = post_ids.get(row["subject"].removeprefix("post:"))
                    row["post_id"] = post_id
                    row["account_id"] = account_id if post_id is not None else None
                session.execute(insert(LedgerEntryRow), entry_rows)
                if checkpoint_rows:
                    session.execute(insert(LedgerCheckpointRow), checkpoint_rows)
                state.posts += len(post_rows)
                entry_rows, checkpoint_rows, post_rows = [], [], []
        session.execute(
            update(LedgerHeadRow).where(LedgerHeadRow.id == 1).values(size=seq, head_hash=prev)
        )
        session.commit()
    state.entries, state.head_hash = seq, prev


@dataclass
class Measured:
    rows: int
    seconds: float
    peak_rss_mib: float
    size_mib: float


#: Runs the CLI and, at exit, reports the process's own peak RSS (VmHWM: the high-water mark
#: of this program's memory). Not wait4's ru_maxrss: Linux carries the parent's high-water
#: mark into a child across fork/exec, and this parent holds the seeding data.
CHILD = """
import atexit, sys
def report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("PEAK_RSS_KIB " + line.split()[1] + "\\n")
atexit.register(report)
sys.argv = ["ghostpost", *sys.argv[1:]]
from ghostpost.cli import run
run()
"""


#: The bare export: the driver's cursor and one line per row, nothing else (see the docstring).
BARE_CHILD = """
import atexit, csv, json, sys
from json.encoder import encode_basestring as q
def report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("PEAK_RSS_KIB " + line.split()[1] + "\\n")
atexit.register(report)
from sqlalchemy import create_engine
url, report_name, out, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "empty"
report_name, _, account = report_name.partition(":")
where = f" WHERE account_id = {int(account)}" if account else ""
raw = create_engine(url).raw_connection()
postgres = url.startswith("postgresql")
def rows(sql):
    cursor = raw.cursor(name="bare") if postgres else raw.cursor()
    cursor.execute(sql + (" LIMIT 0" if limit else ""))
    while batch := cursor.fetchmany(1000):
        yield from batch
    cursor.close()
n = 0
with open(out, "w", encoding="utf-8", newline="") as fh:
    if report_name == "ledger":
        for s, o, t, a, sub, d, p, h in rows(
            "SELECT seq, occurred_at, tag, actor, subject, data, prev_hash, entry_hash "
            "FROM ledger_entries" + where + " ORDER BY seq"
        ):
            fh.write(f'{{"actor":{q(a)},"data":{d},"entry_hash":"{h}","occurred_at":"{o}",'
                     f'"prev_hash":"{p}","seq":{s},"subject":{q(sub)},"tag":{q(t)},"type":"entry"}}\\n')
            n += 1
        for z, hh, sa, k, sig, kd in rows(
            "SELECT size, head_hash, signed_at, key_id, signature, kind "
            "FROM ledger_checkpoints ORDER BY id" + (" LIMIT 0" if account else "")
        ):
            fh.write(f'{{"head_hash":"{hh}","key_id":"{k}","kind":"{kd}","signature":"{sig}",'
                     f'"signed_at":"{sa}","size":{z},"type":"checkpoint"}}\\n')
    else:
        writer = csv.writer(fh, lineterminator="\\r\\n")
        for r in rows("SELECT public_id, kind, state, state_reason, published_at, created_at, "
                      "account_id, platform_url, final_text, submitter, source, window_id, "
                      "author_id, approved_by, approved_at, decisions FROM posts" + where
                      + " ORDER BY id"):
            writer.writerow(r)
            n += 1
print("wrote", n, "rows")
"""


#: Seconds an export may take before the bench gives up on it (--export-timeout).
EXPORT_TIMEOUT: float | None = None


def run_bare(settings: Settings, out: Path, report: str, empty: bool = False) -> Measured:
    """Run the bare export of `report` (ledger or authorship) in a child process."""
    command = [sys.executable, "-c", BARE_CHILD, settings.database_url, report, str(out)]
    return _measure([*command, "empty" if empty else "all"], settings, out)


def run_export(settings: Settings, out: Path, *args: str) -> Measured:
    """Run `ghostpost audit export` in a child process and measure it alone."""
    command = [sys.executable, "-c", CHILD, "audit", "export", "--quiet", "--out", str(out)]
    return _measure([*command, *args], settings, out)


def _measure(command: list[str], settings: Settings, out: Path) -> Measured:
    started = time.perf_counter()
    done = subprocess.run(command, env=env_for(settings), capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"export failed ({done.returncode}): {done.stderr or done.stdout}")
    rows = int(done.stdout.split()[1])  # "wrote N rows to FILE"
    peak = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS")
    )
    return Measured(rows, seconds, peak / 1024, out.stat().st_size / 2**20)


@contextlib.contextmanager
def database(args: argparse.Namespace, work: Path) -> Iterator[tuple[str, str]]:
    if args.postgres:
        from tests.support.postgres import running_postgres

        with running_postgres() as server:
            yield server.create_database("bench"), "postgresql"
        return
    if args.database_url:
        yield args.database_url, args.database_url.split(":")[0].split("+")[0]
        return
    yield f"sqlite:///{work / 'bench.db'}", "sqlite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger entries at the end")
    parser.add_argument(
        "--sizes", help="comma-separated ledger sizes to export at (default: N/10 and N)"
    )
    parser.add_argument("--checkpoint-every", type=int, default=1, help="sign every k entries")
    parser.add_argument(
        "--post-every",
        type=int,
        default=2,
        help="every k-th entry is a published post's (default 2: N/2 posts in the authorship "
        "report, enough rows that the run's fixed start-up does not dominate)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="an empty database (it is migrated)")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--export-timeout",
        type=float,
        help="give up on an export after this many seconds (reported as 0 rows, inf seconds)",
    )
    args = parser.parse_args()
    global EXPORT_TIMEOUT
    EXPORT_TIMEOUT = args.export_timeout
    sizes = sorted(
        {int(s) for s in args.sizes.split(",")}
        if args.sizes
        else {args.entries // 10, args.entries}
    )
    work = Path(tempfile.mkdtemp(prefix="ghostpost-bench-"))
    from alembic import command

    with database(args, work) as (url, backend):
        settings = settings_for(url, work)
        command.upgrade(alembic_config(url), "head")
        container = bootstrap(settings)
        account_id, writers = seed_directory(container)
        state = Seeded()
        results: list[dict[str, Any]] = []
        print(f"backend {backend}; checkpoint every {args.checkpoint_every} entries; {work}")
        header = (
            f"{'entries':>9} {'export':<20} {'rows':>9} {'seconds':>8} {'rows/s':>9} "
            f"{'net rows/s':>10} {'× bare':>6} {'peak RSS MiB':>12} {'file MiB':>9}"
        )
        print(header)
        for size in sizes:
            began = time.perf_counter()
            seed_until(
                container,
                state,
                size,
                account_id,
                writers,
                args.checkpoint_every,
                args.post_every,
            )
            print(
                f"# seeded to {state.entries} entries, {state.posts} posts "
                f"in {time.perf_counter() - began:.1f} s",
                flush=True,
            )
            # A running worker's notary would have verified the chain and signed the head by
            # now; its pass (the whole chain the first time) is timed apart from the exports.
            began = time.perf_counter()
            outcome = container.notary.run_pass(full_check=True).outcome.value
            print(
                f"# notary pass over the new entries ({outcome}) in "
                f"{time.perf_counter() - began:.2f} s",
                flush=True,
            )
            account = ("--account", str(account_id))
            runs: list[tuple[str, tuple[str, ...] | str]] = [
                ("bare baseline", "empty"),
                ("bare authorship", "authorship"),
                ("bare ledger", "ledger"),
                ("baseline (0 rows)", ("--report", "authorship", "--since", "2100-01-01")),
                ("authorship csv", ("--report", "authorship", "--format", "csv")),
                ("ledger jsonl", ("--report", "ledger", "--format", "jsonl")),
                ("bare authorship acct", f"authorship:{account_id}"),
                ("authorship acct", ("--report", "authorship", "--format", "csv", *account)),
                ("bare ledger acct", f"ledger:{account_id}"),
                ("ledger acct", ("--report", "ledger", "--format", "jsonl", *account)),
            ]
            startups: dict[bool, float] = {}  # the fixed cost of a run: bare or not
            bare: dict[str, float] = {}
            for label, export_args in runs:
                out = work / f"export-{size}-{label.replace(' ', '-')}.out"
                if isinstance(export_args, str):
                    measured = run_bare(settings, out, export_args, empty=export_args == "empty")
                else:
                    measured = run_export(settings, out, *export_args)
                is_bare = label.startswith("bare ")
                if label.startswith("bare baseline") or label.startswith("baseline"):
                    startups[is_bare] = measured.seconds
                startup = startups.get(is_bare, 0.0)
                rate = measured.rows / measured.seconds
                net = measured.rows / max(measured.seconds - startup, 1e-3) if startup else rate
                # Each export against the bare export of the same rows.
                report_kind = ("ledger" if "ledger" in label else "authorship") + (
                    " acct" if label.endswith(" acct") else ""
                )
                if is_bare and measured.rows:
                    bare[report_kind] = net
                ratio = net / bare[report_kind] if bare.get(report_kind) and measured.rows else 0
                print(
                    f"{state.entries:>9} {label:<20} {measured.rows:>9} {measured.seconds:>8.2f} "
                    f"{rate:>9.0f} {net:>10.0f} {ratio:>6.2f} {measured.peak_rss_mib:>12.1f} "
                    f"{measured.size_mib:>9.1f}",
                    flush=True,
                )
                results.append(
                    {
                        "backend": backend,
                        "entries": state.entries,
                        "posts": state.posts,
                        "export": label,
                        "rows": measured.rows,
                        "seconds": round(measured.seconds, 3),
                        "rows_per_second": round(rate),
                        "net_rows_per_second": round(net),
                        "vs_bare": round(ratio, 2),
                        "peak_rss_mib": round(measured.peak_rss_mib, 1),
                        "file_mib": round(measured.size_mib, 1),
                    }
                )
                out.unlink(missing_ok=True)
        container.dispose()
    print(json.dumps(results))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
