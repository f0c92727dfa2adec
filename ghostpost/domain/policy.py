"""The disclosure policy engine (DESIGN.md §3) as pure functions that return decision values.

Nothing here reads the clock or the database: callers pass `now`, the window's snapshot and the
platform budget, and get back a `Decision` saying what to publish, hold or refuse, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ghostpost.domain.hashtags import Hashtag
from ghostpost.domain.length import Budget, Measurement, with_content_warning
from ghostpost.domain.post_options import shows_tag


def _shown(at: datetime) -> str:
    """A time as people read it in a refusal (UTC, to the minute), not ISO 8601."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class PostKind(StrEnum):
    """What a post is for."""

    REGULAR = "regular"
    NOTICE = "notice"
    REMINDER = "reminder"


class ReminderMode(StrEnum):
    """How a due reminder goes out."""

    INLINE = "inline"
    STANDALONE = "standalone"


class TagMode(StrEnum):
    """How strictly delegated posts carry the tag."""

    WHEN_FITS = "when_fits"
    REQUIRED = "required"
    OFF = "off"


class TagPosition(StrEnum):
    """Where the tag goes."""

    END = "end"
    START = "start"


class WindowKind(StrEnum):
    """What a window is for."""

    #: Staff may post on the account, under the disclosure policy.
    DELEGATION = "delegation"
    #: A notice and no delegated posting ("I'm at the conference, I'll reply next week"): the
    #: notice goes out like any window's, there are no reminders, delegated posts are refused.
    AWAY = "away"


class ReplyPolicy(StrEnum):
    """What a window does with a delegated reply submitted through the API or the Mastodon
    face (automated answers to complaints backfire): a human approves it, it goes out as any
    post, or it is refused."""

    APPROVE = "approve"
    ALLOW = "allow"
    REFUSE = "refuse"


class Stage(StrEnum):
    """When the engine is asked: at submission (and preview) or when the post is about to go out."""

    SUBMISSION = "submission"
    PUBLICATION = "publication"


class Outcome(StrEnum):
    """What happens to the post."""

    ACCEPT = "accept"  # submission: queue it
    PUBLISH = "publish"  # publication: send it now
    REMINDER_FIRST = "reminder_first"  # publication: a standalone reminder must go out first
    HOLD = "hold"  # publication: wait for the window's notice
    REFUSE = "refuse"


class TagOutcome(StrEnum):
    """What happened to the tag."""

    APPLIED = "applied"
    SKIPPED = "skipped"  # when_fits, and it did not fit
    ALREADY_PRESENT = "already_present"
    NOT_DELEGATED = "not_delegated"
    OFF = "off"
    NOT_APPLICABLE = "not_applicable"  # notices and reminders are disclosures themselves


class ReminderOutcome(StrEnum):
    """Whether this post carries or is preceded by a reminder."""

    NONE = "none"
    INLINE = "inline"
    STANDALONE = "standalone"
    NOT_APPLICABLE = "not_applicable"


class RefusalCode(StrEnum):
    """Stable reasons for refusing a post."""

    EMPTY_TEXT = "empty_text"
    OVER_BUDGET = "over_budget"
    TAG_DOES_NOT_FIT = "tag_does_not_fit"
    OUTSIDE_WINDOW = "outside_window"
    WINDOW_ENDED = "window_ended"
    TAG_NOT_A_HASHTAG = "tag_not_a_hashtag"
    CONTENT_WARNING_UNSUPPORTED = "content_warning_unsupported"
    AWAY_WINDOW = "away_window"
    REPLIES_REFUSED = "replies_refused"


