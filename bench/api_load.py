"""Benchmark: `POST /api/v1/posts` under load, next to a bare Flask + SQLAlchemy insert and
a bare chained insert.

For each backend (a SQLite file, then a throwaway PostgreSQL server) this

1. migrates a fresh database for ghostpost and creates one for the bare app
   (bench/bare_app.py: `POST /insert` parses a small JSON body and inserts one row;
   `POST /insert-chained`, the chained insert issue 14 names as the create's baseline, also
   locks the head of a hash chain, chains the row to it and moves the head);
2. seeds ghostpost through its services: 5 principals with one `local` account each, an open
   window per account whose notice is approved and published, two writers assigned to every
   account, and an API client (posts:write, posts:read) on all five accounts;
3. serves each app with gunicorn (as many workers as CPUs, sync unless --server-threads;
   ghostpost in production mode, settings from GHOSTPOST_*, the client's rate limit raised)
   and drives it with 16 concurrent clients for 10 s after a 2 s warm-up: the bare insert,
   the bare chained insert, then ghostpost, back to back. Every request has a distinct body
   and Idempotency-Key; ghostpost's Bearer token is fetched once. Then 200 requests one at a
   time (latency without queueing). The create ratios (against each baseline) are the
   medians of `--rounds` such rounds (default 3; every other round ghostpost first), each
   round's ratios printed: on a shared VM one round moves by +-0.1;
4. prints, under each loaded row, the CPU time per request of the app, the database server
   and the load generator, and how busy the machine was (other processes included);
5. measures `POST /api/v1/preview` (sequential, then 16 concurrent clients) and, in the same
   run right after it, the bare app's trivial route (`POST /ping`: Flask + gunicorn, a small
   JSON answer, no body parsing, no auth, no database) under the same load; prints the ratio;
6. runs `ghostpost worker --once` over the posts just created (the `local` adapter) and
   prints posts/s, then runs it again with nothing due: that run's time is the fixed cost
   (start Python, import, connect), left out of "net posts/s";
7. exports the whole ledger and verifies it (`ghostpost audit verify`): the concurrent
   appends must have left a valid chain; then counts the transactions and SQL statements of
   one request of each app (in process);
8. with `--profile`, serves ghostpost under pyinstrument (bench/profiled_app.py) twice, under
   the same load and alone (1 worker, 1 client), and prints where a request's time goes.

The load generator is wrk (Debian: `apt-get install wrk`) with a Lua script written to the
work directory, or, without wrk or with `--loader python`, a small asyncio HTTP/1.1 client in
this file. Only 2xx answers count as successes; other statuses and socket errors are printed
in their own columns. "stored" counts the rows the measured run really wrote: at least the
2xx count (fewer would be a lost write, flagged), plus up to one request per client that was
still in flight when the load generator stopped.

    .venv/bin/python bench/api_load.py                   # SQLite, then PostgreSQL
    .venv/bin/python bench/api_load.py --no-postgres     # SQLite only (--no-sqlite: PostgreSQL)
    .venv/bin/python bench/api_load.py --profile         # also profile ghostpost's requests
    .venv/bin/python bench/api_load.py --database-url postgresql+psycopg://u@host/db \\
        --bare-database-url postgresql+psycopg://u@host/bare    # two empty databases
    .venv/bin/python bench/api_load.py --workers 4 --server-threads 4   # gthread, as deployed
    .venv/bin/python bench/api_load.py --clients 32 --duration 30 --loader python

Not a test: nothing is asserted. No network beyond 127.0.0.1. Every process it starts is
stopped at the end (SIGTERM, then SIGKILL), and its work directory is removed (`--keep`
keeps it, with the gunicorn logs and the profiles).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from ghostpost.bootstrap import Container, bootstrap  # noqa: E402
from ghostpost.cli import alembic_config  # noqa: E402
from ghostpost.db.engine import make_engine, redact_url  # noqa: E402
from ghostpost.domain.model import Role  # noqa: E402
from ghostpost.secretbox import generate_key  # noqa: E402
from ghostpost.services import clients, directory, windows  # noqa: E402
from ghostpost.services.context import Actor  # noqa: E402
from ghostpost.settings import Settings  # noqa: E402
from ghostpost.worker import Worker  # noqa: E402

HOST = "127.0.0.1"
SECRET_KEY = "bench-secret-key-not-the-demo-0123456789"
NOTICE = "During the conference, some of my posts will be written by my extended team."
REMINDER = "Reminder: my team helps run this account."
WRITERS = ("writer1@bench.test", "writer2@bench.test")
PASSWORD = "bench-password-123"
SCOPES = "posts:write posts:read"

# ---------------------------------------------------------------------------------------------
# Load generation


@dataclass
class Load:
    """What one load run saw. Latencies are over every answered request, 2xx or not."""

    label: str
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: int = 0
    timeouts: int = 0
    p50_ms: float = float("nan")
    p90_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    stored: int | None = None
    cpu: Cpu | None = None

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "requests_per_second": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
            "timeouts": self.timeouts,
            "stored": self.stored,
            "cpu_seconds": None
            if self.cpu is None
            else {
                k: v if v is None else round(v, 3) for k, v in dataclasses.asdict(self.cpu).items()
            },
        }


@dataclass(frozen=True)
class Target:
    """An endpoint and how to build its requests."""

    port: int
    path: str
    accounts: tuple[int, ...]
    authors: tuple[str, ...]
    token: str = ""


#: wrk script: a distinct body and Idempotency-Key per request (run label, thread, counter),
#: status codes counted per thread, one JSON line printed by done().
WRK_SCRIPT = r"""
local thread_count = 0
local threads = {}
counter = 0
statuses = {}

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

