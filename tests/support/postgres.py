"""A throwaway PostgreSQL server for the test suite: own data directory, own port, loopback only.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
`postgres` system user (`runuser`). fsync is off: this cluster is deleted after the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SUPERUSER = "ghostpost"


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not versions:
        raise RuntimeError(
            "PostgreSQL server binaries not found (Debian: apt-get install postgresql)"
        )
    return versions[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """initdb + pg_ctl start on a free port; databases made from a migrated template."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.bin = _bin_dir()
        self._as_root = os.geteuid() == 0
        self._server_version: int | None = None
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8")
        self.resume()

    def resume(self) -> None:
        """Start the server on its data directory and port (again, after `stop`)."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement on the `postgres` database, in autocommit.

        On one connection kept for the server's life: a connection per statement (two per
        test, its database's CREATE and DROP) cost the server a backend each, about 12 ms of
        its CPU per test, and the test 1.5 ms. After a restart (`stop`, `resume`) the old
        connection fails before it sends anything, and the statement goes on a new one."""
        if self._admin is not None and not self._admin.closed:
            try:
                self._admin.execute(sql)  # type: ignore[arg-type]
                return
            except psycopg.OperationalError:
                if not self._admin.closed:
                    raise
        dsn = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
        self._admin = psycopg.connect(dsn, autocommit=True)
        self._admin.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, a copy of `template` when given.

        The copy is by file (`STRATEGY FILE_COPY`), not PostgreSQL 15's default of logging every
        block of the template to the WAL: the suite makes a database per test from a template of
        a few megabytes, and FILE_COPY made each 15-40% faster (its checkpoints cost little with
        fsync off). Both make the same database."""
        copy = ""
        if template:
            copy = f' TEMPLATE "{template}"' + (
                " STRATEGY FILE_COPY" if self._has_strategy() else ""
            )
        self.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _has_strategy(self) -> bool:
        """PostgreSQL 15 and later choose how CREATE DATABASE copies (older ones copy files)."""
        if self._server_version is None:
            dsn = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
            with psycopg.connect(dsn) as conn:
                self._server_version = conn.info.server_version
        return self._server_version >= 150000


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: that is private to root, and the server may run as postgres.
    root = Path(tempfile.mkdtemp(prefix="ghostpost-pg-"))
    root.chmod(0o755)
    server = PostgresServer(root)
    try:
        server.start()
        yield server
    finally:
        if server.data.exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