DEFAULT_REMINDER_EVERY = 10
MIN_REMINDER_EVERY = 2
DEFAULT_TAG = "#team"
#: Sets the inline reminder apart so it reads as an addendum, not as the writer's words.
INLINE_REMINDER_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class WindowPolicy:
    """A delegation window's disclosure policy."""

    starts_at: datetime
    ends_at: datetime
    notice_text: str
    reminder_text: str
    reminder_every: int = DEFAULT_REMINDER_EVERY
    reminder_mode: ReminderMode = ReminderMode.INLINE
    tag: str = DEFAULT_TAG
    tag_mode: TagMode = TagMode.WHEN_FITS
    tag_position: TagPosition = TagPosition.END
    requires_approval: bool = False
    #: Every image of a delegated post needs alt text (accessibility); False relaxes it for
    #: this window's delegated posts only (the principal's own posts always need it).
    alt_text_required: bool = True
    #: A thread's later parts carry the tag too (off: only its first part does).
    tag_every_part: bool = False
    #: Why the principal hands over the account (shown on the public disclosure page).
    reason: str = ""
    kind: WindowKind = WindowKind.DELEGATION
    #: Delegated replies through the API or the Mastodon face: approved by the principal
    #: (default), allowed as any post, or refused.
    reply_policy: ReplyPolicy = ReplyPolicy.APPROVE

    def __post_init__(self) -> None:
        # With N = 1 every post would need a reminder before it, including the post right
        # after a standalone reminder: the cadence could never be met.
        if self.reminder_every < MIN_REMINDER_EVERY:
            raise ValueError(f"reminder_every must be at least {MIN_REMINDER_EVERY}")
        if self.ends_at <= self.starts_at:
            raise ValueError("a window must end after it starts")

    def contains(self, at: datetime) -> bool:
        """Tell whether `at` lies inside the window (start inclusive, end exclusive)."""
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class WindowState:
    """A window's policy plus what has happened on the account's timeline so far."""

    policy: WindowPolicy
    notice_published: bool
    #: Published posts since the last disclosure (notice or reminder) inside the window.
    posts_since_disclosure: int
    #: What `{disclosure_url}` in the reminder text becomes (the principal's disclosure page).
    disclosure_url: str = "{disclosure_url}"

    @property
    def reminder_text(self) -> str:
        """Return the reminder text as it goes out (placeholder filled in)."""
        return self.policy.reminder_text.replace("{disclosure_url}", self.disclosure_url)


