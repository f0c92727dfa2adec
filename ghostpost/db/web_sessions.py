"""SQLAlchemy implementation of the web-session port (ghostpost.services.ports)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ghostpost.db.models import WebSessionRow
from ghostpost.domain.sessions import WebSession


class SqlWebSessions:
    """Implements ghostpost.services.ports.WebSessionRepository."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, session_id: str) -> WebSession | None:
        row = self.session.get(WebSessionRow, session_id, populate_existing=True)
        if row is None:
            return None
        return WebSession(
            id=row.id,
            user_id=row.user_id,
            data=dict(row.data),
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            revoked_at=row.revoked_at,
        )

    def add(
        self, session_id: str, *, user_id: int | None, data: dict[str, Any], now: datetime
    ) -> None:
        self.session.add(
            WebSessionRow(
                id=session_id, user_id=user_id, data=data, created_at=now, last_seen_at=now
            )
        )
        self.session.flush()

    def save(
        self, session_id: str, *, user_id: int | None, data: dict[str, Any], now: datetime
    ) -> None:
        # Never resurrects a revoked row: a request racing a logout must not undo it.
        self.session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.id == session_id, WebSessionRow.revoked_at.is_(None))
            .values(user_id=user_id, data=data, last_seen_at=now)
        )

    def touch(self, session_id: str, now: datetime) -> None:
        self.session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.id == session_id, WebSessionRow.revoked_at.is_(None))
            .values(last_seen_at=now)
        )

    def revoke(self, session_id: str, now: datetime) -> None:
        self.session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.id == session_id, WebSessionRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_for_user(self, user_id: int, now: datetime) -> int:
        result = self.session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.user_id == user_id, WebSessionRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def purge(
        self, *, revoked_before: datetime, seen_before: datetime, created_before: datetime
    ) -> int:
        result = self.session.execute(
            delete(WebSessionRow).where(
                or_(
                    WebSessionRow.revoked_at < revoked_before,
                    WebSessionRow.last_seen_at < seen_before,
                    WebSessionRow.created_at < created_before,
                )
            )
        )
        assert isinstance(result, CursorResult)
        return result.rowcount
