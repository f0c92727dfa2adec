"""Disclosure coverage of one window, measured on its published timeline (DESIGN.md §3).

Pure: callers hand in the window's policy and the account's published posts in publishing order
and get back the numbers and one chart mark per post. Which posts are on the window's timeline
(`counts_in_window`) and how each moves the run (`cadence_step`) are the very functions the
publishing worker applies on every confirmed publish, so the dashboard and the worker cannot
disagree: any notice (also another window's), standalone reminder or inline reminder resets the
run, every other post extends it, and a reminder is *due* when the next post would make N in a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ghostpost.domain.model import Post
from ghostpost.domain.policy import (
    CadencePost,
    PostKind,
    ReminderOutcome,
    TagMode,
    TagOutcome,
    WindowKind,
    WindowPolicy,
    cadence_step,
    counts_in_window,
    reminder_due,
)


class MarkKind(StrEnum):
    """What one published post is, as the coverage chart colours it."""

    NOTICE = "notice"
    REMINDER = "reminder"  # a standalone reminder post
    INLINE_REMINDER = "inline_reminder"  # a post that carries the reminder
    TAGGED = "tagged"  # delegated, with the tag
    TAG_SKIPPED = "tag_skipped"  # delegated, the tag did not fit
    UNTAGGED = "untagged"  # delegated, no tag by policy (tag mode off)
    PRINCIPAL = "principal"  # the principal's own post

    @property
    def label(self) -> str:
        """Return the legend text for this kind."""
        return _MARK_LABELS[self]


_MARK_LABELS = {
    MarkKind.NOTICE: "Notice",
    MarkKind.REMINDER: "Standalone reminder",
    MarkKind.INLINE_REMINDER: "Inline reminder",
    MarkKind.TAGGED: "Delegated, tagged",
    MarkKind.TAG_SKIPPED: "Delegated, tag skipped",
    MarkKind.UNTAGGED: "Delegated, tag off",
    MarkKind.PRINCIPAL: "Principal",
}
_TAGGED_OUTCOMES = frozenset({TagOutcome.APPLIED, TagOutcome.ALREADY_PRESENT})


@dataclass(frozen=True)
class TimelinePost:
    """One published post as coverage reads it (from the decisions stored with the post)."""

    public_id: str
    published_at: datetime
    kind: PostKind
    delegated: bool
    tag: TagOutcome | None = None
    tag_needs: int | None = None
    tag_has: int | None = None
    tag_unit: str | None = None
    reminder: ReminderOutcome = ReminderOutcome.NONE
    #: The window the post was accepted into; for a notice, the window it announces.
    window_id: int | None = None

    @property
    def cadence(self) -> CadencePost:
        """Return the facts the reminder cadence reads of this publish."""
        return CadencePost(
            kind=self.kind,
            published_at=self.published_at,
            reminder=self.reminder,
            notice_of=self.window_id if self.kind is PostKind.NOTICE else None,
        )

    @property
    def is_disclosure(self) -> bool:
        """Tell whether this post resets the cadence (any notice, reminder or inline reminder)."""
        return self.cadence.is_disclosure

    @property
    def mark(self) -> MarkKind:
        """Return the chart category of the post."""
        if self.kind is PostKind.NOTICE:
            return MarkKind.NOTICE
        if self.kind is PostKind.REMINDER:
            return MarkKind.REMINDER
        if self.reminder is ReminderOutcome.INLINE:
            return MarkKind.INLINE_REMINDER
        if not self.delegated:
            return MarkKind.PRINCIPAL
        if self.tag in _TAGGED_OUTCOMES:
            return MarkKind.TAGGED
        if self.tag is TagOutcome.SKIPPED:
            return MarkKind.TAG_SKIPPED
        return MarkKind.UNTAGGED


def _tag_outcome(value: Any) -> TagOutcome | None:
    try:
        return TagOutcome(value)
    except ValueError:
        return None


def _reminder_outcome(value: Any) -> ReminderOutcome:
    try:
        return ReminderOutcome(value)
    except ValueError:
        return ReminderOutcome.NONE


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def timeline_post(post: Post) -> TimelinePost:
    """Read a published post's stored decisions into a TimelinePost."""
    assert post.published_at is not None, "only published posts are on a timeline"
    publication: Mapping[str, Any] = post.decisions.get("publication") or {}
    tag: Mapping[str, Any] = publication.get("tag") or {}
    reminder: Mapping[str, Any] = publication.get("reminder") or {}
    regular = post.kind is PostKind.REGULAR
    return TimelinePost(
        public_id=post.public_id,
        published_at=post.published_at,
        kind=post.kind,
        delegated=regular and post.is_delegated,
        tag=_tag_outcome(tag.get("outcome")) if regular else None,
        tag_needs=_int_or_none(tag.get("needs")),
        tag_has=_int_or_none(tag.get("has")),
        tag_unit=tag.get("unit") if isinstance(tag.get("unit"), str) else None,
        reminder=_reminder_outcome(reminder.get("outcome")),
        window_id=post.window_id,
    )


