"""Email notifications: the kinds, who gets them by default, and what a message says.

A message is plain text with one link into the staff app. It names the account and quotes the
post (both already visible to its recipient), never a person: a principal's mail does not say
which writer drafted a post, and a writer's mail does not say who rejected it beyond the reason
the app already shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class NotificationKind(StrEnum):
    """What happened, as a user's preferences name it."""

    #: To the principal.
    NOTICE_AWAITS_APPROVAL = "notice_awaits_approval"
    POST_AWAITS_APPROVAL = "post_awaits_approval"
    POLICY_CHANGE_PROPOSED = "policy_change_proposed"
    #: To the writer of the post.
    POST_REJECTED = "post_rejected"
    POST_REFUSED_AT_WINDOW_END = "post_refused_at_window_end"
    POST_FAILED = "post_failed"
    #: One summary a day of the events above.
    DAILY_DIGEST = "daily_digest"


K = NotificationKind

#: The kinds a user may turn off, in the order the preferences page lists them, with its words.
KIND_LABELS: dict[NotificationKind, str] = {
    K.NOTICE_AWAITS_APPROVAL: "A window's notice waits for my approval",
    K.POST_AWAITS_APPROVAL: "A post waits for my approval",
    K.POLICY_CHANGE_PROPOSED: "A change to a window's disclosure policy is proposed",
    K.POST_REJECTED: "My post is rejected",
    K.POST_REFUSED_AT_WINDOW_END: "My post is refused because its window ended",
    K.POST_FAILED: "My post fails to publish",
    K.DAILY_DIGEST: "A daily digest of the day's events",
}

#: Every kind is on until its user turns it off, except the digest (opt in).
OFF_BY_DEFAULT = frozenset({K.DAILY_DIGEST})

#: A message is tried this many times, then recorded as failed.
MAX_ATTEMPTS = 5


def is_enabled(kind: NotificationKind, overrides: dict[str, bool]) -> bool:
    """Whether `kind` is on, given the user's stored choices (absent: the default)."""
    return overrides.get(kind.value, kind not in OFF_BY_DEFAULT)


def retry_delay_seconds(attempts: int) -> int:
    """Seconds to wait before attempt `attempts + 1`: 1, 2, 4, 8 minutes."""
    return int(60 * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class Message:
    """An email's subject and plain-text body."""

    subject: str
    body: str


_SUBJECTS: dict[NotificationKind, str] = {
    K.NOTICE_AWAITS_APPROVAL: "A notice for {account} waits for your approval",
    K.POST_AWAITS_APPROVAL: "A post for {account} waits for your approval",
    K.POLICY_CHANGE_PROPOSED: "A policy change for {account} waits for your approval",
    K.POST_REJECTED: "Your post for {account} was rejected",
    K.POST_REFUSED_AT_WINDOW_END: "Your post for {account} was not published: its window ended",
    K.POST_FAILED: "Your post for {account} failed to publish",
}

_FIRST_LINES: dict[NotificationKind, str] = {
    K.NOTICE_AWAITS_APPROVAL: "The notice of the window “{detail}” waits for your approval.",
    K.POST_AWAITS_APPROVAL: "A delegated post waits for your approval:",
    K.POLICY_CHANGE_PROPOSED: "A change to the disclosure policy of “{detail}” was proposed. "
    "Until you approve it, the approved policy stays in force.",
    K.POST_REJECTED: "Your post was rejected. Reason: {detail}",
    K.POST_REFUSED_AT_WINDOW_END: "Your post was still queued when its window ended, so it "
    "was not published.",
    K.POST_FAILED: "Your post could not be published. Reason: {detail}",
}


def compose(
    kind: NotificationKind, *, account: str, detail: str, quote: str | None, link: str
) -> Message:
    """The message of one event. `detail` is the window's name or the reason; `quote` the
    post's text (shortened), `link` an absolute URL into the staff app."""
    lines = [_FIRST_LINES[kind].format(detail=detail), ""]
    if quote:
        lines += ["> " + line for line in shorten(quote).splitlines()] + [""]
    lines += [f"Open it: {link}", "", FOOTER]
    return Message(_SUBJECTS[kind].format(account=account), "\n".join(lines) + "\n")


FOOTER = "You get this email from ghostpost. Turn it off on your notifications page."


def shorten(text: str, limit: int = 280) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def digest(day: str, events: list[tuple[datetime, str, str]], link: str) -> Message:
    """One summary: (when, subject, link) per event of `day` (YYYY-MM-DD, UTC)."""
    lines = [f"What happened on {day} (UTC):", ""]
    for at, subject, event_link in events:
        lines.append(f"- {at:%H:%M} {subject}")
        lines.append(f"  {event_link}")
    lines += ["", f"Your notifications: {link}", "", FOOTER]
    noun = "event" if len(events) == 1 else "events"
    return Message(f"ghostpost digest for {day}: {len(events)} {noun}", "\n".join(lines) + "\n")


@dataclass(frozen=True)
class OutgoingMail:
    """A claimed outbox row, ready to send."""

    id: int
    to: str
    subject: str
    body: str
    attempts: int


@dataclass(frozen=True)
class SentNotification:
    """An outbox row as its recipient's preferences page lists it."""

    created_at: datetime
    kind: NotificationKind
    subject: str
    link: str
    status: str
    last_error: str | None