@dataclass(frozen=True)
class PostDraft:
    """The facts about a post the engine needs."""

    text: str
    kind: PostKind = PostKind.REGULAR
    is_delegated: bool = True
    #: When it is meant to go out; None means "now".
    publish_at: datetime | None = None
    #: The writer's content warning ("" for none): shown in front of the text, which readers
    #: see only after a click. It counts toward the limit, and it must show the tag (below).
    content_warning: str = ""
    #: Whether images go with it: then the text may be empty (Mastodon, Bluesky and X take a
    #: post of images alone), and a delegated post's tag becomes its whole text.
    has_media: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why a post may not go out, with a message a writer can act on."""

    code: RefusalCode
    message: str


@dataclass(frozen=True)
class TagDecision:
    """The tag decision with its numbers (in the unit of the limit that binds)."""

    outcome: TagOutcome
    tag: str = ""
    needs: int | None = None
    has: int | None = None
    unit: str | None = None

    def describe(self) -> str:
        """Say in words what happened to the tag."""
        if self.outcome is TagOutcome.SKIPPED:
            return f"{self.tag} skipped: needs {self.needs}, has {self.has} {self.unit}"
        if self.outcome is TagOutcome.APPLIED:
            return f"{self.tag} added"
        return self.outcome.value.replace("_", " ")


@dataclass(frozen=True)
class ReminderDecision:
    """The reminder decision: whether one is due and how it goes out."""

    outcome: ReminderOutcome
    text: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """Everything the engine decided about one post."""

    stage: Stage
    outcome: Outcome
    final_text: str
    tagged_text: str
    tag: TagDecision
    reminder: ReminderDecision
    measurement: Measurement | None = None
    held_reason: str | None = None
    refusal: Refusal | None = None
    notes: tuple[str, ...] = field(default=())
    #: The content warning to send with final_text ("" for none): the writer's, plus the tag
    #: when the post must show it (see decide).
    content_warning: str = ""

    @property
    def refused(self) -> bool:
        """Tell whether the post is refused."""
        return self.outcome is Outcome.REFUSE

    def to_record(self) -> dict[str, Any]:
        """Return the decision as JSON-ready data (stored with the post and in the ledger)."""
        dim = self.measurement.primary if self.measurement else None
        return {
            "stage": self.stage.value,
            "outcome": self.outcome.value,
            "tag": {
                "outcome": self.tag.outcome.value,
                "tag": self.tag.tag,
                "needs": self.tag.needs,
                "has": self.tag.has,
                "unit": self.tag.unit,
            },
            "reminder": {"outcome": self.reminder.outcome.value, "reason": self.reminder.reason},
            "length": None
            if dim is None
            else {"used": dim.used, "limit": dim.limit, "unit": dim.unit},
            "held_reason": self.held_reason,
            "refusal": None
            if self.refusal is None
            else {"code": self.refusal.code.value, "message": self.refusal.message},
            "notes": list(self.notes),
            # Only posts with a content warning carry the key (older records stay as they were).
            **({"content_warning": self.content_warning} if self.content_warning else {}),
        }


def has_tag(text: str, tag: str, budget: Budget) -> bool:
    """Tell whether the budget's platform shows `tag` as a hashtag of `text`, as sent.

    Only the platform's own hashtag extraction counts (ghostpost.domain.hashtags): "#team" inside
    a URL, continued by a combining mark, or where the platform makes no hashtag ("x=#team" on
    Mastodon, "a#team" anywhere) is not the tag.
    """
    return budget.finds_hashtag(text, tag)


def with_tag(text: str, tag: str, position: TagPosition) -> str:
    """Return `text` carrying `tag` at the given position, separated by one space (an empty
    text, beside images, becomes the tag alone)."""
    if not text:
        return tag
    if position is TagPosition.START:
        return tag + ("" if text[:1].isspace() else " ") + text
    return text + ("" if text[-1:].isspace() else " ") + tag


#: Separators tried after with_tag's own, in order, until the platform finds the tag.
_TAG_SEPARATORS = (" ", "\n", "\n\n", " \n\n")


def _tagged_variants(text: str, tag: str, position: TagPosition) -> list[str]:
    """Ways to add the tag, preferred first: with_tag's, then the other separators.

    with_tag relies on existing whitespace, but not every character Python calls whitespace
    ends a hashtag on every platform (U+001C is not whitespace to Bluesky), and on Mastodon a
    tag right after "Gruß " is no hashtag (see hashtags._folds_into_lookbehind): a longer
    separator moves the tag out of reach.
    """
    variants = [with_tag(text, tag, position)]
    for separator in _TAG_SEPARATORS:
        joined = tag + separator + text if position is TagPosition.START else text + separator + tag
        if joined not in variants:
            variants.append(joined)
    return variants


def with_inline_reminder(text: str, reminder_text: str) -> str:
    """Return `text` followed by the reminder (an empty text, beside images: the reminder)."""
    if not text.strip():
        return reminder_text
    return text.rstrip() + INLINE_REMINDER_SEPARATOR + reminder_text


def _over_budget_message(what: str, measured: Measurement) -> str:
    over = measured.overflow()
    assert over is not None
    cut = over.used - over.limit
    return (
        f"{what} is {over.used} {over.unit}, over the limit of {over.limit}: "
        f"cut {cut} {_unit(over.unit, cut)}."
    )


def _unit(unit: str, count: int) -> str:
    # "cut 1 character", "cut 2 characters"
    return unit[:-1] if count == 1 and unit.endswith("s") else unit


def decide_tag(
    text: str, *, draft: PostDraft, policy: WindowPolicy | None, budget: Budget
) -> tuple[TagDecision, str, Refusal | None]:
    """Decide the tag for a post: the decision, the text it leads to, and a refusal if required."""
    if draft.kind is not PostKind.REGULAR:
        return TagDecision(TagOutcome.NOT_APPLICABLE), text, None
    if not draft.is_delegated:
        return TagDecision(TagOutcome.NOT_DELEGATED), text, None
    if policy is None or policy.tag_mode is TagMode.OFF or not policy.tag:
        return TagDecision(TagOutcome.OFF), text, None
    if has_tag(text, policy.tag, budget):
        return TagDecision(TagOutcome.ALREADY_PRESENT, tag=policy.tag), text, None
    # Adding the tag must make the hashtag the platform shows, not just the characters.
    tagged = next(
        (
            variant
            for variant in _tagged_variants(text, policy.tag, policy.tag_position)
            if has_tag(variant, policy.tag, budget)
        ),
        None,
    )
    if tagged is None:
        # Only a tag that is no hashtag at all on this platform gets here ("#123", or longer
        # than Bluesky's 64): publishing would break the window's promise whatever the mode.
        return (
            TagDecision(TagOutcome.NOT_APPLICABLE, tag=policy.tag),
            text,
            Refusal(
                RefusalCode.TAG_NOT_A_HASHTAG,
                f"The window's tag {policy.tag} is not a hashtag on {budget.platform}, so "
                "delegated posts cannot carry it. Change the window's tag.",
            ),
        )
    with_measure = budget.measure(tagged)
    if with_measure.fits:
        return TagDecision(TagOutcome.APPLIED, tag=policy.tag), tagged, None
    over = with_measure.overflow()
    assert over is not None
    before = budget.measure(text).dimension(over.unit)
    needs = over.used - before.used
    decision = TagDecision(
        TagOutcome.SKIPPED, tag=policy.tag, needs=needs, has=max(before.room, 0), unit=over.unit
    )
    if policy.tag_mode is TagMode.REQUIRED:
        cut = over.used - over.limit
        refusal = Refusal(
            RefusalCode.TAG_DOES_NOT_FIT,
            f"The required tag {policy.tag} does not fit: with it the post is {over.used} "
            f"{over.unit}, over the limit of {over.limit}. Cut {cut} {_unit(over.unit, cut)}.",
        )
        return decision, text, refusal
    return decision, text, None


def decide_warning_tag(
    draft: PostDraft, tag: TagDecision, tagged_text: str, budget: Budget
) -> tuple[str, Refusal | None]:
    """Return the content warning to send and, if it cannot show the tag, the refusal.

    A content warning hides the text until the reader clicks, so a tag only in the text is a
    disclosure buried behind the warning. When a post must carry the tag (it was added, or the
    writer put it there), the warning shows it too: ghostpost appends it to the warning unless
    the warning already has it. The text keeps its own, the hashtag the platform indexes. If
    the second tag does not fit, the post is refused whatever the tag mode: a post that can
    only go out with its disclosure hidden does not go out.
    """
    warning = draft.content_warning
    must_show = tag.outcome in (TagOutcome.APPLIED, TagOutcome.ALREADY_PRESENT)
    if not warning or not must_show or shows_tag(warning, tag.tag):
        return warning, None
    shown = warning.rstrip() + " " + tag.tag
    warned = with_content_warning(budget, shown) or budget
    measured = warned.measure(tagged_text)
    if measured.fits:
        return shown, None
    over = measured.overflow()
    assert over is not None
    cut = over.used - over.limit
    return warning, Refusal(
        RefusalCode.TAG_DOES_NOT_FIT,
        f"A content warning hides the text, so the warning must show the tag {tag.tag} too; "
        f"with it the post is {over.used} {over.unit}, over the limit of {over.limit}. "
        f"Cut {cut} {_unit(over.unit, cut)}, or post without a content warning.",
    )


def reminder_due(posts_since_disclosure: int, every: int) -> bool:
    """Tell whether the next post would make `every` consecutive posts without a disclosure."""
    return posts_since_disclosure + 1 >= every


def decide_reminder(
    text: str, *, draft: PostDraft, window: WindowState | None, at: datetime, budget: Budget
) -> tuple[ReminderDecision, str]:
    """Decide whether a post carries or is preceded by a reminder, and the text it leads to."""
    if draft.kind is not PostKind.REGULAR:
        return ReminderDecision(ReminderOutcome.NOT_APPLICABLE), text
    if window is None or not window.policy.contains(at):
        return ReminderDecision(ReminderOutcome.NONE, reason="outside any window"), text
    policy = window.policy
    if policy.kind is WindowKind.AWAY:
        return ReminderDecision(
            ReminderOutcome.NONE, reason="an away notice has no reminders"
        ), text
    reminder_text = window.reminder_text
    if not reminder_due(window.posts_since_disclosure, policy.reminder_every):
        left = policy.reminder_every - 1 - window.posts_since_disclosure
        return ReminderDecision(ReminderOutcome.NONE, reason=f"{left} more before a reminder"), text
    if policy.reminder_mode is ReminderMode.STANDALONE:
        return ReminderDecision(ReminderOutcome.STANDALONE, reminder_text, "standalone mode"), text
    if not draft.is_delegated:
        # The principal's own words are never altered; their reminder goes out on its own.
        return ReminderDecision(
            ReminderOutcome.STANDALONE, reminder_text, "principal post is never altered"
        ), text
    if draft.content_warning:
        # Inline, the reminder would sit behind the warning, unseen until a click.
        return ReminderDecision(
            ReminderOutcome.STANDALONE, reminder_text, "a content warning would hide it"
        ), text
    inline = with_inline_reminder(text, reminder_text)
    if budget.measure(inline).fits:
        return ReminderDecision(ReminderOutcome.INLINE, reminder_text, "fits inline"), inline
    return ReminderDecision(ReminderOutcome.STANDALONE, reminder_text, "does not fit inline"), text


@dataclass(frozen=True)
class _Remembering:
    """`budget` measuring each text once: deciding one post measures the same text with the
    same budget more than once (the tagged text, then again as the final text)."""

    budget: Budget
    seen: dict[str, Measurement] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        """The budget's platform."""
        return self.budget.platform

    def measure(self, text: str) -> Measurement:
        """The budget's measurement of `text`, taken once."""
        found = self.seen.get(text)
        if found is None:
            found = self.seen[text] = self.budget.measure(text)
        return found

    def hashtags(self, text: str) -> Sequence[Hashtag]:
        """The budget's hashtags of `text`."""
        return self.budget.hashtags(text)

    def finds_hashtag(self, text: str, tag: str) -> bool:
        """Whether the budget's platform shows `tag` in `text`."""
        return self.budget.finds_hashtag(text, tag)


