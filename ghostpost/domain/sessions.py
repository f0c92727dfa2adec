"""Server-side web sessions: what a stored session is and when it is dead (pure, stdlib only)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class WebSession:
    """A stored session. `id` is the SHA-256 of the cookie's token, never the token itself."""

    id: str
    user_id: int | None
    data: dict[str, Any]
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    """Return the stored id of a cookie token.

    Only the hash is stored, so reading the table (a backup, a SQL console) yields no cookie
    that would sign anyone in.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_dead(session: WebSession, now: datetime, idle: timedelta, absolute: timedelta) -> bool:
    """Tell whether the session was revoked or ran past its idle or absolute timeout."""
    return (
        session.revoked_at is not None
        or now - session.last_seen_at >= idle
        or now - session.created_at >= absolute
    )
