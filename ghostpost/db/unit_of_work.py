"""The SQLAlchemy unit of work: one session, one transaction, rollback unless committed."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from ghostpost.db.engine import connection_of, make_session_factory, run_deferred
from ghostpost.db.exports import SqlExports
from ghostpost.db.idempotency import SqlIdempotencyKeys
from ghostpost.db.platform_store import SqlSealedSecrets
from ghostpost.db.repositories.accounts import SqlAccounts
from ghostpost.db.repositories.clients import SqlApiClients, SqlApiTokens
from ghostpost.db.repositories.guards import SqlGuards
from ghostpost.db.repositories.ledger import SqlLedger
from ghostpost.db.repositories.mastodon_apps import SqlMastodonApps
from ghostpost.db.repositories.media import SqlMedia
from ghostpost.db.repositories.notifications import SqlNotifications
from ghostpost.db.repositories.people import SqlAssignments, SqlPrincipals, SqlUsers
from ghostpost.db.repositories.posts import SqlPosts
from ghostpost.db.repositories.tree import SqlTransparencyLog
from ghostpost.db.repositories.windows import SqlWindows
from ghostpost.db.submissions import SingleReadSubmissions, SqlSubmissions
from ghostpost.db.web_sessions import SqlWebSessions
from ghostpost.secretbox import SecretBox
from ghostpost.services.ports import (
    AccountRepository,
    ApiClientRepository,
    ApiTokenRepository,
    AssignmentRepository,
    ExportReader,
    GuardRepository,
    IdempotencyKeyRepository,
    Ledger,
    MastodonAppRepository,
    MediaRepository,
    NotificationRepository,
    PostRepository,
    PrincipalRepository,
    SealedSecrets,
    SubmissionReader,
    TransparencyLog,
    UserRepository,
    WebSessionRepository,
    WindowRepository,
)


class SqlAlchemyUnitOfWork:
    """Implements ghostpost.services.ports.UnitOfWork."""

    def __init__(
        self, session_factory: Callable[[], Session], box: SecretBox, *, read_only: bool = False
    ) -> None:
        self._session_factory = session_factory
        #: Seals platform secrets (keys from settings, never the database).
        self._box = box
        #: Sessions of a read-only factory (make_session_factory(read_only=True)) never write.
        self.read_only = read_only

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        # Annotated with the ports so mypy proves each repository implements its protocol.
        self.principals: PrincipalRepository = SqlPrincipals(self.session)
        self.accounts: AccountRepository = SqlAccounts(self.session)
        self.users: UserRepository = SqlUsers(self.session)
        self.assignments: AssignmentRepository = SqlAssignments(self.session)
        self.windows: WindowRepository = SqlWindows(self.session)
        self.posts: PostRepository = SqlPosts(self.session)
        self.ledger: Ledger = SqlLedger(self.session)
        self.tree: TransparencyLog = SqlTransparencyLog(self.session)
        self.api_clients: ApiClientRepository = SqlApiClients(self.session)
        self.api_tokens: ApiTokenRepository = SqlApiTokens(self.session)
        self.mastodon_apps: MastodonAppRepository = SqlMastodonApps(self.session)
        self.idempotency_keys: IdempotencyKeyRepository = SqlIdempotencyKeys(self.session)
        self.submissions: SubmissionReader = SqlSubmissions(self.session)
        self.exports: ExportReader = SqlExports(self.session)
        self.sealed: SealedSecrets = SqlSealedSecrets(self.session, self._box)
        self.web_sessions: WebSessionRepository = SqlWebSessions(self.session)
        self.media: MediaRepository = SqlMedia(self.session)
        self.guards: GuardRepository = SqlGuards(self.session)
        self.notifications: NotificationRepository = SqlNotifications(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()
        self.session.close()

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        if self.session.in_transaction():
            run_deferred(connection_of(self.session))
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class SingleReadUnitOfWork(SqlAlchemyUnitOfWork):
    """`uow(single_read=True)`: one read-only statement, read without an ORM Session when it
    is the submissions' joined read (the preview's one read: opening a Session, beginning and
    rolling back its transaction cost more than running the statement). It reads on one
    engine connection of its own, in one (SQLAlchemy) transaction: on PostgreSQL in
    autocommit, so no BEGIN or ROLLBACK is sent; on SQLite a deferred BEGIN. Any other
    repository, or `session`, builds the Session-based unit of work on first use, bound to
    that same connection: the one-statement rule (count_single_read) holds across both."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        super().__init__(
            lambda: Session(bind=self._connect(), expire_on_commit=False), box, read_only=True
        )
        #: The engine with the single-read execution options (make_session_factory's bind).
        self._engine = engine
        self._connection: Connection | None = None
        self._session_built = False

    def __enter__(self) -> Self:
        self.submissions = SingleReadSubmissions(self._connect)
        return self

    def __getattr__(self, name: str) -> Any:
        # Only attributes not set yet come here: the Session and its repositories.
        if name.startswith("_") or self._session_built:
            raise AttributeError(name)
        self._session_built = True
        super().__enter__()
        return getattr(self, name)

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.begin()
        return self._connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._session_built:
                super().__exit__(exc_type, exc, tb)
        finally:
            if self._connection is not None:
                self._connection.close()  # rolls its transaction back
                self._connection = None

    def rollback(self) -> None:
        if self._session_built:
            super().rollback()