def decide(
    draft: PostDraft,
    *,
    window: WindowState | None,
    budget: Budget,
    now: datetime,
    stage: Stage,
) -> Decision:
    """Apply the whole policy to one post at submission or at publication."""
    at = draft.publish_at if (stage is Stage.SUBMISSION and draft.publish_at) else now
    base_tag = TagDecision(TagOutcome.NOT_APPLICABLE)
    none_reminder = ReminderDecision(ReminderOutcome.NOT_APPLICABLE)
    warned_budget = with_content_warning(budget, draft.content_warning)

    def refuse(code: RefusalCode, message: str, tag: TagDecision = base_tag) -> Decision:
        return Decision(
            stage=stage,
            outcome=Outcome.REFUSE,
            final_text=draft.text,
            tagged_text=draft.text,
            tag=tag,
            reminder=none_reminder,
            measurement=(warned_budget or budget).measure(draft.text),
            refusal=Refusal(code, message),
            content_warning=draft.content_warning,
        )

    if warned_budget is None:
        return refuse(
            RefusalCode.CONTENT_WARNING_UNSUPPORTED,
            f"{budget.platform} has no content warnings; post without one.",
        )
    budget = warned_budget
    if not draft.text.strip():
        if not draft.has_media:
            return refuse(RefusalCode.EMPTY_TEXT, "The post is empty.")
        # Images alone: the platforms strip a blank text to nothing, so decide on that.
        draft = replace(draft, text="")
    remembering = _Remembering(budget)
    measured = remembering.measure(draft.text)
    if not measured.fits:
        what = "The post with its content warning" if draft.content_warning else "The post"
        return refuse(RefusalCode.OVER_BUDGET, _over_budget_message(what, measured))

    regular_delegated = draft.kind is PostKind.REGULAR and draft.is_delegated
    policy = window.policy if window else None
    if regular_delegated:
        if policy is None:
            return refuse(
                RefusalCode.OUTSIDE_WINDOW,
                "Delegated posts need an active delegation window on this account; "
                f"none covers {_shown(at)}.",
            )
        if at >= policy.ends_at:
            return refuse(
                RefusalCode.WINDOW_ENDED,
                f"The delegation window ended at {_shown(policy.ends_at)}; "
                "delegated posts are not published after it.",
            )
        if at < policy.starts_at:
            return refuse(
                RefusalCode.OUTSIDE_WINDOW,
                f"The delegation window starts at {_shown(policy.starts_at)}; "
                "schedule the post inside it.",
            )
        if policy.kind is WindowKind.AWAY:
            return refuse(
                RefusalCode.AWAY_WINDOW,
                "This period is an away notice, not a delegation window: nobody else posts "
                "on the account until it ends.",
            )

    tag, tagged_text, tag_refusal = decide_tag(
        draft.text, draft=draft, policy=policy, budget=remembering
    )
    if tag_refusal is not None:
        return refuse(tag_refusal.code, tag_refusal.message, tag)
    # The budget itself, not the remembering one: it may become one counting the warning.
    content_warning, cw_refusal = decide_warning_tag(draft, tag, tagged_text, budget)
    if cw_refusal is not None:
        return refuse(cw_refusal.code, cw_refusal.message, tag)
    warned = with_content_warning(budget, content_warning) or budget
    if warned is not budget:  # the warning grew (it shows the tag): measured anew
        budget, remembering = warned, _Remembering(warned)

    held_reason = None
    if regular_delegated and window is not None and not window.notice_published:
        held_reason = "waiting for the window's notice to be published"

    reminder, final_text = decide_reminder(
        tagged_text, draft=draft, window=window, at=at, budget=remembering
    )
    notes: list[str] = []
    if stage is Stage.SUBMISSION:
        outcome = Outcome.ACCEPT
        if held_reason:
            notes.append(f"will be held until the notice is published ({held_reason})")
        later = decided_at_publication(draft.kind, draft.is_delegated)
        if later:
            notes.append(describe_decided_at_publication(later))
    elif held_reason:
        outcome = Outcome.HOLD
    elif reminder.outcome is ReminderOutcome.STANDALONE:
        outcome = Outcome.REMINDER_FIRST
    else:
        outcome = Outcome.PUBLISH
    return Decision(
        stage=stage,
        outcome=outcome,
        final_text=final_text,
        tagged_text=tagged_text,
        tag=tag,
        reminder=reminder,
        measurement=remembering.measure(final_text),
        held_reason=held_reason,
        notes=tuple(notes),
        content_warning=content_warning,
    )


