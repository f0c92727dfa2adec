"""The only place that reads the time: everything else is handed a Clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to; used by tests and simulations."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """Return the frozen time."""
        return self._at

    def advance(self, **kwargs: float) -> datetime:
        """Move the clock forward by a timedelta given as keyword arguments."""
        self._at += timedelta(**kwargs)
        return self._at

    def set(self, at: datetime) -> None:
        """Jump to an aware datetime."""
        self._at = at.astimezone(UTC)
