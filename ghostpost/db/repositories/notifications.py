"""The email outbox and notification preferences (ports.NotificationRepository)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ghostpost.db.models import NotificationPreferenceRow, NotificationRow, UserRow
from ghostpost.domain.notifications import (
    NotificationKind,
    OutgoingMail,
    SentNotification,
)

DIGEST = NotificationKind.DAILY_DIGEST.value


class SqlNotifications:
    def __init__(self, session: Session) -> None:
        self.session = session

    def preferences(self, user_id: int) -> dict[str, bool]:
        rows = self.session.execute(
            select(NotificationPreferenceRow.kind, NotificationPreferenceRow.enabled).where(
                NotificationPreferenceRow.user_id == user_id
            )
        )
        return {kind: enabled for kind, enabled in rows}

    def set_preference(self, user_id: int, kind: str, enabled: bool) -> None:
        row = self.session.get(NotificationPreferenceRow, (user_id, kind))
        if row is None:
            self.session.add(NotificationPreferenceRow(user_id=user_id, kind=kind, enabled=enabled))
        else:
            row.enabled = enabled
        self.session.flush()

    def add(
        self,
        *,
        user_id: int,
        kind: str,
        event_key: str,
        subject: str,
        body: str,
        link: str,
        at: datetime,
        status: str,
    ) -> bool:
        exists = self.session.execute(
            select(NotificationRow.id).where(
                NotificationRow.user_id == user_id, NotificationRow.event_key == event_key
            )
        ).first()
        if exists is not None:
            return False
        self.session.add(
            NotificationRow(
                user_id=user_id,
                kind=kind,
                event_key=event_key,
                subject=subject,
                body=body,
                link=link,
                created_at=at,
                status=status,
                attempts=0,
                next_attempt_at=at,
            )
        )
        self.session.flush()
        return True

    def has_due(self, now: datetime) -> bool:
        found = self.session.execute(
            select(NotificationRow.id)
            .where(NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now)
            .limit(1)
        ).first()
        return found is not None

    def claim_due(
        self, now: datetime, worker_id: str, until: datetime, limit: int
    ) -> list[OutgoingMail]:
        claimable = and_(
            NotificationRow.status == "pending",
            NotificationRow.next_attempt_at <= now,
            or_(NotificationRow.claimed_until.is_(None), NotificationRow.claimed_until < now),
        )
        found = self.session.execute(
            select(
                NotificationRow.id,
                UserRow.email,
                NotificationRow.subject,
                NotificationRow.body,
                NotificationRow.attempts,
            )
            .join(UserRow, UserRow.id == NotificationRow.user_id)
            .where(claimable)
            .order_by(NotificationRow.id)
            .limit(limit)
        ).all()
        claimed = []
        for row in found:
            # The guarded update is the claim: of two workers, one changes the row.
            result: Any = self.session.execute(
                update(NotificationRow)
                .where(NotificationRow.id == row.id, claimable)
                .values(claimed_by=worker_id, claimed_until=until)
            )
            if result.rowcount == 1:
                claimed.append(OutgoingMail(row.id, row.email, row.subject, row.body, row.attempts))
        return claimed

    def mark_sent(self, notification_id: int, worker_id: str, at: datetime) -> None:
        self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.claimed_by == worker_id)
            .values(
                status="sent",
                sent_at=at,
                attempts=NotificationRow.attempts + 1,
                claimed_by=None,
                claimed_until=None,
                last_error=None,
            )
        )

    def mark_failed(
        self, notification_id: int, worker_id: str, error: str, retry_at: datetime | None
    ) -> None:
        values: dict[str, Any] = {
            "attempts": NotificationRow.attempts + 1,
            "claimed_by": None,
            "claimed_until": None,
            "last_error": error[:500],
        }
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.claimed_by == worker_id)
            .values(**values)
        )

    def events_between(
        self, user_id: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, str, str]]:
        rows = self.session.execute(
            select(NotificationRow.created_at, NotificationRow.subject, NotificationRow.link)
            .where(
                NotificationRow.user_id == user_id,
                NotificationRow.kind != DIGEST,
                NotificationRow.created_at >= start,
                NotificationRow.created_at < end,
            )
            .order_by(NotificationRow.created_at, NotificationRow.id)
        )
        return [(at, subject, link) for at, subject, link in rows]

    def digest_recipients(self) -> list[int]:
        rows = self.session.execute(
            select(NotificationPreferenceRow.user_id)
            .join(UserRow, UserRow.id == NotificationPreferenceRow.user_id)
            .where(
                NotificationPreferenceRow.kind == DIGEST,
                NotificationPreferenceRow.enabled.is_(True),
                UserRow.is_active.is_(True),
            )
            .order_by(NotificationPreferenceRow.user_id)
        )
        return list(rows.scalars())

    def recent(self, user_id: int, limit: int) -> list[SentNotification]:
        rows = self.session.execute(
            select(NotificationRow)
            .where(NotificationRow.user_id == user_id)
            .order_by(NotificationRow.id.desc())
            .limit(limit)
        ).scalars()
        return [
            SentNotification(
                created_at=row.created_at,
                kind=NotificationKind(row.kind),
                subject=row.subject,
                link=row.link,
                status=row.status,
                last_error=row.last_error,
            )
            for row in rows
        ]
