"""The SQLAlchemy unit of work: one session, one transaction, rollback unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from ghostpost.db.exports import SqlExports
from ghostpost.db.idempotency import SqlIdempotencyKeys
from ghostpost.db.platform_store import SqlSealedSecrets
from ghostpost.db.repositories import (
    SqlAccounts,
    SqlApiClients,
    SqlApiTokens,
    SqlAssignments,
    SqlLedger,
    SqlPosts,
    SqlPrincipals,
    SqlUsers,
    SqlWindows,
)
from ghostpost.db.web_sessions import SqlWebSessions
from ghostpost.secretbox import SecretBox
from ghostpost.services.ports import (
    AccountRepository,
    ApiClientRepository,
    ApiTokenRepository,
    AssignmentRepository,
    ExportReader,
    IdempotencyKeyRepository,
    Ledger,
    PostRepository,
    PrincipalRepository,
    SealedSecrets,
    UserRepository,
    WebSessionRepository,
    WindowRepository,
)


class SqlAlchemyUnitOfWork:
    """Implements ghostpost.services.ports.UnitOfWork."""

    def __init__(self, session_factory: sessionmaker[Session], box: SecretBox) -> None:
        self._session_factory = session_factory
        #: Seals platform secrets (keys from settings, never the database).
        self._box = box

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
        self.api_clients: ApiClientRepository = SqlApiClients(self.session)
        self.api_tokens: ApiTokenRepository = SqlApiTokens(self.session)
        self.idempotency_keys: IdempotencyKeyRepository = SqlIdempotencyKeys(self.session)
        self.exports: ExportReader = SqlExports(self.session)
        self.sealed: SealedSecrets = SqlSealedSecrets(self.session, self._box)
        self.web_sessions: WebSessionRepository = SqlWebSessions(self.session)
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
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