@dataclass(frozen=True)
class SkippedTag:
    """A delegated post that went out without the tag, and by how much it missed."""

    position: int
    public_id: str
    published_at: datetime
    needs: int | None
    has: int | None
    unit: str | None


@dataclass(frozen=True)
class Mark:
    """One post on the chart: its 1-based position, kind and the run length after it."""

    position: int
    public_id: str
    published_at: datetime
    kind: MarkKind
    #: Posts since the last disclosure, counting this one (0 when it is a disclosure).
    run: int
    #: A reminder was due at this post and none was sent.
    missed_reminder: bool = False


@dataclass(frozen=True)
class Coverage:
    """How well one window's disclosure policy was kept on its published timeline."""

    reminder_every: int
    tag_mode: TagMode
    starts_at: datetime
    ends_at: datetime
    notice_published_at: datetime | None
    published: int
    principal_posts: int
    delegated_posts: int
    notices: int
    tagged: int
    untagged: int
    skipped_tags: tuple[SkippedTag, ...]
    reminders_due: int
    reminders_inline: int
    reminders_standalone: int
    reminders_missed: int
    longest_run: int
    #: Position of the post that ends the (first) longest run, or None when there is no run.
    longest_run_ends_at: int | None
    marks: tuple[Mark, ...]

    @property
    def tag_skipped(self) -> int:
        """Return how many delegated posts went out without the tag because it did not fit."""
        return len(self.skipped_tags)

    @property
    def tagged_percent(self) -> float | None:
        """Return the share of delegated posts that carry the tag (0-100, 1 decimal), or None."""
        if self.delegated_posts == 0:
            return None
        return round(100 * self.tagged / self.delegated_posts, 1)

    @property
    def reminders_sent(self) -> int:
        """Return how many reminders went out, inline and standalone."""
        return self.reminders_inline + self.reminders_standalone

    @property
    def cadence_kept(self) -> bool:
        """Tell whether no N consecutive posts went out without a disclosure."""
        return self.longest_run < self.reminder_every

    @property
    def notice_lead(self) -> timedelta | None:
        """Return how long before the window's start the notice went out (negative: after)."""
        if self.notice_published_at is None:
            return None
        return self.starts_at - self.notice_published_at

    def count(self, kind: MarkKind) -> int:
        """Return how many posts of the timeline are of this chart kind."""
        return sum(1 for mark in self.marks if mark.kind is kind)


def compute_coverage(
    policy: WindowPolicy,
    notice_published_at: datetime | None,
    timeline: Iterable[TimelinePost],
    *,
    window_id: int | None = None,
) -> Coverage:
    """Measure a window's published timeline (in publishing order) against its policy.

    With `window_id`, posts not on that window's timeline (`counts_in_window`) are left out,
    so callers may hand in a wider selection; without it, every post given is on the timeline.
    """
    every = policy.reminder_every
    run = longest = 0
    longest_end: int | None = None
    due = inline = standalone = missed = 0
    principal = delegated = notices = tagged = untagged = 0
    skipped: list[SkippedTag] = []
    marks: list[Mark] = []
    posts: Sequence[TimelinePost] = [
        post
        for post in timeline
        if window_id is None or counts_in_window(window_id, policy, post.cadence)
    ]
    for position, post in enumerate(posts, start=1):
        # An away notice has no reminders: none is ever due (the principal's posts only).
        was_due = reminder_due(run, every) and policy.kind is not WindowKind.AWAY
        missed_here = False
        if post.kind is PostKind.NOTICE:
            notices += 1
        elif post.kind is PostKind.REMINDER:
            standalone += 1
            due += 1 if was_due else 0
        else:
            if post.reminder is ReminderOutcome.INLINE:
                inline += 1
                due += 1 if was_due else 0
            elif was_due:
                due += 1
                missed += 1
                missed_here = True
            if not post.delegated:
                principal += 1
            else:
                delegated += 1
                if post.tag in _TAGGED_OUTCOMES:
                    tagged += 1
                elif post.tag is TagOutcome.SKIPPED:
                    skipped.append(
                        SkippedTag(
                            position,
                            post.public_id,
                            post.published_at,
                            post.tag_needs,
                            post.tag_has,
                            post.tag_unit,
                        )
                    )
                else:
                    untagged += 1
        run = cadence_step(run, post.cadence)
        if run > longest:
            longest, longest_end = run, position
        marks.append(Mark(position, post.public_id, post.published_at, post.mark, run, missed_here))
    return Coverage(
        reminder_every=every,
        tag_mode=policy.tag_mode,
        starts_at=policy.starts_at,
        ends_at=policy.ends_at,
        notice_published_at=notice_published_at,
        published=len(posts),
        principal_posts=principal,
        delegated_posts=delegated,
        notices=notices,
        tagged=tagged,
        untagged=untagged,
        skipped_tags=tuple(skipped),
        reminders_due=due,
        reminders_inline=inline,
        reminders_standalone=standalone,
        reminders_missed=missed,
        longest_run=longest,
        longest_run_ends_at=longest_end,
        marks=tuple(marks),
    )
