"""The API create's one read: client, owner, account, author, assignment and window together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, select
from sqlalchemy.orm import Session, aliased

from ghostpost.db.models import (
    AccountRow,
    AssignmentRow,
    OAuthClientAccountRow,
    OAuthClientAuthorRow,
    OAuthClientRow,
    OAuthTokenRow,
    UserRow,
    WindowRow,
)
from ghostpost.db.repositories import to_account, to_api_token, to_user, to_window
from ghostpost.domain.model import ApiClient
from ghostpost.services.ports import ClientSubmission, TokenFacts


def _ids(text: str | None) -> frozenset[int]:
    return frozenset(int(part) for part in (text or "").split(",") if part)


def _grant_lists() -> tuple[Any, Any]:
    """The client's accounts and authors as comma-separated ids, correlated to the client row."""
    accounts = (
        select(func.aggregate_strings(cast(OAuthClientAccountRow.account_id, String), ","))
        .where(OAuthClientAccountRow.client_row_id == OAuthClientRow.id)
        .scalar_subquery()
    )
    authors = (
        select(func.aggregate_strings(cast(OAuthClientAuthorRow.user_id, String), ","))
        .where(OAuthClientAuthorRow.client_row_id == OAuthClientRow.id)
        .scalar_subquery()
    )
    return accounts, authors


def _client(row: OAuthClientRow, account_ids: str | None, author_ids: str | None) -> ApiClient:
    return ApiClient(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        owner_id=row.owner_id,
        scopes=frozenset(row.scopes.split()),
        account_ids=_ids(account_ids),
        default_author_id=row.default_author_id,
        is_active=row.is_active,
        author_ids=_ids(author_ids),
    )


class SqlSubmissions:
    """Implements ghostpost.services.ports.SubmissionReader: one SELECT per question."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def token(self, token_hash: str) -> TokenFacts | None:
        owner = aliased(UserRow, name="owner")
        client_accounts, client_authors = _grant_lists()
        statement = (
            select(OAuthTokenRow, OAuthClientRow, owner.is_active, client_accounts, client_authors)
            .join(OAuthClientRow, OAuthClientRow.id == OAuthTokenRow.client_row_id)
            .join(owner, owner.id == OAuthClientRow.owner_id)
            .where(OAuthTokenRow.token_hash == token_hash)
        )
        found = self.session.execute(statement).first()
        if found is None:
            return None
        token, client, owner_active, account_ids, author_ids = found
        return TokenFacts(
            token=to_api_token(token),
            client=_client(client, account_ids, author_ids),
            owner_active=bool(owner_active),
        )

    def for_client(
        self, client_id: str, account_id: int, author_email: str | None, at: datetime
    ) -> ClientSubmission | None:
        owner = aliased(UserRow, name="owner")
        author = aliased(UserRow, name="author")
        client_accounts, client_authors = _grant_lists()
        assigned = exists().where(
            AssignmentRow.user_id == author.id, AssignmentRow.account_id == AccountRow.id
        )
        named = (
            author.email == author_email
            if author_email
            else author.id == OAuthClientRow.default_author_id
        )
        statement = (
            select(
                OAuthClientRow,
                owner.is_active,
                client_accounts,
                client_authors,
                AccountRow,
                author,
                assigned,
                WindowRow,
            )
            .join(owner, owner.id == OAuthClientRow.owner_id)
            .outerjoin(AccountRow, AccountRow.id == account_id)
            .outerjoin(author, named)
            .outerjoin(
                WindowRow,
                and_(
                    WindowRow.account_id == AccountRow.id,
                    WindowRow.starts_at <= at,
                    WindowRow.ends_at > at,
                ),
            )
            .where(OAuthClientRow.client_id == client_id)
            .limit(1)
        )
        found = self.session.execute(statement).first()
        if found is None:
            return None
        row, owner_active, account_ids, author_ids, account, person, is_assigned, window = found
        client = _client(row, account_ids, author_ids)
        return ClientSubmission(
            client=client,
            owner_active=bool(owner_active),
            account=to_account(account) if account is not None else None,
            author=to_user(person) if person is not None else None,
            author_assigned=bool(is_assigned) and person is not None and account is not None,
            window=to_window(window) if window is not None else None,
        )
