"""The disclosure page's pure parts: placeholders, their length as each platform counts a link,
the policy in words, and the away notice in the engine."""

from __future__ import annotations

from datetime import datetime, timedelta

from ghostpost.domain.disclosure import expand, policy_in_words, unknown_placeholders
from ghostpost.domain.length import budget_for
from ghostpost.domain.policy import (
    Outcome,
    PostDraft,
    RefusalCode,
    ReminderOutcome,
    Stage,
    TagMode,
    TagPosition,
    WindowKind,
    WindowPolicy,
    WindowState,
    decide,
)
from ghostpost.textseg import default_segmenter

SEG = default_segmenter()

URL = "https://ghostpost.example.com/@avery/disclosure"
START = datetime.fromisoformat("2026-11-22T10:00:00+00:00")


def policy(**changes: object) -> WindowPolicy:
    base: dict[str, object] = {
        "starts_at": START,
        "ends_at": START + timedelta(hours=8),
        "notice_text": "Notice",
        "reminder_text": "More: {disclosure_url}",
        "reason": "At a conference",
    }
    return WindowPolicy(**{**base, **changes})  # type: ignore[arg-type]


def test_only_known_placeholders_pass_and_each_unknown_one_is_named_once() -> None:
    assert unknown_placeholders("See {disclosure_url}") == []
    assert unknown_placeholders("{disclosure_link} {x} {disclosure_link}") == [
        "disclosure_link",
        "x",
    ]
    assert unknown_placeholders("a { b } and {} stay text") == []
    assert expand("See {disclosure_url}.", URL) == f"See {URL}."


def test_the_expanded_link_counts_as_each_platform_counts_a_link() -> None:
    text = expand("More: {disclosure_url}", URL)
    assert budget_for("x", SEG).measure(text).primary.used == len("More: ") + 23
    assert budget_for("mastodon", SEG).measure(text).primary.used == len("More: ") + 23
    # Bluesky counts the text as shown; the link is a facet over the full URL.
    assert budget_for("bluesky", SEG).measure(text).primary.used == len(text)


def test_the_policy_in_plain_words() -> None:
    assert policy_in_words(policy(reminder_every=10)) == (
        "a reminder every 10 posts; delegated posts carry #team when they fit"
    )
    words = policy_in_words(
        policy(tag_mode=TagMode.REQUIRED, tag_position=TagPosition.START, requires_approval=True)
    )
    assert words == (
        "a reminder every 10 posts; delegated posts carry #team at the start always; "
        "the principal approves each delegated post"
    )
    assert policy_in_words(policy(kind=WindowKind.AWAY)).startswith("an away notice")


def test_an_away_window_refuses_delegated_posts_and_never_reminds() -> None:
    away = WindowState(policy(kind=WindowKind.AWAY), True, posts_since_disclosure=50)
    mastodon = budget_for("mastodon", SEG)
    refused = decide(
        PostDraft("Hi"), window=away, budget=mastodon, now=START, stage=Stage.SUBMISSION
    )
    assert refused.refusal is not None and refused.refusal.code is RefusalCode.AWAY_WINDOW
    own = decide(
        PostDraft("Hi", is_delegated=False),
        window=away,
        budget=mastodon,
        now=START,
        stage=Stage.PUBLICATION,
    )
    assert own.outcome is Outcome.PUBLISH and own.reminder.outcome is ReminderOutcome.NONE


def test_the_reminder_goes_out_with_the_page_url() -> None:
    state = WindowState(policy(), True, posts_since_disclosure=9, disclosure_url=URL)
    decision = decide(
        PostDraft("Hi"),
        window=state,
        budget=budget_for("mastodon", SEG),
        now=START,
        stage=Stage.PUBLICATION,
    )
    assert decision.reminder.outcome is ReminderOutcome.INLINE
    assert decision.final_text.endswith(f"More: {URL}")