class Deferred(StrEnum):
    """A decision the worker takes again when the post goes out (so no earlier text is final)."""

    TAG = "tag"
    REMINDER = "reminder"
    NOTICE_HOLD = "notice_hold"


def decided_at_publication(kind: PostKind, is_delegated: bool) -> tuple[Deferred, ...]:
    """Return the decisions about a post not yet claimed that are taken only when it goes out.

    The tag follows the policy in force then; the reminder follows the window's run then; the
    hold follows whether the window's notice is out then. Notices and reminders are sent as
    they are; the principal's own words are never altered, but a reminder may precede them.
    """
    if kind is not PostKind.REGULAR:
        return ()
    if not is_delegated:
        return (Deferred.REMINDER,)
    return (Deferred.TAG, Deferred.REMINDER, Deferred.NOTICE_HOLD)


_DEFERRED_WORDS = {
    Deferred.TAG: "the tag",
    Deferred.REMINDER: "the reminder",
    Deferred.NOTICE_HOLD: "the hold for the window's notice",
}


def describe_decided_at_publication(deferred: tuple[Deferred, ...]) -> str:
    """Say in one sentence which decisions wait for publication (empty: nothing waits)."""
    if not deferred:
        return "Nothing is decided later: this is the text that is sent."
    words = [_DEFERRED_WORDS[d] for d in deferred]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    verb = "is" if len(words) == 1 else "are"
    return (
        f"{listed[0].upper()}{listed[1:]} {verb} decided when the post goes out; this is the "
        "text if it went out now, as the next post."
    )


