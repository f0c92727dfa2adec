"""The principal's social accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from ghostpost.db.models import (
    AccountRow,
)
from ghostpost.domain.model import (
    Account,
)


def _now() -> datetime:
    # Bookkeeping only (created_at of reference rows); decisions use the injected clock.
    return datetime.now(UTC)


def to_account(row: AccountRow) -> Account:
    return Account(
        id=row.id,
        principal_id=row.principal_id,
        platform=row.platform,
        handle=row.handle,
        max_chars=row.max_chars,
        url_length=row.url_length,
        remote_id=row.remote_id,
        base_url=row.base_url,
        connected=row.platform == "local" or row.credentials is not None,
    )


class SqlAccounts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        principal_id: int,
        platform: str,
        handle: str,
        max_chars: int | None,
        url_length: int | None,
    ) -> Account:
        row = AccountRow(
            principal_id=principal_id,
            platform=platform,
            handle=handle,
            max_chars=max_chars,
            url_length=url_length,
            created_at=_now(),
        )
        self.session.add(row)
        self.session.flush()
        return to_account(row)

    def get(self, account_id: int) -> Account | None:
        row = self.session.get(AccountRow, account_id)
        return to_account(row) if row else None

    def store_connection(
        self,
        account_id: int,
        *,
        remote_id: str | None,
        base_url: str | None,
        sealed_credentials: str | None,
        max_chars: int | None,
        url_length: int | None,
        connected_at: datetime | None,
    ) -> Account:
        row = self.session.get(AccountRow, account_id)
        assert row is not None
        row.remote_id = remote_id
        row.base_url = base_url
        row.credentials = sealed_credentials
        row.max_chars = max_chars
        row.url_length = url_length
        row.connected_at = connected_at
        self.session.flush()
        return to_account(row)

    def by_handle(self, platform: str, handle: str) -> Account | None:
        row = self.session.scalar(
            select(AccountRow).where(AccountRow.platform == platform, AccountRow.handle == handle)
        )
        return to_account(row) if row else None

    def list(self) -> list[Account]:
        rows = self.session.scalars(select(AccountRow).order_by(AccountRow.id))
        return [to_account(r) for r in rows]

    def lock(self, account_id: int) -> None:
        # PostgreSQL: row lock held to commit. SQLite: BEGIN IMMEDIATE already serialises writers.
        self.session.execute(
            select(AccountRow.id).where(AccountRow.id == account_id).with_for_update()
        )

    def try_lock(self, account_id: int) -> bool:
        # PostgreSQL: FOR UPDATE SKIP LOCKED returns no row while another worker holds the
        # account, so this worker moves on instead of queueing behind it. SQLite ignores the
        # clause; its BEGIN IMMEDIATE already gave this transaction the only write lock, so
        # there is nothing to ask it (the worker's claim reads the account next anyway).
        if self.session.get_bind().dialect.name == "sqlite":
            return True
        found = self.session.scalar(
            select(AccountRow.id)
            .where(AccountRow.id == account_id)
            .with_for_update(skip_locked=True)
        )
        return found is not None
