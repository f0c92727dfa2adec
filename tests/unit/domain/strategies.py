"""Hypothesis strategies shared by the domain property tests (policy, ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

from ghostpost.domain.length import Budget, budget_for
from ghostpost.domain.policy import (
    PostDraft,
    PostKind,
    ReminderMode,
    TagMode,
    TagPosition,
    WindowPolicy,
)
from ghostpost.textseg import default_segmenter

SEG = default_segmenter()
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
END = START + timedelta(days=3)
NOW = START + timedelta(hours=1)
NOTICE = "During the show, some of my posts will be written by my extended team."
REMINDER = "Reminder: my team writes some of these posts."

#: The platform budgets the properties run against, built once (building one is cheap, but the
#: Mastodon mention class is compiled on first use and cached, so keep one segmenter).
BUDGETS: dict[str, Budget] = {
    name: budget_for(name, SEG) for name in ("x", "mastodon", "local", "bluesky")
}

#: A limit in the budget's own terms, to aim generated lengths near the edge.
LIMITS = {"x": 280, "mastodon": 500, "local": 500, "bluesky": 300}

# Pieces a post is built from: plain words, punctuation, a CJK run (weight 2 on X), an emoji
# and a ZWJ family (one grapheme, many bytes), a URL and a remote mention (counted specially on
# X and Mastodon), the tag itself in other cases, and look-alikes that must not count as it.
PIECES = (
    "the",
    "keynote",
    "starts",
    "now",
    "!",
    ",",
    "\n",
    "世界",
    "👍",
    "👨\u200d👩\u200d👧\u200d👦",
    "é",
    "https://example.com/talk",
    "@alice@example.social",
    "#Team",
    "#teamwork",
    "#te\u200dam",
)

platforms = st.sampled_from(sorted(BUDGETS))


@st.composite
def post_texts(draw: st.DrawFn, platform: str = "local") -> str:
    """A non-empty post, its length spread over the budget and often right at its edge."""
    limit = LIMITS[platform]
    target = draw(
        st.one_of(
            st.integers(1, limit),
            st.integers(max(1, limit - 60), limit + 2),
            st.integers(limit - 8, limit),
        )
    )
    words = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
    unit = " ".join(words)
    # Start with a letter so the text is never blank, then repeat the pieces up to the target.
    text = "a" + (" " + unit) * (target // (len(unit) + 1) + 1)
    return text[:target]


@st.composite
def window_policies(
    draw: st.DrawFn,
    *,
    every: st.SearchStrategy[int] | None = None,
    tag_modes: tuple[TagMode, ...] = (TagMode.WHEN_FITS, TagMode.OFF),
) -> WindowPolicy:
    """A window over [START, END) with random cadence, reminder mode and tag settings.

    A combination the domain refuses to build (ValueError) is not a window, so it is skipped.
    """
    fields = {
        "starts_at": START,
        "ends_at": END,
        "notice_text": NOTICE,
        "reminder_text": draw(st.sampled_from([REMINDER, "Team post.", "R" * 120])),
        "reminder_every": draw(every if every is not None else st.integers(1, 12)),
        "reminder_mode": draw(st.sampled_from(list(ReminderMode))),
        "tag": draw(st.sampled_from(["#team", "#Team", "#staff"])),
        "tag_mode": draw(st.sampled_from(tag_modes)),
        "tag_position": draw(st.sampled_from(list(TagPosition))),
    }
    try:
        return WindowPolicy(**fields)
    except ValueError:
        reject()


@st.composite
def regular_drafts(draw: st.DrawFn, platform: str = "local") -> PostDraft:
    """A regular post, delegated or the principal's own."""
    return PostDraft(
        text=draw(post_texts(platform)),
        kind=PostKind.REGULAR,
        is_delegated=draw(st.booleans()),
    )


@dataclass(frozen=True)
class PlannedPost:
    """One post in a simulated timeline."""

    text: str
    is_delegated: bool


@st.composite
def timelines(draw: st.DrawFn, platform: str = "local") -> list[PlannedPost]:
    """A sequence of regular posts on one account, a random mix of principal and delegated."""
    return draw(
        st.lists(
            st.builds(PlannedPost, text=post_texts(platform), is_delegated=st.booleans()),
            min_size=1,
            max_size=30,
        )
    )


# --- ledger -----------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=20),
)

#: JSON-ready data without floats (what the ledger stores).
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)

ledger_data = st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4)

#: An entry's data in the chain tests (up to twelve entries per chain): nested at most once.
#: The chain hashes the data's canonical JSON, whose every shape the canonical-JSON properties
#: explore with `json_values` and `ledger_data`; chains of `ledger_data` spent two thirds of
#: the chain tests' time in Hypothesis drawing them (py-spy, 2026-12-07).
chain_data = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(
        json_scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=4,
    ),
    max_size=4,
)