function init(args)
  run = args[1]
  accounts = {}
  for id in string.gmatch(args[2], "%d+") do table.insert(accounts, tonumber(id)) end
  authors = {}
  for email in string.gmatch(args[3], "[^,]+") do table.insert(authors, email) end
  if args[4] ~= nil and args[4] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[4]
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", run, tid, counter)
  local body = string.format(
    '{"account": %d, "author": "%s", "text": "Bench post %s: doors open at 10, booth %d."}',
    accounts[(counter % #accounts) + 1], authors[(counter % #authors) + 1], key, counter % 97)
  wrk.headers["Idempotency-Key"] = key
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do codes[code] = (codes[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(codes) do table.insert(parts, string.format('"%s": %d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %.0f, "connect": %d, "read": %d, "write": %d,'
    .. ' "timeout": %d, "p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f,'
    .. ' "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", ")))
end
"""


def run_wrk(
    target: Target, run: str, seconds: float, clients_: int, threads: int, work: Path
) -> Load:
    script = work / "load.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    command = [
        "wrk",
        f"-t{min(threads, clients_)}",
        f"-c{clients_}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://{HOST}:{target.port}{target.path}",
        "--",
        run,
        ",".join(map(str, target.accounts)),
        ",".join(target.authors),
        target.token,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data = json.loads(line[len("WRK_JSON ") :])
    load = Load(run, data["duration_us"] / 1e6)
    load.statuses.update({int(k): v for k, v in data["statuses"].items()})
    load.socket_errors = data["connect"] + data["read"] + data["write"]
    load.timeouts = data["timeout"]
    load.p50_ms, load.p90_ms = data["p50_us"] / 1000, data["p90_us"] / 1000
    load.p99_ms, load.max_ms = data["p99_us"] / 1000, data["max_us"] / 1000
    return load


def request_bytes(target: Target, run: str, worker: int, n: int) -> bytes:
    """The same request the wrk script sends: distinct body and Idempotency-Key."""
    key = f"{run}-{worker}-{n}"
    body = json.dumps(
        {
            "account": target.accounts[n % len(target.accounts)],
            "author": target.authors[n % len(target.authors)],
            "text": f"Bench post {key}: doors open at 10, booth {n % 97}.",
        }
    ).encode()
    headers = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {HOST}:{target.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"Idempotency-Key: {key}",
    ]
    if target.token:
        headers.append(f"Authorization: Bearer {target.token}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return its status and whether the server closes."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() == "close"


async def _python_load(
    target: Target, run: str, seconds: float, clients_: int
) -> tuple[float, Counter[int], list[float], int, int]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors = {"socket": 0, "timeout": 0}
    deadline = time.perf_counter() + seconds

    async def client(worker: int) -> None:
        n = 0
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while time.perf_counter() < deadline:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(HOST, target.port)
                except OSError:
                    errors["socket"] += 1
                    await asyncio.sleep(0.01)
                    continue
            assert reader is not None
            n += 1
            started = time.perf_counter()
            try:
                writer.write(request_bytes(target, run, worker, n))
                status, close = await asyncio.wait_for(_read_response(reader), 10)
            except TimeoutError:
                errors["timeout"] += 1
                close = True
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                errors["socket"] += 1
                close = True
            else:
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
            if close:
                writer.close()
                writer = None

    began = time.perf_counter()
    await asyncio.gather(*(client(i + 1) for i in range(clients_)))
    return time.perf_counter() - began, statuses, latencies, errors["socket"], errors["timeout"]


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_load(label: str, seconds: float, latencies: list[float]) -> Load:
    load = Load(label, seconds)
    ordered = sorted(latencies)
    load.p50_ms = percentile(ordered, 50) * 1000
    load.p90_ms = percentile(ordered, 90) * 1000
    load.p99_ms = percentile(ordered, 99) * 1000
    load.max_ms = (ordered[-1] if ordered else float("nan")) * 1000
    return load


def run_python(target: Target, run: str, seconds: float, clients_: int) -> Load:
    elapsed, statuses, latencies, socket_errors, timeouts = asyncio.run(
        _python_load(target, run, seconds, clients_)
    )
    load = latency_load(run, elapsed, latencies)
    load.statuses, load.socket_errors, load.timeouts = statuses, socket_errors, timeouts
    return load


class Loader:
    """Runs a fixed-duration load with wrk or the asyncio client."""

    def __init__(self, kind: str, clients_: int, threads: int, work: Path) -> None:
        self.kind, self.clients, self.threads, self.work = kind, clients_, threads, work

    def describe(self) -> str:
        if self.kind == "wrk":
            return f"{self.clients} clients (wrk, {min(self.threads, self.clients)} threads)"
        return f"{self.clients} clients (asyncio HTTP/1.1)"

    def run(self, target: Target, run: str, seconds: float, clients_: int | None = None) -> Load:
        count = clients_ or self.clients
        if self.kind == "wrk":
            return run_wrk(target, run, seconds, count, self.threads, self.work)
        return run_python(target, run, seconds, count)


def sequential(target: Target, run: str, count: int) -> Load:
    """`count` requests one after another (a new connection whenever the server closes)."""
    conn = http.client.HTTPConnection(HOST, target.port, timeout=10)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    began = time.perf_counter()
    for n in range(1, count + 1):
        raw = request_bytes(target, run, 0, n)
        head, _, body = raw.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
        )
        headers.pop("Host", None)
        started = time.perf_counter()
        try:
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        latencies.append(time.perf_counter() - started)
        statuses[response.status] += 1
    conn.close()
    load = latency_load(run, time.perf_counter() - began, latencies)
    load.statuses, load.socket_errors = statuses, errors
    return load


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """A gunicorn master started here; stopped with SIGTERM, then SIGKILL."""

    #: gunicorn --threads for every server (1: sync workers, gunicorn's default).
    threads = 1

    def __init__(self, name: str, app: str, env: dict[str, str], workers: int, work: Path):
        self.name, self.port = name, free_port()
        self.log = work / f"gunicorn-{name}.log"
        self.extra: list[str] = []
        self.app, self.env, self.workers = app, env, workers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *extra: str) -> Server:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(self.workers),
            "-b",
            f"{HOST}:{self.port}",
            "--log-level",
            "warning",
            *(["--threads", str(self.threads)] if self.threads > 1 else []),
            *extra,
            self.app,
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start; see {self.log}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer /healthz in 60 s; see {self.log}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def problems(self) -> dict[str, int]:
        """Counts of alarming lines in the server's log (tracebacks, worker timeouts)."""
        if not self.log.exists():
            return {}
        log = self.log.read_text(errors="replace")
        found = {
            "tracebacks": log.count("Traceback (most recent call last)"),
            "worker timeouts": log.count("WORKER TIMEOUT"),
            "errors": sum(1 for ln in log.splitlines() if "[ERROR]" in ln or " ERROR " in ln),
        }
        return {k: v for k, v in found.items() if v}


@contextlib.contextmanager
def serving(server: Server, *extra: str) -> Iterator[Server]:
    try:
        yield server.start(*extra)
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# CPU accounting: is the machine saturated, and by whom?

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def _tree(root: int) -> list[int]:
    """`root` and its descendants (a gunicorn master and its workers, a postmaster and its
    backends)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents[int(entry)] = int(_stat(int(entry))[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(pid)
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


def _machine() -> tuple[float, float, float]:
    """(busy, interrupts, all) CPU seconds of the whole machine so far, every core.
    Interrupts (irq + softirq, e.g. loopback TCP) are charged to no process."""
    with open("/proc/stat") as fh:
        # user nice system idle iowait irq softirq steal
        values = [int(v) for v in fh.readline().split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, (values[5] + values[6]) / _TICK, sum(values) / _TICK


@dataclass
class Cpu:
    """CPU seconds spent during one load run, by the app, the database and the load
    generator; the machine's busy share over all cores; what the rest of the machine used."""

    app: float = 0.0
    database: float | None = None
    loader: float = 0.0
    busy_pct: float = 0.0
    interrupts: float = 0.0
    other: float = 0.0

    def line(self, requests: int, database: str) -> str:
        per = max(requests, 1) / 1000
        db = "" if self.database is None else f", {database} {self.database / per:.1f} ms"
        # The server's CPU is known only for the server the bench starts (--database-url's
        # is not measured); SQLite's is the app's own.
        where = " (SQLite in it)" if database == "sqlite" else " (the server's not measured)"
        return (
            f"      cpu per 2xx request: app{'' if db else where} "
            f"{self.app / per:.1f} ms{db}, load generator "
            f"{self.loader / per:.1f} ms; machine {self.busy_pct:.0f}% busy; interrupts "
            f"{self.interrupts:.1f} CPU s, other processes {self.other:.1f} CPU s"
        )


@contextlib.contextmanager
def cpu_meter(app_pid: int, db_pid: int | None) -> Iterator[Cpu]:
    import resource

    def loader_seconds() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    app_pids = _tree(app_pid)
    db_pids = _tree(db_pid) if db_pid else []
    cpu = Cpu()
    app0, db0, loader0, (busy0, irq0, all0) = (
        _cpu_seconds(app_pids),
        _cpu_seconds(db_pids),
        loader_seconds(),
        _machine(),
    )
    yield cpu
    db_pids = _tree(db_pid) if db_pid else []  # backends come and go with connections
    cpu.app = _cpu_seconds(app_pids) - app0
    cpu.database = _cpu_seconds(db_pids) - db0 if db_pid else None
    cpu.loader = loader_seconds() - loader0
    busy1, irq1, all1 = _machine()
    cpu.busy_pct = 100 * (busy1 - busy0) / max(all1 - all0, 1e-9)
    cpu.interrupts = irq1 - irq0
    mine = cpu.app + (cpu.database or 0.0) + cpu.loader + cpu.interrupts
    cpu.other = max(0.0, (busy1 - busy0) - mine)


# ---------------------------------------------------------------------------------------------
# Databases and seeding


@dataclass(frozen=True)
class Seeded:
    client_id: str
    secret: str
    accounts: tuple[int, ...]
    authors: tuple[str, ...]


#: Sealing key of platform tokens (production requires one; the bench has no platform tokens).
TOKEN_KEYS = generate_key("bench")


def settings_for(database_url: str, work: Path, environment: str) -> Settings:
    # One witness (and notary state beside it) per database: a notary that signed the SQLite
    # ledger would rightly refuse the PostgreSQL one as "truncated" and stop signing.
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    return Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        environment=environment,
        ledger_signing_key=str(work / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(work / "keys" / "public"),
        ledger_witness_file=str(work / "witness" / backend / "checkpoints.jsonl"),
        token_keys=TOKEN_KEYS,
        api_rate_limit="1000000 per minute",
        api_token_seconds=3600,
        serve_runs_worker=False,
    )


SETTING_NAMES = (
    "database_url",
    "secret_key",
    "environment",
    "ledger_signing_key",
    "ledger_public_keys",
    "ledger_witness_file",
    "token_keys",
    "api_rate_limit",
    "api_token_seconds",
    "serve_runs_worker",
)


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHOSTPOST_", "BARE_"))}
    for name in SETTING_NAMES:
        value = getattr(settings, name)
        env[f"GHOSTPOST_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def seed(container: Container, accounts: int) -> Seeded:
    """Principals with a local account each, open windows with published notices, writers,
    and an API client on every account; all through the services (ledger entries included)."""
    ctx, system = container.services, Actor.system("bench")

    def user(email: str, name: str, role: Role, principal_id: int | None = None) -> Any:
        return directory.create_user(
            ctx,
            system,
            email=email,
            name=name,
            role=role,
            password=PASSWORD,
            principal_id=principal_id,
        )

    manager = user("ops@bench.test", "Morgan Ops", Role.MANAGER)
    writers = [user(email, f"Writer {i}", Role.WRITER) for i, email in enumerate(WRITERS, 1)]
    account_ids = []
    now = ctx.clock.now()
    for i in range(1, accounts + 1):
        principal = directory.create_principal(ctx, system, f"Executive {i}")
        account = directory.create_account(
            ctx, system, principal_id=principal.id, platform="local", handle=f"exec{i}"
        )
        owner = user(f"exec{i}@bench.test", f"Executive {i}", Role.MANAGER, principal.id)
        for writer in writers:
            directory.assign_writer(ctx, system, user_id=writer.id, account_id=account.id)
        window = windows.create_window(
            ctx,
            Actor.for_user(manager),
            windows.WindowSpec(
                account_id=account.id,
                name=f"Conference {i}",
                starts_at=now - timedelta(minutes=5),
                ends_at=now + timedelta(days=30),
                notice_text=NOTICE,
                reminder_text=REMINDER,
                reminder_every=10,
                reason="The principal is on stage all week; the team posts the talks.",
            ),
        )
        windows.approve_notice(ctx, Actor.for_user(owner), window.id)
        account_ids.append(account.id)
    Worker(container, worker_id="bench-seed").run(once=True)  # the notices go out first
    client, secret = clients.create_client(
        ctx,
        system,
        name="Bench scheduler",
        owner_email=manager.email,
        scopes=SCOPES,
        account_ids=account_ids,
        default_author_email=writers[0].email,
        author_emails=WRITERS,
    )
    return Seeded(client.client_id, secret, tuple(account_ids), WRITERS)


def token_from_test_client(http: Any, seeded: Seeded) -> str:
    """A bearer token for the seeded API client, from a Flask test client of the app."""
    basic = base64.b64encode(f"{seeded.client_id}:{seeded.secret}".encode()).decode()
    answer = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": SCOPES},
        headers={"Authorization": f"Basic {basic}"},
    )
    return str(answer.get_json()["access_token"])


def migrate(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def scalar(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def settled(url: str, sql: str) -> int:
    """Count once the server has finished what the last load left in flight (the count holds
    still for half a second): a load generator stops with up to one request per client sent
    but unanswered, which the server still processes."""
    last = scalar(url, sql)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = scalar(url, sql)
        if now == last:
            break
        last = now
    return last


def post_states(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM posts GROUP BY state"))
            return {str(state): int(n) for state, n in rows}
    finally:
        engine.dispose()


API_POSTS_SQL = "SELECT count(*) FROM posts WHERE source = 'api'"
BARE_ROWS_SQL = "SELECT count(*) FROM bench_bare_rows"
CHAIN_ROWS_SQL = "SELECT count(*) FROM bench_bare_chain"


def fetch_token(port: int, client_id: str, secret: str) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(
        f"http://{HOST}:{port}/oauth/token",
        data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPES}).encode(),
        headers={"Authorization": f"Basic {basic}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.load(response)["access_token"]
    return token


# ---------------------------------------------------------------------------------------------
# The worker


@dataclass
class WorkerRun:
    published: int
    seconds: float
    published_in_db: int


def run_worker(settings: Settings) -> WorkerRun:
    url = settings.database_url
    before = scalar(url, "SELECT count(*) FROM posts WHERE state = 'published'")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ghostpost", "worker", "--once"],
        cwd=ROOT,
        env=env_for(settings),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ghostpost worker --once failed: {done.stderr or done.stdout}")
    published = int(done.stdout.split()[1])  # "published N post(s)"
    after = scalar(url, "SELECT count(*) FROM posts WHERE state = 'published'")
    return WorkerRun(published, seconds, after - before)


def verify_ledger(settings: Settings, work: Path) -> str:
    """Export the whole ledger and verify it offline (chain, signed heads): the concurrent
    appends of the load must have left a valid chain. Returns `audit verify`'s line."""
    out = work / "ledger.jsonl"
    ghostpost = [sys.executable, "-m", "ghostpost"]
    run = {"cwd": ROOT, "env": env_for(settings), "capture_output": True, "text": True}
    exported = subprocess.run(
        [*ghostpost, "audit", "export", "--report", "ledger", "--quiet", "--out", str(out)], **run
    )
    if exported.returncode != 0:
        return f"export failed: {exported.stderr.strip() or exported.stdout.strip()}"
    verified = subprocess.run(
        [*ghostpost, "audit", "verify", str(out), "--key", settings.ledger_public_keys], **run
    )
    out.unlink()
    return (verified.stdout.strip() or verified.stderr.strip()) + f" (exit {verified.returncode})"


# ---------------------------------------------------------------------------------------------
# Anatomy of one request: transactions and SQL statements

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


@dataclass
class Anatomy:
    """The transactions and statements of one request (BEGIN, COMMIT, ROLLBACK included:
    each is a round trip to the database too)."""

    transactions: int = 0
    statements: list[str] = field(default_factory=list)
    #: PostgreSQL: exchanges with the server, pool pre-pings included; None on SQLite.
    round_trips: int | None = None
    pings: int = 0

    def summary(self) -> str:
        kinds = Counter(s.split()[0].upper() for s in self.statements)
        listed = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        trips = "" if self.round_trips is None else f"; {self.round_trips} round trips"
        return (
            f"{self.transactions} transaction(s), {len(self.statements)} statements: {listed}"
            f"{trips}"
        )

    def by_transaction(self) -> str:
        """The statements in order, one transaction per group, e.g. `SELECT oauth_tokens`."""
        groups: list[list[str]] = []
        for statement in self.statements:
            words = statement.split()
            verb = words[0].upper()
            if verb == "BEGIN":
                groups.append([])
                continue
            if not groups:
                groups.append([])
            table = _TABLE.search(statement)
            if verb in ("COMMIT", "ROLLBACK"):
                groups[-1].append(verb.lower())
            else:
                groups[-1].append(f"{verb} {table.group(1)}" if table else " ".join(words[:2]))
        return "\n".join(f"      {n}. " + ", ".join(g) for n, g in enumerate(groups, 1))


@contextlib.contextmanager
def watching(engine: Any) -> Iterator[Anatomy]:
    """Record the transactions and statements `engine` runs meanwhile."""
    from sqlalchemy import event

    seen = Anatomy()
    sqlite = engine.dialect.name == "sqlite"
    if not sqlite:
        seen.round_trips = 0

    def on_wire(conn: Any) -> bool:
        """False for a PostgreSQL connection in autocommit (a single read): SQLAlchemy still
        begins and ends its transaction, but psycopg sends no BEGIN, COMMIT or ROLLBACK."""
        return sqlite or not conn.connection.dbapi_connection.autocommit

    def on_begin(conn: Any) -> None:
        seen.transactions += 1
        # On SQLite, ghostpost's BEGIN IMMEDIATE is a statement of its own.
        if not sqlite and on_wire(conn):
            seen.statements.append("BEGIN")

    def on_end(word: str) -> Callable[[Any], None]:
        def listener(conn: Any) -> None:
            if on_wire(conn):
                seen.statements.append(word)

        return listener

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(statement)

    def on_checkout(*args: Any) -> None:
        # The pool's pre-ping (a `SELECT 1` on every checkout) is a round trip of its own.
        if seen.round_trips is not None and getattr(engine.pool, "_pre_ping", False):
            seen.pings += 1

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("begin", on_begin),
        ("before_cursor_execute", on_statement),
        ("commit", on_end("COMMIT")),
        ("rollback", on_end("ROLLBACK")),
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    event.listen(engine.pool, "checkout", on_checkout)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)
        event.remove(engine.pool, "checkout", on_checkout)
        if seen.round_trips is not None:
            # psycopg (outside pipeline mode) waits for the server's answer to each statement,
            # BEGIN, COMMIT and ROLLBACK included.
            seen.round_trips = len(seen.statements) + seen.pings


def anatomy(
    settings: Settings, seeded: Seeded, bare_url: str
) -> tuple[Anatomy, Anatomy, Anatomy, Anatomy]:
    """One POST /api/v1/posts, one POST /api/v1/preview, one bare POST /insert and one bare
    POST /insert-chained, in process (Flask's test client) after two warm-up requests each:
    how many transactions, statements and (PostgreSQL) round trips each costs."""
    from ghostpost import create_app

    app = create_app(settings)
    container = app.extensions["ghostpost"]
    http = app.test_client()
    token = token_from_test_client(http, seeded)
    body = {"account": seeded.accounts[0], "author": seeded.authors[0], "text": "Anatomy"}
    for n in range(3):
        with watching(container.engine) as gp:
            answer = http.post(
                "/api/v1/posts",
                json={**body, "text": f"Anatomy of a request {n}"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"anatomy-{n}"},
            )
        if answer.status_code != 201:
            raise SystemExit(f"anatomy: POST /api/v1/posts answered {answer.status_code}")
    for n in range(3):
        with watching(container.engine) as preview:
            answer = http.post(
                "/api/v1/preview",
                json={**body, "text": f"Anatomy of a preview {n}"},
                headers={"Authorization": f"Bearer {token}"},
            )
        if answer.status_code != 200:
            raise SystemExit(f"anatomy: POST /api/v1/preview answered {answer.status_code}")
    container.dispose()

    from bench.bare_app import ENV_URL, create_bare_app

    previous = os.environ.get(ENV_URL)
    os.environ[ENV_URL] = bare_url
    try:
        bare_app = create_bare_app()
    finally:
        if previous is None:
            del os.environ[ENV_URL]
        else:
            os.environ[ENV_URL] = previous
    engine = bare_app.extensions["bench_engine"]
    bare_http = bare_app.test_client()

    def last_of_three(path: str) -> Anatomy:
        for n in range(3):
            with watching(engine) as seen:
                bare_http.post(path, json={**body, "text": f"Anatomy {n}"})
        return seen

    bare, chained = last_of_three("/insert"), last_of_three("/insert-chained")
    engine.dispose()
    return gp, preview, bare, chained


# ---------------------------------------------------------------------------------------------
# Profile


def _name(frame: Any) -> str:
    cls = getattr(frame, "class_name", None)
    return f"{cls}.{frame.function}" if cls else frame.function


def _where(frame: Any) -> str:
    path = frame.file_path or ""
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    if path.startswith(str(ROOT)):
        path = path[len(str(ROOT)) + 1 :]
    return f"{path}:{frame.line_no}" if frame.line_no else path


def _package(frame: Any) -> str:
    path = frame.file_path or ""
    if path.startswith(str(ROOT / "ghostpost")):
        parts = Path(path).relative_to(ROOT).parts
        return "/".join(parts[:2]) if len(parts) > 2 else parts[-1].removesuffix(".py")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 2)[-1]
        return "stdlib " + module.split("/")[0].removesuffix(".py")
    return "built-in " + _name(frame)


@dataclass(frozen=True)
class Bucket:
    """A named cost: the inclusive time of the outermost frames of `functions` defined in a
    file ending with `where`; `parts` are looked for inside those frames only."""

    label: str
    where: str
    functions: tuple[str, ...]
    parts: tuple[Bucket, ...] = ()

    def matches(self, frame: Any) -> bool:
        return frame.function in self.functions and (frame.file_path or "").endswith(self.where)


#: What a POST /api/v1/posts does, in order. The top level is disjoint: what it leaves is
#: Flask, werkzeug, flask-smorest and the WSGI plumbing.
BUCKETS = (
    Bucket(
        "Bearer token check (cached, or 1 read-only transaction)",
        "api/oauth.py",
        ("_authenticate_request",),
    ),
    Bucket("per-client rate limit (in memory)", "api/oauth.py", ("_charge_budget",)),
    Bucket("body parsing + validation (webargs)", "webargs/core.py", ("parse",)),
    Bucket(
        "submit (the one write transaction)",
        "services/idempotency.py",
        ("submit_client_post_once",),
        (
            Bucket("idempotency key claim + complete", "db/idempotency.py", ("claim", "complete")),
            Bucket(
                "policy plan: one joined read + decide()",
                "services/posts.py",
                ("_plan_client_post",),
                (
                    Bucket("the joined read", "db/submissions.py", ("for_client",)),
                    Bucket("decide() (pure domain)", "domain/policy.py", ("decide",)),
                ),
            ),
            Bucket("insert the post", "db/submissions.py", ("add_post",)),
            Bucket(
                "ledger append: lock head, chain",
                "db/repositories/ledger.py",
                ("append",),
                (
                    Bucket(
                        "lock the head row (FOR UPDATE)",
                        "db/repositories/ledger.py",
                        ("_lock_head",),
                    ),
                ),
            ),
            Bucket("render the response (plain data)", "api/v1.py", ("render",)),
            Bucket("commit", "db/unit_of_work.py", ("commit",)),
        ),
    ),
    Bucket("JSON response", "api/v1.py", ("_created",)),
)
#: Costs spread over the request (not added up with the buckets).
BEGIN_IMMEDIATE = Bucket("BEGIN IMMEDIATE: SQLite's write lock", "db/engine.py", ("_on_begin",))


def _outermost(frames: list[Any], match: Callable[[Any], bool]) -> list[Any]:
    found = []
    stack = list(frames)
    while stack:
        frame = stack.pop()
        if match(frame):
            found.append(frame)
            continue
        stack.extend(frame.children)
    return found


def _in_driver(frame: Any) -> bool:
    """sqlite3's C methods (`Cursor.execute`, `Connection.commit`, ...; also reached through a
    subclass, `QueuedWritersConnection.commit`) or psycopg's code."""
    path = frame.file_path or ""
    if path == "<built-in>":
        return frame.function.partition(".")[0].endswith(("Cursor", "Connection"))
    return any(m in path for m in ("/sqlite3/", "/psycopg/", "/psycopg_binary/"))


@dataclass
class Analysis:
    """One clock's profile of the requests: seconds per bucket, own time per function."""

    total: float
    workers: int
    rows: list[tuple[int, str, float]]  # (depth, label, seconds), in BUCKETS order
    own: Counter[tuple[str, str]]
    packages: Counter[str]


def analyse(paths: list[Path], text_out: Path) -> Analysis | None:
    """Combine the workers' pyinstrument sessions and measure the request frames in them."""
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = None
    for path in paths:
        loaded = Session.load(path)
        session = loaded if session is None else Session.combine(session, loaded)
    if session is None:
        return None
    text_out.write_text(ConsoleRenderer(unicode=True, color=False, show_all=False).render(session))
    root = session.root_frame(trim_stem=False)
    is_request = Bucket("request", "profiled_app.py", ("__call__",)).matches
    calls = _outermost([root] if root is not None else [], is_request)
    total = sum(f.time for f in calls)
    rows: list[tuple[int, str, float]] = []

    def measure(bucket: Bucket, frames: list[Any], depth: int) -> float:
        found = _outermost(frames, bucket.matches)
        seconds = sum(f.time for f in found)
        rows.append((depth, bucket.label, seconds))
        for part in bucket.parts:
            measure(part, found, depth + 1)
        return seconds

    counted = sum(measure(bucket, calls, 0) for bucket in BUCKETS)
    rows.append((0, "the rest: Flask, werkzeug, flask-smorest, WSGI", total - counted))
    rows.append((-1, "BEGIN IMMEDIATE: waiting for SQLite's write lock, all transactions", 0.0))
    rows[-1] = (-1, rows[-1][1], sum(f.time for f in _outermost(calls, BEGIN_IMMEDIATE.matches)))
    rows.append((-1, "database driver calls (sqlite3, psycopg), all of them", 0.0))
    rows[-1] = (-1, rows[-1][1], sum(f.time for f in _outermost(calls, _in_driver)))
    own: Counter[tuple[str, str]] = Counter()
    packages: Counter[str] = Counter()
    stack = list(calls)
    while stack:
        frame = stack.pop()
        for child in frame.children:
            if child.is_synthetic_leaf:
                own[(_name(frame), _where(frame))] += child.time
                packages[_package(frame)] += child.time
            else:
                stack.append(child)
    return Analysis(total, len(paths), rows, own, packages)


def summarise_profiles(loaded: Analysis | None, alone: Analysis | None, top: int) -> dict[str, Any]:
    """Print where a request's wall time goes, under load and alone, side by side."""
    if loaded is None or alone is None or not loaded.total or not alone.total:
        print("  no profile was saved (see the gunicorn logs: --keep)")
        return {}

    def pct(part: float, analysis: Analysis) -> float:
        return 100 * part / analysis.total

    print(
        f"  where a POST /api/v1/posts spends its wall time, % of request time "
        f"(loaded: {loaded.total:.1f} s in {loaded.workers} workers; alone: {alone.total:.1f} s)"
    )
    print(f"    {'loaded':>6} {'alone':>6}  inclusive, in request order")
    for (depth, label, seconds), (_, _, alone_seconds) in zip(loaded.rows, alone.rows, strict=True):
        if depth == -1 and label.startswith("BEGIN"):
            print(f"    {'':>6} {'':>6}  spread over the request:")
        indent = "  " * max(depth, 0)
        print(
            f"    {pct(seconds, loaded):5.1f}% {pct(alone_seconds, alone):5.1f}%  {indent}{label}"
        )
    print(f"  own time by package, alone (top {top}):")
    for name, seconds in alone.packages.most_common(top):
        print(f"    {pct(seconds, alone):5.1f}%  {name}")
    print(f"  own time by function, alone (top {top}):")
    for (name, where), seconds in alone.own.most_common(top):
        print(f"    {pct(seconds, alone):5.1f}%  {name}  ({where})")
    print(f"  own time by function, loaded (top {min(top, 5)}):")
    for (name, where), seconds in loaded.own.most_common(min(top, 5)):
        print(f"    {pct(seconds, loaded):5.1f}%  {name}  ({where})")
    return {
        "loaded_request_seconds": round(loaded.total, 3),
        "alone_request_seconds": round(alone.total, 3),
        "loaded_pct": {label: round(pct(sec, loaded), 1) for _, label, sec in loaded.rows},
        "alone_pct": {label: round(pct(sec, alone), 1) for _, label, sec in alone.rows},
        "alone_own_by_package_pct": {
            name: round(pct(sec, alone), 1) for name, sec in alone.packages.most_common(top)
        },
    }


# ---------------------------------------------------------------------------------------------
# One backend


@dataclass
class Backend:
    name: str
    ghostpost_url: str
    bare_url: str
    note: str = ""
    #: The database server's main process, when it runs here (its CPU time is reported).
    db_pid: int | None = None


def fmt_ms(value: float) -> str:
    return f"{value:8.1f}" if value == value else f"{'-':>8}"  # NaN: no answer at all


def print_row(name: str, load: Load, count: int | None = None) -> None:
    codes = ",".join(f"{c}x{n}" for c, n in sorted(load.statuses.items()) if not 200 <= c < 300)
    stored = "" if load.stored is None else str(load.stored)
    if load.stored is not None and load.stored < load.ok:
        stored += " (< 2xx!)"
    label = name if count is None else f"{name} x{count}"
    print(
        f"  {label:<48} {load.rate:>8.1f} {fmt_ms(load.p50_ms)} {fmt_ms(load.p99_ms)} "
        f"{load.ok:>7} {load.non_2xx:>7} {load.socket_errors + load.timeouts:>6}  "
        f"{stored:<8} {codes}"
    )


HEADER = (
    f"  {'endpoint':<48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'2xx':>7} "
    f"{'non-2xx':>7} {'sock':>6}  {'stored':<8} statuses"
)


def bench_backend(
    backend: Backend, args: argparse.Namespace, loader: Loader, work: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": backend.name}
    print(f"\n== {backend.name}: {redact_url(backend.ghostpost_url)}{backend.note}")
    migrate(backend.ghostpost_url)
    seed_settings = settings_for(backend.ghostpost_url, work, "development")
    container = bootstrap(seed_settings)  # development: generates the ledger key on first use
    try:
        seeded = seed(container, args.accounts)
    finally:
        container.dispose()
    settings = seed_settings.replace(environment="production")
    from bench.bare_app import ENV_URL, ENV_WRITER_QUEUE, chain_breaks, init_schema

    init_schema(backend.bare_url)
    bare_queue = "0" if args.bare_without_writer_queue else "1"
    bare_env = env_for(settings, **{ENV_URL: backend.bare_url, ENV_WRITER_QUEUE: bare_queue})
    env = env_for(settings)
    workers = args.workers
    kind = "sync" if Server.threads == 1 else f"gthread ({Server.threads} threads each)"
    print(
        f"  gunicorn: {workers} {kind} workers; load: {loader.describe()}, "
        f"{args.duration:g} s after {args.warmup:g} s warm-up; {len(seeded.accounts)} accounts"
    )
    print(HEADER)

    # The bare app first, then ghostpost: same workers, same clients, same machine, one run.
    bare_app = "bench.bare_app:create_bare_app()"
    bare = Server(f"bare-{backend.name}", bare_app, bare_env, workers, work)

    def metered(target: Target, run: str, pid: int, seconds: float) -> tuple[Load, Cpu]:
        """One run and the CPU it cost (kept on the load too)."""
        with cpu_meter(pid, backend.db_pid) as cpu:
            load = loader.run(target, run, seconds)
        load.cpu = cpu
        return load, cpu

    def measured(target: Target, run: str, pid: int, url: str, rows_sql: str) -> tuple[Load, Cpu]:
        """A warm-up, then the measured run with its CPU and the rows it stored."""
        warm = loader.run(target, f"{run}-warmup", args.warmup)
        if warm.non_2xx or warm.socket_errors or warm.timeouts:
            print(
                f"  {run} warm-up: {dict(warm.statuses)} statuses, "
                f"{warm.socket_errors} socket errors"
            )
        before = settled(url, rows_sql)
        load, cpu = metered(target, run, pid, args.duration)
        load.stored = settled(url, rows_sql) - before
        return load, cpu

    with serving(bare) as server:
        target = Target(server.port, "/insert", seeded.accounts, seeded.authors)
        bare_load, bare_cpu = measured(target, "bare", server.pid, backend.bare_url, BARE_ROWS_SQL)
        bare_seq = sequential(target, "bare-seq", args.sequential)
        chained = Target(server.port, "/insert-chained", seeded.accounts, seeded.authors)
        chained_load, chained_cpu = measured(
            chained, "chained", server.pid, backend.bare_url, CHAIN_ROWS_SQL
        )
    print_row("bare POST /insert", bare_load)
    print(bare_cpu.line(bare_load.ok, backend.name))
    print_row("bare POST /insert, sequential", bare_seq, args.sequential)
    print_row("bare POST /insert-chained", chained_load)
    print(chained_cpu.line(chained_load.ok, backend.name))

    app = Server(f"ghostpost-{backend.name}", "ghostpost:create_app()", env, workers, work)
    with serving(app) as server:
        token = fetch_token(server.port, seeded.client_id, seeded.secret)
        target = Target(server.port, "/api/v1/posts", seeded.accounts, seeded.authors, token)
        gp_load, cpu = measured(target, "gp", server.pid, backend.ghostpost_url, API_POSTS_SQL)
        print_row("ghostpost POST /api/v1/posts", gp_load)
        print(cpu.line(gp_load.ok, backend.name))
        gp_seq = sequential(target, "gp-seq", args.sequential)
        print_row("ghostpost POST /api/v1/posts, sequential", gp_seq, args.sequential)
        preview = Target(server.port, "/api/v1/preview", seeded.accounts, seeded.authors, token)
        seq = sequential(preview, "pv-seq", args.sequential)
        print_row("ghostpost POST /api/v1/preview, sequential", seq, args.sequential)
        pv_load, cpu = metered(preview, "pv", server.pid, args.preview_seconds)
        print_row("ghostpost POST /api/v1/preview", pv_load)
        print(cpu.line(pv_load.ok, backend.name))
    # The trivial route right after the preview, same load, same request bytes.
    with serving(bare) as server:
        ping = Target(server.port, "/ping", seeded.accounts, seeded.authors)
        loader.run(ping, "ping-warmup", min(args.warmup, 1))
        ping_load, cpu = metered(ping, "ping", server.pid, args.preview_seconds)
    print_row("bare POST /ping (trivial: no parsing, no auth, no DB)", ping_load)
    print(cpu.line(ping_load.ok, backend.name))

    def ratio_of(load: Load, baseline: Load) -> float:
        return load.rate / baseline.rate if baseline.rate else float("nan")

    pv_ratio = ratio_of(pv_load, ping_load)
    print(f"  ratio preview/trivial route (2xx requests/s): {pv_ratio:.2f}  (target >= 0.3)")

    ratios = [ratio_of(gp_load, bare_load)]
    chained_ratios = [ratio_of(gp_load, chained_load)]
    paths = {"bare": "/insert", "chained": "/insert-chained"}
    for number in range(2, args.rounds + 1):
        # More rounds, each app served afresh; every other round ghostpost first, so a drift
        # of the machine during the run (another VM, the page cache) favours neither.
        order = ("bare", "chained", "ghostpost")
        run: dict[str, Load] = {}
        for which in order if number % 2 == 1 else order[::-1]:
            served = app if which == "ghostpost" else bare
            with serving(served) as server:
                if which == "ghostpost":
                    token = fetch_token(server.port, seeded.client_id, seeded.secret)
                    target = Target(
                        server.port, "/api/v1/posts", seeded.accounts, seeded.authors, token
                    )
                else:
                    target = Target(server.port, paths[which], seeded.accounts, seeded.authors)
                loader.run(target, f"{which}-warmup-{number}", args.warmup)
                run[which] = loader.run(target, f"{which}-{number}", args.duration)
        print_row(f"bare POST /insert (round {number})", run["bare"])
        print_row(f"bare POST /insert-chained (round {number})", run["chained"])
        print_row(f"ghostpost POST /api/v1/posts (round {number})", run["ghostpost"])
        ratios.append(ratio_of(run["ghostpost"], run["bare"]))
        chained_ratios.append(ratio_of(run["ghostpost"], run["chained"]))
    ratio = statistics.median(ratios)
    chained_ratio = statistics.median(chained_ratios)
    for name, found in (("bare insert", ratios), ("bare chained insert", chained_ratios)):
        if len(found) > 1:
            listed = ", ".join(f"{r:.2f}" for r in found)
            print(f"  ratio ghostpost/{name} per round (2xx requests/s): {listed}")
    print(
        f"  ratio ghostpost/bare chained insert (2xx requests/s, median): {chained_ratio:.2f}"
        "  (issue 14's baseline; target >= 0.5)"
    )
    print(
        f"  ratio ghostpost/bare insert (2xx requests/s, median): {ratio:.2f}"
        "  (one row, no chain: the stricter baseline)"
    )
    breaks = chain_breaks(backend.bare_url)
    if breaks:
        print(f"  bare chained insert: {breaks} row(s) do not extend the row before them")
    for server in (bare, app):
        if server.problems():
            print(f"  {server.name} log {server.log}: {server.problems()}\n{server.tail(15)}")

    worker: dict[str, Any] | None = None
    if not args.no_worker:
        run1 = run_worker(settings)
        run0 = run_worker(settings)  # nothing due: the fixed cost of a run
        net = run1.published / max(run1.seconds - run0.seconds, 1e-3)
        print(
            f"  worker --once (local adapter): published {run1.published} posts "
            f"({run1.published_in_db} newly published in the database) in {run1.seconds:.2f} s: "
            f"{run1.published / run1.seconds:.1f} posts/s; fixed cost {run0.seconds:.2f} s, "
            f"net {net:.1f} posts/s"
        )
        worker = {
            "published": run1.published,
            "seconds": round(run1.seconds, 3),
            "fixed_seconds": round(run0.seconds, 3),
            "posts_per_second": round(run1.published / run1.seconds, 1),
            "net_posts_per_second": round(net, 1),
        }
    states = post_states(backend.ghostpost_url)
    print(f"  posts by state afterwards: {states}")
    ledger = verify_ledger(settings, work)
    print(f"  ledger after the load: {ledger}")
    gp_anatomy, preview_anatomy, bare_anatomy, chained_anatomy = anatomy(
        settings, seeded, backend.bare_url
    )
    print(f"  one bare POST /insert: {bare_anatomy.summary()}")
    print(f"  one bare POST /insert-chained: {chained_anatomy.summary()}")
    print(f"  one ghostpost POST /api/v1/posts: {gp_anatomy.summary()}")
    print(gp_anatomy.by_transaction())
    print(f"  one ghostpost POST /api/v1/preview: {preview_anatomy.summary()}")
    print(preview_anatomy.by_transaction())

    result.update(
        bare=bare_load.as_dict(),
        ghostpost=gp_load.as_dict(),
        ratio=round(ratio, 3),
        ratios=[round(r, 3) for r in ratios],
        chained=chained_load.as_dict(),
        chained_ratio=round(chained_ratio, 3),
        chained_ratios=[round(r, 3) for r in chained_ratios],
        chain_breaks=breaks,
        bare_sequential=bare_seq.as_dict(),
        ghostpost_sequential=gp_seq.as_dict(),
        preview_sequential=seq.as_dict(),
        preview_concurrent=pv_load.as_dict(),
        trivial_route=ping_load.as_dict(),
        preview_ratio=round(pv_ratio, 3),
        worker=worker,
        post_states=states,
        ledger_verify=ledger,
        anatomy={
            "bare": {
                "transactions": bare_anatomy.transactions,
                "statements": len(bare_anatomy.statements),
            },
            "chained": {
                "transactions": chained_anatomy.transactions,
                "statements": len(chained_anatomy.statements),
            },
            "ghostpost": {
                "transactions": gp_anatomy.transactions,
                "statements": len(gp_anatomy.statements),
                "round_trips": gp_anatomy.round_trips,
            },
            "preview": {
                "transactions": preview_anatomy.transactions,
                "statements": len(preview_anatomy.statements),
                "round_trips": preview_anatomy.round_trips,
            },
        },
        server_problems={s.name: s.problems() for s in (bare, app) if s.problems()},
    )

    if args.profile:
        # Under the same load (lock waits included), then alone: one worker, one client, so
        # a request's wall time is its own work and its round trips, nothing queued.
        analyses: dict[str, Analysis | None] = {}
        for mode, mode_workers, mode_clients in (
            ("loaded", workers, args.clients),
            ("alone", 1, 1),
        ):
            profile_dir = work / f"profile-{backend.name}-{mode}"
            profile_dir.mkdir()
            profiled = Server(
                f"profiled-{backend.name}-{mode}",
                "bench.profiled_app:create_profiled_app()",
                env_for(settings, BENCH_PROFILE_DIR=str(profile_dir)),
                mode_workers,
                work,
            )
            with serving(profiled, "-c", str(ROOT / "bench" / "profiled_app.py")) as server:
                token = fetch_token(server.port, seeded.client_id, seeded.secret)
                target = Target(
                    server.port, "/api/v1/posts", seeded.accounts, seeded.authors, token
                )
                loader.run(target, f"prof-{mode}-warmup", args.warmup, mode_clients)
                prof_load = loader.run(target, f"prof-{mode}", args.duration, mode_clients)
            label = f"profiled, {mode_workers} worker(s) x {mode_clients} client(s)"
            print_row(label, prof_load)
            text_out = work / f"profile-{backend.name}-{mode}.txt"
            analyses[mode] = analyse(sorted(profile_dir.glob("worker-*.pyisession")), text_out)
            print(f"      full call tree: {text_out}{'' if args.keep else ' (--keep keeps it)'}")
        result["profile"] = summarise_profiles(analyses["loaded"], analyses["alone"], args.top)
    return result


@contextlib.contextmanager
def backends(args: argparse.Namespace, work: Path) -> Iterator[list[Backend]]:
    if args.database_url:
        if not args.bare_database_url:
            raise SystemExit("--database-url needs --bare-database-url (another empty database)")
        name = args.database_url.split(":")[0].split("+")[0]
        yield [Backend(name, args.database_url, args.bare_database_url)]
        return
    found = [
        Backend(
            "sqlite",
            f"sqlite:///{work / 'ghostpost.db'}",
            f"sqlite:///{work / 'bare.db'}",
            " (WAL, synchronous=FULL)",
        )
    ]
    if args.no_sqlite:
        found = []
    if args.no_postgres:
        yield found
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as server:
        postmaster = (server.data / "postmaster.pid").read_text().split()[0]
        found.append(
            Backend(
                "postgresql",
                server.create_database("ghostpost"),
                server.create_database("bare"),
                " (throwaway server: fsync=off, synchronous_commit=off)",
                db_pid=int(postmaster),
            )
        )
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn -w")
    parser.add_argument(
        "--server-threads",
        type=int,
        default=1,
        help="gunicorn --threads per worker (1: sync workers; the Deployment section uses 4)",
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before measuring")
    parser.add_argument("--accounts", type=int, default=5, help="local accounts seeded")
    parser.add_argument(
        "--sequential", type=int, default=200, help="requests one at a time, per endpoint"
    )
    parser.add_argument("--preview-seconds", type=float, default=5, help="concurrent previews")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of loaded runs (bare insert, chained insert, ghostpost) for the create "
        "ratios; the medians are kept",
    )
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--profile", action="store_true", help="also profile ghostpost's requests")
    parser.add_argument("--top", type=int, default=15, help="rows of each profile table")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--no-worker", action="store_true", help="skip the `worker --once` runs (step 6)"
    )
    parser.add_argument("--database-url", help="an empty database for ghostpost (it is migrated)")
    parser.add_argument("--bare-database-url", help="with --database-url: one for the bare app")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--bare-without-writer-queue",
        action="store_true",
        help="SQLite: the bare app's writers wait with busy_timeout alone (ghostpost's engine "
        "queues them on a file lock, ghostpost.db.writer_queue; by default the bare app too)",
    )
    args = parser.parse_args()

    kind = args.loader
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    if kind == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt-get install wrk); or use --loader python")
    Server.threads = args.server_threads
    work = Path(tempfile.mkdtemp(prefix="ghostpost-api-bench-"))
    work.chmod(0o755)
    loader = Loader(kind, args.clients, args.threads, work)
    print(
        f"bench/api_load.py at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; "
        f"Python {sys.version.split()[0]}; work directory {work}"
    )
    results = []
    try:
        with backends(args, work) as found:
            for backend in found:
                results.append(bench_backend(backend, args, loader, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        "\nsummary: "
        + ", ".join(
            f"{r['backend']} create ratio {r['chained_ratio']:.2f} (against the chained insert; "
            f"{r['ratio']:.2f} against the bare insert), preview ratio {r['preview_ratio']:.2f}"
            for r in results
        )
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
