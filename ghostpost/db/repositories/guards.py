"""A principal's guards and the hashtags each account has used (domain.guards)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ghostpost.db.models import AccountHashtagRow, PrincipalGuardsRow
from ghostpost.domain.guards import PrincipalGuards


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
        new = set(names) - self.used_hashtags(account_id, names)
        for name in sorted(new):
            self.session.add(
                AccountHashtagRow(account_id=account_id, name=name, first_published_at=at)
            )
        if new:
            self.session.flush()
