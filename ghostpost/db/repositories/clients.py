"""API clients and their OAuth tokens."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import (
    delete,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ghostpost.db.models import (
    OAuthClientAccountRow,
    OAuthClientAuthorRow,
    OAuthClientRow,
    OAuthTokenRow,
    UserRow,
)
from ghostpost.domain.model import (
    ApiClient,
    ApiToken,
    ClientStanding,
)


def _scope_text(scopes: Collection[str]) -> str:
    return " ".join(sorted(set(scopes)))


def _scope_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


class SqlApiClients:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _record(self, row: OAuthClientRow) -> ApiClient:
        accounts = self.session.scalars(
            select(OAuthClientAccountRow.account_id).where(
                OAuthClientAccountRow.client_row_id == row.id
            )
        )
        authors = self.session.scalars(
            select(OAuthClientAuthorRow.user_id).where(OAuthClientAuthorRow.client_row_id == row.id)
        )
        return ApiClient(
            id=row.id,
            client_id=row.client_id,
            name=row.name,
            owner_id=row.owner_id,
            scopes=_scope_set(row.scopes),
            account_ids=frozenset(accounts),
            default_author_id=row.default_author_id,
            is_active=row.is_active,
            author_ids=frozenset(authors),
        )

    def add(
        self,
        *,
        client_id: str,
        secret_hash: str,
        name: str,
        owner_id: int,
        scopes: Collection[str],
        account_ids: Collection[int],
        default_author_id: int | None,
        author_ids: Collection[int],
        created_at: datetime,
    ) -> ApiClient:
        row = OAuthClientRow(
            client_id=client_id,
            secret_hash=secret_hash,
            name=name,
            owner_id=owner_id,
            scopes=_scope_text(scopes),
            default_author_id=default_author_id,
            is_active=True,
            created_at=created_at,
        )
        self.session.add(row)
        self.session.flush()
        for account_id in sorted(set(account_ids)):
            self.session.add(OAuthClientAccountRow(client_row_id=row.id, account_id=account_id))
        for user_id in sorted(set(author_ids)):
            self.session.add(OAuthClientAuthorRow(client_row_id=row.id, user_id=user_id))
        self.session.flush()
        return self._record(row)

    def set_authors(
        self, row_id: int, author_ids: Collection[int], default_author_id: int | None
    ) -> ApiClient:
        row = self.session.get(OAuthClientRow, row_id)
        assert row is not None
        self.session.execute(
            delete(OAuthClientAuthorRow).where(OAuthClientAuthorRow.client_row_id == row_id)
        )
        for user_id in sorted(set(author_ids)):
            self.session.add(OAuthClientAuthorRow(client_row_id=row_id, user_id=user_id))
        row.default_author_id = default_author_id
        self.session.flush()
        return self._record(row)

    def get(self, row_id: int) -> ApiClient | None:
        row = self.session.get(OAuthClientRow, row_id)
        return self._record(row) if row else None

    def by_client_id(self, client_id: str) -> ApiClient | None:
        row = self.session.scalar(
            select(OAuthClientRow).where(OAuthClientRow.client_id == client_id)
        )
        return self._record(row) if row else None

    def standing(self, client_id: str) -> ClientStanding | None:
        found = self.session.execute(
            select(
                OAuthClientRow.name,
                OAuthClientRow.is_active,
                OAuthClientRow.owner_id,
                UserRow.name,
                UserRow.is_active,
            )
            .outerjoin(UserRow, UserRow.id == OAuthClientRow.owner_id)
            .where(OAuthClientRow.client_id == client_id)
        ).one_or_none()
        if found is None:
            return None
        name, is_active, owner_id, owner_name, owner_active = found
        return ClientStanding(name, is_active, owner_id, owner_name, bool(owner_active))

    def secret_hash(self, client_id: str) -> str | None:
        found: str | None = self.session.scalar(
            select(OAuthClientRow.secret_hash).where(OAuthClientRow.client_id == client_id)
        )
        return found

    def list(self) -> list[ApiClient]:
        rows = self.session.scalars(
            select(OAuthClientRow).order_by(OAuthClientRow.name, OAuthClientRow.id)
        )
        return [self._record(r) for r in rows]

    def set_active(self, row_id: int, active: bool) -> ApiClient:
        row = self.session.get(OAuthClientRow, row_id)
        assert row is not None
        row.is_active = active
        self.session.flush()
        return self._record(row)


def to_api_token(row: OAuthTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        client_row_id=row.client_row_id,
        scopes=_scope_set(row.scope),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlApiTokens:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        token_hash: str,
        client_row_id: int,
        scopes: Collection[str],
        issued_at: datetime,
        expires_at: datetime,
    ) -> ApiToken:
        row = OAuthTokenRow(
            token_hash=token_hash,
            client_row_id=client_row_id,
            scope=_scope_text(scopes),
            issued_at=issued_at,
            expires_at=expires_at,
        )
        self.session.add(row)
        self.session.flush()
        return to_api_token(row)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        row = self.session.scalar(
            select(OAuthTokenRow).where(OAuthTokenRow.token_hash == token_hash)
        )
        return to_api_token(row) if row else None

    def revoke(self, token_id: int, at: datetime) -> None:
        row = self.session.get(OAuthTokenRow, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = at
            self.session.flush()

    def revoke_all(self, client_row_id: int, at: datetime) -> int:
        result = self.session.execute(
            update(OAuthTokenRow)
            .where(OAuthTokenRow.client_row_id == client_row_id, OAuthTokenRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def purge_expired(self, client_row_id: int, expired_before: datetime) -> int:
        result = self.session.execute(
            delete(OAuthTokenRow).where(
                OAuthTokenRow.client_row_id == client_row_id,
                OAuthTokenRow.expires_at < expired_before,
            )
        )
        assert isinstance(result, CursorResult)
        return result.rowcount
