"""Principals, staff users and their assignments to accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ghostpost.db.models import (
    AssignmentRow,
    PrincipalRow,
    UserRow,
)
from ghostpost.domain.model import (
    Principal,
    Role,
    User,
)


def _now() -> datetime:
    # Bookkeeping only (created_at of reference rows); decisions use the injected clock.
    return datetime.now(UTC)


def to_principal(row: PrincipalRow) -> Principal:
    return Principal(id=row.id, name=row.name)


def to_user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        principal_id=row.principal_id,
        is_active=row.is_active,
        totp_enabled=row.totp_secret is not None,
        time_zone=row.time_zone,
    )


class SqlPrincipals:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str) -> Principal:
        row = PrincipalRow(name=name, created_at=_now())
        self.session.add(row)
        self.session.flush()
        return to_principal(row)

    def get(self, principal_id: int) -> Principal | None:
        row = self.session.get(PrincipalRow, principal_id)
        return to_principal(row) if row else None

    def by_name(self, name: str) -> Principal | None:
        row = self.session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
        return to_principal(row) if row else None

    def list(self) -> list[Principal]:
        rows = self.session.scalars(select(PrincipalRow).order_by(PrincipalRow.name))
        return [to_principal(r) for r in rows]


class SqlUsers:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, email: str, name: str, role: Role, password_hash: str, principal_id: int | None
    ) -> User:
        row = UserRow(
            email=email,
            name=name,
            role=role.value,
            password_hash=password_hash,
            principal_id=principal_id,
            is_active=True,
            created_at=_now(),
        )
        self.session.add(row)
        self.session.flush()
        return to_user(row)

    def get(self, user_id: int) -> User | None:
        row = self.session.get(UserRow, user_id)
        return to_user(row) if row else None

    def by_email(self, email: str) -> User | None:
        row = self.session.scalar(select(UserRow).where(UserRow.email == email.lower()))
        return to_user(row) if row else None

    def password_hash(self, user_id: int) -> str | None:
        row = self.session.get(UserRow, user_id)
        return row.password_hash if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.password_hash = password_hash
        self.session.flush()

    def list(self) -> list[User]:
        return [to_user(r) for r in self.session.scalars(select(UserRow).order_by(UserRow.name))]

    def totp(self, user_id: int) -> tuple[str | None, int | None]:
        row = self.session.get(UserRow, user_id)
        return (row.totp_secret, row.totp_last_step) if row else (None, None)

    def set_totp(self, user_id: int, sealed_secret: str | None, last_step: int | None) -> None:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.totp_secret = sealed_secret
        row.totp_last_step = last_step
        self.session.flush()

    def advance_totp_step(self, user_id: int, step: int) -> bool:
        # One conditional UPDATE: two requests racing with the same code cannot both win.
        result = self.session.execute(
            update(UserRow)
            .where(
                UserRow.id == user_id,
                UserRow.totp_secret.is_not(None),
                or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        # The row may be in this session already: its cached step must not hide the new one.
        self.session.expire_all()
        return result.rowcount == 1

    def set_active(self, user_id: int, active: bool) -> User:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.is_active = active
        self.session.flush()
        return to_user(row)

    def set_time_zone(self, user_id: int, time_zone: str | None) -> User:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.time_zone = time_zone
        self.session.flush()
        return to_user(row)

    def linked_to_principal(self, principal_id: int) -> User | None:
        row = self.session.scalar(select(UserRow).where(UserRow.principal_id == principal_id))
        return to_user(row) if row else None

    def set_principal(self, user_id: int, principal_id: int | None) -> User:
        row = self.session.get(UserRow, user_id)
        assert row is not None
        row.principal_id = principal_id
        # Flushed at once: a hand-over unlinks the old user before the new one is linked, and
        # the unique index must see them in that order.
        self.session.flush()
        return to_user(row)


class SqlAssignments:
    def __init__(self, session: Session) -> None:
        self.session = session

    def accounts_of(self, user_id: int) -> list[int]:
        rows = self.session.scalars(
            select(AssignmentRow.account_id).where(AssignmentRow.user_id == user_id)
        )
        return sorted(rows)

    def users_of(self, account_id: int) -> list[int]:
        rows = self.session.scalars(
            select(AssignmentRow.user_id).where(AssignmentRow.account_id == account_id)
        )
        return sorted(rows)

    def add(self, user_id: int, account_id: int) -> None:
        self.session.add(AssignmentRow(user_id=user_id, account_id=account_id, created_at=_now()))
        self.session.flush()

    def remove(self, user_id: int, account_id: int) -> None:
        row = self.session.get(AssignmentRow, (user_id, account_id))
        if row is not None:
            self.session.delete(row)
            self.session.flush()

    def exists(self, user_id: int, account_id: int) -> bool:
        return bool(
            self.session.scalar(
                select(
                    exists().where(
                        AssignmentRow.user_id == user_id, AssignmentRow.account_id == account_id
                    )
                )
            )
        )
