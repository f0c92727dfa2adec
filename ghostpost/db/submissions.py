"""The API create's one read: client, owner, account, author, assignment and window together."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session, aliased

from ghostpost.db.models import (
    AccountRow,
    AssignmentRow,
    OAuthClientAccountRow,
    OAuthClientAuthorRow,
    OAuthClientRow,
    OAuthTokenRow,
    PostRow,
    UserRow,
    WindowRow,
)
from ghostpost.db.repositories.accounts import to_account
from ghostpost.db.repositories.clients import to_api_token
from ghostpost.db.repositories.people import to_user
from ghostpost.db.repositories.windows import to_window
from ghostpost.domain.model import ApiClient, NewPost, Post
from ghostpost.services.ports import ClientSubmission, TokenFacts


def cast_table(table: object) -> Table:
    assert isinstance(table, Table)
    return table


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


@functools.cache
def _token_statement() -> Select[Any]:
    """Built once (building a statement costs more than running it): bound :token_hash."""
    owner = aliased(UserRow, name="owner")
    client_accounts, client_authors = _grant_lists()
    return (
        select(OAuthTokenRow, OAuthClientRow, owner.is_active, client_accounts, client_authors)
        .join(OAuthClientRow, OAuthClientRow.id == OAuthTokenRow.client_row_id)
        .join(owner, owner.id == OAuthClientRow.owner_id)
        .where(OAuthTokenRow.token_hash == bindparam("token_hash"))
    )


@functools.cache
def _submission_statement(*, by_email: bool) -> Select[Any]:
    """Built once per form: bound :client_id, :account_id, :at and (by_email) :author_email;
    without an email the author is the client's default author."""
    owner = aliased(UserRow, name="owner")
    author = aliased(UserRow, name="author")
    client_accounts, client_authors = _grant_lists()
    assigned = exists().where(
        AssignmentRow.user_id == author.id, AssignmentRow.account_id == AccountRow.id
    )
    named = (
        author.email == bindparam("author_email", type_=String)
        if by_email
        else author.id == OAuthClientRow.default_author_id
    )
    at = bindparam("at", type_=WindowRow.starts_at.type)
    return (
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
        .outerjoin(AccountRow, AccountRow.id == bindparam("account_id", type_=Integer))
        .outerjoin(author, named)
        .outerjoin(
            WindowRow,
            and_(
                WindowRow.account_id == AccountRow.id,
                WindowRow.starts_at <= at,
                WindowRow.ends_at > at,
            ),
        )
        .where(OAuthClientRow.client_id == bindparam("client_id", type_=String))
        .limit(1)
    )


_POSTS = cast_table(PostRow.__table__)


class SqlSubmissions:
    """Implements ghostpost.services.ports.SubmissionReader: one SELECT per question, and the
    new post as one Core INSERT (the ORM's flush of one row costs several times the INSERT)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_post(self, post: NewPost) -> Post:
        values = {
            "public_id": post.public_id,
            "account_id": post.account_id,
            "window_id": post.window_id,
            "kind": post.kind.value,
            "state": post.state.value,
            "state_reason": post.state_reason,
            "author_id": post.author_id,
            "submitter": post.submitter,
            "source": post.source.value,
            "submitted_text": post.submitted_text,
            "final_text": post.final_text,
            "publish_at": post.publish_at,
            "idempotency_key": post.idempotency_key,
            "decisions": post.decisions,
            "attempts": 0,
            "precedes_post_id": post.precedes_post_id,
            "created_at": post.created_at,
            "updated_at": post.created_at,
        }
        result = self.session.connection().execute(insert(_POSTS).values(values))
        (post_id,) = result.inserted_primary_key or (None,)
        assert post_id is not None
        return post.stored_as(int(post_id))

    def token(self, token_hash: str) -> TokenFacts | None:
        statement = _token_statement()
        found = self.session.execute(statement, {"token_hash": token_hash}).first()
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
        statement = _submission_statement(by_email=author_email is not None)
        parameters: dict[str, Any] = {"client_id": client_id, "account_id": account_id, "at": at}
        if author_email is not None:
            parameters["author_email"] = author_email
        found = self.session.execute(statement, parameters).first()
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
