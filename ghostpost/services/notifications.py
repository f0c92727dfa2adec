"""Email notifications: recorded in the event's own transaction (the outbox), delivered by
the worker outside any transaction, at most one email per event and recipient.

The `record_*` functions run inside the caller's unit of work, right after the ledger entry
of the event (whose sequence number is the event's key). Delivery never blocks the post flow:
an SMTP server that is down only leaves the emails pending, retried with a growing delay and
recorded as failed after domain.notifications.MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ghostpost.domain import notifications as n
from ghostpost.domain.disclosure import expand
from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.model import Account, Post, User, Window
from ghostpost.domain.policy import PostKind
from ghostpost.services import errors
from ghostpost.services.context import ServiceContext
from ghostpost.services.disclosure import disclosure_url
from ghostpost.services.ports import Mailer, UnitOfWork

log = logging.getLogger("ghostpost.notifications")

#: The kinds, for the services that record them.
K = n.NotificationKind

#: A claimed email not marked sent within this long is claimed again (a crashed worker).
CLAIM_LEASE = timedelta(minutes=5)


def _account_label(account: Account) -> str:
    return f"@{account.handle} ({account.platform})"


def _record(
    ctx: ServiceContext,
    uow: UnitOfWork,
    kind: K,
    *,
    user_id: int | None,
    event: LedgerEntry | str,
    account: Account,
    detail: str,
    quote: str | None,
    path: str,
) -> None:
    if user_id is None:
        return
    user = uow.users.get(user_id)
    if user is None or not user.is_active:
        return
    link = ctx.public_url.rstrip("/") + path
    message = n.compose(
        kind, account=_account_label(account), detail=detail, quote=quote, link=link
    )
    # A kind turned off is still kept (status `off`): the daily digest summarises it.
    on = n.is_enabled(kind, uow.notifications.preferences(user_id))
    uow.notifications.add(
        user_id=user_id,
        kind=kind.value,
        event_key=event if isinstance(event, str) else f"ledger:{event.seq}",
        subject=message.subject,
        body=message.body,
        link=link,
        at=ctx.clock.now(),
        status="pending" if on else "off",
    )


def _principal_user_id(uow: UnitOfWork, account: Account) -> int | None:
    user = uow.users.linked_to_principal(account.principal_id)
    return user.id if user is not None else None


def record_notice_awaits_approval(
    ctx: ServiceContext, uow: UnitOfWork, event: LedgerEntry | str, account: Account, window: Window
) -> None:
    """To the principal: a window's notice waits for their approval."""
    _record(
        ctx, uow, K.NOTICE_AWAITS_APPROVAL,
        user_id=_principal_user_id(uow, account), event=event, account=account,
        detail=window.name, path="/approvals",
        # As it will be posted: the principal approves the text the public will read.
        quote=expand(window.policy.notice_text, disclosure_url(ctx, account)),
    )  # fmt: skip


def record_policy_change_proposed(
    ctx: ServiceContext, uow: UnitOfWork, event: LedgerEntry | str, window: Window
) -> None:
    """To the principal: a change weakening a window's policy waits for their approval."""
    account = uow.accounts.get(window.account_id)
    if account is None:
        return
    _record(
        ctx, uow, K.POLICY_CHANGE_PROPOSED,
        user_id=_principal_user_id(uow, account), event=event, account=account,
        detail=window.name, quote=None, path="/approvals",
    )  # fmt: skip


def record_post_awaits_approval(
    ctx: ServiceContext, uow: UnitOfWork, event: LedgerEntry | str, post: Post
) -> None:
    """To the principal: a delegated post waits for their approval."""
    account = uow.accounts.get(post.account_id)
    if account is None:
        return
    principal = _principal_user_id(uow, account)
    if principal == post.author_id:
        return
    _record(
        ctx, uow, K.POST_AWAITS_APPROVAL,
        user_id=principal, event=event, account=account,
        detail="", quote=post.final_text, path="/approvals",
    )  # fmt: skip


_TO_WRITER = {K.POST_REJECTED, K.POST_REFUSED_AT_WINDOW_END, K.POST_FAILED}