# ---------------------------------------------------------------------------------------------
# The reminder cadence: ONE rule, read by the publishing worker and by the coverage dashboard.
#
# A window's timeline is every post published on the account inside the window's period (start
# inclusive, end exclusive, by the confirmed publish time), plus the window's own notice wherever
# it fell. On it, a disclosure is any notice (the window's own, or another window's notice on the
# same account: it tells the same followers that a team posts), any standalone reminder, and any
# post that carries the inline reminder. Every other post extends the run.


@dataclass(frozen=True)
class CadencePost:
    """What the reminder cadence reads of one confirmed publish on an account."""

    kind: PostKind
    #: The confirmed publish time (never the claim time: only confirmed publishes count).
    published_at: datetime
    reminder: ReminderOutcome = ReminderOutcome.NONE
    #: For a notice: the window it announces (it counts on that window's timeline wherever it
    #: fell). None for every other post.
    notice_of: int | None = None

    @property
    def is_disclosure(self) -> bool:
        """Tell whether this publish resets the run."""
        return is_disclosure(self.kind, self.reminder)


def is_disclosure(kind: PostKind, reminder: ReminderOutcome) -> bool:
    """Tell whether a published post is a disclosure for the cadence: any notice (whichever
    window it announces), any standalone reminder, any post carrying the inline reminder."""
    return kind in (PostKind.NOTICE, PostKind.REMINDER) or reminder is ReminderOutcome.INLINE