class _ConnectionSession:
    """The part of a Session the create's repositories use (connection_of's look-ups, `info`,
    `flush`) on one engine connection of its own, begun on first use: the ORM Session's
    transaction bookkeeping costs more than most of the create's statements. Anything else
    asked of it goes to an ORM Session built on first use, bound to that connection and in
    control of its transaction (join_transaction_mode "control_fully": its commit and
    rollback are the transaction's), so that every repository works in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._session: Session | None = None
        self.info: dict[str, Any] = {}

    def connection(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect()
            try:
                connection.begin()  # on SQLite BEGIN IMMEDIATE, in the writer queue's turn
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def get_transaction(self) -> Any:
        return None if self._connection is None else self._connection.get_transaction()

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def __getattr__(self, name: str) -> Any:
        # Only what is not defined above: the ORM Session's own methods.
        if name.startswith("_"):
            raise AttributeError(name)
        if self._session is None:
            self._session = Session(
                bind=self.connection(),
                expire_on_commit=False,
                join_transaction_mode="control_fully",
            )
        return getattr(self._session, name)

    def commit(self) -> None:
        connection = self._connection
        if connection is None:
            return  # nothing was begun: nothing to commit
        run_deferred(connection)
        if self._session is not None:
            self._session.commit()  # flushes, then commits the connection's transaction
        else:
            connection.commit()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()  # the transaction's, as it controls it
        elif self._connection is not None:
            self._connection.rollback()

    def close(self) -> None:
        """Roll back what is not committed and give the connection back to the pool."""
        try:
            if self._session is not None:
                self._session.close()
        finally:
            if self._connection is not None:
                self._connection.close()  # rolls an open transaction back
                self._connection = None


class LeanUnitOfWork(SqlAlchemyUnitOfWork):
    """`uow(lean=True)`: one write transaction, as `uow()`, for a use case whose statements
    go to the connection (the API client's create: idempotency key, joined read, post, ledger):
    no ORM Session unless a repository needs one (see _ConnectionSession), and each
    repository built when first used (building the nineteen cost more than a statement)."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        super().__init__(lambda: cast(Session, None), box)
        self._engine = engine

    def __enter__(self) -> Self:
        self._connected = _ConnectionSession(self._engine)
        # Typed as the Session the repositories take: they use only what it provides, and
        # anything else reaches a real Session bound to the same transaction.
        self.session = cast(Session, self._connected)
        return self

    def __getattr__(self, name: str) -> Any:
        # Only attributes not set yet come here: the repositories, built on first use.
        factory = _REPOSITORIES.get(name)
        if factory is None:
            raise AttributeError(name)
        built = factory(self)
        setattr(self, name, built)
        return built

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._connected.close()

    def commit(self) -> None:
        self._connected.commit()

    def rollback(self) -> None:
        self._connected.rollback()


#: The repositories of a LeanUnitOfWork, by attribute, as SqlAlchemyUnitOfWork builds them.
_REPOSITORIES: dict[str, Callable[[SqlAlchemyUnitOfWork], Any]] = {
    "principals": lambda uow: SqlPrincipals(uow.session),
    "accounts": lambda uow: SqlAccounts(uow.session),
    "users": lambda uow: SqlUsers(uow.session),
    "assignments": lambda uow: SqlAssignments(uow.session),
    "windows": lambda uow: SqlWindows(uow.session),
    "posts": lambda uow: SqlPosts(uow.session),
    "ledger": lambda uow: SqlLedger(uow.session),
    "tree": lambda uow: SqlTransparencyLog(uow.session),
    "api_clients": lambda uow: SqlApiClients(uow.session),
    "api_tokens": lambda uow: SqlApiTokens(uow.session),
    "mastodon_apps": lambda uow: SqlMastodonApps(uow.session),
    "idempotency_keys": lambda uow: SqlIdempotencyKeys(uow.session),
    "submissions": lambda uow: SqlSubmissions(uow.session),
    "exports": lambda uow: SqlExports(uow.session),
    "sealed": lambda uow: SqlSealedSecrets(uow.session, uow._box),
    "web_sessions": lambda uow: SqlWebSessions(uow.session),
    "media": lambda uow: SqlMedia(uow.session),
    "guards": lambda uow: SqlGuards(uow.session),
    "notifications": lambda uow: SqlNotifications(uow.session),
}


class SqlUnitsOfWork:
    """The unit-of-work factory of the services (ServiceContext.uow): `uow()` is one write
    transaction (BEGIN IMMEDIATE on SQLite), `uow(read_only=True)` one that only reads (a
    deferred BEGIN on SQLite, READ ONLY on PostgreSQL), `uow(single_read=True)` one read-only
    statement (on PostgreSQL outside any explicit transaction: one round trip), `uow(lean=True)`
    one write transaction without an ORM Session unless needed (LeanUnitOfWork)."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        self._writes = sessions
        engine = sessions.kw["bind"]
        self._reads = make_session_factory(engine, read_only=True)
        self._single_reads = make_session_factory(engine, single_read=True).kw["bind"]
        self._box = box

    def __call__(
        self, *, read_only: bool = False, single_read: bool = False, lean: bool = False
    ) -> SqlAlchemyUnitOfWork:
        if lean and not (read_only or single_read):
            return LeanUnitOfWork(self._writes.kw["bind"], self._box)
        if single_read:
            return SingleReadUnitOfWork(self._single_reads, self._box)
        if read_only:
            return SqlAlchemyUnitOfWork(self._reads, self._box, read_only=True)
        return SqlAlchemyUnitOfWork(self._writes, self._box)
