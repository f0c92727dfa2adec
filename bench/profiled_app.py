"""ghostpost under pyinstrument, for `bench/api_load.py --profile`: where a request's time goes.

This file is both the WSGI app and its gunicorn config (gunicorn reads only the names it
knows, here `worker_exit`):

    GHOSTPOST_DATABASE_URL=... BENCH_PROFILE_DIR=/tmp/prof \
        .venv/bin/gunicorn -c bench/profiled_app.py -w 2 -b 127.0.0.1:8002 \
        'bench.profiled_app:create_profiled_app()'

Each worker starts one pyinstrument profiler (wall clock, 1 ms sampling) on its first
request and keeps it running. The WSGI call
of every request, its body included, runs inside `ProfiledApp.__call__`, so the request time
is exactly that frame's subtree (the time the worker waits for connections is outside it).
When the worker exits (SIGTERM), the `worker_exit` hook saves its session to
`$BENCH_PROFILE_DIR/worker-<pid>.pyisession`; `bench/api_load.py` loads, combines and
summarises them. Profiling slows requests down, so
the throughput of a profiled run is not a measurement.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ENV_DIR = "BENCH_PROFILE_DIR"
INTERVAL = 0.001

_profiler: Any = None


class ProfiledApp:
    """WSGI middleware: profile every request (one profiler per process, started lazily)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        global _profiler
        if _profiler is None:
            from pyinstrument import Profiler

            _profiler = Profiler(interval=INTERVAL, async_mode="disabled")
            _profiler.start()
        result = self.app(environ, start_response)
        try:
            return list(result)  # the body is produced inside this frame too
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def create_profiled_app() -> ProfiledApp:
    """ghostpost's app (settings from GHOSTPOST_* as usual) behind the profiler."""
    from ghostpost import create_app

    return ProfiledApp(create_app())


def save_profile() -> Path | None:
    """Stop this process's profiler and save its session; None when it never ran."""
    if _profiler is None or not _profiler.is_running:
        return None
    session = _profiler.stop()
    out = Path(os.environ.get(ENV_DIR, ".")) / f"worker-{os.getpid()}.pyisession"
    session.save(out)
    return out


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, run in the worker as it exits.

    gunicorn executes this file as its config, a module apart from the `bench.profiled_app`
    the app was imported from: save that module's profiler, not this copy's (never started).
    """
    from bench import profiled_app

    profiled_app.save_profile()
