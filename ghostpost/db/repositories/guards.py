"""A principal's guards and the hashtags each account has used (domain.guards)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ghostpost.db.engine import connection_of, execute_prepared
from ghostpost.db.models import AccountHashtagRow, PrincipalGuardsRow
from ghostpost.db.repositories.rows import table_of
from ghostpost.domain.guards import PrincipalGuards

_HASHTAGS = table_of(AccountHashtagRow)
#: An account's hashtag as used first at first_published_at, unless it is known already.
_RECORD_USED = {
    "sqlite": sqlite_insert(_HASHTAGS).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(_HASHTAGS).on_conflict_do_nothing(),
}


class SqlGuards:
    def __init__(self, session: Session) -> None:
        self.session = session

    def of(self, principal_id: int) -> PrincipalGuards:
        row = self.session.get(PrincipalGuardsRow, principal_id)
        if row is None:
            return PrincipalGuards()
        return PrincipalGuards(tuple(row.watched), row.first_use_hashtags)

    def set(self, principal_id: int, guards: PrincipalGuards, at: datetime) -> None:
        row = self.session.get(PrincipalGuardsRow, principal_id)
        if row is None:
            row = PrincipalGuardsRow(principal_id=principal_id)
            self.session.add(row)
        row.watched = list(guards.watched)
        row.first_use_hashtags = guards.first_use_hashtags
        row.updated_at = at
        self.session.flush()

    def used_hashtags(self, account_id: int, names: Collection[str]) -> frozenset[str]:
        if not names:
            return frozenset()
        found = self.session.scalars(
            select(AccountHashtagRow.name).where(
                AccountHashtagRow.account_id == account_id,
                AccountHashtagRow.name.in_(sorted(names)),
            )
        )
        return frozenset(found)

    def record_used(self, account_id: int, names: Collection[str], at: datetime) -> None:
        # The worker records the tags of every post it publishes with one (the disclosure
        # tag, mostly), almost always already known: one prebuilt INSERT per name that keeps
        # the row already there (its first use stays the first), not a SELECT and then the
        # ORM's flush of the new ones.
        self.session.flush()
        connection = connection_of(self.session)
        statement = _RECORD_USED[connection.dialect.name]
        for name in sorted(set(names)):
            row = {"account_id": account_id, "name": name, "first_published_at": at}
            execute_prepared(connection, statement, row)
