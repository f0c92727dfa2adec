"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import copy
import select
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DisconnectionError,
    MultipleResultsFound,
    NoResultFound,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from ghostpost.db.writer_queue import QueuedWritersConnection, lock_path_for

#: Connection execution option: the transaction only reads (see db.exports.use_snapshot).
READ_ONLY = "ghostpost_read_only"
#: Connection execution option: one statement that only reads, outside any transaction (its
#: own implicit one on PostgreSQL: no BEGIN, no ROLLBACK). Set with READ_ONLY.
SINGLE_READ = "ghostpost_single_read"
#: PostgreSQL: every pooled connection's transactions are read-only unless they say otherwise
#: (write units of work begin with BEGIN READ WRITE), so a statement outside a transaction
#: (SINGLE_READ, in autocommit) cannot write either.
_READ_ONLY_BY_DEFAULT = "-c default_transaction_read_only=on"


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def pool_options(requests: int, exports: int, timeout_seconds: float) -> dict[str, Any]:
    """Return the engine's pool options: `requests` connections for everything but exports plus
    one for each export that may stream at once (exports are capped to `exports` by
    ghostpost.services.exports), so exports never take the last connections. No overflow: a
    request finding the pool empty waits `timeout_seconds`, then gets a TimeoutError (503)."""
    return {"pool_size": requests + exports, "max_overflow": 0, "pool_timeout": timeout_seconds}


_QUEUE_POOL_OPTIONS = frozenset({"pool_size", "max_overflow", "pool_timeout"})


