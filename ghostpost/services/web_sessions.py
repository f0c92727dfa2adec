"""Server-side staff web sessions: open, save, rotate, revoke, purge (one transaction each).

The cookie carries a random token; the database keeps only its SHA-256
(ghostpost.domain.sessions.token_hash). A session is dead once revoked (logout, rotation at
sign-in, the user's deactivation) or past its idle or absolute timeout; a dead session is
treated exactly like no session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ghostpost.domain.sessions import WebSession, is_dead, token_hash
from ghostpost.services.context import ServiceContext

#: last_seen_at is only rewritten when older than this, so most requests do not write at all.
#: Idle timeouts are therefore exact to within this much, far below any sensible idle setting.
TOUCH_INTERVAL = timedelta(seconds=60)
#: Dead sessions are kept this long before `purge_web_sessions` deletes them (for forensics).
PURGE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Timeouts:
    """How long a session may sit unused (idle) and live at all (absolute)."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class OpenedSession:
    """What `open_web_session` found: a live session, or None with whether one just died."""

    session: WebSession | None
    #: True when the token named a session of a signed-in user that is now dead.
    signed_out: bool = False


def new_token() -> str:
    """Return a fresh cookie token (32 random bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


def open_web_session(ctx: ServiceContext, token: str, timeouts: Timeouts) -> OpenedSession:
    """Return the live session behind a cookie token, or say that there is none."""
    with ctx.uow(read_only=True) as uow:
        found = uow.web_sessions.get(token_hash(token))
    if found is None:
        return OpenedSession(None)
    if is_dead(found, ctx.clock.now(), timeouts.idle, timeouts.absolute):
        return OpenedSession(None, signed_out=found.user_id is not None)
    return OpenedSession(found)


def save_web_session(
    ctx: ServiceContext,
    current: WebSession,
    *,
    data: dict[str, Any],
    user_id: int | None,
    modified: bool,
) -> None:
    """Store a live session's new data, or only mark it seen; skip the write when neither is due."""
    now = ctx.clock.now()
    if not modified and now - current.last_seen_at < TOUCH_INTERVAL:
        return
    with ctx.uow() as uow:
        if modified:
            uow.web_sessions.save(current.id, user_id=user_id, data=data, now=now)
        else:
            uow.web_sessions.touch(current.id, now)
        uow.commit()


def start_web_session(
    ctx: ServiceContext, *, replaces: str | None, data: dict[str, Any], user_id: int | None
) -> str:
    """Revoke the session with id `replaces` (if any) and start a new one; return its token.

    Used at sign-in and sign-out so the id changes whenever the privilege does (session
    fixation: an id planted before sign-in is worthless after it).
    """
    token = new_token()
    with ctx.uow() as uow:
        now = ctx.clock.now()
        if replaces is not None:
            uow.web_sessions.revoke(replaces, now)
        uow.web_sessions.add(token_hash(token), user_id=user_id, data=data, now=now)
        uow.commit()
    return token


def revoke_web_session(ctx: ServiceContext, session_id: str) -> None:
    """End one session server-side: its cookie stops working, wherever it was copied to."""
    with ctx.uow() as uow:
        uow.web_sessions.revoke(session_id, ctx.clock.now())
        uow.commit()


def purge_web_sessions(ctx: ServiceContext, timeouts: Timeouts) -> int:
    """Delete sessions that have been dead (revoked or timed out) for over PURGE_AFTER."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        removed = uow.web_sessions.purge(
            revoked_before=now - PURGE_AFTER,
            seen_before=now - timeouts.idle - PURGE_AFTER,
            created_before=now - timeouts.absolute - PURGE_AFTER,
        )
        uow.commit()
    return removed