def counts_in_window(window_id: int, policy: WindowPolicy, post: CadencePost) -> bool:
    """Tell whether a confirmed publish is on the window's timeline (and so moves its run)."""
    if post.kind is PostKind.NOTICE and post.notice_of == window_id:
        return True
    return policy.contains(post.published_at)


def next_run_length(current: int, *, disclosure: bool) -> int:
    """Return posts-since-disclosure after one more confirmed publish inside the window."""
    return 0 if disclosure else current + 1


def cadence_step(run: int, post: CadencePost) -> int:
    """Return the window's run (posts since the last disclosure) after `post`, which must be
    on its timeline (`counts_in_window`)."""
    return next_run_length(run, disclosure=post.is_disclosure)


def policy_record(policy: WindowPolicy) -> dict[str, Any]:
    """Return every field of a policy as JSON-ready data (kept with each published post)."""
    return {
        "starts_at": policy.starts_at.isoformat(),
        "ends_at": policy.ends_at.isoformat(),
        "notice_text": policy.notice_text,
        "reminder_text": policy.reminder_text,
        "reminder_every": policy.reminder_every,
        "reminder_mode": policy.reminder_mode.value,
        "tag": policy.tag,
        "tag_mode": policy.tag_mode.value,
        "tag_position": policy.tag_position.value,
        "requires_approval": policy.requires_approval,
        # Only when relaxed: records of windows that keep the default read as they always have.
        # Only when relaxed (or set): records of windows that keep the defaults read as they
        # always have.
        **({} if policy.alt_text_required else {"alt_text_required": False}),
        **({"tag_every_part": True} if policy.tag_every_part else {}),
        # The reason the post was published under (windows before 0022 read "not recorded").
        **({"reason": policy.reason} if policy.reason else {}),
        **({"kind": policy.kind.value} if policy.kind is not WindowKind.DELEGATION else {}),
        **(
            {}
            if policy.reply_policy is ReplyPolicy.APPROVE
            else {"reply_policy": policy.reply_policy.value}
        ),
    }


#: The fields `decision_summary` reads from a post's stored `decisions`, in order.
DECISION_SUMMARY_FIELDS = (
    "delegated",
    "stage",
    "tag",
    "tag_outcome",
    "tag_needs",
    "tag_has",
    "tag_unit",
    "reminder_outcome",
)


def decision_summary(decisions: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """Return what the authorship report reads from a post's stored `decisions` (the
    `Decision.to_record` of each stage under "submission"/"publication", and "delegated"), in
    DECISION_SUMMARY_FIELDS order:

    - delegated: the truth of "delegated" (missing: True);
    - stage: "publication" if that record is an object, else "submission" if that one is, else
      None; the fields below come from that record (None without one);
    - tag, tag_outcome, tag_unit, reminder_outcome: the record's tag name, tag outcome, tag unit
      and reminder outcome when they are strings, else None;
    - tag_needs, tag_has: the tag's numbers when they are integers (not booleans), else None.

    ghostpost.db.exports computes the same in SQL on SQLite (json_extract), where decoding each
    post's decisions in Python cost a third of the export; the two are held together by
    tests/integration/test_export_decisions.py.
    """
    decisions = decisions or {}
    delegated = bool(decisions.get("delegated", True))
    stage: str | None = None
    record: Mapping[str, Any] = {}
    for candidate in ("publication", "submission"):
        found = decisions.get(candidate)
        if isinstance(found, Mapping):
            stage, record = candidate, found
            break
    tag = record.get("tag")
    tag = tag if isinstance(tag, Mapping) else {}
    reminder = record.get("reminder")
    reminder_outcome = reminder.get("outcome") if isinstance(reminder, Mapping) else None
    return (
        delegated,
        stage,
        _text(tag.get("tag")),
        _text(tag.get("outcome")),
        _integer(tag.get("needs")),
        _integer(tag.get("has")),
        _text(tag.get("unit")),
        _text(reminder_outcome),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