def make_engine(url: str, *, writer_queue: bool = True, **kwargs: Any) -> Engine:
    """Build the engine; on SQLite, WAL + BEGIN IMMEDIATE so writers queue instead of failing,
    and, unless `writer_queue` is False, write transactions taking their turn on a file lock
    (ghostpost.db.writer_queue) so that the next writer starts as soon as the last commits."""
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        if make_url(url).database in (None, "", ":memory:"):
            # An in-memory database lives in one connection (SingletonThreadPool): no pool to
            # size. Only the OpenAPI document is built against one; nothing is stored there.
            kwargs = {k: v for k, v in kwargs.items() if k not in _QUEUE_POOL_OPTIONS}
        lock_path = lock_path_for(make_url(url).database) if writer_queue else None
        connect_args: dict[str, Any] = {"timeout": 30}
        if lock_path is not None:
            connect_args["factory"] = QueuedWritersConnection
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (documented recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            # In WAL mode NORMAL may lose the last commits on power loss: never for a ledger.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()
            if isinstance(dbapi_connection, QueuedWritersConnection):
                dbapi_connection.writer_lock_path = lock_path

        @event.listens_for(engine, "before_execute")
        def _before_statement(conn: Connection, *_args: Any) -> None:
            if conn.get_execution_options().get(SINGLE_READ, False):
                count_single_read(conn)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # A deferred transaction that reads and then writes fails with SQLITE_BUSY without
            # waiting; IMMEDIATE takes the write lock up front and so waits its turn. A read-only
            # transaction (READ_ONLY, e.g. a long export) stays deferred: in WAL mode it reads
            # one snapshot and never blocks writers.
            if conn.get_execution_options().get(READ_ONLY, False):
                conn.exec_driver_sql("BEGIN")
                return
            raw = conn.connection.dbapi_connection
            if not isinstance(raw, QueuedWritersConnection):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            # In this connection's turn; its commit(), rollback() and close() give the turn back.
            raw.begin_write(lambda: conn.exec_driver_sql("BEGIN IMMEDIATE"))

        return engine
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "do_connect")
    def _read_only_by_default(_dialect: Any, _record: Any, _cargs: Any, cparams: Any) -> None:
        # A startup option: no round trip. Kept with any `options` the URL already gives.
        cparams["options"] = f"{cparams.get('options', '')} {_READ_ONLY_BY_DEFAULT}".strip()

    @event.listens_for(engine, "checkout")
    def _on_checkout_postgres(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A pooled connection the server has dropped (restart, crash, idle timeout, a killed
        # backend) is replaced before use: the pool retries the checkout with a new one. This
        # replaces the pool's pre-ping (a `SELECT 1` round trip on every checkout).
        if server_hung_up(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")

    @event.listens_for(engine, "begin")
    def _on_begin_postgres(conn: Any) -> None:
        # Every transaction says what it does in its BEGIN (psycopg sends it with the mode of
        # the connection's `read_only`, set here before the transaction starts: no round trip):
        # READ ONLY for a read-only unit of work (the server refuses its writes and gives it no
        # transaction id), READ WRITE for the others, as the connections are read-only by
        # default (_READ_ONLY_BY_DEFAULT). Set on every transaction, as pooled connections
        # serve both kinds. An export may still choose its isolation level with its first
        # statement. A SINGLE_READ runs in autocommit: no BEGIN, and the default applies.
        wanted = bool(conn.get_execution_options().get(READ_ONLY, False))
        driver = conn.connection.dbapi_connection
        if driver.read_only is not wanted:
            driver.read_only = wanted

    @event.listens_for(engine, "before_execute")
    def _before_statement_postgres(conn: Connection, *_args: Any) -> None:
        if conn.get_execution_options().get(SINGLE_READ, False):
            count_single_read(conn)
        run_deferred(conn)

    @event.listens_for(engine, "commit")
    def _nothing_deferred_at_commit(conn: Connection) -> None:
        held = conn.info.get(_DEFERRED)
        if held is not None and held[0] is conn.get_transaction():
            raise RuntimeError("a deferred write is still held: run_deferred before commit")

    return engine


#: Connection.info key: the (SQLAlchemy) transaction whose one statement a SINGLE_READ ran.
_SINGLE_READ_DONE = "ghostpost_single_read_done"


def count_single_read(conn: Connection) -> None:
    """Let a SINGLE_READ connection run one statement per transaction: two statements outside
    a transaction would read two snapshots, so a second read belongs in a read-only unit of
    work (one transaction). Refused on SQLite too, where it would work, so that code that
    reads twice fails in every test run, not only on PostgreSQL."""
    transaction = conn.get_transaction()
    if conn.info.get(_SINGLE_READ_DONE) is transaction:
        raise RuntimeError("a single-read unit of work runs one statement")
    conn.info[_SINGLE_READ_DONE] = transaction


def server_hung_up(dbapi_connection: Any) -> bool:
    """True when a pooled, idle psycopg connection is no use: closed or broken, or its socket
    readable. An idle connection is owed nothing, so anything to read is the server hanging
    up (end of file) or its last words ("terminating connection"); a message it may send
    unasked (a changed parameter's status) only costs a reconnect. Asks the kernel only, no
    round trip. What it cannot see, a peer gone silent (a network partition), the first
    statement then meets as a disconnect: that request answers 503 and SQLAlchemy invalidates
    the whole pool, so the next checkouts connect afresh."""
    if dbapi_connection.closed or getattr(dbapi_connection, "broken", False):
        return True
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


#: Connection.info key: (transaction, statement, parameters) of a write deferred by `defer`.
_DEFERRED = "ghostpost_deferred_write"


def defer(connection: Connection, statement: Executable, parameters: dict[str, Any]) -> None:
    """Hold a write whose result nobody waits for until the transaction's next statement, so
    that statement may carry it (take_deferred; one round trip for both). Any other statement
    of the transaction runs it first (a `before_execute` hook), and commit() refuses to commit
    while one is held (SqlAlchemyUnitOfWork.commit runs it): it is never skipped or reordered
    after what follows it. PostgreSQL only; at most one at a time."""
    if connection.info.get(_DEFERRED) is not None:
        run_deferred(connection)
    connection.info[_DEFERRED] = (connection.get_transaction(), statement, parameters)


def take_deferred(connection: Connection) -> tuple[Executable, dict[str, Any]] | None:
    """The write this transaction deferred, now the caller's to run (None: none)."""
    held = connection.info.pop(_DEFERRED, None)
    if held is None or held[0] is not connection.get_transaction():
        return None
    return held[1], held[2]


def run_deferred(connection: Connection) -> None:
    """Run the write this transaction deferred, if any."""
    held = take_deferred(connection)
    if held is not None:
        execute_prepared(connection, *held)


#: Errors meaning "the database cannot be reached right now" (mapped to 503 by the surfaces):
#: down, or every pooled connection busy for longer than the pool timeout.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)


def ping(engine: Engine) -> None:
    """Run a trivial query; raises one of DATABASE_UNAVAILABLE when the database is down."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def redact_url(url: str) -> str:
    """Return the database URL with any password hidden (safe to print or log)."""
    return make_url(url).render_as_string(hide_password=True)


def make_session_factory(
    engine: Engine, *, read_only: bool = False, single_read: bool = False
) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (records are built before commit anyway).

    With `read_only`, every transaction of these sessions only reads: a plain deferred BEGIN on
    SQLite (it never takes the write lock, so it neither waits for writers nor blocks them) and
    READ ONLY on PostgreSQL (writes fail). Same engine, same pool.

    With `single_read` (implies `read_only`), a session runs one statement: on PostgreSQL in
    autocommit on a connection whose transactions are read-only by default, so the statement
    is its own read-only transaction and costs one round trip (no BEGIN, no ROLLBACK); a
    second statement is refused. SQLite: as `read_only` (its BEGIN costs no round trip).
    """
    options: dict[str, Any] = {}
    if read_only or single_read:
        options[READ_ONLY] = True
    if single_read:
        options[SINGLE_READ] = True
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
    bind = engine.execution_options(**options) if options else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


class _Prepared:
    """A statement rendered once for one dialect and one set of parameter names: its SQL and how
    to lay out the parameters (the driver's order, its types' bind processors, the values the
    statement binds itself)."""

    __slots__ = (
        "_compiled",
        "_gather",
        "_processors",
        "positional",
        "returns_rows",
        "slots",
        "sql",
        "statement",
    )

    def __init__(self, statement: Executable, dialect: Any, names: frozenset[str]) -> None:
        self.statement = statement
        compiled: Any = statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=sorted(names)
        )
        self._compiled = compiled
        self._processors: tuple[Any, ...] | None = None
        #: A SELECT, or a write with RETURNING: rows to fetch. Known from the statement, not
        #: asked of the cursor (psycopg builds its description anew, an object per column).
        self.returns_rows = bool(compiled._result_columns)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        rendered = {name for name, bind in binds.items() if bind.literal_execute or bind.expanding}
        self.sql: str | None = None
        self.slots: tuple[tuple[str, str | None, Any, Any], ...] = ()
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or rendered & names
            or any(bind.required and name not in names for name, bind in binds.items())
        ):
            # Python-side defaults, or a value given at execution written into the SQL:
            # SQLAlchemy's own path.
            self.positional = False
            return
        # The statement's own values written into the SQL where SQLAlchemy writes them at
        # execution (a literal_execute bind), bound where it binds them.
        expanded = compiled.construct_expanded_state(dict.fromkeys(names), escape_names=False)
        self.sql = expanded.statement
        own = expanded.parameters
        escaped = getattr(compiled, "escaped_bind_names", None) or {}
        order = expanded.positiontup if dialect.positional else list(own)
        slots = []
        for name in order or ():
            bind = binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in names:
                slots.append((escaped.get(name, name), name, process, None))
            else:
                value = own[name]
                fixed = process(value) if process else value
                slots.append((escaped.get(name, name), None, None, fixed))
        self.slots = tuple(slots)
        self.positional = bool(dialect.positional)
        self._gather = _gatherer(self.slots) if self.positional else None

    def processors(self, dialect: Any) -> tuple[Any, ...]:
        """Each result column's result processor (None: the driver's value as it is), as
        SQLAlchemy's typed result would apply them; found once."""
        if self._processors is None:
            self._processors = tuple(
                column.type._cached_result_processor(dialect, None)
                for column in self._compiled._result_columns
            )
        return self._processors

    def parameters(self, given: dict[str, Any]) -> Any:
        if self._gather is not None:
            return self._gather(given)
        if self.positional:
            return tuple(
                value if name is None else (process(given[name]) if process else given[name])
                for _, name, process, value in self.slots
            )
        return {
            driver: value if name is None else (process(given[name]) if process else given[name])
            for driver, name, process, value in self.slots
        }


def _gatherer(
    slots: tuple[tuple[str, str | None, Any, Any], ...],
) -> Callable[[dict[str, Any]], tuple[Any, ...]] | None:
    """For positional slots that all take a given value (none bound by the statement itself),
    a function laying the given values out in the driver's order, as `parameters` does: one
    C-level look-up of every value, then only the bind processors run in Python. A create's
    statements carry 10-30 values each, and the per-value loop showed in its profile (4.5%
    of its time). None when a slot holds the statement's own value."""
    names = tuple(name for _, name, _, _ in slots if name is not None)
    if not names or len(names) != len(slots):
        return None
    processed = tuple((i, process) for i, (_, _, process, _) in enumerate(slots) if process)
    # itemgetter of one name gives the value, of several a tuple: a tuple either way.
    take: Callable[[dict[str, Any]], tuple[Any, ...]] = (
        itemgetter(*names) if len(names) > 1 else lambda given: (given[names[0]],)
    )
    if not processed:
        return take

    def gather(given: dict[str, Any]) -> tuple[Any, ...]:
        values = list(take(given))
        for i, process in processed:
            values[i] = process(values[i])
        return tuple(values)

    return gather


_PREPARED: dict[tuple[int, str, frozenset[str]], _Prepared] = {}


def _prepared(
    connection: Connection, statement: Executable, names: frozenset[str], *, raw: bool = False
) -> _Prepared:
    dialect = _raw_dialect(connection.dialect) if raw else connection.dialect
    key = (id(statement), dialect.name if not raw else "raw:" + dialect.name, names)
    found = _PREPARED.get(key)
    if found is None or found.statement is not statement:
        found = _PREPARED[key] = _Prepared(statement, dialect, names)
    return found


_RAW_DIALECTS: dict[int, Any] = {}


def _raw_dialect(dialect: Any) -> Any:
    """The PostgreSQL dialect rendering `$1` placeholders (psycopg's RawCursor takes them as
    the server does): a copy of the engine's, so it compiles as the engine's does."""
    found = _RAW_DIALECTS.get(id(dialect))
    if found is None or found[0] is not dialect:
        raw = copy.copy(dialect)
        raw.paramstyle, raw.positional = "numeric_dollar", True
        found = _RAW_DIALECTS[id(dialect)] = (dialect, raw)
    return found[1]


class DriverResult:
    """What `execute_prepared` returns when it ran on the driver's cursor: the rows (as the
    driver gives them: plain tuples, no type conversion), the affected row count and SQLite's
    last row id. The part of SQLAlchemy's CursorResult its callers use."""

    __slots__ = ("lastrowid", "rowcount", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int, lastrowid: int | None) -> None:
        self.rows, self.rowcount, self.lastrowid = rows, rowcount, lastrowid

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def one(self) -> tuple[Any, ...]:
        if not self.rows:
            raise NoResultFound("expected one row, found none")
        if len(self.rows) > 1:
            raise MultipleResultsFound("expected one row, found more")
        return self.rows[0]

    def all(self) -> list[tuple[Any, ...]]:
        return self.rows


def _on_cursor(
    connection: Connection, prepared: _Prepared, parameters: dict[str, Any], *, raw: bool
) -> tuple[list[tuple[Any, ...]], int, int | None]:
    """Run `prepared` on a driver cursor of `connection`'s: its rows, row count and last row
    id. Everything SQLAlchemy's own execute does around the cursor is done here too: the
    engine's before_execute hooks (the single-read count, a deferred write run first), the
    before/after_cursor_execute listeners (statement counters, tests' race hooks), a driver
    error wrapped and handled as SQLAlchemy's own execute does (handle_error events, a lost
    connection invalidated: the outage's 503)."""
    if connection.get_execution_options().get(SINGLE_READ, False):
        count_single_read(connection)
    run_deferred(connection)
    sql, bound = prepared.sql, prepared.parameters(parameters)
    dbapi_connection: Any = connection.connection.dbapi_connection
    cursor: Any = psycopg.RawCursor(dbapi_connection) if raw else dbapi_connection.cursor()
    listened = connection._has_events or connection.engine._has_events
    try:
        if listened:
            for listen in connection.dispatch.before_cursor_execute:
                sql, bound = listen(connection, cursor, sql, bound, None, False)
        cursor.execute(sql, bound)
        if listened:
            for listen in connection.dispatch.after_cursor_execute:
                listen(connection, cursor, sql, bound, None, False)
        rows = cursor.fetchall() if prepared.returns_rows else []
        return rows, cursor.rowcount, cursor.lastrowid if not raw else None
    except Exception as exc:
        connection._handle_dbapi_exception(exc, sql, bound, cursor, None)
        raise  # not reached: the handler raises
    finally:
        cursor.close()


def execute_prepared(
    connection: Connection, statement: Executable, parameters: dict[str, Any]
) -> Any:
    """Run a prebuilt Core `statement` (one that lives as long as the process) as SQL rendered
    once per dialect and set of parameter names, on the driver's own cursor: SQLAlchemy's
    compile cache look-up, parameter building and result set-up (even exec_driver_sql's)
    cost more than the statement on the create's path. Everything else is the same (see
    _on_cursor): the engine's hooks and listeners, `handle_error` (the outage's 503), bind
    processors (a custom type's process_bind_param), the statement's own bound values. A
    statement needing Python-side defaults, or a value of the caller's written into its SQL,
    takes SQLAlchemy's own path, as does a connection with no transaction begun (SQLAlchemy
    begins it).

    For writes, and RETURNING of a few plain columns: the result (a DriverResult: first(),
    one(), all(), rowcount, lastrowid) holds rows as the driver gives them, as tuples (no
    type conversion); the create's 61-column joined read uses read_one_prepared."""
    # psycopg converts a query's %(name)s placeholders on every execute, and caches the
    # conversion only for queries under 4 KiB: its RawCursor takes the server's $1 as they are.
    raw = connection.dialect.name == "postgresql"
    prepared = _prepared(connection, statement, frozenset(parameters), raw=raw)
    if prepared.sql is None or not connection.in_transaction():
        return connection.execute(statement, parameters)
    return DriverResult(*_on_cursor(connection, prepared, parameters, raw=raw))


def read_one_prepared(
    connection: Connection, statement: Executable, parameters: dict[str, Any]
) -> tuple[Any, ...] | None:
    """The first row of a prebuilt Core SELECT (one that lives as long as the process), as a
    tuple of typed values, or None: `execute_prepared`'s rendered SQL run on the driver's own
    cursor, with no result object. A typed result asks the driver for the cursor's
    description on every call (psycopg builds an object per column: for the create's 60-column
    joined read that cost more than the statement) and builds a result and a row around the
    values; here each column's result processor is applied to the driver's row directly.
    Everything else is SQLAlchemy's (see _on_cursor). A statement SQLAlchemy must render at
    execution runs through its own path."""
    row = read_one_untyped(connection, statement, parameters)
    return None if row is None else typed_row(connection, statement, parameters, row)


def read_one_untyped(
    connection: Connection, statement: Executable, parameters: dict[str, Any]
) -> tuple[Any, ...] | None:
    """read_one_prepared's row before its values are typed (`typed_row` types them): as the
    driver gives it, for a caller that compares it first and may need no typed values."""
    raw = connection.dialect.name == "postgresql"
    prepared = _prepared(connection, statement, frozenset(parameters), raw=raw)
    if prepared.sql is None:
        found = connection.execute(statement, parameters).first()
        return None if found is None else tuple(found)  # typed already (see typed_row)
    rows = _on_cursor(connection, prepared, parameters, raw=raw)[0]
    return rows[0] if rows else None


def typed_row(
    connection: Connection,
    statement: Executable,
    parameters: dict[str, Any],
    row: tuple[Any, ...],
) -> tuple[Any, ...]:
    """`row`, read by read_one_untyped with the same statement and parameters, typed."""
    raw = connection.dialect.name == "postgresql"
    prepared = _prepared(connection, statement, frozenset(parameters), raw=raw)
    if prepared.sql is None:
        return row
    return tuple(
        value if process is None else process(value)
        for process, value in zip(prepared.processors(connection.dialect), row, strict=True)
    )


#: Session.info key: (the session's transaction, its connection), kept by connection_of.
_CONNECTION = "ghostpost.connection"


def connection_of(session: Session) -> Connection:
    """`session.connection()` (beginning the transaction if none is open), remembered for the
    session's current transaction: the ORM's look-up of a transaction's connection costs more
    than a prepared statement, and the create asks for it at every statement. A transaction
    has one connection for its whole life (one bind); a new transaction looks it up anew."""
    transaction = session.get_transaction()
    if transaction is not None:
        held = session.info.get(_CONNECTION)
        if held is not None and held[0] is transaction:
            found: Connection = held[1]
            return found
    connection = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), connection)
    return connection