def record_to_writer(
    ctx: ServiceContext,
    uow: UnitOfWork,
    kind: K,
    event: LedgerEntry | str,
    post: Post,
    reason: str,
) -> None:
    """To the post's writer: it was rejected, refused at its window's end, or failed. Only a
    regular post has a writer to tell (notices and reminders are ghostpost's own)."""
    assert kind in _TO_WRITER
    if post.kind is not PostKind.REGULAR:
        return
    account = uow.accounts.get(post.account_id)
    if account is None:
        return
    _record(
        ctx, uow, kind,
        user_id=post.author_id, event=event, account=account,
        detail=reason, quote=post.final_text, path=f"/posts/{post.public_id}",
    )  # fmt: skip


# -- delivery (the worker) ------------------------------------------------------------------


def deliver_due(ctx: ServiceContext, mailer: Mailer, worker_id: str, *, limit: int = 20) -> int:
    """Claim due emails (short transaction), send each (no transaction), record each outcome
    (short transaction). Return how many were sent. Never raises for a mail server's fault."""
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        if not uow.notifications.has_due(now):
            return 0
    with ctx.uow() as uow:
        claims = uow.notifications.claim_due(now, worker_id, now + CLAIM_LEASE, limit)
        uow.commit()
    sent = 0
    down: str | None = None
    for mail in claims:
        if down is None:
            try:
                mailer.send(mail.to, mail.subject, mail.body)
            except Exception as exc:  # any fault of the mail server: retried, then recorded
                log.warning("notification %s not sent: %s", mail.id, exc)
                # One server fault ends the batch: the worker waits one timeout at most.
                down = _error(exc)
            else:
                with ctx.uow() as uow:
                    uow.notifications.mark_sent(mail.id, worker_id, ctx.clock.now())
                    uow.commit()
                sent += 1
                continue
        attempts = mail.attempts + 1
        retry_at = (
            None
            if attempts >= n.MAX_ATTEMPTS
            else ctx.clock.now() + timedelta(seconds=n.retry_delay_seconds(attempts))
        )
        with ctx.uow() as uow:
            uow.notifications.mark_failed(mail.id, worker_id, down or "", retry_at)
            uow.commit()
    return sent


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def queue_daily_digests(ctx: ServiceContext, day: date) -> int:
    """Record one digest email for `day` (UTC) for each user who opted in and had events
    that day; a second call for the same day records nothing. Return how many were queued."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    queued = 0
    link = ctx.public_url.rstrip("/") + "/account/notifications"
    with ctx.uow(read_only=True) as uow:
        days = [
            (user_id, events)
            for user_id in uow.notifications.digest_recipients()
            if (events := uow.notifications.events_between(user_id, start, end))
        ]
    if not days:
        return 0  # the usual case costs no write transaction
    with ctx.uow() as uow:
        for user_id, events in days:
            message = n.digest(day.isoformat(), events, link)
            queued += uow.notifications.add(
                user_id=user_id,
                kind=K.DAILY_DIGEST.value,
                event_key=f"digest:{day.isoformat()}",
                subject=message.subject,
                body=message.body,
                link=link,
                at=ctx.clock.now(),
                status="pending",
            )
        uow.commit()
    return queued


# -- preferences (the staff web app) --------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """A user's notification page: each kind on or off, and their latest emails."""

    choices: list[tuple[K, str, bool]]
    recent: list[n.SentNotification]


def preferences_of(ctx: ServiceContext, user: User) -> Preferences:
    """The user's own notifications page (read only)."""
    with ctx.uow(read_only=True) as uow:
        stored = uow.notifications.preferences(user.id)
        recent = uow.notifications.recent(user.id, 20)
    choices = [(kind, label, n.is_enabled(kind, stored)) for kind, label in n.KIND_LABELS.items()]
    return Preferences(choices, recent)


def set_preferences(ctx: ServiceContext, user: User, enabled: set[str]) -> None:
    """Turn on the kinds in `enabled` and off every other, for `user` only (the signed-in
    user: nobody changes another's choices)."""
    unknown = enabled - {kind.value for kind in K}
    if unknown:
        raise errors.ValidationFailed("Unknown notification kind.")
    with ctx.uow() as uow:
        for kind in K:
            uow.notifications.set_preference(user.id, kind.value, kind.value in enabled)
        uow.commit()
