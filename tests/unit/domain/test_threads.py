"""The thread rules as the policy engine sees them (domain.threads)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ghostpost.domain.policy import ReminderMode, TagMode, WindowPolicy, WindowState
from ghostpost.domain.threads import MAX_THREAD_PARTS, max_parts, part_window

START = datetime(2026, 11, 21, 9, tzinfo=UTC)


def state(since: int = 0, *, every: int = 5, every_part: bool = False) -> WindowState:
    policy = WindowPolicy(
        starts_at=START,
        ends_at=START + timedelta(hours=8),
        notice_text="Notice.",
        reminder_text="Reminder.",
        reminder_every=every,
        reminder_mode=ReminderMode.STANDALONE,
        tag_mode=TagMode.REQUIRED,
        tag_every_part=every_part,
    )
    return WindowState(policy, notice_published=True, posts_since_disclosure=since)


def test_a_lone_post_sees_the_window_as_it_is() -> None:
    assert part_window(state(3), 1, 1) == state(3)
    assert part_window(None, 2, 3) is None


@pytest.mark.parametrize("since", [0, 1, 2, 3])
def test_the_first_part_decides_the_reminder_for_the_whole_thread(since: int) -> None:
    seen = part_window(state(since), 1, 3)
    assert seen is not None and seen.posts_since_disclosure == since + 2
    assert seen.policy.tag_mode is TagMode.REQUIRED


def test_later_parts_see_no_reminder_due_and_no_tag_unless_every_part() -> None:
    seen = part_window(state(4), 2, 3)
    assert seen is not None
    assert (seen.posts_since_disclosure, seen.policy.tag_mode) == (0, TagMode.OFF)
    tagged = part_window(state(4, every_part=True), 3, 3)
    assert tagged is not None and tagged.policy.tag_mode is TagMode.REQUIRED


def test_a_thread_has_at_most_n_minus_one_parts() -> None:
    assert max_parts(state(every=5)) == 4
    assert max_parts(None) == MAX_THREAD_PARTS
    assert max_parts(state(every=1000)) == MAX_THREAD_PARTS
